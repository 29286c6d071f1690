"""The participant lifecycle: create with a counterbalanced condition, move status, save data."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import records
from .counterbalance import Cell, add_counts
from .db import begin_write
from .lifecycle import SAVABLE, Move, decide
from .models import FINISHED, Participant, Status, unique_id, utcnow

TABLE = Participant.__table__  # type: ignore[attr-defined]
C = TABLE.c
# Every column but the datastring, for lookups that do not need the data.
SUMMARY = [column for column in TABLE.c if column.name != "datastring"]

ConditionChooser = Callable[[dict[Cell, int]], Awaitable[Cell]]


async def find(session: AsyncSession, uid: str) -> Participant | None:
    return await session.get(Participant, uid)


async def rows_of_worker(session: AsyncSession, worker_id: str) -> list[Participant]:
    result = await session.execute(select(Participant).where(C.workerid == worker_id).order_by(C.beginhit))
    return list(result.scalars())


async def cell_counts(session: AsyncSession, *, codeversion: str, mode: str, cutoff_minutes: float) -> dict[Cell, int]:
    """psiTurk's counting rule: finished participants forever, others while younger than the cutoff.

    Two grouped, index-served counts instead of reading every row, so /exp stays flat as the study grows.
    """
    finished = [int(status) for status in FINISHED]
    started_after = utcnow() - timedelta(minutes=cutoff_minutes)
    finished_rows = await session.execute(
        select(C.cond, C.counterbalance, func.count())
        .where(C.codeversion == codeversion, C.mode == mode, C.status.in_(finished))
        .group_by(C.cond, C.counterbalance))
    recent_rows = await session.execute(
        select(C.cond, C.counterbalance, func.count())
        .where(C.codeversion == codeversion, C.mode == mode, C.beginhit > started_after,
               C.status.not_in(finished) | C.status.is_(None))
        .group_by(C.cond, C.counterbalance))
    return add_counts(finished_rows.all(), recent_rows.all())


@dataclass
class Arrival:
    hit_id: str
    assignment_id: str
    worker_id: str
    mode: str
    ipaddress: str
    browser: str
    platform: str
    language: str


class RepeatWorker(Exception):
    """The worker already took part in another assignment and repeats are not allowed."""


async def create(session: AsyncSession, arrival: Arrival, *, codeversion: str, cutoff_minutes: float,
                 allow_repeats: bool, choose: ConditionChooser) -> tuple[Participant, bool]:
    """The participant for this arrival, created with a condition unless another request just did.

    Counting and inserting happen under one database lock per (codeversion, mode), so simultaneous arrivals,
    in any number of server processes, see each other's rows and fill the cells evenly.
    Returns the participant and whether it was created now.
    """
    uid = unique_id(arrival.worker_id, arrival.assignment_id)
    await begin_write(session, lock=f"counterbalance:{codeversion}:{arrival.mode}")
    existing = await session.get(Participant, uid)
    if existing is not None:
        await session.commit()
        return existing, False
    if not allow_repeats:
        other = await session.scalar(select(func.count()).where(C.workerid == arrival.worker_id))
        if other:
            await session.rollback()
            raise RepeatWorker(arrival.worker_id)
    counts = await cell_counts(session, codeversion=codeversion, mode=arrival.mode, cutoff_minutes=cutoff_minutes)
    cond, counter = await choose(counts)
    participant = Participant(
        uniqueid=uid, assignmentid=arrival.assignment_id, workerid=arrival.worker_id, hitid=arrival.hit_id,
        ipaddress=arrival.ipaddress, browser=arrival.browser, platform=arrival.platform,
        language=arrival.language, cond=cond, counterbalance=counter, codeversion=codeversion,
        beginhit=utcnow(), status=Status.ALLOCATED, mode=arrival.mode, bonus=0)
    session.add(participant)
    await session.commit()
    return participant, True


TIMESTAMP_ON = {Status.STARTED: "beginexp", Status.COMPLETED: "endhit"}


async def move(session: AsyncSession, uid: str, target: Status) -> tuple[Move | None, int | None]:
    """Move a participant to `target` if the status machine allows it. (None, None) when unknown."""
    await begin_write(session)
    row = (await session.execute(select(C.status).where(C.uniqueid == uid).with_for_update())).first()
    if row is None:
        await session.rollback()
        return None, None
    verdict = decide(row.status, target)
    if verdict is Move.APPLY:
        values: dict[str, Any] = {"status": int(target)}
        if target in TIMESTAMP_ON:
            values[TIMESTAMP_ON[target]] = utcnow()
        await session.execute(update(TABLE).where(C.uniqueid == uid).values(**values))
        await session.commit()
        return verdict, int(target)
    await session.rollback()
    return verdict, row.status


async def resume(session: AsyncSession, uid: str) -> int | None:
    """A returning participant who holds their secret goes back to STARTED; the return is recorded as an event."""
    await begin_write(session)
    row = (await session.execute(select(*SUMMARY, C.datastring).where(C.uniqueid == uid).with_for_update())).first()
    if row is None:
        await session.rollback()
        return None
    record = records.parse_record(row.datastring) or _base(row)
    record = records.add_event(record, eventtype="resumed", value=Status(row.status).name,
                               timestamp_ms=int(time.time() * 1000))
    await session.execute(update(TABLE).where(C.uniqueid == uid)
                          .values(status=int(Status.STARTED), datastring=records.dumps(record)))
    await session.commit()
    return row.status


def _base(row: Any) -> dict[str, Any]:
    return records.base_record(cond=row.cond, counterbalance=row.counterbalance, assignment_id=row.assignmentid,
                               worker_id=row.workerid, hit_id=row.hitid, bonus=row.bonus)


async def read_record(session: AsyncSession, uid: str) -> str | None:
    """The participant's data as JSON text (the base record before the first save), or None when unknown."""
    row = (await session.execute(select(*SUMMARY, C.datastring).where(C.uniqueid == uid))).first()
    if row is None:
        return None
    if records.parse_record(row.datastring) is not None:
        return row.datastring
    return records.dumps(_base(row))


