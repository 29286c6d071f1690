"""Throwaway virtual environments with the Python stack of psiTurk 3's time, made at test time.

Each lives in the pytest cache (.pytest_cache/d/<name>, never committed), is made once per machine and reused
while its pins stay the same. Where one cannot be made (no python3.11, no package index) the tests that need
it skip, unless PSITURK_TEST_STRICT is set (`make test` sets it), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import unavailable

# What a lab's analysis machine had next to psiTurk 3 (2020-2022): SQLAlchemy 1.3 or 1.4, pandas, psycopg2.
ANALYSIS_PINS = {
    "sqlalchemy-1.3": ["SQLAlchemy==1.3.24", "pandas==1.5.3", "numpy==1.26.4", "psycopg2-binary==2.9.5"],
    "sqlalchemy-1.4": ["SQLAlchemy==1.4.54", "pandas==1.5.3", "numpy==1.26.4", "psycopg2-binary==2.9.5"],
}
# psiTurk 3.3.1 reaches PostgreSQL through psycopg2, which it leaves to the lab to install.
PSITURK_POSTGRES_DRIVER = "psycopg2-binary==2.9.5"


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)  # type: ignore[call-overload,no-any-return]


def pip_install(python: Path, pins: list[str]) -> None:
    done = run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins])
    if done.returncode != 0:
        unavailable(f"could not install {' '.join(pins)}:\n{done.stderr[-3000:]}")


def cached_venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str,
                pins: list[str]) -> Path:
    """The python of a venv with exactly `pins` installed, made under the pytest cache if it is not there."""
    base = shutil.which("python3.11")
    if base is None:
        unavailable("python3.11 is needed to make the venvs of psiTurk 3's time")
    cache = getattr(request.config, "cache", None)
    venv = (cache.mkdir(name) if cache else tmp_path_factory.mktemp(name)) / "venv"
    marker = venv / "installed.json"
    python = venv / "bin" / "python"
    if not marker.is_file() or json.loads(marker.read_text()) != pins:
        shutil.rmtree(venv, ignore_errors=True)
        made = run([str(base), "-m", "venv", str(venv)])
        if made.returncode != 0:
            unavailable(f"could not make a venv at {venv}:\n{made.stderr}")
        pip_install(python, pins)
        marker.write_text(json.dumps(pins))
    return python


def with_postgres_driver(python: Path) -> Path:
    """`python` (psiTurk 3.3.1's venv) able to reach PostgreSQL, as a lab running psiTurk on it had it."""
    if run([str(python), "-c", "import psycopg2"]).returncode != 0:
        pip_install(python, [PSITURK_POSTGRES_DRIVER])
    return python


def run_script(python: Path, script: str, *args: str, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> str:
    """Run `script` with `python`; its stdout, or the test fails with its stderr."""
    done = run([str(python), "-c", script, *args], cwd=cwd, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{python} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout
