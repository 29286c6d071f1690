"""The participant routes, served before FastAPI's middleware and router: they are nearly all of a study's traffic.

Measured per request on this project's routes (benchmarks/README.md), FastAPI's middleware stack, its route
matching (it tries every route of the app in turn) and its dependency solving cost several times what a
participant route does itself. The routes stay declared in api/experiment.py, which documents them at /docs;
the front door finds them by an exact path and calls the very same functions with their parameters read the
same way (a query parameter's last value; an id the database cannot hold counts as missing), so there is one
implementation and the declared routes are its description. The files a participant's browser fetches
(static/, raw template pages, the client library) are sent from here too. Anything else — a form sent as
multipart, a root path, another method, a path a project route may answer — goes to the router as before.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from stat import S_ISREG
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from ..errors import DATABASE_ERRORS, ApiError, database_down_response, experiment_error_page
from ..experiment_errors import ExperimentError
from . import experiment as routes

logger = logging.getLogger(__name__)
Endpoint = Callable[[Request, bytes | None], Awaitable[Any]]
# A urlencoded form larger than this is not what psiturk.js sends: FastAPI's own parser takes it.
MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
SYNC_PREFIX = "/sync/"
DELTA_SUFFIX = "/delta"

ID_PARAMS = ("hitId", "assignmentId", "workerId", "mode")


def _query(request: Request, *names: str) -> dict[str, str | None]:
    params = request.query_params
    return {name: routes.storable(params.get(name)) for name in names}


def _settings(request: Request) -> Any:
    return request.app.state.settings


async def _ad(request: Request, _form: bytes | None) -> Any:
    return await routes.show_ad(request, _settings(request), **_query(request, *ID_PARAMS))


async def _consent(request: Request, _form: bytes | None) -> Any:
    return await routes.show_consent(request, **_query(request, *ID_PARAMS))


async def _exp(request: Request, _form: bytes | None) -> Any:
    return await routes.show_experiment(request, _settings(request), **_query(request, *ID_PARAMS))


async def _check_worker_status(request: Request, _form: bytes | None) -> Any:
    return await routes.check_worker_status(request, _settings(request),
                                            **_query(request, "workerId", "assignmentId"))


async def _complete(request: Request, _form: bytes | None) -> Any:
    return await routes.show_complete(request, _settings(request), **_query(request, "uniqueId", "mode"))


async def _worker_complete(request: Request, _form: bytes | None) -> Any:
    return await routes.mark_complete(request, **_query(request, "uniqueId"))


async def _worker_submitted(request: Request, _form: bytes | None) -> Any:
    return await routes.mark_submitted(request, **_query(request, "uniqueId"))


def _form_id(form: bytes | None) -> str | None:
    # As Starlette's form parser reads it: raw bytes as latin-1, percent-escapes as UTF-8, the last value wins.
    fields = dict(parse_qsl((form or b"").decode("latin-1"), keep_blank_values=True))
    return routes.storable(fields.get("uniqueId"))


async def _inexp(request: Request, form: bytes | None) -> Any:
    return await routes.mark_started(request, uniqueId=_form_id(form))


async def _quitter(request: Request, form: bytes | None) -> Any:
    return await routes.mark_quitter(request, uniqueId=_form_id(form))


EXACT: dict[tuple[str, str], Endpoint] = {
    ("GET", "/ad"): _ad,
    ("GET", "/pub"): _ad,
    ("GET", "/consent"): _consent,
    ("GET", "/exp"): _exp,
    ("GET", "/check_worker_status"): _check_worker_status,
    ("GET", "/complete"): _complete,
    ("GET", "/worker_complete"): _worker_complete,
    ("GET", "/worker_submitted"): _worker_submitted,
    ("POST", "/inexp"): _inexp,
    ("POST", "/quitter"): _quitter,
}
FORM_ROUTES = frozenset({"/inexp", "/quitter"})


def _sync_route(method: str, path: str) -> Endpoint | None:
    """GET and PUT /sync/{uid} and POST /sync/{uid}/delta; the id is one path segment, as the router reads it."""
    if not path.startswith(SYNC_PREFIX):
        return None
    rest = path[len(SYNC_PREFIX):]
    if method == "POST" and rest.endswith(DELTA_SUFFIX):
        uid = rest[:-len(DELTA_SUFFIX)]
        if not uid or "/" in uid:
            return None
        return lambda request, _form: routes.save_delta(uid, request)
    if not rest or "/" in rest:
        return None
    if method == "PUT":
        return lambda request, _form: routes.save_data(rest, request)
    if method == "GET":
        return lambda request, _form: routes.read_data(rest, request)
    return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


# Files a participant's browser fetches: the project's static/ folder and the raw pages under templates/
# that psiTurk's preloadPages asks for. Served from memory here when small and asked for plainly; a range,
# a revalidation or a large file goes to the router's FileResponse (which also answers 304 and 206).
MAX_DOOR_FILE_BYTES = 1 << 20
STATIC_PREFIX = "/static/"
CLIENT_FILES = {"/static/js/psiturk.js": "psiturk.js", "/static/js/psiturk.mjs": "psiturk.mjs"}
PLAIN_FILE_REQUEST_EXCLUDES = (b"range", b"if-none-match", b"if-modified-since")


@dataclass(frozen=True)
class DoorFile:
    path: Path
    stat: os.stat_result
    page: bool  # a raw page of templates/: the router answers a missing one with the error page, not JSON


def _file_to_serve(scope: Scope) -> DoorFile | None:
    """The file a plain GET asks for, if the door may answer it: never one a project route could claim."""
    if any(key in PLAIN_FILE_REQUEST_EXCLUDES for key, _ in scope["headers"]):
        return None
    path, state = scope["path"], scope["app"].state
    # psiTurk 3's Flask blueprint may claim any path; a project route may claim this one.
    if state.custom.legacy is not None or any(
            route.matches(scope)[0] is not Match.NONE for route in state.project_routes):
        return None
    page = False
    if path in CLIENT_FILES:
        found: Path | None = routes.client_file(CLIENT_FILES[path])
    elif path.startswith(STATIC_PREFIX):
        folder = state.static_folder
        found = (folder / path[len(STATIC_PREFIX):]).resolve()
        if not found.is_relative_to(folder) or any(part.startswith(".")
                                                   for part in found.relative_to(folder).parts):
            return None
    else:
        found, page = state.templates.raw_page(path.lstrip("/")), True
    if found is None:
        return None
    try:
        stat = found.stat()
    except OSError:
        return None
    if not S_ISREG(stat.st_mode) or stat.st_size > MAX_DOOR_FILE_BYTES:
        return None
    return DoorFile(found, stat, page)


def _file_response(file: DoorFile) -> Response:
    """What FileResponse sends for the file, headers included (its stat-based etag too), read at once: a few
    KiB from the page cache cost less than FileResponse's hand-offs to a thread for the stat, open and reads."""
    try:
        content = file.path.read_bytes()
    except OSError:
        # Deleted since the door looked: the router's answer for a missing file of that kind.
        if file.page:
            raise ExperimentError("page_not_found") from None
        raise ApiError(404, "not_found", "Not Found") from None
    modified = file.stat.st_mtime
    etag = hashlib.md5(f"{modified}-{file.stat.st_size}".encode(), usedforsecurity=False).hexdigest()
    suffix = file.path.suffix
    media_type = routes.JS_TYPE if suffix in (".js", ".mjs") else mimetypes.guess_type(file.path.name)[0]
    return Response(content, media_type=media_type or "text/plain",
                    headers={**routes.STATIC_CACHE, "last-modified": formatdate(modified, usegmt=True),
                             "etag": f'"{etag}"', "accept-ranges": "bytes"})


