"""The participant routes of psiTurk 3: same paths, parameters and success bodies; guarded and authenticated."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from stat import S_ISREG
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from starlette.staticfiles import NotModifiedResponse, StaticFiles

from .. import records, useragent
from ..counterbalance import Cell, ConditionsFileError, choose_cell, read_conditions_file
from ..deps import SettingsDep
from ..errors import ApiError, error_responses
from ..experiment_errors import ExperimentError
from ..extensions import call_condition_hook
from ..identity import (
    client_ip,
    holds_secret,
    is_https,
    load_participant_key,
    participant_secret,
    set_secret_cookie,
)
from ..lifecycle import Move, is_debug
from ..models import FINISHED, Status, unique_id
from ..store import Arrival, ParticipantStore, Refused, RepeatWorker
from ..templates import NO_CACHE

router = APIRouter(tags=["participant"])
# psiTurk's id columns are String(128), and PostgreSQL refuses NUL in text.
MAX_ID_LENGTH = 128


def storable(value: str | None) -> str | None:
    """An id the database can hold; any other counts as missing, so it gets the route's own error, never a 500."""
    if value is None or len(value) > MAX_ID_LENGTH or "\x00" in value:
        return None
    return value


Param = Annotated[str | None, Query(), AfterValidator(storable)]
FormParam = Annotated[str | None, Form(), AfterValidator(storable)]
JS_TYPE = "text/javascript; charset=utf-8"
STATIC_CACHE = {"Cache-Control": "public, max-age=10"}
TIMESTAMP_ON = {Status.STARTED: "beginexp", Status.COMPLETED: "endhit"}
SAVED = orjson.dumps({"status": "user data saved"})


class StatusBody(BaseModel):
    """psiTurk's JSON answer: a status string or number."""

    status: str | int


class SaveAck(BaseModel):
    status: str = "user data saved"
    data_length: int
    eventdata_length: int


class Delta(BaseModel):
    """An incremental save: only what is new since the last acknowledged one."""

    # A key outside these (say, currenttrial at the top level) would otherwise be dropped without a word.
    model_config = ConfigDict(extra="forbid")

    data_from: int = Field(0, ge=0)
    data: list[Any] = []
    eventdata_from: int = Field(0, ge=0)
    eventdata: list[Any] = []
    questiondata: dict[str, Any] = {}
    attributes: dict[str, Any] = {}


def _store(request: Request) -> ParticipantStore:
    return request.app.state.store


def _templates(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.templates


async def _key(request: Request) -> bytes:
    """The participant-secret key, read from the database on first use (the server starts without it)."""
    state = request.app.state
    if state.participant_key is None:
        state.participant_key = await load_participant_key(state.engine)
    return state.participant_key


async def _require_secret(request: Request, uid: str) -> None:
    if not holds_secret(request, await _key(request), uid):
        raise ApiError(403, "forbidden", "this browser does not hold this participant's secret")


def _missing(name: str) -> ApiError:
    return ApiError(400, "missing_parameter", f"the {name} parameter is required", status="bad request")


@router.get("/", response_class=HTMLResponse, summary="The project's front page (default.html)")
async def show_default(request: Request) -> Response:
    return _templates(request).render("default.html")


# Starlette's revalidation rule (ETag, weak ETag, If-Modified-Since), the one the project's static/ folder
# answers by; asked of an instance that serves no folder, so every file here is judged the same way.
_REVALIDATION = StaticFiles(check_dir=False)


def _send_file(request: Request, path: Path, missing: Exception, media_type: str | None = None) -> Response:
    """A file as StaticFiles would send it: 304 Not Modified when the browser revalidates a current copy (a
    reload does, for every script and page it cached), the headers only for HEAD, else the whole file."""
    try:
        stat = path.stat()
    except OSError:
        raise missing from None
    if not S_ISREG(stat.st_mode):
        raise missing
    response = FileResponse(path, stat_result=stat, media_type=media_type, headers=STATIC_CACHE)
    if _REVALIDATION.is_not_modified(response.headers, request.headers):
        return NotModifiedResponse(response.headers)
    return response


@router.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
async def show_favicon(request: Request, settings: SettingsDep) -> Response:
    return _send_file(request, settings.project_dir / "static" / "favicon.ico",
                      ApiError(404, "not_found", "no static/favicon.ico in this project"))


def client_file(name: str) -> Path:
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "client", package.parents[1] / "client"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)


def _client(request: Request, name: str) -> Response:
    return _send_file(request, client_file(name), ApiError(404, "not_found", f"{name} is missing"), JS_TYPE)


@router.api_route("/static/js/psiturk.js", methods=["GET", "HEAD"], include_in_schema=False)
async def show_client_script(request: Request) -> Response:
    return _client(request, "psiturk.js")


