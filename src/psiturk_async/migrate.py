"""Run the Alembic migrations: the only way psiturk-async makes or changes a schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from .settings import Settings

VERSION_TABLE = "psiturk_async_version"


def migrations_dir() -> Path:
    """`migrations/` inside an installed wheel, else at the top of the source checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "migrations", package.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the migrations folder is missing from this installation")


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database to `revision`; adopts a psiTurk-made database in place. Blocking: call off-loop."""
    command.upgrade(alembic_config(settings), revision)
