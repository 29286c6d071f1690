"""A HIT's whole life against the fake MTurk: create, accept, the experiment through the participant routes,
submit, approve, bonus, expire, delete, with the local records and the ledger checked at each step."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fakes.fixtures import FakeMTurk
from mturk_world import api, fake_settings, ledger, status_of, take_part
from psiturk_async.models import Hit, Status
from psiturk_async.mturk.fees import assignment_cost, bonus_cost, hit_cost
from psiturk_async.settings import Settings


@pytest.fixture
def settings(make_settings: Any, fake_mturk: FakeMTurk) -> Settings:
    return make_settings(**fake_settings(fake_mturk))


async def test_hit_from_creation_to_deletion(app: FastAPI, client: httpx.AsyncClient,
                                             fake_mturk: FakeMTurk) -> None:
    created = await api(client, "POST", "/hits",
                        json={"mode": "sandbox", "assignments": 2, "reward": "1.50", "duration_hours": 0.5})
    hit_id = created["hit_id"]
    assert created["plan"]["total"] == str(hit_cost("1.50", 2).total) == "3.60"
    assert created["worker_url"].startswith("https://workersandbox.mturk.com/projects?")
    async with app.state.sessions() as session:
        assert await session.get(Hit, hit_id) is not None

    first = await take_part(app, fake_mturk, hit_id, "A1FIRSTWORKER01", bonus=0.37)
    second = await take_part(app, fake_mturk, hit_id, "A1SECONDWORKER1")
    assert await status_of(app, "A1FIRSTWORKER01", first) == Status.SUBMITTED

    approved = await api(client, "POST", "/assignments/approve", json={"mode": "sandbox", "all": True})
    assert sorted((i["assignment_id"], i["outcome"]) for i in approved["items"]) == sorted(
        [(first, "sent"), (second, "sent")])
    assert Decimal(approved["total"]) == 2 * assignment_cost("1.50", assignments=2).total
    assert await status_of(app, "A1FIRSTWORKER01", first) == Status.CREDITED

    paid = await api(client, "POST", "/bonuses",
                     json={"mode": "sandbox", "auto": True, "hit_id": hit_id, "reason": "Thanks for your care"})
    outcomes = {i["assignment_id"]: i["outcome"] for i in paid["items"]}
    assert outcomes == {first: "sent", second: "skipped"}  # the second participant earned no bonus
    assert [(b["AssignmentId"], b["BonusAmount"]) for b in fake_mturk.bonuses()] == [(first, "0.37")]
    assert await status_of(app, "A1FIRSTWORKER01", first) == Status.BONUSED
    assert await status_of(app, "A1SECONDWORKER1", second) == Status.CREDITED

    expired = await api(client, "POST", "/hits/expire", json={"mode": "sandbox", "all": True})
    assert [(r["hit_id"], r["outcome"]) for r in expired["results"]] == [(hit_id, "done")]
    deleted = await api(client, "POST", "/hits/delete", json={"mode": "sandbox", "hit_ids": [hit_id]})
    assert [(r["hit_id"], r["outcome"]) for r in deleted["results"]] == [(hit_id, "done")]
    assert (await api(client, "GET", "/hits"))["hits"] == []

    entries = [(e["kind"], e["state"], e["assignment_id"], e["amount_cents"]) for e in await ledger(app)]
    assert sorted(entries) == sorted([("approve", "done", first, 150), ("approve", "done", second, 150),
                                      ("bonus", "done", first, 37)])
    # What the fake charged is what the fee function says.
    spent = 2 * assignment_cost("1.50", assignments=2).total + bonus_cost("0.37").total
    assert fake_mturk.state.balance == Decimal("10000.00") - spent
    balance = await api(client, "GET", "/balance")
    assert balance["available"] == str(Decimal("10000.00") - spent)
    assert Decimal(balance["spending"]["recorded"]) == spent
