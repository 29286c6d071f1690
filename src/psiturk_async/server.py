"""Running the app under uvicorn: logging, the worker factory and TLS."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .settings import Settings, load_settings

PROJECT_ENV = "PSITURK_ASYNC_PROJECT_DIR"
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]


NO_ACCESS_LOG = frozenset({"", "/dev/null"})


def configure_logging(settings: Settings) -> None:
    """Console always; the configured log file too. Request lines go where `accesslog` says, as in psiTurk."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.logfile not in {"", "-"}:
        handlers.append(logging.FileHandler(settings.project_dir / settings.logfile, encoding="utf-8"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(LEVELS[settings.loglevel])
    _configure_access_log(settings, formatter)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    # That psiTurk 3's compatibility layer serves custom.py is said at start-up whatever `loglevel` says.
    logging.getLogger("psiturk_async.legacy").setLevel(logging.INFO)


def _configure_access_log(settings: Settings, formatter: logging.Formatter) -> None:
    """One line per request (method, path, status, time) to the console (`-`) or a file; none by default."""
    access = logging.getLogger("psiturk_async.requests")
    for handler in list(access.handlers):
        access.removeHandler(handler)
    access.propagate = False
    if settings.accesslog in NO_ACCESS_LOG:
        # Off is free: the app asks the level before it times a request.
        access.setLevel(logging.WARNING)
        return
    handler: logging.Handler
    if settings.accesslog == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(settings.project_dir / settings.accesslog, encoding="utf-8")
    handler.setFormatter(formatter)
    access.addHandler(handler)
    access.setLevel(logging.INFO)


def app_from_environment():  # type: ignore[no-untyped-def]
    """uvicorn's factory in each worker process: the project folder comes from `serve`."""
    from .main import create_app

    settings = load_settings(Path(os.environ.get(PROJECT_ENV, ".")))
    configure_logging(settings)
    return create_app(settings)


def run(settings: Settings, *, host: str, port: int, workers: int) -> None:
    import uvicorn

    os.environ[PROJECT_ENV] = str(settings.project_dir)
    tls = {}
    if settings.uses_tls:
        tls = {"ssl_certfile": str(settings.project_dir / settings.certfile),
               "ssl_keyfile": str(settings.project_dir / settings.keyfile)}
    uvicorn.run(
        "psiturk_async.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        # A worker has this long to import the app and answer the supervisor's first ping; uvicorn's 5 s
        # default kills and restarts workers over and over on a busy two-core machine.
        timeout_worker_healthcheck=60,
        timeout_keep_alive=settings.server_timeout,
        # The client address is taken from X-Forwarded-For only for `trusted_proxies` (identity.client_ip);
        # uvicorn's own proxy handling would trust any local peer.
        proxy_headers=False,
        # uvicorn's httptools protocol, writing each response's head and body at once (http_protocol.py).
        http="psiturk_async.http_protocol:CoalescingHttpToolsProtocol",
        **tls,
    )
