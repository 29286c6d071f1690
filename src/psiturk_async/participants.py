"""Finding participants and creating them with a counterbalanced condition (saves and moves: store.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .counterbalance import Cell, add_counts
from .db import begin_write
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
