"""psiturk-async's own MTurk tables: the HITs it created, with what they may cost, and the money ledger.

psiTurk's `amt_hit` keeps only HIT ids (and still gets one row per HIT, so psiTurk 3 sees the same study);
these tables sit beside it. Amounts are whole cents: exact, and the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from ..models import utcnow


class MTurkHit(SQLModel, table=True):
    """A HIT this study created (or is creating): what each assignment pays and how many may still be paid."""

    __tablename__ = "psiturk_async_mturk_hit"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    token: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    hit_id: str | None = Field(default=None, sa_column=Column(String(128), unique=True))
    mode: str = Field(sa_column=Column(String(16), nullable=False))
    # creating: committed before CreateHIT was sent (counts toward max_spend until settled); created; failed.
    state: str = Field(sa_column=Column(String(16), nullable=False))
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    reward_cents: int = Field(sa_column=Column(Integer, nullable=False))
    max_assignments: int = Field(sa_column=Column(Integer, nullable=False))
    masters: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # Assignments nobody took before the HIT expired: they will never be paid.
    released: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime, nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    error: str | None = Field(default=None, sa_column=Column(Text))


class LedgerEntry(SQLModel, table=True):
    """One approval, rejection or bonus. A bonus is written as `pending` before it is sent, then settled."""

    __tablename__ = "psiturk_async_mturk_ledger"
    __table_args__ = (
        Index("ix_psiturk_async_mturk_ledger_assignment", "assignment_id", "kind"),
        Index("ix_psiturk_async_mturk_ledger_mode", "mode", "kind", "state"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # approve | reject | bonus
    mode: str = Field(sa_column=Column(String(16), nullable=False))
    # pending: outcome not known yet; done: MTurk did it; refused: MTurk said no, nothing happened.
    state: str = Field(sa_column=Column(String(16), nullable=False))
    hit_id: str | None = Field(default=None, sa_column=Column(String(128)))
    assignment_id: str = Field(sa_column=Column(String(128), nullable=False))
    worker_id: str = Field(sa_column=Column(String(128), nullable=False))
    uniqueid: str | None = Field(default=None, sa_column=Column(String(256)))
    amount_cents: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    fee_cents: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    token: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    # command: done by this tool; mturk: found on MTurk (auto-approval, another tool, a lost answer).
    source: str = Field(default="command", sa_column=Column(String(16), nullable=False))
    override: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # Set while one command is sending this bonus; others leave it alone until the lease runs out.
    sending_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime, nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    note: str | None = Field(default=None, sa_column=Column(Text))
