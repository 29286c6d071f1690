"""The three /sync routes served before FastAPI's router: most of a study's requests are saves.

Measured on a save, FastAPI's route matching (it tries every route of the app) and dependency solving cost
more CPU than reading the body, checking the secret and writing the row together (benchmarks/README.md). The
routes stay declared in api/experiment.py, which documents them in /docs; this middleware calls the very
same functions, so there is one implementation and the declared routes are only its description.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ApiError
from .experiment import read_data, save_data, save_delta

logger = logging.getLogger(__name__)
Handler = Callable[[str, Request], Awaitable[Response]]
PREFIX = "/sync/"
DELTA = "/delta"


def match(method: str, path: str) -> tuple[Handler, str] | None:
    """The handler and participant id for a /sync request, or None to let the router decide."""
    if not path.startswith(PREFIX):
        return None
    rest = path[len(PREFIX):]
    if method == "POST" and rest.endswith(DELTA) and "/" not in rest[:-len(DELTA)]:
        uid = rest[:-len(DELTA)]
        return (save_delta, uid) if uid else None
    if "/" in rest or not rest:
        return None
    if method == "PUT":
        return save_data, rest
    if method == "GET":
        return read_data, rest
    return None


class SyncFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, uid = found
        try:
            response = await handler(uid, Request(scope, receive))
        except ApiError as refused:
            response = refused.response()
        except (OperationalError, InterfaceError, DBAPIError, ConnectionError) as exc:
            logger.error("database unavailable: %s", type(exc).__name__)
            response = JSONResponse({"error": "database_unavailable", "detail": "the database cannot be "
                                     "reached; try again shortly"}, status_code=503, headers={"Retry-After": "5"})
        await response(scope, receive, send)
