"""Approve, reject, unreject and the worker listing against the fake MTurk: --hit means that HIT only, the
ledger and the participant's status move together, and local records follow what MTurk did."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fakes.fixtures import FakeMTurk
from mturk_world import api, create_hit, fake_settings, ledger, status_of, take_part, use_clients
from participant_flow import set_row
from psiturk_async.models import Status
from psiturk_async.mturk.fees import assignment_cost
from psiturk_async.settings import Settings

SANDBOX = {"mode": "sandbox"}


@pytest.fixture
def settings(make_settings: Any, fake_mturk: FakeMTurk) -> Settings:
    return make_settings(**fake_settings(fake_mturk))


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {item["assignment_id"]: item["outcome"] for item in report["items"]}


async def test_approve_all_approves_only_work_finished_here(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id = await create_hit(client, assignments=4, reward="0.80")
    done = await take_part(app, fake_mturk, hit_id, "A1DONE000000001")
    quitter = await take_part(app, fake_mturk, hit_id, "A1QUIT000000001")
    await set_row(app, f"A1QUIT000000001:{quitter}", status=int(Status.QUITEARLY))
    stranger = fake_mturk.accept(hit_id, "A1STRANGER00001")  # submitted on MTurk, never reached the server
    fake_mturk.submit(stranger)

    planned = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"all": True, "dry_run": True})
    assert outcomes(planned) == {done: "planned", quitter: "skipped", stranger: "skipped"}
    assert fake_mturk.calls("ApproveAssignment") == []
    report = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"all": True})
    assert outcomes(report) == {done: "sent", quitter: "skipped", stranger: "skipped"}
    details = {item["assignment_id"]: item["detail"] for item in report["items"]}
    assert "QUITEARLY" in details[quitter] and "not in this study's database" in details[stranger]
    assert report["total"] == str(assignment_cost("0.80", assignments=4).total)
    assert await status_of(app, "A1DONE000000001", done) == Status.CREDITED

    # Named by id, it is approved whatever the local record says.
    by_id = await api(client, "POST", "/assignments/approve",
                      json=SANDBOX | {"assignment_ids": [stranger, quitter]})
    assert outcomes(by_id) == {stranger: "sent", quitter: "sent"}
    assert await status_of(app, "A1QUIT000000001", quitter) == Status.QUITEARLY  # not a legal move to CREDITED
    entries = [(e["kind"], e["assignment_id"], e["uniqueid"]) for e in await ledger(app)]
    assert ("approve", stranger, None) in entries and len(entries) == 3


async def test_hit_means_that_hit_only(app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    first_hit, second_hit = await create_hit(client), await create_hit(client)
    first = await take_part(app, fake_mturk, first_hit, "A1WORKER0000001")
    second = await take_part(app, fake_mturk, second_hit, "A1WORKER0000002")
    rejected = await api(client, "POST", "/assignments/reject",
                         json=SANDBOX | {"hit_id": first_hit, "reason": "The answers were empty."})
    assert outcomes(rejected) == {first: "sent"}
    assert fake_mturk.state.assignments[second].status == "Submitted"
    assert fake_mturk.state.assignments[first].feedback == "The answers were empty."
    approved = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"hit_id": second_hit})
    assert outcomes(approved) == {second: "sent"}


async def test_rejection_is_recorded_and_unreject_approves_after_all(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id = await create_hit(client, reward="1.00")
    assignment = await take_part(app, fake_mturk, hit_id, "A1WORKER0000001")
    await api(client, "POST", "/assignments/reject",
              json=SANDBOX | {"assignment_ids": [assignment], "reason": "r"})
    [entry] = await ledger(app)
    assert (entry["kind"], entry["state"], entry["reason"], entry["amount_cents"]) == ("reject", "done", "r", 0)
    assert await status_of(app, "A1WORKER0000001", assignment) == Status.SUBMITTED  # psiTurk has no REJECTED
    again = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"hit_id": hit_id})
    assert again["items"] == []  # nothing submitted is left on that HIT

    planned = await api(client, "POST", "/assignments/unreject",
                        json=SANDBOX | {"hit_id": hit_id, "dry_run": True})
    assert planned["items"][0]["request"] == {"operation": "ApproveAssignment", "AssignmentId": assignment,
                                              "OverrideRejection": True}
    await api(client, "POST", "/assignments/unreject", json=SANDBOX | {"hit_id": hit_id})
    assert fake_mturk.state.assignments[assignment].status == "Approved"
    assert await status_of(app, "A1WORKER0000001", assignment) == Status.CREDITED
    assert [(e["kind"], e["override"]) for e in await ledger(app)] == [("reject", False), ("approve", True)]


async def test_an_approval_whose_answer_was_lost_is_settled_not_repeated(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id = await create_hit(client)
    first = await take_part(app, fake_mturk, hit_id, "A1WORKER0000001")
    second = await take_part(app, fake_mturk, hit_id, "A1WORKER0000002")
    use_clients(app, settings, read_timeout=0.5, attempts=2)
    fake_mturk.inject("delay_after_commit", operation="ApproveAssignment", seconds=1.5)
    retried = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"assignment_ids": [first]})
    assert outcomes(retried) == {first: "already"}  # the retry was refused; MTurk says it is approved
    assert await status_of(app, "A1WORKER0000001", first) == Status.CREDITED

    use_clients(app, settings, read_timeout=0.5, attempts=1)
    fake_mturk.inject("delay_after_commit", operation="ApproveAssignment", seconds=1.5)
    lost = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"assignment_ids": [second]})
    assert outcomes(lost) == {second: "unknown"}
    assert await status_of(app, "A1WORKER0000002", second) == Status.SUBMITTED
    repeated = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"assignment_ids": [second]})
    assert outcomes(repeated) == {second: "already"}
    assert await status_of(app, "A1WORKER0000002", second) == Status.CREDITED
    assert sorted(e["assignment_id"] for e in await ledger(app)) == sorted([first, second])
    approvals = fake_mturk.state.balance
    assert approvals == Decimal("10000.00") - 2 * assignment_cost("1.00", assignments=3).total


async def test_worker_list_brings_local_records_in_step_with_mturk(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    old_hit = await create_hit(client, reward="0.50")
    auto = await take_part(app, fake_mturk, old_hit, "A1AUTO000000001")
    fake_mturk.advance_clock(30 * 24 * 3600 + 60)  # MTurk auto-approves after 30 days
    hit_id = await create_hit(client, reward="0.50")
    waiting = await take_part(app, fake_mturk, hit_id, "A1WAIT000000001", submit=False)
    fake_mturk.submit(waiting)  # submitted on MTurk; the server only saw /complete
    assert await status_of(app, "A1WAIT000000001", waiting) == Status.COMPLETED

    plain = await api(client, "GET", "/assignments")
    assert {row["synced"] for row in plain["assignments"]} == {None} and await ledger(app) == []
    listed = await api(client, "POST", "/assignments/sync", json={})
    rows = {row["assignment_id"]: row for row in listed["assignments"]}
    assert rows[auto]["mturk_status"] == "Approved" and rows[auto]["synced"].startswith("approved on MTurk")
    assert rows[waiting]["synced"] == "participant SUBMITTED"
    assert await status_of(app, "A1AUTO000000001", auto) == Status.CREDITED
    assert await status_of(app, "A1WAIT000000001", waiting) == Status.SUBMITTED
    [entry] = await ledger(app)
    assert (entry["kind"], entry["source"], entry["assignment_id"]) == ("approve", "mturk", auto)

    again = await api(client, "POST", "/assignments/sync", json={})
    assert {row["synced"] for row in again["assignments"]} == {None}  # in step: nothing more to do
    assert len(await ledger(app)) == 1
    only = await api(client, "GET", "/assignments", params={"status": "Submitted", "hit_id": hit_id})
    assert [row["assignment_id"] for row in only["assignments"]] == [waiting]


async def test_unreject_of_all_is_refused(client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    refused = await api(client, "POST", "/assignments/unreject", json=SANDBOX | {"all": True}, expect=422)
    assert "never all" in refused["detail"]
    refused = await api(client, "POST", "/assignments/approve", json=SANDBOX | {"all": True, "hit_id": "X"},
                        expect=422)
    assert refused["error"] == "invalid_request" and fake_mturk.calls() == []
