"""The MTurk part of the admin API, under /api/mturk: HITs, assignments, bonuses, balance, qualifications.

Money-moving routes take the mode the caller means (`mode`) and refuse when the server's differs; each has a
`dry_run` that answers exactly what would be sent and sends nothing. MTurk's own refusals come back as
502 mturk_error with MTurk's code and message; no answer from MTurk is 504 mturk_unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute

from ..auth import admin_router
from ..deps import SessionDep, SettingsDep
from ..errors import ApiError, error_responses
from ..mode import read_mode
from ..mturk import assignments, bonuses, hits
from ..mturk.client import Mode, MTurkClients, MTurkError, MTurkNotConfigured, MTurkUnavailable
from ..mturk.ledger import end_read
from ..mturk.schemas import (
    ActionReport,
    AssignmentList,
    AssignmentQuery,
    AssignmentSelection,
    Balance,
    BonusRequest,
    HitActions,
    HitCreate,
    HitCreated,
    HitExtend,
    HitExtension,
    HitList,
    HitQuery,
    HitSelection,
    QualificationList,
    RejectRequest,
)
from ..mturk.spec import Refused
from ..mturk.study import checked_mode


class MTurkRoute(APIRoute):
    """Turns the MTurk service's errors into the API's one error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused as exc:
                raise ApiError(exc.status, exc.error, exc.detail) from exc
            except MTurkNotConfigured as exc:
                raise ApiError(503, "mturk_not_configured", str(exc)) from exc
            except MTurkError as exc:
                raise ApiError(502, "mturk_error", f"MTurk refused {exc.operation}: {exc.code}: {exc.message}",
                               code=exc.code) from exc
            except MTurkUnavailable as exc:
                raise ApiError(504, "mturk_unavailable", f"MTurk did not answer {exc.operation} ({exc.reason}); "
                               "it may or may not have taken effect: check before repeating it") from exc

        return handle


router = admin_router(route_class=MTurkRoute, tags=["mturk"])
router.responses.update(error_responses(409, 422, 502, 503, 504))


async def get_mturk(request: Request) -> MTurkClients:
    return request.app.state.mturk


MTurkDep = Annotated[MTurkClients, Depends(get_mturk)]


async def current_mode(session: SessionDep, settings: SettingsDep) -> Mode:
    mode = await read_mode(session, default=settings.launch_in_mode)
    await end_read(session)
    return mode


CurrentMode = Annotated[Mode, Depends(current_mode)]


@router.get("/mturk/balance", response_model=Balance)
async def read_balance(session: SessionDep, settings: SettingsDep, mturk: MTurkDep, mode: CurrentMode) -> Balance:
    """MTurk's available balance in the current mode, and the study's recorded spending against max_spend."""
    return await hits.balance(session, mturk, settings=settings, mode=mode)


@router.post("/mturk/hits", response_model=HitCreated)
async def create_hit(body: HitCreate, session: SessionDep, settings: SettingsDep, mturk: MTurkDep) -> HitCreated:
    """Create a HIT pointing at the ad URL, with the configured qualifications; fee and total in the answer."""
    mode = await checked_mode(session, settings, body.mode)
    return await hits.create_hit(session, mturk, settings=settings, mode=mode, request=body)


@router.get("/mturk/hits", response_model=HitList)
async def list_hits(query: Annotated[HitQuery, Query()], session: SessionDep, mturk: MTurkDep,
                    mode: CurrentMode) -> HitList:
    """HITs of this study in the current mode, as MTurk lists them. Changes nothing here."""
    return await hits.list_hits(session, mturk, mode=mode, query=query)


@router.post("/mturk/hits/sync", response_model=HitList)
async def sync_hits(query: HitQuery, session: SessionDep, mturk: MTurkDep, mode: CurrentMode) -> HitList:
    """The same listing, and what it shows is recorded: a HIT whose creation had no answer is found (by its
    RequesterAnnotation), and assignments nobody took before a HIT expired stop counting as spending."""
    return await hits.list_hits(session, mturk, mode=mode, query=query,
                                learn_within=timedelta(seconds=mturk.call_budget_seconds))