class SaveRefused(Exception):
    def __init__(self, status_code: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code, self.error, self.detail, self.extra = status_code, error, detail, extra


async def _locked_for_save(session: AsyncSession, uid: str) -> Any:
    await begin_write(session)
    row = (await session.execute(select(*SUMMARY, C.datastring).where(C.uniqueid == uid).with_for_update())).first()
    if row is None:
        await session.rollback()
        raise SaveRefused(404, "unknown_participant", f"no participant {uid!r}")
    if row.status not in SAVABLE:
        await session.rollback()
        raise SaveRefused(409, "record_frozen", f"the record is {Status(row.status).name}: approved or paid "
                          "participants' data no longer changes", current_status=row.status)
    return row


async def save_full(session: AsyncSession, uid: str, record: dict[str, Any], body: str) -> None:
    """Store a full save as sent, unless it would drop trials already stored (a late save)."""
    row = await _locked_for_save(session, uid)
    stored_length = records.list_length(records.parse_record(row.datastring), "data")
    if records.list_length(record, "data") < stored_length:
        await session.rollback()
        raise SaveRefused(409, "stale_save", "this save holds fewer trials than are already stored; "
                          "the longer record is kept", data_length=stored_length)
    await session.execute(update(TABLE).where(C.uniqueid == uid).values(datastring=body))
    await session.commit()


async def save_delta(session: AsyncSession, uid: str, delta: dict[str, Any]) -> tuple[int, int]:
    """Apply an incremental save; returns the stored lengths of data and eventdata."""
    row = await _locked_for_save(session, uid)
    current = records.parse_record(row.datastring) or _base(row)
    try:
        updated = records.apply_delta(current, delta)
    except records.Gap:
        await session.rollback()
        raise SaveRefused(409, "gap", "this save starts after the end of the stored data; resend from the "
                          "stored lengths", data_length=records.list_length(current, "data"),
                          eventdata_length=records.list_length(current, "eventdata")) from None
    await session.execute(update(TABLE).where(C.uniqueid == uid).values(datastring=records.dumps(updated)))
    await session.commit()
    return records.list_length(updated, "data"), records.list_length(updated, "eventdata")
