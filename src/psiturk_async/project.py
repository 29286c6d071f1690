"""The project folder: scaffolding a new one from the example and the config.txt that lists every key."""

from __future__ import annotations

import shutil
from pathlib import Path

from .settings import KEYS

EXAMPLE_DIR = Path(__file__).resolve().parent / "example"
# Values the example sets on purpose; every other key is written commented out, at its default.
EXAMPLE_VALUES = {
    "title": "Colour and word (about 5 minutes)",
    "description": "Name the ink colour of words as quickly as you can.",
    "keywords": "psychology, perception, reaction time",
    "num_conds": "2",
    "num_counters": "2",
}


def render_config(values: dict[str, str] | None = None) -> str:
    """A config.txt listing every key under its section with a one-line comment."""
    values = values or {}
    lines = ["# psiturk-async project settings. A line starting with ; is a default: remove the ; to change it.",
             "# Environment variables PSITURK_<KEY> (and DATABASE_URL, PORT) override this file; so does .env.",
             ""]
    section = None
    for key in KEYS:
        if key.section != section:
            if section is not None:
                lines.append("")
            lines.append(f"[{key.section}]")
            section = key.section
        lines.append(f"# {key.help}")
        if key.name in values:
            lines.append(f"{key.name} = {values[key.name]}")
        else:
            lines.append(f";{key.name} = {key.default}")
    return "\n".join(lines) + "\n"


class ProjectExists(Exception):
    pass


def setup_example(target: Path) -> Path:
    """Copy the example experiment into `target`, which must not exist yet."""
    if target.exists():
        raise ProjectExists(f"{target} already exists; nothing was changed")
    shutil.copytree(EXAMPLE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / "config.txt").write_text(render_config(EXAMPLE_VALUES), encoding="utf-8")
    return target