@router.post("/mturk/hits/{hit_id}/extend", response_model=HitExtension)
async def extend_hit(hit_id: Annotated[str, Path(max_length=128)], body: HitExtend, session: SessionDep,
                     settings: SettingsDep, mturk: MTurkDep) -> HitExtension:
    """Add assignments and/or minutes to a HIT; added assignments count against max_spend."""
    mode = await checked_mode(session, settings, body.mode)
    return await hits.extend_hit(session, mturk, settings=settings, mode=mode, hit_id=hit_id, request=body)


@router.post("/mturk/hits/expire", response_model=HitActions)
async def expire_hits(body: HitSelection, session: SessionDep, settings: SettingsDep,
                      mturk: MTurkDep) -> HitActions:
    """Expire HITs now: these ids, or (all) every unexpired HIT of this study."""
    mode = await checked_mode(session, settings, body.mode)
    return await hits.expire_hits(session, mturk, mode=mode, selection=body)


@router.post("/mturk/hits/delete", response_model=HitActions)
async def delete_hits(body: HitSelection, session: SessionDep, settings: SettingsDep,
                      mturk: MTurkDep) -> HitActions:
    """Delete HITs that are Reviewable with every submission reviewed: these ids, or (all) all such HITs."""
    mode = await checked_mode(session, settings, body.mode)
    return await hits.delete_hits(session, mturk, mode=mode, selection=body)


@router.get("/mturk/assignments", response_model=AssignmentList)
async def list_assignments(query: Annotated[AssignmentQuery, Query()], session: SessionDep, mturk: MTurkDep,
                           mode: CurrentMode) -> AssignmentList:
    """Assignments of this study's HITs (or one HIT) as MTurk lists them, with their local records. Changes
    nothing here."""
    return await assignments.list_assignments(session, mturk, mode=mode, query=query)


@router.post("/mturk/assignments/sync", response_model=AssignmentList)
async def sync_assignments(query: AssignmentQuery, session: SessionDep, mturk: MTurkDep,
                           mode: CurrentMode) -> AssignmentList:
    """The same listing, with local records brought in step with MTurk: an auto-approved assignment becomes
    CREDITED and is written to the ledger, a rejection made elsewhere is recorded. Repeating it changes nothing."""
    return await assignments.list_assignments(session, mturk, mode=mode, query=query, sync=True)


@router.post("/mturk/assignments/approve", response_model=ActionReport)
async def approve(body: AssignmentSelection, session: SessionDep, settings: SettingsDep,
                  mturk: MTurkDep) -> ActionReport:
    """Approve submitted assignments: all of this study's, one HIT's, or these ids; participants → CREDITED."""
    mode = await checked_mode(session, settings, body.mode)
    return await assignments.approve(session, mturk, settings=settings, mode=mode, request=body)


@router.post("/mturk/assignments/reject", response_model=ActionReport)
async def reject(body: RejectRequest, session: SessionDep, settings: SettingsDep, mturk: MTurkDep) -> ActionReport:
    """Reject submitted assignments of one HIT, or these ids; each rejection is recorded in the ledger."""
    mode = await checked_mode(session, settings, body.mode)
    return await assignments.reject(session, mturk, settings=settings, mode=mode, request=body)


@router.post("/mturk/assignments/unreject", response_model=ActionReport)
async def unreject(body: AssignmentSelection, session: SessionDep, settings: SettingsDep,
                   mturk: MTurkDep) -> ActionReport:
    """Approve rejected assignments after all (OverrideRejection); participants → CREDITED."""
    mode = await checked_mode(session, settings, body.mode)
    if body.all:
        raise ApiError(422, "invalid_request", "unreject needs hit_id or assignment_ids, never all")
    return await assignments.approve(session, mturk, settings=settings, mode=mode, request=body, override=True)


@router.post("/mturk/bonuses", response_model=ActionReport)
async def pay_bonuses(body: BonusRequest, session: SessionDep, settings: SettingsDep,
                      mturk: MTurkDep) -> ActionReport:
    """Pay bonuses to approved participants, each at most once unless `again`; participants → BONUSED."""
    mode = await checked_mode(session, settings, body.mode)
    return await bonuses.bonus(session, mturk, settings=settings, mode=mode, request=body)


@router.get("/mturk/qualifications", response_model=QualificationList)
async def list_qualifications(mturk: MTurkDep, mode: CurrentMode) -> QualificationList:
    """Qualification types this requester owns, in the current mode."""
    return await hits.list_qualifications(mturk, mode=mode)
