"""A stateful fake of the MTurk Requester API on its JSON 1.1 protocol, with test-control routes under /_fake/.

Every request body is checked against botocore's own MTurk model before it is applied, and every response body
before it is sent; a mismatch is recorded in `state.problems` (the pytest fixture fails the test on any) and
answered with an error, so the fake can neither accept what MTurk would refuse nor teach the client a wrong shape.
"""

import asyncio
import re
import uuid
from dataclasses import asdict
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .mturk_state import Call, ControlError, FakeMTurkState, Fault, MTurkError
from .requester import OPERATIONS, assignment_json
from .shapes import ShapeChecker, load_model
from .workers import accept, advance_time, give_back, submit

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
JSON_11 = "application/x-amz-json-1.1"
FAULT_KINDS = ("throttle", "service_fault", "delay", "delay_after_commit", "corrupt_response")
# SigV4 as botocore sends it; the fake checks the shape and the scope (region, service), not the signature.
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/,]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=[0-9a-f]{64}"
)


def _reply(status: int, body: dict[str, Any], request_id: str) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_11, headers=headers)


def _merge(body: Any, patch: Any) -> Any:
    if isinstance(body, dict) and isinstance(patch, dict):
        return {**body, **{key: _merge(body.get(key), value) for key, value in patch.items()}}
    return patch


def _check_protocol(request: Request, raw: bytes, operation: str) -> Any:
    """The request body, once the protocol (target, content type, signature scope, JSON) is right."""
    if operation not in OPERATIONS:
        target = request.headers.get("x-amz-target")
        raise MTurkError(f"Unknown or unsupported operation: {target!r}", error_type="UnknownOperationException")
    if request.headers.get("content-type") != JSON_11:
        raise MTurkError(f"Content-Type must be {JSON_11}", error_type="SerializationException")
    auth = AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
    if auth is None or "x-amz-date" not in request.headers:
        raise MTurkError(
            "Missing or malformed SigV4 signature.", error_type="IncompleteSignatureException", status=403
        )
    if (auth["region"], auth["service"]) != ("us-east-1", "mturk-requester"):
        scope = f"{auth['region']}/{auth['service']}"
        message = f"Credential should be scoped to us-east-1/mturk-requester, not {scope}."
        raise MTurkError(message, error_type="InvalidSignatureException", status=403)
    if "x-amz-target" not in auth["signed"].split(";"):
        raise MTurkError("X-Amz-Target must be signed.", error_type="InvalidSignatureException", status=403)
    try:
        return orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise MTurkError(f"Body is not JSON: {exc}", error_type="SerializationException") from exc


def _take_fault(state: FakeMTurkState, operation: str) -> Fault | None:
    with state.lock:
        for fault in state.faults:
            if fault.operation in (None, operation) and fault.times > 0:
                fault.times -= 1
                return fault
    return None


async def _pause(state: FakeMTurkState, seconds: float) -> None:
    """Sleep for a delay fault, but wake up early when the fake is stopping (so shutdown need not cancel us)."""
    await asyncio.to_thread(state.stopping.wait, seconds)


async def _perform(state: FakeMTurkState, checker: ShapeChecker, operation: str, body: Any) -> dict[str, Any]:
    """Check the request, apply any injected fault, run the operation, check its answer."""
    if problems := checker.check_input(operation, body):
        state.problems.extend(problems)
        raise MTurkError("; ".join(problems), "Fake.RequestShapeMismatch")
    fault = _take_fault(state, operation)
    if fault and fault.kind == "delay":
        await _pause(state, fault.seconds)
    if fault and fault.kind == "throttle":
        raise MTurkError("Rate exceeded", error_type="ThrottlingException")
    if fault and fault.kind == "service_fault":
        raise MTurkError("Service is temporarily unavailable.", error_type="ServiceFault", status=fault.status)
    with state.lock:
        advance_time(state)
        result = OPERATIONS[operation](state, body)
    if fault and fault.kind == "corrupt_response":
        result = _merge(result, fault.patch)
    if problems := checker.check_output(operation, result):
        state.problems.extend(problems)
        # HTTP 400, so botocore does not retry a call that has already taken effect.
        raise MTurkError("; ".join(problems), "Fake.ResponseShapeMismatch", error_type="ServiceFault")
    if fault and fault.kind == "delay_after_commit":
        await _pause(state, fault.seconds)
    return result


def _error_reply(state: FakeMTurkState, checker: ShapeChecker, error: MTurkError, request_id: str) -> Response:
    body = {"__type": error.error_type, "Message": f"{error.message} ({int(state.now() * 1000)})"}
    if error.code is not None:
        body["TurkErrorCode"] = error.code
    state.problems.extend(checker.check_error(error.error_type, body))
    return _reply(error.status, body, request_id)


