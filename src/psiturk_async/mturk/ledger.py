"""The money ledger: recorded spending and the max_spend check, ledger rows, claims on bonuses in flight.

Functions here work inside the caller's transaction and never commit: the service decides the unit of work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..lifecycle import Move, decide
from ..models import Participant, Status, utcnow
from ..settings import Settings
from .fees import CENT, Cost, assignment_cost
from .models import LedgerEntry, MTurkHit
from .spec import Refused

SPENDING = ("pending", "done")  # a pending bonus may have been paid: it counts until proven otherwise
HOLDING = ("creating", "created")  # a HIT being created may exist


async def end_read(session: AsyncSession) -> None:
    """End a read-only transaction before calling MTurk, keeping what it loaded usable.

    A commit, not a rollback: a rollback would expire the loaded rows, and reading them again later would
    need the database (and an open transaction) while MTurk is being called.
    """
    await session.commit()


def cents(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_value())


def dollars(amount_cents: int) -> Decimal:
    return (Decimal(amount_cents) * CENT).quantize(CENT)


def spend_lock(mode: str) -> str:
    """The lock every unit of work that adds to a mode's spending takes, so two cannot both fit the budget."""
    return f"psiturk_async.mturk.spend:{mode}"


@dataclass(frozen=True)
class Spending:
    """What the study has committed in one mode, fees included, by the fee function."""

    hits: Decimal  # every assignment of this study's HITs that may still be paid
    bonuses: Decimal
    other_approvals: Decimal  # approvals of assignments of HITs this study did not create

    @property
    def total(self) -> Decimal:
        return self.hits + self.bonuses + self.other_approvals


def hit_commitment(hit: MTurkHit) -> Decimal:
    """The most the HIT can still cost: each assignment not released, at its reward plus fee."""
    one = assignment_cost(dollars(hit.reward_cents), assignments=hit.max_assignments, masters=hit.masters)
    return one.total * max(0, hit.max_assignments - hit.released)


async def spending(session: AsyncSession, mode: str) -> Spending:
    """The recorded spending of the study in `mode`."""
    hits = list((await session.scalars(
        select(MTurkHit).where(MTurkHit.mode == mode, MTurkHit.state.in_(HOLDING)))).all())  # type: ignore[attr-defined]
    ours = select(MTurkHit.hit_id).where(MTurkHit.hit_id.is_not(None))  # type: ignore[union-attr]
    paid = LedgerEntry.amount_cents + LedgerEntry.fee_cents
    bonuses = await session.scalar(select(func.coalesce(func.sum(paid), 0)).where(
        LedgerEntry.mode == mode, LedgerEntry.kind == "bonus", LedgerEntry.state.in_(SPENDING)))  # type: ignore[attr-defined]
    elsewhere = await session.scalar(select(func.coalesce(func.sum(paid), 0)).where(
        LedgerEntry.mode == mode, LedgerEntry.kind == "approve", LedgerEntry.state == "done",
        or_(LedgerEntry.hit_id.is_(None), LedgerEntry.hit_id.not_in(ours))))  # type: ignore[union-attr]
    return Spending(hits=sum((hit_commitment(hit) for hit in hits), Decimal("0.00")),
                    bonuses=dollars(int(bonuses or 0)), other_approvals=dollars(int(elsewhere or 0)))


def max_spend(settings: Settings) -> Decimal | None:
    return None if settings.max_spend is None else Decimal(str(settings.max_spend)).quantize(CENT)


def check_budget(settings: Settings, mode: str, current: Spending, extra: Decimal) -> None:
    """Refuse `extra` if it takes the study's recorded spending in `mode` past max_spend."""
    limit = max_spend(settings)
    if limit is None or current.total + extra <= limit:
        return
    raise Refused("max_spend_exceeded",
        f"this would cost up to ${extra}, and the study's recorded {mode} spending is already "
        f"${current.total} (HITs ${current.hits}, bonuses ${current.bonuses}"
        + (f", other approvals ${current.other_approvals}" if current.other_approvals else "")
        + f"), so it would pass max_spend = ${limit} by ${current.total + extra - limit}; raise max_spend in "
        f"config.txt if you mean to spend more", status=409)


async def study_hit(session: AsyncSession, hit_id: str) -> MTurkHit | None:
    return await session.scalar(select(MTurkHit).where(MTurkHit.hit_id == hit_id))


def bonus_token(entry: LedgerEntry) -> str:
    """The UniqueRequestToken of a bonus, derived from its ledger row (so every retry sends the same one)."""
    assert entry.id is not None
    seed = (f"{entry.id}:{entry.mode}:{entry.assignment_id}:{entry.worker_id}:{entry.amount_cents}:"
            f"{entry.created_at.isoformat()}")
    return "psiturk-bonus-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def entry(*, kind: str, mode: str, state: str, hit_id: str | None, assignment_id: str, worker_id: str,
          uniqueid: str | None, cost: Cost | None = None, reason: str | None = None, source: str = "command",
          override: bool = False, note: str | None = None) -> LedgerEntry:
    now = utcnow()
    return LedgerEntry(
        kind=kind, mode=mode, state=state, hit_id=hit_id, assignment_id=assignment_id, worker_id=worker_id,
        uniqueid=uniqueid, amount_cents=cents(cost.to_workers) if cost else 0,
        fee_cents=cents(cost.fee) if cost else 0,
        reason=reason, source=source, override=override, note=note, created_at=now,
        settled_at=None if state == "pending" else now)


async def move_participant(session: AsyncSession, uniqueid: str | None, target: Status) -> Move | None:
    """Move a participant's status inside the caller's transaction, as the status machine allows."""
    if uniqueid is None:
        return None
    table = Participant.__table__  # type: ignore[attr-defined]
    current = await session.scalar(select(table.c.status).where(table.c.uniqueid == uniqueid).with_for_update())
    verdict = decide(current, target)
    if verdict is Move.APPLY:
        await session.execute(update(table).where(table.c.uniqueid == uniqueid).values(status=int(target)))
    return verdict


async def claim(session: AsyncSession, entry_id: int, *, lease: timedelta, now: datetime | None = None) -> bool:
    """Take a pending bonus for sending; False when another command holds it and its lease has not run out."""
    now = now or utcnow()
    result = await session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.id == entry_id, LedgerEntry.state == "pending",  # type: ignore[arg-type]
               or_(LedgerEntry.sending_at.is_(None), LedgerEntry.sending_at < now - lease))  # type: ignore[union-attr]
        .values(sending_at=now, attempts=LedgerEntry.attempts + 1))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def entries_for(session: AsyncSession, assignment_ids: list[str], kind: str) -> list[LedgerEntry]:
    if not assignment_ids:
        return []
    found = await session.scalars(select(LedgerEntry).where(
        LedgerEntry.assignment_id.in_(assignment_ids), LedgerEntry.kind == kind)  # type: ignore[attr-defined]
        .order_by(LedgerEntry.id))
    return list(found.all())
