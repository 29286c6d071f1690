"""Assignments: list (bringing local statuses in step with MTurk), approve, reject, unreject.

Each approval or rejection MTurk confirms is written to the ledger in the same transaction that moves the
participant's status. MTurk never approves or rejects an assignment twice, so an approval whose answer was
lost is settled by asking MTurk for the assignment, and repeating a command is always safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..db import begin_write
from ..models import Status
from ..schemas import status_name
from ..settings import Settings
from . import ledger
from .client import Mode, MTurkClients, MTurkError, MTurkUnavailable
from .fees import Cost, assignment_cost, parse_money
from .ledger import end_read
from .schemas import (
    ActionReport,
    AssignmentList,
    AssignmentPublic,
    AssignmentQuery,
    AssignmentSelection,
    ItemResult,
    RejectRequest,
)
from .spec import needs_masters
from .study import Local, checked_total, participants_of, spending_public, study_hits, submitted_count

INVALID_STATE = "AWS.MechanicalTurk.InvalidAssignmentState"
FINISHED_HERE = (int(Status.COMPLETED), int(Status.SUBMITTED))
NO_COST = Cost(to_workers=Decimal("0.00"), fee=Decimal("0.00"), total=Decimal("0.00"))


@dataclass
class Target:
    assignment: dict[str, Any]
    hit: dict[str, Any]
    local: Local | None

    @property
    def assignment_id(self) -> str:
        return str(self.assignment["AssignmentId"])

    @property
    def cost(self) -> Cost:
        """What approving it costs: the HIT's reward plus MTurk's fee at the HIT's rate."""
        return assignment_cost(parse_money(self.hit["Reward"]), assignments=int(self.hit["MaxAssignments"]),
                               masters=needs_masters(self.hit.get("QualificationRequirements", [])))


