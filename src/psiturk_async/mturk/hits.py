"""HITs: create (budget reserved before MTurk is asked), extend, expire, delete, list; balance; qualifications.

No database transaction is open while MTurk is called: each unit of work commits before the call and
settles after it, so a slow MTurk never holds up a participant's save.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import begin_write
from ..models import Hit, utcnow
from ..settings import Settings
from . import ledger, spec
from .client import Mode, MTurkClients, MTurkError, MTurkUnavailable
from .fees import assignment_cost, hit_cost, parse_money
from .ledger import end_read
from .models import MTurkHit
from .schemas import (
    Balance,
    HitActionResult,
    HitActions,
    HitCreate,
    HitCreated,
    HitExtend,
    HitExtension,
    HitList,
    HitPlan,
    HitQuery,
    HitSelection,
    QualificationList,
    QualificationPublic,
)
from .study import (
    HIT_STATUSES_REVIEWABLE,
    checked_total,
    hit_public,
    is_expired,
    spending_public,
    study_hit_ids,
    study_hits,
    submitted_count,
)

HIT_ID = re.compile(r"\b[A-Z0-9]{20,64}\b")
HIT_EXISTS = "AWS.MechanicalTurk.HitAlreadyExists"
HIT_MISSING = "AWS.MechanicalTurk.HITDoesNotExist"
DUPLICATE = "AWS.MechanicalTurk.DuplicateRequest"
WORKER_SITES = {"sandbox": "https://workersandbox.mturk.com", "live": "https://worker.mturk.com"}
EXPIRE_AT_OFFSET = timedelta(days=30)  # psiTurk's "expire now": an ExpireAt well in the past
PENDING_TOKEN = "<assigned when sent>"


async def balance(session: AsyncSession, mturk: MTurkClients, *, settings: Settings, mode: Mode) -> Balance:
    """MTurk's account balance, with the study's recorded spending."""
    spent = await ledger.spending(session, mode)
    await end_read(session)
    answer = await mturk.call(mode, "get_account_balance")
    return Balance(mode=mode, available=answer.get("AvailableBalance", "0.00"),
                   on_hold=answer.get("OnHoldBalance"),
                   spending=spending_public(settings, mode, spent))


async def create_hit(session: AsyncSession, mturk: MTurkClients, *, settings: Settings, mode: Mode,
                     request: HitCreate) -> HitCreated:
    """Create a HIT as configured (or, with dry_run, only say exactly what would be sent)."""
    reward = spec.checked_reward(request.reward)
    requirements = spec.qualification_requirements(settings, mode, require_ids=request.require_qualification_ids,
                                                   block_ids=request.block_qualification_ids)
    ad = spec.public_ad_url(settings, mode)
    url = spec.external_url(ad, mode)
    type_request = spec.hit_type_request(settings, reward=reward, duration_hours=request.duration_hours,
                                         requirements=requirements)
    masters = spec.needs_masters(requirements)
    cost = hit_cost(reward, request.assignments, masters=masters)
    question = spec.external_question(url)
    shown = spec.hit_request(settings, question=question, assignments=request.assignments, token=None)
    spent = await ledger.spending(session, mode)
    await end_read(session)
    checked_total(request.expect_total, cost.total)
    ledger.check_budget(settings, mode, spent, cost.total)
    plan = HitPlan(
        mode=mode, ad_url=ad, external_url=url, assignments=request.assignments, reward=str(reward),
        duration_hours=request.duration_hours, lifetime_hours=settings.lifetime, masters=masters,
        fee=str(cost.fee), total=str(cost.total), spending=spending_public(settings, mode, spent),
        requests=[{"operation": "CreateHITType", **type_request},
                  {"operation": "CreateHITWithHITType", "HITTypeId": "<from CreateHITType>", **shown,
                   "UniqueRequestToken": PENDING_TOKEN, "RequesterAnnotation": PENDING_TOKEN}])
    if request.dry_run:
        return HitCreated(plan=plan, dry_run=True)

    token = "psiturk-hit-" + secrets.token_hex(16)
    await begin_write(session, lock=ledger.spend_lock(mode))
    try:
        ledger.check_budget(settings, mode, await ledger.spending(session, mode), cost.total)
    except spec.Refused:
        await session.rollback()
        raise
    row = MTurkHit(token=token, mode=mode, state="creating", title=settings.title,
                   reward_cents=ledger.cents(reward),
                   max_assignments=request.assignments, masters=masters)
    session.add(row)
    await session.commit()

    try:
        type_id = (await mturk.call(mode, "create_hit_type", **type_request))["HITTypeId"]
    except Exception as exc:
        await _settle_hit(session, row.id, state="failed", error=str(exc))  # no HIT without a type
        raise
    try:
        created = await mturk.call(mode, "create_hit_with_hit_type", HITTypeId=type_id,
                                   **spec.hit_request(settings, question=question, assignments=request.assignments,
                                                      token=token))
        hit_id = created["HIT"]["HITId"]
    except MTurkError as exc:
        # A retry whose first attempt did create the HIT: MTurk names it in the message.
        found = HIT_ID.search(exc.message) if exc.code == HIT_EXISTS else None
        if found is None:
            await _settle_hit(session, row.id, state="failed", error=str(exc))
            raise
        hit_id = found.group(0)
    await _settle_hit(session, row.id, state="created", hit_id=hit_id)
    site = WORKER_SITES[mode]
    return HitCreated(plan=plan, dry_run=False, hit_id=hit_id,
                      worker_url=f"{site}/projects?filters%5Bsearch_term%5D={quote(settings.title, safe='')}")


async def _settle_hit(session: AsyncSession, row_id: int | None, *, state: str, hit_id: str | None = None,
                      error: str | None = None) -> None:
    await begin_write(session)
    row = await session.get(MTurkHit, row_id)
    assert row is not None
    row.state, row.hit_id, row.error, row.settled_at = state, hit_id, error, utcnow()
    if hit_id is not None and await session.get(Hit, hit_id) is None:
        session.add(Hit(hitid=hit_id))
    await session.commit()


async def list_hits(session: AsyncSession, mturk: MTurkClients, *, mode: Mode, query: HitQuery,
                    learn_within: timedelta | None = None) -> HitList:
    """HITs of this study (or every HIT of the account), as MTurk lists them.

    With `learn_within` (the lease of calls in flight), it also records what the listing shows: HITs whose
    creation had no answer, and assignments nobody took before a HIT expired.
    """
    hits = await mturk.pages(mode, "list_hits", "HITs")
    if learn_within is not None:
        await _learn(session, mode, hits, lease=learn_within)
    ours = await study_hit_ids(session)
    await end_read(session)
    shown = [
        hit_public(hit, this_study=hit["HITId"] in ours) for hit in hits
        if (query.all_studies or hit["HITId"] in ours)
        and (not query.active or not is_expired(hit))
        and (not query.reviewable or hit.get("HITStatus") in HIT_STATUSES_REVIEWABLE)
    ]
    return HitList(mode=mode, hits=shown)


async def _learn(session: AsyncSession, mode: Mode, hits: list[dict[str, Any]], *, lease: timedelta) -> None:
    """Settle HITs whose creation had no answer (found by their annotation), and release never-taken slots."""
    await begin_write(session, lock=ledger.spend_lock(mode))
    rows = list((await session.scalars(select(MTurkHit).where(
        MTurkHit.mode == mode, MTurkHit.state.in_(ledger.HOLDING)))).all())  # type: ignore[attr-defined]
    by_token = {row.token: row for row in rows}
    by_id = {row.hit_id: row for row in rows if row.hit_id}
    listed = set()
    for hit in hits:
        row = by_id.get(hit["HITId"]) or by_token.get(hit.get("RequesterAnnotation", ""))
        if row is None:
            continue
        listed.add(row.token)
        if row.state == "creating":
            row.state, row.hit_id, row.settled_at = "created", hit["HITId"], utcnow()
            if await session.get(Hit, hit["HITId"]) is None:
                session.add(Hit(hitid=hit["HITId"]))
        if is_expired(hit):
            row.released = int(hit.get("NumberOfAssignmentsAvailable", 0))
    for row in rows:
        # Not listed well after the attempt: MTurk never created it (deleted HITs are settled already).
        if row.state == "creating" and row.token not in listed and row.created_at < utcnow() - lease:
            row.state, row.settled_at, row.error = "failed", utcnow(), "not found on MTurk after the attempt"
    await session.commit()


def extension_token(hit_id: str, new_max: int) -> str:
    """One token per target size: repeating an extension that had no answer cannot add twice."""
    return "psiturk-extend-" + hashlib.sha256(f"{hit_id}:{new_max}".encode()).hexdigest()[:40]


async def extend_hit(session: AsyncSession, mturk: MTurkClients, *, settings: Settings, mode: Mode, hit_id: str,
                     request: HitExtend) -> HitExtension:
    """Add assignments and/or time to a HIT; what may be paid more is checked against max_spend first."""
    hit = (await mturk.call(mode, "get_hit", HITId=hit_id))["HIT"]
    old_max = int(hit["MaxAssignments"])
    added = request.assignments or 0
    new_max = old_max + added
    if added and old_max < 10 <= new_max:
        raise spec.Refused("extension_crosses_ten", f"HIT {hit_id} has {old_max} assignments: MTurk does not "
                           "let a HIT of fewer than 10 grow to 10 or more (the fee rises); create another HIT "
                           "instead")
    now = datetime.now(UTC)
    expires_at = hit.get("Expiration")
    reopen = request.minutes is not None and is_expired(hit, now)
    if request.minutes is not None:
        expires_at = max(expires_at or now, now) + timedelta(minutes=request.minutes)
    row = await ledger.study_hit(session, hit_id)
    reward = parse_money(hit["Reward"])
    masters = row.masters if row is not None else spec.needs_masters(hit.get("QualificationRequirements", []))
    one = assignment_cost(reward, assignments=new_max, masters=masters)
    released = (row.released if row is not None else 0) if reopen else 0
    extra = one.total * (added + released)
    requests: list[dict[str, Any]] = []
    if added:
        requests.append({"operation": "CreateAdditionalAssignmentsForHIT", "HITId": hit_id,
                         "NumberOfAdditionalAssignments": added,
                         "UniqueRequestToken": extension_token(hit_id, new_max)})
    if request.minutes is not None:
        requests.append({"operation": "UpdateExpirationForHIT", "HITId": hit_id, "ExpireAt": expires_at})
    spent = await ledger.spending(session, mode)
    await end_read(session)
    checked_total(request.expect_total, extra)
    ledger.check_budget(settings, mode, spent, extra)
    answer = HitExtension(mode=mode, hit_id=hit_id, dry_run=request.dry_run, max_assignments=new_max,
                          expires_at=expires_at, fee=str(one.fee * (added + released)), total=str(extra),
                          requests=requests, spending=spending_public(settings, mode, spent))
    if request.dry_run:
        return answer

    if row is not None and (added or released):
        await begin_write(session, lock=ledger.spend_lock(mode))
        try:
            ledger.check_budget(settings, mode, await ledger.spending(session, mode), extra)
        except spec.Refused:
            await session.rollback()
            raise
        fresh = await session.get(MTurkHit, row.id)
        assert fresh is not None
        fresh.max_assignments, fresh.released = new_max, 0 if reopen else fresh.released
        await session.commit()
    if added:
        try:
            await mturk.call(mode, "create_additional_assignments_for_hit", HITId=hit_id,
                             NumberOfAdditionalAssignments=added,
                             UniqueRequestToken=extension_token(hit_id, new_max))
        except MTurkError as exc:
            if exc.code != DUPLICATE:
                if row is not None:
                    await _undo_extension(session, row.id, old_max=old_max, released=row.released)
                raise
    if request.minutes is not None:
        await mturk.call(mode, "update_expiration_for_hit", HITId=hit_id, ExpireAt=expires_at)
    answer.spending = spending_public(settings, mode, await ledger.spending(session, mode))
    await end_read(session)
    return answer


async def _undo_extension(session: AsyncSession, row_id: int | None, *, old_max: int, released: int) -> None:
    await begin_write(session)
    row = await session.get(MTurkHit, row_id)
    assert row is not None
    row.max_assignments, row.released = old_max, released
    await session.commit()


async def _targets(session: AsyncSession, mturk: MTurkClients, mode: Mode, selection: HitSelection,
                   wanted: Any) -> list[dict[str, Any]]:
    if selection.all:
        return [hit for hit in await study_hits(session, mturk, mode) if wanted(hit)]
    return [{"HITId": hit_id} for hit_id in selection.hit_ids]


async def expire_hits(session: AsyncSession, mturk: MTurkClients, *, mode: Mode,
                      selection: HitSelection) -> HitActions:
    """Expire HITs now (--all: this study's unexpired ones); the never-taken slots stop counting as spending."""
    targets = await _targets(session, mturk, mode, selection, lambda hit: not is_expired(hit))
    expire_at = datetime.now(UTC) - EXPIRE_AT_OFFSET
    results = []
    for target in targets:
        hit_id = target["HITId"]
        if selection.dry_run:
            results.append(HitActionResult(hit_id=hit_id, outcome="planned", detail=str(
                {"operation": "UpdateExpirationForHIT", "HITId": hit_id, "ExpireAt": expire_at.isoformat()})))
            continue
        try:
            await mturk.call(mode, "update_expiration_for_hit", HITId=hit_id, ExpireAt=expire_at)
            hit = (await mturk.call(mode, "get_hit", HITId=hit_id))["HIT"]
        except MTurkError as exc:
            results.append(HitActionResult(hit_id=hit_id, outcome="refused", detail=_refusal(exc, mode)))
            continue
        except MTurkUnavailable as exc:
            results.append(HitActionResult(hit_id=hit_id, outcome="unknown", detail=f"no answer ({exc.reason}); "
                                           "expiring is safe to repeat"))
            continue
        await _release(session, mode, hit)
        results.append(HitActionResult(hit_id=hit_id, outcome="done", detail="expired"))
    return HitActions(mode=mode, action="expire", dry_run=selection.dry_run, results=results)


async def _release(session: AsyncSession, mode: Mode, hit: dict[str, Any], *, deleted: bool = False) -> None:
    await begin_write(session, lock=ledger.spend_lock(mode))
    row = await ledger.study_hit(session, hit["HITId"])
    if row is not None:
        row.released = int(hit.get("NumberOfAssignmentsAvailable", 0))
        if deleted:
            row.deleted_at = utcnow()
    await session.commit()


def _refusal(exc: MTurkError, mode: Mode) -> str:
    if exc.code == HIT_MISSING:
        return f"MTurk has no such HIT in {mode} mode ({exc.message})"
    return f"MTurk refused: {exc.code}: {exc.message}"


async def delete_hits(session: AsyncSession, mturk: MTurkClients, *, mode: Mode,
                      selection: HitSelection) -> HitActions:
    """Delete reviewable HITs whose every submission was approved or rejected (--all: all such of this study)."""
    def deletable(hit: dict[str, Any]) -> bool:
        return hit.get("HITStatus") == "Reviewable" and submitted_count(hit) == 0

    targets = await _targets(session, mturk, mode, selection, deletable)
    results = []
    for target in targets:
        hit_id = target["HITId"]
        try:
            hit = target if selection.all else (await mturk.call(mode, "get_hit", HITId=hit_id))["HIT"]
        except MTurkError as exc:
            results.append(HitActionResult(hit_id=hit_id, outcome="refused", detail=_refusal(exc, mode)))
            continue
        except MTurkUnavailable as exc:
            results.append(HitActionResult(hit_id=hit_id, outcome="unknown", detail=f"no answer ({exc.reason})"))
            continue
        if not deletable(hit):
            waiting = submitted_count(hit)
            reasons = []
            if hit.get("HITStatus") != "Reviewable":
                reasons.append(f"it is {hit.get('HITStatus')}: expire it first (hit expire {hit_id}) and wait for "
                               "workers still on it")
            if waiting:
                reasons.append(f"{waiting} submitted assignment(s) await review: approve or reject them first "
                               f"(worker list --submitted --hit {hit_id})")
            why = "; ".join(reasons)
            results.append(HitActionResult(hit_id=hit_id, outcome="refused", detail=f"cannot delete yet: {why}"))
            continue
        if selection.dry_run:
            results.append(HitActionResult(hit_id=hit_id, outcome="planned",
                                           detail=str({"operation": "DeleteHIT", "HITId": hit_id})))
            continue
        try:
            await mturk.call(mode, "delete_hit", HITId=hit_id)
        except MTurkError as exc:
            outcome = "already" if exc.code == HIT_MISSING else "refused"
            results.append(HitActionResult(hit_id=hit_id, outcome=outcome, detail=_refusal(exc, mode)))
            continue
        except MTurkUnavailable as exc:
            results.append(HitActionResult(hit_id=hit_id, outcome="unknown", detail=f"no answer ({exc.reason}); "
                                           "deleting is safe to repeat"))
            continue
        await _release(session, mode, hit, deleted=True)
        results.append(HitActionResult(hit_id=hit_id, outcome="done", detail="deleted"))
    return HitActions(mode=mode, action="delete", dry_run=selection.dry_run, results=results)


async def list_qualifications(mturk: MTurkClients, *, mode: Mode) -> QualificationList:
    """The qualification types this requester owns."""
    found = await mturk.pages(mode, "list_qualification_types", "QualificationTypes", MustBeRequestable=False,
                              MustBeOwnedByCaller=True)
    return QualificationList(mode=mode, qualification_types=[
        QualificationPublic(qualification_type_id=item["QualificationTypeId"], name=item.get("Name", ""),
                            description=item.get("Description"), status=item.get("QualificationTypeStatus"),
                            created_at=item.get("CreationTime"))
        for item in found])
