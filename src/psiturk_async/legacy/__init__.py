"""psiTurk 3's Flask custom.py, served unchanged beside the async app (the optional `legacy` extra).

`open_runtime(settings)` makes the `psiturk.*` import names for one server (its settings, a synchronous engine
on its database) and installs them, before custom.py runs. `LegacyCode.mount(app)` then builds the Flask
app the `custom_code` blueprint is registered on, calls custom.py's `init_app(app)` with it, and adds one
route that hands the blueprint's URLs to it through a WSGI adapter. Nothing here is imported unless a
project's custom.py is in psiTurk 3's form, and only when Flask and a2wsgi are installed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from flask import Blueprint

from ..extensions import CustomCodeError
from ..settings import Settings
from .database import LegacyDatabase
from .flask_app import blueprint_rules, build_flask_app
from .modules import ImportNames, psiturk_modules
from .routes import FlaskRoutes

logger = logging.getLogger(__name__)


@dataclass
class LegacyRuntime:
    """One server's psiTurk import names and the database session behind them."""

    settings: Settings
    database: LegacyDatabase
    names: ImportNames

    def close(self) -> None:
        self.names.uninstall()
        self.database.close()


def open_runtime(settings: Settings) -> LegacyRuntime:
    """Make and install the `psiturk.*` modules for these settings (custom.py imports them next)."""
    database = LegacyDatabase(settings)
    names = ImportNames(psiturk_modules(settings, database))
    names.install()
    return LegacyRuntime(settings, database, names)


def is_flask_blueprint(value: object) -> bool:
    return isinstance(value, Blueprint)


@dataclass
class LegacyCode:
    """A loaded psiTurk 3 custom.py: its module, its blueprint (if any) and the runtime it imported."""

    runtime: LegacyRuntime
    module: ModuleType
    blueprint: Blueprint | None
    routes: FlaskRoutes | None = field(default=None, init=False)

    def condition_hook(self) -> Any:
        """custom.py's custom_get_condition, run in a thread: it may query the database synchronously."""
        hook = getattr(self.module, "custom_get_condition", None)
        if hook is None:
            return None

        async def in_thread(mode: str) -> Any:
            def call() -> Any:
                try:
                    return hook(mode)
                finally:
                    self.runtime.database.remove_session()

            return await asyncio.to_thread(call)

        return in_thread

    def mount(self, app: FastAPI) -> None:
        """Build the Flask app (calling custom.py's init_app with it) and route its URLs to it.

        Call it after the server's own routes and before the raw-page catch-all: routes match in order.
        """
        settings = self.runtime.settings
        if self.blueprint is None:
            logger.info("psiTurk 3 compatibility layer active: custom.py imports psiturk.* (no blueprint)")
            return
        try:
            flask_app = build_flask_app(self.blueprint, settings=settings, templates=app.state.templates,
                                        database=self.runtime.database,
                                        init_app=getattr(self.module, "init_app", None))
        except Exception as exc:
            self.close()
            raise CustomCodeError(f"custom.py's blueprint could not be set up on a Flask app: "
                                  f"{type(exc).__name__}: {exc}") from exc
        self.routes = FlaskRoutes(flask_app)
        app.router.routes.append(self.routes)
        logger.info("psiTurk 3 compatibility layer active: custom.py's Flask blueprint %r answers %s "
                    "(WSGI, in threads)", self.blueprint.name, ", ".join(blueprint_rules(flask_app)) or "nothing")

    def close(self) -> None:
        if self.routes is not None:
            self.routes.close()
        self.runtime.close()
