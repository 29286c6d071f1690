"""Bonuses against the fake MTurk: paid once under retries, lost answers, old unknown outcomes and two
commands at once; --again, --auto, max_spend, dry runs and MTurk's refusals."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fakes.fixtures import FakeMTurk
from mturk_world import (
    admin,
    api,
    calls_when_answered,
    create_hit,
    fake_settings,
    ledger,
    status_of,
    take_part,
    use_clients,
)
from participant_flow import arrive, browser, running_app
from psiturk_async.models import Status
from psiturk_async.mturk.fees import bonus_cost
from psiturk_async.settings import Settings

SANDBOX = {"mode": "sandbox"}
WORKERS = ("A1WORKER0000001", "A1WORKER0000002")


@pytest.fixture
def settings(make_settings: Any, fake_mturk: FakeMTurk) -> Settings:
    return make_settings(**fake_settings(fake_mturk))


async def approved_hit(app: FastAPI, client: httpx.AsyncClient, fake: FakeMTurk,
                       workers: tuple[str, ...] = WORKERS, bonus: float | None = None) -> tuple[str, list[str]]:
    """A HIT whose workers took part, submitted and were approved: (HIT id, assignment ids)."""
    hit_id = await create_hit(client, assignments=len(workers) + 1, reward="1.00")
    assignments = [await take_part(app, fake, hit_id, worker, bonus=bonus) for worker in workers]
    await api(client, "POST", "/assignments/approve", json=SANDBOX | {"hit_id": hit_id})
    return hit_id, assignments


def bonus_body(**fields: Any) -> dict[str, Any]:
    return SANDBOX | {"amount": "0.50", "reason": "Thank you for your care"} | fields


def paid(fake: FakeMTurk) -> list[tuple[str, str]]:
    return sorted((b["AssignmentId"], b["BonusAmount"]) for b in fake.bonuses())


async def test_a_bonus_is_paid_once_and_marks_the_participant(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id, (first, second) = await approved_hit(app, client, fake_mturk)
    report = await api(client, "POST", "/bonuses", json=bonus_body(all=True))
    assert sorted((i["assignment_id"], i["outcome"]) for i in report["items"]) == sorted(
        [(first, "sent"), (second, "sent")])
    assert Decimal(report["total"]) == 2 * bonus_cost("0.50").total
    assert await status_of(app, WORKERS[0], first) == Status.BONUSED

    repeated = await api(client, "POST", "/bonuses", json=bonus_body(hit_id=hit_id))
    assert {i["outcome"] for i in repeated["items"]} == {"skipped"}
    assert "--again" in repeated["items"][0]["detail"]
    assert paid(fake_mturk) == sorted([(first, "0.50"), (second, "0.50")])
    tokens = [b["UniqueRequestToken"] for b in fake_mturk.bonuses()]
    assert all(t.startswith("psiturk-bonus-") and len(t) <= 64 for t in tokens) and len(set(tokens)) == 2
    entries = [e for e in await ledger(app) if e["kind"] == "bonus"]
    assert {(e["state"], e["token"] in tokens, e["reason"]) for e in entries} == {
        ("done", True, "Thank you for your care")}


async def test_again_pays_on_purpose_and_shows_what_was_paid(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    _, (first, _) = await approved_hit(app, client, fake_mturk)
    await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    planned = await api(client, "POST", "/bonuses",
                        json=bonus_body(assignment_ids=[first], amount="0.25", again=True, dry_run=True))
    [item] = planned["items"]
    assert item["outcome"] == "planned" and [p["amount"] for p in item["previous"]] == ["0.50"]
    await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first], amount="0.25", again=True))
    assert paid(fake_mturk) == [(first, "0.25"), (first, "0.50")]
    assert await status_of(app, WORKERS[0], first) == Status.BONUSED


async def test_a_retry_after_a_lost_answer_pays_once(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    _, (first, _) = await approved_hit(app, client, fake_mturk)
    use_clients(app, settings, read_timeout=0.5, attempts=3)
    fake_mturk.inject("delay_after_commit", operation="SendBonus", seconds=1.5)
    report = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    assert report["items"][0]["outcome"] == "already"  # botocore's retry was told MTurk had it
    assert paid(fake_mturk) == [(first, "0.50")]
    assert [e["state"] for e in await ledger(app) if e["kind"] == "bonus"] == ["done"]
    assert await status_of(app, WORKERS[0], first) == Status.BONUSED


async def test_a_timeout_after_mturk_paid_is_reconciled_not_resent(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    _, (first, _) = await approved_hit(app, client, fake_mturk)
    use_clients(app, settings, read_timeout=0.5, attempts=1)
    fake_mturk.inject("delay_after_commit", operation="SendBonus", seconds=1.5)
    unknown = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    assert unknown["items"][0]["outcome"] == "unknown"
    assert "will not be paid twice" in unknown["items"][0]["detail"]
    [entry] = [e for e in await ledger(app) if e["kind"] == "bonus"]
    assert entry["state"] == "pending" and entry["sending_at"] is None
    assert await status_of(app, WORKERS[0], first) == Status.CREDITED
    spending = (await api(client, "GET", "/balance"))["spending"]
    assert spending["bonuses"] == str(bonus_cost("0.50").total)  # unknown counts until settled

    # A day later MTurk has forgotten the token: only its record of payments can tell.
    fake_mturk.advance_clock(25 * 3600)
    sends = len(await calls_when_answered(fake_mturk, "SendBonus", 1))
    again = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    assert again["items"][0]["outcome"] == "already"
    assert len(fake_mturk.calls("SendBonus")) == sends
    assert [c["request"]["AssignmentId"] for c in fake_mturk.calls("ListBonusPayments")] == [first]
    assert paid(fake_mturk) == [(first, "0.50")]
    assert await status_of(app, WORKERS[0], first) == Status.BONUSED
    assert [e["state"] for e in await ledger(app) if e["kind"] == "bonus"] == ["done"]


async def test_an_unknown_bonus_mturk_never_got_is_sent_with_its_own_token(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    _, (first, _) = await approved_hit(app, client, fake_mturk)
    use_clients(app, settings, attempts=1)
    fake_mturk.inject("service_fault", operation="SendBonus")  # no answer, and MTurk did nothing
    unknown = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    assert unknown["items"][0]["outcome"] == "unknown" and fake_mturk.bonuses() == []
    planned = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first], dry_run=True))
    assert "looked up in MTurk's ListBonusPayments first" in planned["items"][0]["detail"]
    finished = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    assert finished["items"][0]["outcome"] == "sent"
    first_try, second_try = fake_mturk.calls("SendBonus")[-2:]
    assert first_try["request"]["UniqueRequestToken"] == second_try["request"]["UniqueRequestToken"]
    assert paid(fake_mturk) == [(first, "0.50")]


async def test_two_bonus_commands_at_once_pay_each_assignment_once(
        settings: Settings, fake_mturk: FakeMTurk) -> None:
    async with running_app(settings) as one, running_app(settings) as other:  # two server processes
        async with admin(one) as first_client, admin(other) as second_client:
            hit_id, assignments = await approved_hit(one, first_client, fake_mturk,
                                                     workers=(*WORKERS, "A1WORKER0000003"))
            fake_mturk.inject("delay", operation="SendBonus", seconds=0.5, times=2)
            body = bonus_body(hit_id=hit_id)
            reports = await asyncio.gather(api(first_client, "POST", "/bonuses", json=body),
                                           api(second_client, "POST", "/bonuses", json=body))
    assert paid(fake_mturk) == sorted((a, "0.50") for a in assignments)
    outcomes = sorted(i["outcome"] for report in reports for i in report["items"])
    assert outcomes == ["sent"] * 3 + ["skipped"] * 3


async def test_max_spend_refuses_a_bonus_that_would_pass_it(
        make_settings: Any, fake_mturk: FakeMTurk) -> None:
    # The HIT can cost 3 x $1.20 = $3.60; two $0.50 bonuses cost $1.20 more.
    settings = make_settings(**fake_settings(fake_mturk), max_spend="4.50")
    async with running_app(settings) as app, admin(app) as client:
        hit_id, _ = await approved_hit(app, client, fake_mturk)
        refused = await api(client, "POST", "/bonuses", json=bonus_body(hit_id=hit_id), expect=409)
        assert refused["error"] == "max_spend_exceeded" and "$4.50" in refused["detail"]
        assert fake_mturk.calls("SendBonus") == []
        assert [e for e in await ledger(app) if e["kind"] == "bonus"] == []
        fits = await api(client, "POST", "/bonuses", json=bonus_body(hit_id=hit_id, amount="0.20"))
        assert {i["outcome"] for i in fits["items"]} == {"sent"}


async def test_dry_run_prints_the_exact_requests_and_sends_nothing(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id, (first, second) = await approved_hit(app, client, fake_mturk)
    calls = len(fake_mturk.calls())
    planned = await api(client, "POST", "/bonuses", json=bonus_body(hit_id=hit_id, dry_run=True))
    assert len(fake_mturk.calls()) == calls
    assert [e for e in await ledger(app) if e["kind"] == "bonus"] == []
    requests = {i["assignment_id"]: i["request"] for i in planned["items"]}
    assert requests[first] | {"UniqueRequestToken": None} == {
        "operation": "SendBonus", "WorkerId": WORKERS[0], "AssignmentId": first, "BonusAmount": "0.50",
        "Reason": "Thank you for your care", "UniqueRequestToken": None}
    assert planned["total"] == str(2 * bonus_cost("0.50").total) and planned["dry_run"] is True


async def test_a_changed_total_is_refused(app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id, _ = await approved_hit(app, client, fake_mturk)
    refused = await api(client, "POST", "/bonuses", json=bonus_body(hit_id=hit_id, expect_total="0.60"),
                        expect=409)
    assert refused["error"] == "plan_changed" and fake_mturk.calls("SendBonus") == []


async def test_auto_pays_each_participants_own_bonus_rounded_to_the_cent(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id, (first, second) = await approved_hit(app, client, fake_mturk, bonus=0.125)
    report = await api(client, "POST", "/bonuses", json=SANDBOX | {"auto": True, "hit_id": hit_id, "reason": "r"})
    assert {i["amount"] for i in report["items"]} == {"0.13"}
    assert paid(fake_mturk) == sorted([(first, "0.13"), (second, "0.13")])


async def test_the_reason_falls_back_on_bonus_message(make_settings: Any, fake_mturk: FakeMTurk) -> None:
    settings = make_settings(**fake_settings(fake_mturk), bonus_message="Thanks from the lab")
    async with running_app(settings) as app, admin(app) as client:
        hit_id, (first, _) = await approved_hit(app, client, fake_mturk)
        await api(client, "POST", "/bonuses", json=SANDBOX | {"amount": "0.10", "assignment_ids": [first]})
    assert fake_mturk.bonuses()[0]["Reason"] == "Thanks from the lab"


async def test_no_reason_at_all_is_refused(client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    refused = await api(client, "POST", "/bonuses", json=SANDBOX | {"amount": "1.00", "all": True}, expect=422)
    assert refused["error"] == "reason_missing" and fake_mturk.calls() == []


async def test_mturks_refusal_is_recorded_and_frees_the_budget(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    _, (first, _) = await approved_hit(app, client, fake_mturk)
    fake_mturk.set_balance("0.10")
    report = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first]))
    [item] = report["items"]
    assert item["outcome"] == "refused" and "InsufficientFunds" in item["detail"]
    assert [e["state"] for e in await ledger(app) if e["kind"] == "bonus"] == ["refused"]
    assert (await api(client, "GET", "/balance"))["spending"]["bonuses"] == "0.00"
    assert await status_of(app, WORKERS[0], first) == Status.CREDITED
    fake_mturk.set_balance("100.00")
    assert (await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first])))["items"][0][
        "outcome"] == "sent"


async def test_unapproved_work_is_not_bonused(app: FastAPI, client: httpx.AsyncClient,
                                              fake_mturk: FakeMTurk) -> None:
    hit_id = await create_hit(client, assignments=2)
    submitted = await take_part(app, fake_mturk, hit_id, WORKERS[0])
    report = await api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[submitted, "NOSUCHASSIGNMENT"]))
    outcomes = {i["assignment_id"]: (i["outcome"], i["detail"]) for i in report["items"]}
    assert outcomes[submitted] == ("skipped", "the participant is SUBMITTED: approve the assignment first")
    assert outcomes["NOSUCHASSIGNMENT"][0] == "refused"
    assert fake_mturk.calls("SendBonus") == []


async def test_a_slow_mturk_never_holds_up_participants(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id, (first, _) = await approved_hit(app, client, fake_mturk)
    fake_mturk.inject("delay", operation="SendBonus", seconds=3)
    paying = asyncio.create_task(api(client, "POST", "/bonuses", json=bonus_body(assignment_ids=[first])))
    await asyncio.sleep(1)  # the intent is committed; the bonus is waiting on MTurk
    started = time.monotonic()
    async with browser(app) as http:  # a new participant arrives and saves: both write to the database
        uid = await arrive(http, worker="A1NEWWORKER0001", assignment="NEWASSIGNMENT1", hit=hit_id, mode="sandbox")
        saved = await http.put(f"/sync/{uid}", json={"data": [], "eventdata": [], "questiondata": {"q": 1}})
    assert saved.status_code == 200 and time.monotonic() - started < 1.5
    assert not paying.done()
    assert (await paying)["items"][0]["outcome"] == "sent"
