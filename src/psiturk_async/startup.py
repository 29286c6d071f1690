"""Checks and preparation done once by `serve` before any worker starts."""

from __future__ import annotations

import logging

from .settings import Settings, redact_url

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The project cannot be served; the message says why in one line."""


def prepare(settings: Settings, *, migrate: bool) -> None:
    """Upgrade the database (unless told not to)."""
    if migrate:
        from .migrate import upgrade

        try:
            upgrade(settings)
        except Exception as exc:
            raise StartupError(f"could not upgrade the database {redact_url(settings.database_url)}: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        logger.info("database %s is up to date", redact_url(settings.database_url))
