"""Database tables, with psiTurk 3's table and column names so its databases keep working both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum

from sqlalchemy import Column, DateTime, Float, Index, Integer, String, Text
from sqlmodel import Field, SQLModel


class Status(IntEnum):
    """psiTurk's participant status codes; the numbers are stored and must not change."""

    NOT_ACCEPTED = 0
    ALLOCATED = 1
    STARTED = 2
    COMPLETED = 3
    SUBMITTED = 4
    CREDITED = 5
    QUITEARLY = 6
    BONUSED = 7


# Statuses that count as a finished participant (counterbalancing, campaigns, analysis).
FINISHED = (Status.COMPLETED, Status.SUBMITTED, Status.CREDITED, Status.BONUSED)


def utcnow() -> datetime:
    """Now in UTC, naive: psiTurk's DateTime columns carry no zone, and UTC is what they hold."""
    return datetime.now(UTC).replace(tzinfo=None)


def unique_id(worker_id: str, assignment_id: str) -> str:
    return f"{worker_id}:{assignment_id}"


class Participant(SQLModel, table=True):
    """One row per worker and assignment: psiTurk's `assignments` table (renamed by `table_name`)."""

    __tablename__ = "assignments"
    __table_args__ = (
        # Added indexes only: psiTurk 3 still reads and writes a table that has them.
        Index("ix_psiturk_async_assignments_workerid", "workerid"),
        Index("ix_psiturk_async_assignments_cells", "codeversion", "mode", "status", "cond", "counterbalance"),
        Index("ix_psiturk_async_assignments_beginhit", "codeversion", "mode", "beginhit"),
    )

    uniqueid: str = Field(sa_column=Column(String(128), primary_key=True))
    assignmentid: str = Field(sa_column=Column(String(128), nullable=False))
    workerid: str = Field(sa_column=Column(String(128), nullable=False))
    hitid: str = Field(sa_column=Column(String(128), nullable=False))
    ipaddress: str | None = Field(default=None, sa_column=Column(String(128)))
    browser: str | None = Field(default=None, sa_column=Column(String(128)))
    platform: str | None = Field(default=None, sa_column=Column(String(128)))
    language: str | None = Field(default=None, sa_column=Column(String(128)))
    cond: int | None = Field(default=None, sa_column=Column(Integer))
    counterbalance: int | None = Field(default=None, sa_column=Column(Integer))
    codeversion: str | None = Field(default=None, sa_column=Column(String(128)))
    beginhit: datetime | None = Field(default=None, sa_column=Column(DateTime))
    beginexp: datetime | None = Field(default=None, sa_column=Column(DateTime))
    endhit: datetime | None = Field(default=None, sa_column=Column(DateTime))
    bonus: float | None = Field(default=0, sa_column=Column(Float, default=0))
    status: int | None = Field(default=Status.ALLOCATED, sa_column=Column(Integer, default=1))
    mode: str | None = Field(default=None, sa_column=Column(String(128)))
    # Loaded with the row: custom.py code reads it right after session.get, and an async session cannot load a
    # column later on attribute access. Queries over many rows that do not need it defer it themselves.
    datastring: str | None = Field(default=None, sa_column=Column(Text))


class Hit(SQLModel, table=True):
    """HITs created by this study (psiTurk's `amt_hit`)."""

    __tablename__ = "amt_hit"

    hitid: str = Field(sa_column=Column(String(128), primary_key=True))


class Campaign(SQLModel, table=True):
    """psiTurk's recruitment campaigns, kept so its databases adopt cleanly."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    codeversion: str = Field(sa_column=Column(String(128), nullable=False))
    mode: str = Field(sa_column=Column(String(128), nullable=False))
    goal: int = Field(sa_column=Column(Integer, nullable=False))
    minutes_between_rounds: int = Field(sa_column=Column(Integer, nullable=False))
    assignments_per_round: int = Field(sa_column=Column(Integer, nullable=False))
    hit_reward: float = Field(sa_column=Column(Float, nullable=False))
    hit_duration_hours: float = Field(sa_column=Column(Float, nullable=False))
    is_active: bool | None = Field(default=True)
    created: datetime | None = Field(default_factory=utcnow, sa_column=Column(DateTime))
    ended: datetime | None = Field(default=None, sa_column=Column(DateTime))


class AppState(SQLModel, table=True):
    """Small shared values every server process must agree on (MTurk mode, the participant-secret key)."""

    __tablename__ = "psiturk_async_state"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))


def bind_table_names(*, participants: str, hits: str, campaigns: str) -> None:
    """Point the models at the configured table names (psiTurk let each project rename them)."""
    Participant.__table__.name = participants  # type: ignore[attr-defined]
    Hit.__table__.name = hits  # type: ignore[attr-defined]
    Campaign.__table__.name = campaigns  # type: ignore[attr-defined]