@router.api_route("/static/js/psiturk.mjs", methods=["GET", "HEAD"], include_in_schema=False)
async def show_client_module(request: Request) -> Response:
    return _client(request, "psiturk.mjs")


@router.get("/check_worker_status", response_model=StatusBody, responses=error_responses(400))
async def check_worker_status(request: Request, settings: SettingsDep, workerId: Param = None,
                              assignmentId: Param = None) -> StatusBody:
    """The status of a worker's assignment (0 when none); without repeats, their furthest status anywhere."""
    if not workerId:
        raise _missing("workerId")
    rows = await _store(request).rows_of_worker(workerId)
    own = [row for row in rows if row.assignmentid == assignmentId]
    if own:
        return StatusBody(status=own[0].status or 0)
    if settings.allow_repeats or not rows:
        return StatusBody(status=0)
    return StatusBody(status=max((row.status or 0 for row in rows), key=_progress))


def _progress(status: int) -> int:
    """Rank statuses by how far along they are (psiTurk compared raw numbers, so QUITEARLY outranked COMPLETED)."""
    order = [Status.NOT_ACCEPTED, Status.ALLOCATED, Status.STARTED, Status.QUITEARLY, Status.COMPLETED,
             Status.SUBMITTED, Status.CREDITED, Status.BONUSED]
    return order.index(Status(status)) if status in Status._value2member_map_ else -1


@router.get("/ad", response_class=HTMLResponse, summary="The HIT's ad, as MTurk shows it")
@router.get("/pub", response_class=HTMLResponse, summary="The HIT's ad (alias of /ad)")
async def show_ad(request: Request, settings: SettingsDep, hitId: Param = None,
                  assignmentId: Param = None, workerId: Param = None, mode: Param = None) -> Response:
    """The ad, a thank-you page for finished workers, or the error that says why they cannot take part."""
    ids = {"hitId": hitId, "assignId": assignmentId, "workerId": workerId}
    if useragent.is_excluded(request.headers.get("user-agent", ""), settings.browser_exclude_rule):
        raise ExperimentError("browser_type_not_allowed", **ids)
    if not hitId or not assignmentId or mode is None:
        raise ExperimentError("hit_assign_worker_id_not_set_in_mturk", **ids)
    debug = is_debug(mode=mode, hit_id=hitId)
    status, other_assignment = None, False
    if workerId:
        rows = await _store(request).rows_of_worker(workerId)
        own = next((row for row in rows if row.assignmentid == assignmentId), None)
        status = own.status if own else None
        other_assignment = any(row.assignmentid != assignmentId for row in rows)
    if status in (Status.STARTED, Status.QUITEARLY) and not debug:
        if not (workerId and holds_secret(request, await _key(request), unique_id(workerId, assignmentId))):
            raise ExperimentError("already_started_exp_mturk", **ids)
    elif status == Status.COMPLETED or (status == Status.SUBMITTED and not other_assignment):
        return _templates(request).render("thanks-mturksubmit.html", using_sandbox=mode == "sandbox",
                                          hitid=hitId, assignmentid=assignmentId, workerid=workerId)
    if other_assignment and not (debug or settings.allow_repeats):
        raise ExperimentError("already_did_exp_hit", **ids)
    if status not in (None, Status.NOT_ACCEPTED, Status.ALLOCATED, Status.STARTED, Status.QUITEARLY) and not debug:
        raise ExperimentError("status_incorrectly_set", **ids)
    return _templates(request).render("ad.html", mode=mode, hitid=hitId, assignmentid=assignmentId,
                                      workerid=workerId)


@router.get("/consent", response_class=HTMLResponse, summary="The consent form")
async def show_consent(request: Request, hitId: Param = None, assignmentId: Param = None,
                       workerId: Param = None, mode: Param = None) -> Response:
    if not hitId or not assignmentId or not workerId or mode is None:
        raise ExperimentError("hit_assign_worker_id_not_set_in_consent", hitId=hitId, assignId=assignmentId,
                              workerId=workerId)
    return _templates(request).render("consent.html", mode=mode, hitid=hitId, assignmentid=assignmentId,
                                      workerid=workerId)


