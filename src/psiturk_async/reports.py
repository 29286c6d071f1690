"""Read-only views for the admin API: participants filtered and paged, counts, server status, settings."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlmodel import col

from . import __version__
from .export import parse_datastring
from .mode import read_mode
from .models import FINISHED, Participant
from .schemas import (
    CellCount,
    ConfigEntry,
    ConfigPublic,
    ParticipantCounts,
    ParticipantDetail,
    ParticipantFilter,
    ParticipantPage,
    ParticipantPublic,
    ParticipantQuery,
    ServerStatus,
    StatusCount,
    status_name,
)
from .settings import KEYS, Settings

FINISHED_NUMBERS = [int(status) for status in FINISHED]


def participant_conditions(where: ParticipantFilter) -> list[ColumnElement[bool]]:
    """The filter as SQL conditions on the participants table (all must hold)."""
    conditions: list[ColumnElement[bool]] = []
    equal = {
        col(Participant.mode): where.mode,
        col(Participant.cond): where.condition,
        col(Participant.counterbalance): where.counterbalance,
        col(Participant.codeversion): where.codeversion,
        col(Participant.workerid): where.worker_id,
        col(Participant.assignmentid): where.assignment_id,
        col(Participant.hitid): where.hit_id,
    }
    conditions.extend(column == value for column, value in equal.items() if value is not None)
    if where.status:
        conditions.append(col(Participant.status).in_(where.status))
    if where.completed is not None:
        finished = col(Participant.status).in_(FINISHED_NUMBERS)
        conditions.append(finished if where.completed
                          else or_(col(Participant.status).not_in(FINISHED_NUMBERS),
                                   col(Participant.status).is_(None)))
    return conditions


async def list_participants(session: AsyncSession, query: ParticipantQuery) -> ParticipantPage:
    """One page of matching participants in uniqueid order, and how many match in all."""
    conditions = participant_conditions(query)
    total = await session.scalar(select(func.count()).select_from(Participant).where(*conditions))
    # Without the datastrings, by far the largest column, which a page of summaries never shows.
    page = (select(Participant).options(defer(col(Participant.datastring))).where(*conditions)
            .order_by(col(Participant.uniqueid)).limit(query.limit + 1))
    if query.after is not None:
        page = page.where(col(Participant.uniqueid) > query.after)
    rows = list((await session.scalars(page)).all())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return ParticipantPage(items=[ParticipantPublic.model_validate(row) for row in rows], total=total or 0,
                           next_after=rows[-1].uniqueid if more else None)


async def read_participant(session: AsyncSession, uniqueid: str) -> ParticipantDetail | None:
    """A participant with its datastring parsed; None when there is no such participant."""
    row = await session.scalar(select(Participant).where(col(Participant.uniqueid) == uniqueid))
    if row is None:
        return None
    data, problem = parse_datastring(row.datastring)
    public = ParticipantPublic.model_validate(row)
    return ParticipantDetail(**public.model_dump(exclude={"status_name"}), data=data, data_error=problem)


async def count_participants(session: AsyncSession, where: ParticipantFilter) -> ParticipantCounts:
    """Matching participants by condition × counterbalance and by status."""
    conditions = participant_conditions(where)
    cond, counterbalance, status = col(Participant.cond), col(Participant.counterbalance), col(Participant.status)
    cells = await session.execute(select(cond, counterbalance, func.count()).where(*conditions)
                                  .group_by(cond, counterbalance).order_by(cond, counterbalance))
    statuses = await session.execute(select(status, func.count()).where(*conditions)
                                     .group_by(status).order_by(status))
    cell_counts = [CellCount(cond=row[0], counterbalance=row[1], count=row[2]) for row in cells]
    return ParticipantCounts(
        total=sum(cell.count for cell in cell_counts),
        cells=cell_counts,
        statuses=[StatusCount(status=row[0], status_name=status_name(row[0]), count=row[1]) for row in statuses],
    )


async def server_status(session: AsyncSession, *, settings: Settings, started_at: float) -> ServerStatus:
    """Version, mode, code version, database kind, participant counts and uptime."""
    mode = await read_mode(session, default=settings.launch_in_mode)
    status = col(Participant.status)
    by_status = {status_name(row[0]): row[1]
                 for row in await session.execute(select(status, func.count()).group_by(status).order_by(status))}
    finished = await session.scalar(select(func.count()).select_from(Participant).where(
        status.in_(FINISHED_NUMBERS), col(Participant.codeversion) == settings.experiment_code_version,
        col(Participant.mode) == mode))
    return ServerStatus(
        version=__version__,
        mode=mode,
        codeversion=settings.experiment_code_version,
        database=session.get_bind().dialect.name,
        participants=sum(by_status.values()),
        finished=finished or 0,
        by_status=by_status,
        started_at=datetime.fromtimestamp(started_at, UTC),
        uptime_seconds=round(time.time() - started_at, 3),
    )


def config_entries(settings: Settings) -> ConfigPublic:
    """Every setting with its section and source; secrets and database passwords hidden."""
    shown = settings.redacted()
    return ConfigPublic(entries=[
        ConfigEntry(section=key.section, key=key.name, value=shown[key.name],
                    source=settings.sources.get(key.name, "default"), secret=key.secret)
        for key in KEYS if key.name in shown
    ])
