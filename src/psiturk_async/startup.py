"""Checks and preparation done once by `serve` before any worker starts."""

from __future__ import annotations

import logging

from .settings import Settings, redact_url

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The project cannot be served; the message says why in one line."""


def check_project(settings: Settings) -> None:
    """Stop before serving when templates, conditions.json or custom.py cannot work."""
    from .counterbalance import ConditionsFileError, read_conditions_file
    from .extensions import CustomCodeError, load_custom_code
    from .templates import MissingTemplates, ProjectTemplates

    try:
        ProjectTemplates(settings.project_dir).check()
        read_conditions_file(settings.project_dir)
        custom = load_custom_code(settings.project_dir, settings)
        if custom.legacy is not None:
            custom.legacy.close()
    except CustomCodeError as exc:
        if exc.__cause__ is not None:
            # The line in custom.py that failed, and what it called, is what the researcher needs to see.
            logger.error("custom.py could not be loaded", exc_info=exc.__cause__)
        raise StartupError(str(exc)) from exc
    except (MissingTemplates, ConditionsFileError) as exc:
        raise StartupError(str(exc)) from exc


def prepare_admin_token(settings: Settings) -> None:
    """Without an admin_token setting, make sure .psiturk/admin_token exists for the API and the CLI."""
    from .admin_token import ensure_token, token_path

    if settings.admin_token:
        return
    path = token_path(settings.project_dir)
    try:
        written = ensure_token(settings.project_dir)
    except OSError as exc:
        raise StartupError(f"cannot write the admin token to {path} ({exc.strerror}); "
                           f"set admin_token (PSITURK_ADMIN_TOKEN) instead") from exc
    if written:
        logger.info("admin token written to %s; the CLI run in this folder reads it", path)


def prepare(settings: Settings, *, migrate: bool) -> None:
    """Check the project, make the admin token, then upgrade the database (unless told not to)."""
    check_project(settings)
    prepare_admin_token(settings)
    if migrate:
        from .migrate import upgrade

        try:
            upgrade(settings)
        except Exception as exc:
            raise StartupError(f"could not upgrade the database {redact_url(settings.database_url)}: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        logger.info("database %s is up to date", redact_url(settings.database_url))
