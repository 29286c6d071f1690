"""The `psiturk-async` command: local commands (serve, setup-example, db) and a thin client of the admin API."""

from __future__ import annotations

from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