async def assignments_of_hits(mturk: MTurkClients, mode: Mode, hits: list[dict[str, Any]],
                              statuses: Sequence[str] | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(assignment, HIT) pairs, one ListAssignmentsForHIT listing per HIT."""
    filters = {"AssignmentStatuses": list(statuses)} if statuses else {}
    pairs = []
    for hit in hits:
        for assignment in await mturk.pages(mode, "list_assignments_for_hit", "Assignments", HITId=hit["HITId"],
                                            **filters):
            pairs.append((assignment, hit))
    return pairs


async def targets(session: AsyncSession, mturk: MTurkClients, mode: Mode, selection: AssignmentSelection,
                  statuses: Sequence[str]) -> tuple[list[Target], list[ItemResult]]:
    """The assignments a command acts on, with their HIT and local participant; ids MTurk does not know are
    answered at once."""
    refused: list[ItemResult] = []
    if selection.assignment_ids:
        pairs = []
        for assignment_id in dict.fromkeys(selection.assignment_ids):
            try:
                found = await mturk.call(mode, "get_assignment", AssignmentId=assignment_id)
            except MTurkError as exc:
                refused.append(ItemResult(assignment_id=assignment_id, worker_id=None, hit_id=None,
                                          outcome="refused", detail=f"MTurk: {exc.code}: {exc.message}"))
                continue
            pairs.append((found["Assignment"], found["HIT"]))
    else:
        if selection.all:
            hits = [hit for hit in await study_hits(session, mturk, mode)
                    if list(statuses) != ["Submitted"] or submitted_count(hit) > 0]
        else:
            hits = [(await mturk.call(mode, "get_hit", HITId=selection.hit_id))["HIT"]]
        pairs = await assignments_of_hits(mturk, mode, hits, statuses)
    local = await participants_of(session, [str(a["AssignmentId"]) for a, _ in pairs])
    await end_read(session)
    return [Target(a, h, local.get(str(a["AssignmentId"]))) for a, h in pairs], refused


def item_for(target: Target, *, cost: Cost, outcome: str, detail: str = "",
             request: dict[str, Any] | None = None) -> ItemResult:
    return ItemResult(
        assignment_id=target.assignment_id, worker_id=target.assignment.get("WorkerId"),
        hit_id=target.assignment.get("HITId"), uniqueid=target.local.uniqueid if target.local else None,
        local_status=status_name(target.local.status) if target.local else None, amount=str(cost.to_workers),
        fee=str(cost.fee), request=request, outcome=outcome, detail=detail)  # type: ignore[arg-type]


def planned_total(items: list[ItemResult], outcomes: Sequence[str] = ("planned",)) -> Decimal:
    return sum((Decimal(item.amount) + Decimal(item.fee) for item in items if item.outcome in outcomes),
               Decimal("0.00"))


def _why_not_local(local: Local | None, mode: Mode) -> str | None:
    if local is None:
        return "not in this study's database"
    if local.mode != mode:
        return f"the local participant is in {local.mode} mode"
    if local.status not in FINISHED_HERE:
        return f"the local participant is {status_name(local.status)}, not COMPLETED or SUBMITTED"
    return None


async def record(session: AsyncSession, mode: Mode, target: Target, *, kind: str, cost: Cost,
                 reason: str | None = None, override: bool = False, source: str = "command",
                 note: str | None = None) -> None:
    """Write what MTurk confirmed, and move the participant, in one transaction (once per assignment)."""
    await begin_write(session)
    earlier = await ledger.entries_for(session, [target.assignment_id], kind)
    if any(e.state == "done" and e.override == override for e in earlier):
        await session.commit()  # another command recorded it meanwhile
        return
    session.add(ledger.entry(kind=kind, mode=mode, state="done", hit_id=target.assignment.get("HITId"),
                             assignment_id=target.assignment_id, worker_id=str(target.assignment.get("WorkerId")),
                             uniqueid=target.local.uniqueid if target.local else None, cost=cost, reason=reason,
                             source=source, override=override, note=note))
    if kind == "approve" and target.local is not None:
        await ledger.move_participant(session, target.local.uniqueid, Status.CREDITED)
    await session.commit()


async def _unrecorded(session: AsyncSession, assignment_id: str) -> bool:
    found = await ledger.entries_for(session, [assignment_id], "approve")
    await end_read(session)
    return not found


async def _settled_status(mturk: MTurkClients, mode: Mode, assignment_id: str) -> str | None:
    try:
        found = await mturk.call(mode, "get_assignment", AssignmentId=assignment_id)
    except (MTurkError, MTurkUnavailable):
        return None
    return str(found["Assignment"].get("AssignmentStatus"))


async def _review(session: AsyncSession, mturk: MTurkClients, mode: Mode, item: ItemResult, target: Target, *,
                  kind: str, cost: Cost, reason: str | None = None, override: bool = False) -> None:
    """Send one ApproveAssignment or RejectAssignment and record what came of it in `item`."""
    assert item.request is not None
    params = {key: value for key, value in item.request.items() if key != "operation"}
    operation = "reject_assignment" if kind == "reject" else "approve_assignment"
    goal = "Rejected" if kind == "reject" else "Approved"
    try:
        await mturk.call(mode, operation, **params)
    except MTurkError as exc:
        if exc.code != INVALID_STATE or await _settled_status(mturk, mode, target.assignment_id) != goal:
            item.outcome, item.detail = "refused", f"MTurk refused: {exc.code}: {exc.message}"
            return
        item.outcome, item.detail = "already", f"MTurk had already {goal.lower()} it (an earlier answer was lost)"
    except MTurkUnavailable as exc:
        item.outcome = "unknown"
        item.detail = (f"MTurk did not answer ({exc.reason}); repeat it by assignment id (or run `worker list`) "
                       f"to settle it: MTurk never {'rejects' if kind == 'reject' else 'approves'} an assignment "
                       "twice")
        return
    else:
        item.outcome, item.detail = "sent", goal.lower()
    await record(session, mode, target, kind=kind, cost=cost, reason=reason, override=override)


async def _report(session: AsyncSession, settings: Settings, mode: Mode, action: str, dry_run: bool,
                  items: list[ItemResult]) -> ActionReport:
    spent = await ledger.spending(session, mode)
    await end_read(session)
    outcomes = ("planned",) if dry_run else ("sent",)
    return ActionReport(mode=mode, action=action, dry_run=dry_run, total=str(planned_total(items, outcomes)),  # type: ignore[arg-type]
                        items=items, spending=spending_public(settings, mode, spent))


async def approve(session: AsyncSession, mturk: MTurkClients, *, settings: Settings, mode: Mode,
                  request: AssignmentSelection, override: bool = False) -> ActionReport:
    """Approve submitted assignments (override: approve rejected ones, i.e. unreject).

    With all or hit_id, only assignments whose participant finished here are approved; naming an assignment
    by id approves it whatever the local record says.
    """
    wanted = "Rejected" if override else "Submitted"
    found, items = await targets(session, mturk, mode, request, [wanted])
    planned: list[tuple[ItemResult, Target]] = []
    for target in found:
        cost = target.cost
        state = target.assignment.get("AssignmentStatus")
        why = None if request.assignment_ids or override else _why_not_local(target.local, mode)
        if state == "Approved" and await _unrecorded(session, target.assignment_id):
            # An approval whose answer was lost (or made elsewhere): record it now.
            if not request.dry_run:
                await record(session, mode, target, kind="approve", cost=cost, source="mturk",
                             note="found approved on MTurk")
            items.append(item_for(target, cost=cost, outcome="already", detail="already approved on MTurk: "
                                  "recorded here" + (" when run without --dry-run" if request.dry_run else "")))
        elif state != wanted:
            items.append(item_for(target, cost=NO_COST, outcome="skipped", detail=f"it is {state} on MTurk"))
        elif why is not None:
            items.append(item_for(target, cost=NO_COST, outcome="skipped",
                                  detail=f"{why}; approve it by assignment id to approve it anyway"))
        else:
            item = item_for(target, cost=cost, outcome="planned", request={
                "operation": "ApproveAssignment", "AssignmentId": target.assignment_id,
                "OverrideRejection": override})
            items.append(item)
            planned.append((item, target))
    checked_total(request.expect_total, planned_total(items))
    if not request.dry_run:
        for item, target in planned:
            await _review(session, mturk, mode, item, target, kind="approve", cost=target.cost, override=override)
    return await _report(session, settings, mode, "unreject" if override else "approve", request.dry_run, items)


async def reject(session: AsyncSession, mturk: MTurkClients, *, settings: Settings, mode: Mode,
                 request: RejectRequest) -> ActionReport:
    """Reject submitted assignments of one HIT (that HIT only) or by id; the rejection is recorded."""
    found, items = await targets(session, mturk, mode, request, ["Submitted"])
    planned: list[tuple[ItemResult, Target]] = []
    for target in found:
        state = target.assignment.get("AssignmentStatus")
        if state != "Submitted":
            items.append(item_for(target, cost=NO_COST, outcome="skipped", detail=f"it is {state} on MTurk"))
            continue
        item = item_for(target, cost=NO_COST, outcome="planned", request={
            "operation": "RejectAssignment", "AssignmentId": target.assignment_id,
            "RequesterFeedback": request.reason})
        items.append(item)
        planned.append((item, target))
    if not request.dry_run:
        for item, target in planned:
            await _review(session, mturk, mode, item, target, kind="reject", cost=NO_COST, reason=request.reason)
    return await _report(session, settings, mode, "reject", request.dry_run, items)


async def list_assignments(session: AsyncSession, mturk: MTurkClients, *, mode: Mode, query: AssignmentQuery,
                           sync: bool = False) -> AssignmentList:
    """Submitted, approved and rejected assignments of this study's HITs (or one HIT), from MTurk.

    With `sync`, local records follow what MTurk says: an assignment MTurk approved (auto-approval, another
    tool) makes the participant CREDITED and is written to the ledger; a rejection made elsewhere is recorded.
    """
    hits = [(await mturk.call(mode, "get_hit", HITId=query.hit_id))["HIT"]] if query.hit_id else await study_hits(
        session, mturk, mode)
    pairs = await assignments_of_hits(mturk, mode, hits, [query.status] if query.status else None)
    ids = [str(a["AssignmentId"]) for a, _ in pairs]
    local = await participants_of(session, ids)
    recorded: dict[tuple[str, str], list[Any]] = {}
    for kind in ("approve", "reject", "bonus"):
        for found in await ledger.entries_for(session, ids, kind):
            recorded.setdefault((found.assignment_id, kind), []).append(found)
    await end_read(session)
    rows = []
    for assignment, hit in pairs:
        target = Target(assignment, hit, local.get(str(assignment["AssignmentId"])))
        synced = await _sync(session, mode, target, recorded) if sync else None
        bonuses = [e for e in recorded.get((target.assignment_id, "bonus"), []) if e.state == "done"]
        rows.append(AssignmentPublic(
            assignment_id=target.assignment_id, worker_id=assignment["WorkerId"], hit_id=assignment["HITId"],
            mturk_status=assignment["AssignmentStatus"], accepted_at=assignment.get("AcceptTime"),
            submitted_at=assignment.get("SubmitTime"), uniqueid=target.local.uniqueid if target.local else None,
            local_status=status_name(target.local.status) if target.local else None,
            bonus=target.local.bonus if target.local else None,
            bonuses_paid=str(ledger.dollars(sum(e.amount_cents for e in bonuses))), synced=synced))
    return AssignmentList(mode=mode, assignments=rows)


async def _sync(session: AsyncSession, mode: Mode, target: Target,
                recorded: dict[tuple[str, str], list[Any]]) -> str | None:
    state = target.assignment.get("AssignmentStatus")
    local = target.local
    if state == "Approved" and not recorded.get((target.assignment_id, "approve")):
        await record(session, mode, target, kind="approve", cost=target.cost, source="mturk",
                     note="approved on MTurk (auto-approval or another tool)")
        return "approved on MTurk: recorded" + (", participant CREDITED" if local else "")
    if state == "Rejected" and not recorded.get((target.assignment_id, "reject")):
        await record(session, mode, target, kind="reject", cost=NO_COST, source="mturk",
                     note="rejected on MTurk by another tool")
        return "rejected on MTurk: recorded"
    if state == "Submitted" and local is not None and local.status == Status.COMPLETED:
        await begin_write(session)
        await ledger.move_participant(session, local.uniqueid, Status.SUBMITTED)
        await session.commit()
        return "participant SUBMITTED"
    return None
