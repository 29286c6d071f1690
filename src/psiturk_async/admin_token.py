"""The generated admin token in the project folder. Import-light: the CLI reads the same file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_FILE = Path(".psiturk") / "admin_token"


def token_path(project_dir: Path) -> Path:
    return project_dir / TOKEN_FILE


def read_token(project_dir: Path) -> str | None:
    """The token written by `serve`, or None when there is none yet."""
    try:
        token = token_path(project_dir).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return token or None


def ensure_token(project_dir: Path) -> bool:
    """Write a new random token (mode 0600) unless one exists; True when one was written."""
    path = token_path(project_dir)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    try:
        # O_EXCL: two servers starting together must not each write, and so disagree on, a token.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        if read_token(project_dir) is not None:
            return False
        descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return True