async def call_operation(request: Request) -> Response:
    """POST / : one MTurk operation, named by X-Amz-Target."""
    state: FakeMTurkState = request.app.state.mturk
    checker: ShapeChecker = request.app.state.checker
    request_id = str(uuid.uuid4())
    target = request.headers.get("x-amz-target", "")
    operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
    raw = await request.body()
    body: Any = raw.decode(errors="replace")
    error: str | None = None
    try:
        try:
            body = _check_protocol(request, raw, operation)
        except MTurkError as exc:
            state.problems.append(f"{operation or target!r}: {exc.error_type}: {exc.message}")
            raise
        response = _reply(200, await _perform(state, checker, operation, body), request_id)
    except MTurkError as exc:
        response = _error_reply(state, checker, exc, request_id)
        error = exc.error_type
    except Exception as exc:  # a bug in the fake: fail the test rather than hand botocore a 500 to retry
        state.problems.append(f"{operation}: the fake itself failed: {exc!r}")
        response = _error_reply(state, checker, MTurkError(repr(exc), "Fake.InternalError"), request_id)
        error = "RequestError"
    attempt = re.search(r"attempt=(\d+)", request.headers.get("amz-sdk-request", ""))
    state.calls.append(Call(operation or target, body, response.status_code, error, attempt and int(attempt[1])))
    return response


def _detail(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = orjson.loads(raw) if raw else {}
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object", status=400)
    return data


def control(handler: Any) -> Any:
    """Run a control handler under the state lock; ControlError and bad input become {"error", "detail"}."""

    async def endpoint(request: Request) -> Response:
        state: FakeMTurkState = request.app.state.mturk
        try:
            data = await _json(request)
            with state.lock:
                advance_time(state)
                return JSONResponse(handler(state, request, data))
        except ControlError as exc:
            return _detail(exc.status, "refused", str(exc))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return _detail(400, "bad_request", f"{type(exc).__name__}: {exc}")

    return endpoint


@control
def accept_hit(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    return assignment_json(accept(state, request.path_params["hit_id"], data.get("worker_id")))


@control
def submit_assignment(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    return assignment_json(submit(state, request.path_params["assignment_id"], data.get("answers")))


@control
def return_assignment(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    return assignment_json(give_back(state, request.path_params["assignment_id"]))


@control
def list_assignments(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    hit_id = request.query_params.get("hit_id")
    return [assignment_json(a) for a in state.assignments.values() if hit_id in (None, a.hit_id)]


@control
def set_balance(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    if "balance" in data:
        state.set_balance(data["balance"])
    if "charge" in data:
        state.charge = bool(data["charge"])
    return {"balance": str(state.balance), "charge": state.charge}


@control
def advance_clock(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    state.clock_offset += float(data.get("seconds", 0))
    advance_time(state)
    return {"now": state.now()}


@control
def add_fault(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    fault = Fault(**data)
    if fault.kind not in FAULT_KINDS:
        raise ControlError(f"kind must be one of {FAULT_KINDS}", status=400)
    if fault.operation is not None and fault.operation not in OPERATIONS:
        raise ControlError(f"unknown operation {fault.operation!r}", status=400)
    state.faults.append(fault)
    return asdict(fault)


@control
def clear_faults(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    state.faults.clear()
    return []


@control
def list_bonuses(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    return [
        {
            "WorkerId": bonus.worker_id,
            "AssignmentId": bonus.assignment_id,
            "HITId": bonus.hit_id,
            "BonusAmount": str(bonus.amount),
            "Fee": str(bonus.fee),
            "Reason": bonus.reason,
            "GrantTime": bonus.granted_at,
            "UniqueRequestToken": bonus.token,
        }
        for bonus in state.bonuses
    ]


@control
def list_calls(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    wanted = request.query_params.get("operation")
    return [asdict(call) for call in state.calls if wanted in (None, call.operation)]


@control
def list_problems(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    return list(state.problems)


@control
def take_problems(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    taken = list(state.problems)
    state.problems.clear()
    return taken


@control
def reset(state: FakeMTurkState, request: Request, data: dict[str, Any]) -> Any:
    state.reset()
    return {}


CONTROL_ROUTES = [
    Route("/hits/{hit_id}/accept", accept_hit, methods=["POST"]),
    Route("/assignments", list_assignments, methods=["GET"]),
    Route("/assignments/{assignment_id}/submit", submit_assignment, methods=["POST"]),
    Route("/assignments/{assignment_id}/return", return_assignment, methods=["POST"]),
    Route("/balance", set_balance, methods=["PUT"]),
    Route("/clock", advance_clock, methods=["POST"]),
    Route("/faults", add_fault, methods=["POST"]),
    Route("/faults", clear_faults, methods=["DELETE"]),
    Route("/bonuses", list_bonuses, methods=["GET"]),
    Route("/calls", list_calls, methods=["GET"]),
    Route("/problems", list_problems, methods=["GET"]),
    Route("/problems", take_problems, methods=["DELETE"]),
    Route("/reset", reset, methods=["POST"]),
]


def create_app(state: FakeMTurkState | None = None) -> Starlette:
    """The fake as an ASGI app: MTurk on POST /, test control under /_fake/."""
    app = Starlette(routes=[Route("/", call_operation, methods=["POST"]), Mount("/_fake", routes=CONTROL_ROUTES)])
    app.state.mturk = state if state is not None else FakeMTurkState()
    app.state.checker = ShapeChecker(load_model("mturk"))
    return app