@router.get("/exp", response_class=HTMLResponse, summary="The experiment page; allocates the participant")
async def show_experiment(request: Request, settings: SettingsDep, hitId: Param = None,
                          assignmentId: Param = None, workerId: Param = None, mode: Param = None) -> Response:
    """Creates the participant with a counterbalanced condition on first visit, or lets them resume."""
    ids = {"hitId": hitId, "assignId": assignmentId, "workerId": workerId}
    if not hitId or not assignmentId or not workerId or mode is None:
        raise ExperimentError("hit_assign_worker_id_not_set_in_exp", **ids)
    uid = unique_id(workerId, assignmentId)
    if len(uid) > MAX_ID_LENGTH:
        raise ExperimentError("hit_assign_worker_id_not_set_in_exp", **ids)
    debug = is_debug(mode=mode, hit_id=hitId)
    store = _store(request)
    participant = await store.read(uid)
    if participant is None:
        arrival = Arrival(
            hit_id=hitId, assignment_id=assignmentId, worker_id=workerId, mode=mode,
            ipaddress=client_ip(request, settings.trusted_proxy_set()),
            **_browser_fields(request))
        try:
            participant, _created = await store.create(
                arrival, codeversion=settings.experiment_code_version, cutoff_minutes=settings.cutoff_time,
                allow_repeats=settings.allow_repeats, choose=await _chooser(request, mode))
        except RepeatWorker:
            raise ExperimentError("already_did_exp_hit", **ids) from None
    elif participant.status in (Status.STARTED, Status.QUITEARLY):
        if holds_secret(request, await _key(request), uid):
            await store.resume(uid, timestamp_ms=int(time.time() * 1000))
        elif not debug:
            raise ExperimentError("already_started_exp", **ids)
    elif participant.status in FINISHED and not debug:
        raise ExperimentError("already_did_exp_hit", **ids)
    secret = participant_secret(await _key(request), uid)
    response = _templates(request).render(
        "exp.html", uniqueId=uid, condition=participant.cond, counterbalance=participant.counterbalance,
        adServerLoc="/complete", mode=mode, contact_address=settings.contact_email_on_error,
        codeversion=settings.experiment_code_version, participant_secret=secret)
    set_secret_cookie(response, request, unique_id=uid, secret=secret,
                      https=is_https(request, settings.trusted_proxy_set()))
    return response


def _browser_fields(request: Request) -> dict[str, str]:
    browser = useragent.parse(request.headers.get("user-agent", ""))
    return {"browser": browser.family, "platform": browser.platform,
            "language": useragent.preferred_language(request.headers.get("accept-language"))}


async def _chooser(request: Request, mode: str) -> Callable[[dict[Cell, int]], Cell]:
    """How this arrival's cell is chosen: custom.py's custom_get_condition(mode), else psiTurk's rule."""
    settings = request.app.state.settings
    hook = request.app.state.custom.get_condition
    if hook is not None:
        # Asked before the counting transaction opens: the hook may wait on anything, the transaction may not.
        chosen = await call_condition_hook(hook, mode)
        return lambda _counts: chosen

    def choose(counts: dict[Cell, int]) -> Cell:
        num_conds, num_counters = settings.num_conds, settings.num_counters
        try:
            from_file = read_conditions_file(settings.project_dir)
        except ConditionsFileError:
            from_file = None  # checked at start-up; an edit that broke it falls back to config.txt's numbers
        if from_file is not None:
            num_conds, num_counters = from_file, 1
        return choose_cell(counts, num_conds=num_conds, num_counters=num_counters, rng=random)

    return choose


async def _move(request: Request, uid: str, target: Status) -> Move:
    verdict, current = await _store(request).move(uid, target, stamp=TIMESTAMP_ON.get(target))
    if verdict is None:
        raise ApiError(404, "unknown_participant", f"no participant {uid!r}")
    if verdict is Move.ILLEGAL:
        raise ApiError(409, "illegal_status_change",
                       f"cannot move from {Status(current).name} to {target.name}", current_status=current)
    return verdict


@router.post("/inexp", response_model=StatusBody, responses=error_responses(400, 403, 404, 409))
async def mark_started(request: Request,
                       uniqueId: FormParam = None) -> StatusBody:
    """The participant finished the instructions: ALLOCATED → STARTED."""
    if not uniqueId:
        raise _missing("uniqueId")
    await _require_secret(request, uniqueId)
    await _move(request, uniqueId, Status.STARTED)
    return StatusBody(status="success")


@router.post("/quitter", response_model=StatusBody, responses=error_responses(400, 403, 404, 409))
async def mark_quitter(request: Request,
                       uniqueId: FormParam = None) -> StatusBody:
    """The participant left the page early: → QUITEARLY (not in debug mode)."""
    if not uniqueId:
        raise _missing("uniqueId")
    await _require_secret(request, uniqueId)
    participant = await _store(request).read(uniqueId)
    if participant is None:
        raise ApiError(404, "unknown_participant", f"no participant {uniqueId!r}")
    if is_debug(mode=participant.mode, hit_id=participant.hitid):
        return StatusBody(status="didn't mark as quitter since this is debugging")
    await _move(request, uniqueId, Status.QUITEARLY)
    return StatusBody(status="marked as quitter")


