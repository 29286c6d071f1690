"""The application factory. Nothing runs at import: settings, engine and routes are made in create_app."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from . import __version__
from .api import admin, experiment, frontdoor, health, mturk
from .db import create_engine, session_factory, sqlite_file
from .errors import install_error_handlers
from .extensions import load_custom_code
from .models import bind_table_names
from .mturk.client import MTurkClients
from .settings import Settings, load_settings
from .sqlite_checkpoint import WalCheckpointer
from .store import ParticipantStore
from .templates import ProjectTemplates

access_log = logging.getLogger("psiturk_async.requests")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # The served SQLite file is checkpointed by a thread of its own, never by a commit on the event loop.
    sqlite_path = sqlite_file(settings)
    checkpointer = WalCheckpointer(sqlite_path).start() if sqlite_path else None
    try:
        engine = create_engine(settings, background_checkpoints=checkpointer is not None)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.store = ParticipantStore(engine, settings.table_name,
                                           background_checkpoints=checkpointer is not None)
        app.state.started_at = time.time()
        app.state.participant_key = None
        app.state.mturk = MTurkClients(settings)  # connects on first use: the server runs without AWS credentials
        try:
            yield
        finally:
            await app.state.mturk.aclose()
            await app.state.store.aclose()
            await engine.dispose()
    finally:
        # Also when the engine could not be made: the thread must not outlive a failed start.
        if checkpointer is not None:
            checkpointer.stop()
        if app.state.custom.legacy is not None:
            app.state.custom.legacy.close()


class PsiturkApp(FastAPI):
    """The FastAPI app, with the participant routes served at its door and one access-log line per request.

    Both live here rather than in middleware: FastAPI puts every middleware inside its own stack, and that
    stack alone costs more CPU than a participant save (api/frontdoor.py)."""

    # Middleware a project's init_app adds must see every request, so then the router serves them all.
    front_door_open = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self._dispatch(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._dispatch(scope, receive, send_and_note)
        finally:
            # Never the query string or headers: they hold worker ids and secrets.
            access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                            (time.perf_counter() - started) * 1000)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.front_door_open:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        endpoint = frontdoor.match(scope)
        if endpoint is None:
            await super().__call__(scope, receive, send)
            return
        await frontdoor.serve(endpoint, scope, receive, send)


class ProjectStatic(StaticFiles):
    """The project's static/ folder, cached briefly as psiTurk did, so edits show up within seconds."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=10"
        return response


def _first_segment(route: object) -> str:
    path = getattr(route, "path", "")
    return path.split("/")[1] if path.count("/") else ""


def _may_shadow(router: APIRouter, built_in: list[APIRouter]) -> bool:
    """Whether a route of `router` could match a path of a built-in route: same first segment, or a parameter."""
    ours = {_first_segment(route) for routes in built_in for route in routes.routes}
    return any("{" in first or first in ours for first in map(_first_segment, router.routes))


def create_app(settings: Settings | None = None, *, project_dir: Path | str = ".") -> FastAPI:
    """Build the app for one project folder; settings are read here, not at import."""
    settings = settings or load_settings(project_dir)
    bind_table_names(participants=settings.table_name, hits=settings.hits_table_name,
                     campaigns=settings.campaigns_table_name)
    app = PsiturkApp(
        title="psiturk-async",
        version=__version__,
        summary="Run psiTurk 3 experiments: participant pages, data saving, an admin API and MTurk.",
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry costs more CPU per request than the rest of a save; nothing here
        # exports traces, so it stays off.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.templates = ProjectTemplates(settings.project_dir)
    # Resolved once: the door checks every static path against it.
    app.state.static_folder = (settings.project_dir / "static").resolve()
    app.state.custom = custom = load_custom_code(settings.project_dir, settings)
    install_error_handlers(app)
    # FastAPI tries routes in order, and each one tried costs CPU. The participant routes are answered at the
    # door (api/frontdoor.py), so the router's first candidates are a project's own routes when none of them
    # can shadow a built-in one; otherwise they come after all of ours.
    built_in = [experiment.router, health.router, admin.router, mturk.router]
    custom_early = custom.router is not None and not _may_shadow(custom.router, built_in)
    if custom_early:
        app.include_router(custom.router)
    for router in built_in:
        app.include_router(router)
    if custom.router is not None and not custom_early:
        app.include_router(custom.router)
    before_init_app = list(app.router.routes)
    if custom.init_app is not None:
        # Before the catch-all below: routes match in order, so one added after it would never answer.
        custom.init_app(app)
    # The project's own routes, which the door must leave to the router when one of them matches a file path.
    app.state.project_routes = [*(custom.router.routes if custom.router is not None else []),
                                *(route for route in app.router.routes if route not in before_init_app)]
    app.mount("/static", ProjectStatic(directory=settings.project_dir / "static", check_dir=False),
              name="static")
    if custom.legacy is not None:
        # psiTurk 3's Flask blueprint: after every route of ours, before the catch-all.
        custom.legacy.mount(app)
    # Last: the catch-all that hands out raw template pages.
    app.include_router(experiment.raw_pages)
    app.front_door_open = not app.user_middleware
    return app