def _file_endpoint(file: DoorFile) -> Endpoint:
    async def send_file(_request: Request, _form: bytes | None) -> Response:
        return _file_response(file)

    return send_file


def match(scope: Scope) -> Endpoint | None:
    """The endpoint for a participant request, or None to let FastAPI's router decide."""
    if scope.get("root_path"):
        return None
    method, path = scope["method"], scope["path"]
    endpoint = EXACT.get((method, path))
    if endpoint is None and method == "GET" and not path.startswith(SYNC_PREFIX):
        found = _file_to_serve(scope)
        return _file_endpoint(found) if found is not None else None
    if endpoint is None:
        return _sync_route(method, path)
    if path in FORM_ROUTES:
        content_type = (_header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower()
        length = _header(scope, b"content-length")
        if content_type not in (b"", FORM_TYPE.encode()) or length is None or not length.isdigit() \
                or int(length) > MAX_FORM_BYTES:
            return None
    return endpoint


async def _read_form(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    return bytes(body)


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        return JSONResponse(result.model_dump())
    raise TypeError(f"unexpected endpoint result {type(result).__name__}")


async def serve(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one participant request exactly as the declared route and the app's error handlers would."""
    request = Request(scope, receive)
    try:
        form = await _read_form(request) if scope["path"] in FORM_ROUTES else None
        response = _as_response(await endpoint(request, form))
    except ApiError as refused:
        response = refused.response()
    except ExperimentError as exc:
        state = scope["app"].state
        response = experiment_error_page(exc, templates=state.templates, settings=state.settings,
                                         path=scope["path"])
    except DATABASE_ERRORS as exc:
        response = database_down_response(exc)
    await response(scope, receive, send)
