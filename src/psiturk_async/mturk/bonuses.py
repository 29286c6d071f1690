"""Bonuses, paid at most once: intent committed first, then SendBonus with a token derived from it, then the
outcome committed with the participant's status.

MTurk refuses a repeated UniqueRequestToken, but only for 24 hours; so a bonus whose outcome is unknown is
first looked up in ListBonusPayments, and sent again (with its own token) only when MTurk has no record of it.
While one command sends a bonus it holds a lease on the ledger row, and at most one bonus per assignment is
ever pending, so concurrent commands never send the same bonus twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import begin_write
from ..models import Status, utcnow
from ..schemas import status_name
from ..settings import Settings
from . import ledger
from .client import Mode, MTurkClients, MTurkError, MTurkUnavailable
from .fees import CENT, bonus_cost, format_money, parse_money
from .ledger import end_read
from .models import LedgerEntry
from .schemas import ActionReport, BonusRequest, ItemResult, PaidBonus
from .spec import Refused
from .study import Local, checked_total, participants_of, participants_where, spending_public

DUPLICATE_CODES = frozenset({"AWS.MechanicalTurk.DuplicateRequest", "AWS.MechanicalTurk.DuplicateRequestToken"})
TOKEN_SHOWN = "<derived from its ledger entry when recorded>"


@dataclass
class Candidate:
    assignment_id: str
    worker_id: str
    hit_id: str | None
    local: Local | None


async def candidates(session: AsyncSession, mturk: MTurkClients, mode: Mode,
                     request: BonusRequest) -> tuple[list[Candidate], list[ItemResult]]:
    """Who the bonus is for: approved participants of the study, of one HIT, or these assignments."""
    statuses = [int(Status.CREDITED), int(Status.BONUSED)]
    if not request.assignment_ids:
        found = await participants_where(session, mode=mode, statuses=statuses, hit_id=request.hit_id)
        await end_read(session)
        return [Candidate(row.assignment_id, row.worker_id, row.hit_id, row) for row in found], []
    local = await participants_of(session, request.assignment_ids)
    await end_read(session)
    chosen, refused = [], []
    for assignment_id in dict.fromkeys(request.assignment_ids):
        row = local.get(assignment_id)
        if row is not None and row.status in statuses and row.mode == mode:
            chosen.append(Candidate(assignment_id, row.worker_id, row.hit_id, row))
            continue
        if row is not None:
            why = (f"the participant is in {row.mode} mode" if row.mode != mode else
                   f"the participant is {status_name(row.status)}: approve the assignment first")
            refused.append(ItemResult(assignment_id=assignment_id, worker_id=row.worker_id, hit_id=row.hit_id,
                                      uniqueid=row.uniqueid, local_status=status_name(row.status),
                                      outcome="skipped", detail=why))
            continue
        try:
            found = (await mturk.call(mode, "get_assignment", AssignmentId=assignment_id))["Assignment"]
        except MTurkError as exc:
            refused.append(ItemResult(assignment_id=assignment_id, worker_id=None, hit_id=None, outcome="refused",
                                      detail=f"MTurk: {exc.code}: {exc.message}"))
            continue
        if found.get("AssignmentStatus") != "Approved":
            refused.append(ItemResult(assignment_id=assignment_id, worker_id=found.get("WorkerId"),
                                      hit_id=found.get("HITId"), outcome="skipped",
                                      detail=f"it is {found.get('AssignmentStatus')} on MTurk: approve it first"))
            continue
        chosen.append(Candidate(assignment_id, str(found["WorkerId"]), found.get("HITId"), None))
    return chosen, refused


def amount_for(request: BonusRequest, candidate: Candidate) -> Decimal | None:
    if request.amount is not None:
        return parse_money(request.amount)
    if candidate.local is None or not candidate.local.bonus or candidate.local.bonus <= 0:
        return None
    # The bonus column is a float (psiTurk's); round it to the cent the way the fee function does.
    return Decimal(repr(candidate.local.bonus)).quantize(CENT, rounding=ROUND_HALF_UP)


def paid_before(entries: list[LedgerEntry]) -> list[PaidBonus]:
    return [PaidBonus(amount=str(ledger.dollars(e.amount_cents)), state=e.state, reason=e.reason, at=e.created_at)
            for e in entries if e.state in ledger.SPENDING]


def _base_item(candidate: Candidate, entries: list[LedgerEntry], **fields: object) -> ItemResult:
    local = candidate.local
    return ItemResult(assignment_id=candidate.assignment_id, worker_id=candidate.worker_id,
                      hit_id=candidate.hit_id, uniqueid=local.uniqueid if local else None,
                      local_status=status_name(local.status) if local else None, previous=paid_before(entries),
                      **fields)  # type: ignore[arg-type]


def send_request(entry: LedgerEntry | None, *, worker_id: str, assignment_id: str, amount: Decimal,
                 reason: str) -> dict[str, object]:
    return {"operation": "SendBonus", "WorkerId": worker_id, "AssignmentId": assignment_id,
            "BonusAmount": format_money(amount), "Reason": reason,
            "UniqueRequestToken": entry.token if entry is not None and entry.token else TOKEN_SHOWN}


async def bonus(session: AsyncSession, mturk: MTurkClients, *, settings: Settings, mode: Mode,
                request: BonusRequest) -> ActionReport:
    """Pay bonuses (with dry_run: say exactly what would be sent, and send nothing)."""
    reason = (request.reason or "").strip() or settings.bonus_message.strip()
    if not reason:
        raise Refused("reason_missing", "a bonus needs a reason, which the worker reads: pass --reason, or set "
                      "bonus_message under [Shell Parameters]")
    chosen, items = await candidates(session, mturk, mode, request)
    recorded = await ledger.entries_for(session, [c.assignment_id for c in chosen], "bonus")
    await end_read(session)
    by_assignment: dict[str, list[LedgerEntry]] = {}
    for found in recorded:
        by_assignment.setdefault(found.assignment_id, []).append(found)
    to_check: list[tuple[ItemResult, LedgerEntry]] = []
    to_pay: list[tuple[ItemResult, Candidate, Decimal]] = []
    for candidate in chosen:
        entries = by_assignment.get(candidate.assignment_id, [])
        pending = [e for e in entries if e.state == "pending"]
        amount = amount_for(request, candidate)
        if pending:
            earlier = pending[0]
            cost = bonus_cost(ledger.dollars(earlier.amount_cents))
            item = _base_item(candidate, entries, amount=str(cost.to_workers), fee=str(cost.fee),
                              outcome="planned",
                              request=send_request(earlier, worker_id=earlier.worker_id,
                                                   assignment_id=earlier.assignment_id, amount=cost.to_workers,
                                                   reason=earlier.reason or ""),
                              detail="an earlier bonus has no known outcome: it is looked up in MTurk's "
                                     "ListBonusPayments first, and sent (same token) only if MTurk has no record")
            to_check.append((item, earlier))
        elif amount is None:
            item = _base_item(candidate, entries, outcome="skipped",
                              detail="no bonus to pay: the participant's bonus column is 0 (--auto)")
        elif (any(e.state == "done" for e in entries) or (candidate.local and candidate.local.status ==
              Status.BONUSED)) and not request.again:
            item = _base_item(candidate, entries, outcome="skipped",
                              detail="already bonused; pass --again to pay another bonus on purpose")
        else:
            cost = bonus_cost(amount)
            item = _base_item(candidate, entries, amount=str(cost.to_workers), fee=str(cost.fee),
                              outcome="planned",
                              request=send_request(None, worker_id=candidate.worker_id,
                                                   assignment_id=candidate.assignment_id, amount=amount,
                                                   reason=reason))
            to_pay.append((item, candidate, amount))
        items.append(item)

    new_spending = sum((bonus_cost(amount).total for _, _, amount in to_pay), Decimal("0.00"))
    total = sum((Decimal(i.amount) + Decimal(i.fee) for i in items if i.outcome == "planned"), Decimal("0.00"))
    spent = await ledger.spending(session, mode)
    await end_read(session)
    checked_total(request.expect_total, total)
    ledger.check_budget(settings, mode, spent, new_spending)
    if request.dry_run:
        return ActionReport(mode=mode, action="bonus", dry_run=True, total=str(total), items=items,
                            spending=spending_public(settings, mode, spent))

    lease = timedelta(seconds=mturk.call_budget_seconds)
    for item, earlier in to_check:
        await reconcile(session, mturk, mode, earlier, item, lease=lease)
    for item, entry in await record_intents(session, settings, mode, to_pay, reason=reason, again=request.again):
        await send(session, mturk, mode, entry, item)
    sent = sum((Decimal(i.amount) + Decimal(i.fee) for i in items if i.outcome == "sent"), Decimal("0.00"))
    spent = await ledger.spending(session, mode)
    await end_read(session)
    return ActionReport(mode=mode, action="bonus", dry_run=False, total=str(sent), items=items,
                        spending=spending_public(settings, mode, spent))


async def record_intents(session: AsyncSession, settings: Settings, mode: Mode,
                         to_pay: list[tuple[ItemResult, Candidate, Decimal]], *, reason: str,
                         again: bool) -> list[tuple[ItemResult, LedgerEntry]]:
    """Commit one pending ledger row per bonus (claimed by this command) before anything is sent.

    Under the spend lock the ledger is read again: a bonus another command recorded meanwhile is not
    recorded twice, and max_spend is checked against what is recorded now.
    """
    if not to_pay:
        return []
    await begin_write(session, lock=ledger.spend_lock(mode))
    fresh = await ledger.entries_for(session, [c.assignment_id for _, c, _ in to_pay], "bonus")
    statuses = await participants_of(session, [c.assignment_id for _, c, _ in to_pay])
    kept = []
    for item, candidate, amount in to_pay:
        entries = [e for e in fresh if e.assignment_id == candidate.assignment_id]
        local = statuses.get(candidate.assignment_id)
        if any(e.state == "pending" for e in entries):
            item.outcome, item.detail = "skipped", "another command is paying a bonus for it right now"
        elif not again and (any(e.state == "done" for e in entries) or (local and local.status == Status.BONUSED)):
            item.outcome, item.detail = "skipped", "another command just bonused it"
        else:
            kept.append((item, candidate, amount))
    try:
        extra = sum((bonus_cost(amount).total for _, _, amount in kept), Decimal("0.00"))
        ledger.check_budget(settings, mode, await ledger.spending(session, mode), extra)
    except Refused:
        await session.rollback()
        raise
    now = utcnow()
    recorded = []
    for item, candidate, amount in kept:
        entry = ledger.entry(kind="bonus", mode=mode, state="pending", hit_id=candidate.hit_id,
                             assignment_id=candidate.assignment_id, worker_id=candidate.worker_id,
                             uniqueid=candidate.local.uniqueid if candidate.local else None,
                             cost=bonus_cost(amount), reason=reason)
        entry.sending_at, entry.attempts = now, 1
        session.add(entry)
        await session.flush()
        entry.token = ledger.bonus_token(entry)
        item.request = send_request(entry, worker_id=entry.worker_id, assignment_id=entry.assignment_id,
                                    amount=amount, reason=reason)
        recorded.append((item, entry))
    await session.commit()
    return recorded


def is_duplicate(exc: MTurkError, token: str | None) -> bool:
    return exc.code in DUPLICATE_CODES or bool(token and token in exc.message)


async def send(session: AsyncSession, mturk: MTurkClients, mode: Mode, entry: LedgerEntry,
               item: ItemResult) -> None:
    """SendBonus for a claimed pending row, then commit its outcome (and the participant's status)."""
    try:
        await mturk.call(mode, "send_bonus", WorkerId=entry.worker_id, AssignmentId=entry.assignment_id,
                         BonusAmount=format_money(ledger.dollars(entry.amount_cents)), Reason=entry.reason or "",
                         UniqueRequestToken=entry.token)
    except MTurkError as exc:
        if is_duplicate(exc, entry.token):
            await settle(session, entry, "done", note="MTurk already had this bonus (its token was used before)")
            item.outcome, item.detail = "already", "MTurk already had this bonus: paid once"
        else:
            await settle(session, entry, "refused", note=f"{exc.code}: {exc.message}")
            item.outcome, item.detail = "refused", f"MTurk refused: {exc.code}: {exc.message}"
        return
    except MTurkUnavailable as exc:
        await settle(session, entry, "pending", note=f"outcome unknown: {exc.reason}")
        item.outcome = "unknown"
        item.detail = (f"MTurk did not answer ({exc.reason}); the bonus stays recorded as pending: run the same "
                       "command again to check it against MTurk. It will not be paid twice.")
        return
    await settle(session, entry, "done")
    item.outcome, item.detail = "sent", f"paid ${format_money(ledger.dollars(entry.amount_cents))}"


async def settle(session: AsyncSession, entry: LedgerEntry, state: str, *, note: str | None = None,
                 source: str | None = None) -> None:
    """Commit a bonus's outcome; a paid one moves the participant to BONUSED in the same transaction."""
    await begin_write(session)
    values: dict[str, object] = {"state": state, "sending_at": None, "note": note}
    if state != "pending":
        values["settled_at"] = utcnow()
    if source is not None:
        values["source"] = source
    await session.execute(update(LedgerEntry).where(LedgerEntry.id == entry.id).values(**values))  # type: ignore[arg-type]
    if state == "done":
        await ledger.move_participant(session, entry.uniqueid, Status.BONUSED)
    await session.commit()


async def reconcile(session: AsyncSession, mturk: MTurkClients, mode: Mode, entry: LedgerEntry, item: ItemResult,
                    *, lease: timedelta) -> None:
    """Settle a bonus whose outcome is unknown: paid if ListBonusPayments shows it, else sent (same token)."""
    await begin_write(session)
    claimed = await ledger.claim(session, entry.id or 0, lease=lease)
    await session.commit()
    if not claimed:
        item.outcome, item.detail = "skipped", "another command is sending this bonus right now"
        return
    try:
        payments = await mturk.pages(mode, "list_bonus_payments", "BonusPayments",
                                     AssignmentId=entry.assignment_id)
    except (MTurkError, MTurkUnavailable) as exc:
        await settle(session, entry, "pending", note=f"could not check ListBonusPayments: {exc}")
        item.outcome, item.detail = "unknown", f"could not check MTurk's record ({exc}); nothing was sent"
        return
    done = [e for e in await ledger.entries_for(session, [entry.assignment_id], "bonus") if e.state == "done"]
    await end_read(session)
    key = (entry.amount_cents, entry.reason or "")
    on_mturk = Counter((ledger.cents(parse_money(p["BonusAmount"])), p.get("Reason", "")) for p in payments)
    here = Counter((e.amount_cents, e.reason or "") for e in done)
    if on_mturk[key] > here[key]:
        await settle(session, entry, "done", source="mturk",
                     note="found in ListBonusPayments after an unknown outcome")
        item.outcome, item.detail = "already", "MTurk's ListBonusPayments shows it paid: recorded, not sent again"
        return
    await send(session, mturk, mode, entry, item)