@router.get("/complete", response_class=HTMLResponse, summary="The participant finished: → COMPLETED")
async def show_complete(request: Request, settings: SettingsDep, uniqueId: Param = None,
                        mode: Param = None) -> Response:
    if not uniqueId or mode is None:
        raise ExperimentError("improper_inputs")
    worker_id = uniqueId.split(":", 1)[0]
    if not holds_secret(request, await _key(request), uniqueId):
        raise ExperimentError("not_your_participant", workerId=worker_id)
    verdict, _current = await _store(request).move(uniqueId, Status.COMPLETED, stamp="endhit")
    if verdict is None:
        raise ExperimentError("error_setting_worker_complete", workerId=worker_id)
    if verdict is Move.ILLEGAL:
        raise ExperimentError("error_setting_worker_complete", http_status=409, workerId=worker_id)
    if mode in ("sandbox", "live"):
        return _templates(request).render("closepopup.html")
    return _templates(request).render("complete.html", allow_repeats=settings.allow_repeats, worker_id=worker_id)


@router.get("/worker_complete", response_model=StatusBody, responses=error_responses(400, 403, 404, 409))
async def mark_complete(request: Request, uniqueId: Param = None) -> StatusBody:
    """→ COMPLETED, for experiments that finish without the /complete page."""
    if not uniqueId:
        raise _missing("uniqueId")
    await _require_secret(request, uniqueId)
    await _move(request, uniqueId, Status.COMPLETED)
    return StatusBody(status="success")


@router.get("/worker_submitted", response_model=StatusBody, responses=error_responses(400, 404, 409))
async def mark_submitted(request: Request, uniqueId: Param = None) -> StatusBody:
    """COMPLETED → SUBMITTED, called from the ad inside MTurk's frame, where cookies may not travel."""
    if not uniqueId:
        raise _missing("uniqueId")
    await _move(request, uniqueId, Status.SUBMITTED)
    return StatusBody(status="success")


@router.get("/sync/{uid}", responses=error_responses(403, 404))
async def read_data(uid: str, request: Request) -> Response:
    """The participant's saved data (their own browser only)."""
    await _require_secret(request, uid)
    found = await _store(request).read_for_client(uid)
    if found is None:
        raise ApiError(404, "unknown_participant", f"no participant {uid!r}")
    row, is_object = found
    text = row.datastring if is_object else records.dumps(row.record())
    return Response(text, media_type="application/json", headers=NO_CACHE)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"a save may hold at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "too_large", f"a save may hold at most {limit} bytes")
    return bytes(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return value


@router.put("/sync/{uid}", response_model=StatusBody, responses=error_responses(400, 403, 404, 409, 413))
async def save_data(uid: str, request: Request) -> Response:
    """Store the client's whole model as the participant's datastring, unless it would drop stored trials."""
    await _require_secret(request, uid)
    body = await _read_body(request, request.app.state.settings.max_sync_bytes)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON (not UTF-8)") from None
    try:
        # The store checks that the body is a JSON object (in SQL where it can: see ParticipantStore).
        await _store(request).save_full(uid, text)
    except Refused as refused:
        raise ApiError(refused.status_code, refused.error, refused.detail, **refused.extra) from None
    # The hot path answers with prepared bytes; the response model above still documents the shape.
    return Response(SAVED, media_type="application/json")


@router.post("/sync/{uid}/delta", response_model=SaveAck, responses=error_responses(400, 403, 404, 409, 413))
async def save_delta(uid: str, request: Request) -> Response:
    """Append only what is new since the last acknowledged save; a repeated delta is applied once.

    Accepts application/json and text/plain (what navigator.sendBeacon sends)."""
    await _require_secret(request, uid)
    body = await _read_body(request, request.app.state.settings.max_sync_bytes)
    try:
        delta = Delta.model_validate(_json_object(body))
    except ValidationError as exc:
        raise ApiError(400, "invalid_delta", str(exc.errors()[0]["msg"])) from None
    if {"data", "eventdata", "questiondata"} & delta.attributes.keys():
        raise ApiError(400, "invalid_delta", "attributes may not hold data, eventdata or questiondata")
    try:
        data_length, event_length = await _store(request).save_delta(uid, delta.model_dump())
    except Refused as refused:
        raise ApiError(refused.status_code, refused.error, refused.detail, **refused.extra) from None
    return Response(orjson.dumps({"status": "user data saved", "data_length": data_length,
                                   "eventdata_length": event_length}), media_type="application/json")


raw_pages = APIRouter()


@raw_pages.get("/{path:path}", include_in_schema=False)
async def show_raw_page(path: str, request: Request) -> Response:
    """Pages under templates/ as they are on disk, for preloadPages (never the server-rendered ones)."""
    found = _templates(request).raw_page(path)
    if found is None:
        raise ExperimentError("page_not_found")
    return _send_file(request, found, ExperimentError("page_not_found"))
