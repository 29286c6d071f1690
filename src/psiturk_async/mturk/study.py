"""What belongs to this study, and the checks every MTurk operation shares: the mode, the HITs, the people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..mode import read_mode
from ..models import Hit, Participant
from ..settings import Settings
from .client import Mode, MTurkClients
from .fees import format_money
from .ledger import Spending, end_read, max_spend
from .schemas import HitPublic, SpendingPublic
from .spec import Refused

HIT_STATUSES_REVIEWABLE = ("Reviewable", "Reviewing")


async def checked_mode(session: AsyncSession, settings: Settings, requested: Mode) -> Mode:
    """The server's mode, if it is the one the caller means; else refused, so no money moves in the wrong one."""
    current = await read_mode(session, default=settings.launch_in_mode)
    await end_read(session)
    if current != requested:
        raise Refused("mode_changed", f"the server is in {current} mode, not {requested}: nothing was sent; "
                      f"switch with `psiturk-async mode {requested}` if you meant {requested}", status=409)
    return current


def checked_total(expected: str | None, total: Decimal) -> None:
    if expected is not None and Decimal(expected) != total:
        raise Refused("plan_changed", f"the total to send is now ${format_money(total)}, not the ${expected} "
                      "that was confirmed (something changed in between): nothing was sent; run it again",
                      status=409)


def spending_public(settings: Settings, mode: Mode, spent: Spending) -> SpendingPublic:
    limit = max_spend(settings)
    return SpendingPublic(
        mode=mode, recorded=str(spent.total), hits=str(spent.hits), bonuses=str(spent.bonuses),
        other_approvals=str(spent.other_approvals), max_spend=None if limit is None else str(limit),
        remaining=None if limit is None else str(max(limit - spent.total, Decimal("0.00"))))


async def study_hit_ids(session: AsyncSession) -> set[str]:
    """HIT ids in psiTurk's amt_hit table: the HITs that make up this study."""
    return set((await session.scalars(select(Hit.hitid))).all())


def submitted_count(hit: dict[str, Any]) -> int:
    """Assignments submitted and awaiting review (MTurk reports the other three counters, not this one)."""
    return max(0, int(hit.get("MaxAssignments", 0)) - int(hit.get("NumberOfAssignmentsPending", 0))
               - int(hit.get("NumberOfAssignmentsAvailable", 0)) - int(hit.get("NumberOfAssignmentsCompleted", 0)))


def is_expired(hit: dict[str, Any], now: datetime | None = None) -> bool:
    expiration = hit.get("Expiration")
    return expiration is not None and expiration <= (now or datetime.now(UTC))


def hit_public(hit: dict[str, Any], *, this_study: bool) -> HitPublic:
    return HitPublic(
        hit_id=hit["HITId"], title=hit.get("Title", ""), status=hit.get("HITStatus", ""),
        reward=hit.get("Reward", ""), max_assignments=hit.get("MaxAssignments", 0),
        pending=hit.get("NumberOfAssignmentsPending", 0), available=hit.get("NumberOfAssignmentsAvailable", 0),
        submitted=submitted_count(hit), completed=hit.get("NumberOfAssignmentsCompleted", 0),
        created_at=hit.get("CreationTime"), expires_at=hit.get("Expiration"), expired=is_expired(hit),
        this_study=this_study)


async def study_hits(session: AsyncSession, mturk: MTurkClients, mode: Mode) -> list[dict[str, Any]]:
    """This study's HITs as MTurk lists them in `mode` (ListHITs, page by page, filtered to amt_hit)."""
    ours = await study_hit_ids(session)
    await end_read(session)
    return [hit for hit in await mturk.pages(mode, "list_hits", "HITs") if hit["HITId"] in ours]


@dataclass(frozen=True)
class Local:
    """The participant row of an assignment (the columns MTurk operations need)."""

    uniqueid: str
    assignment_id: str
    worker_id: str
    hit_id: str
    status: int | None
    mode: str | None
    bonus: float | None


def _local(row: Any) -> Local:
    return Local(uniqueid=row.uniqueid, assignment_id=row.assignmentid, worker_id=row.workerid, hit_id=row.hitid,
                 status=row.status,
                 mode=row.mode, bonus=row.bonus)


COLUMNS = ("uniqueid", "workerid", "assignmentid", "hitid", "status", "mode", "bonus")


def _columns() -> list[Any]:
    table = Participant.__table__  # type: ignore[attr-defined]
    return [table.c[name] for name in COLUMNS]


async def participants_of(session: AsyncSession, assignment_ids: list[str]) -> dict[str, Local]:
    """Local participants by assignment id (an assignment belongs to one worker)."""
    if not assignment_ids:
        return {}
    table = Participant.__table__  # type: ignore[attr-defined]
    found: dict[str, Local] = {}
    for start in range(0, len(assignment_ids), 500):
        chunk = assignment_ids[start:start + 500]
        rows = await session.execute(select(*_columns()).where(table.c.assignmentid.in_(chunk)))
        for row in rows:
            found.setdefault(row.assignmentid, _local(row))
    return found


async def participants_where(session: AsyncSession, *, mode: Mode, statuses: list[int],
                             hit_id: str | None = None, assignment_ids: list[str] | None = None) -> list[Local]:
    """Local participants of `mode` in these statuses, of one HIT or these assignments when given."""
    table = Participant.__table__  # type: ignore[attr-defined]
    query = select(*_columns()).where(table.c.mode == mode, table.c.status.in_(statuses))
    if hit_id is not None:
        query = query.where(table.c.hitid == hit_id)
    if assignment_ids is not None:
        query = query.where(table.c.assignmentid.in_(assignment_ids))
    rows = await session.execute(query.order_by(table.c.uniqueid))
    return [_local(row) for row in rows]
