"""Helpers for the MTurk tests: a project pointed at the fake MTurk, the admin API, and participants who
take a HIT through the real participant routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from admin_data import AUTH, TOKEN
from fakes.fixtures import ACCESS_KEY, SECRET_KEY, FakeMTurk
from participant_flow import browser, row
from psiturk_async.mturk.client import MTurkClients
from psiturk_async.settings import Settings

AD_DOMAIN = "example.org"


def fake_settings(fake: FakeMTurk) -> dict[str, Any]:
    """make_settings overrides for a project that reaches the fake MTurk."""
    return {"admin_token": TOKEN, "mturk_endpoint_url": fake.url, "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY, "ad_url_domain": AD_DOMAIN}


def use_clients(app: FastAPI, settings: Settings, **options: Any) -> MTurkClients:
    """Swap the app's MTurk clients for ones with other timeouts or retries (before first use)."""
    app.state.mturk = MTurkClients(settings, **options)
    return app.state.mturk


async def api(client: httpx.AsyncClient, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
    response = await client.request(method, f"/api/mturk{path}", headers=AUTH, **kwargs)
    assert response.status_code == expect, response.text
    return response.json()


async def create_hit(client: httpx.AsyncClient, *, assignments: int = 3, reward: str = "1.00",
                     duration_hours: float = 1.0, mode: str = "sandbox", **extra: Any) -> str:
    body = {"mode": mode, "assignments": assignments, "reward": reward, "duration_hours": duration_hours} | extra
    created = await api(client, "POST", "/hits", json=body)
    return str(created["hit_id"])


async def take_part(app: FastAPI, fake: FakeMTurk, hit_id: str, worker_id: str, *, submit: bool = True,
                    bonus: float | None = None, mode: str = "sandbox") -> str:
    """A worker accepts on MTurk, does the experiment through the participant routes, and submits."""
    assignment_id = fake.accept(hit_id, worker_id)
    ids = {"hitId": hit_id, "assignmentId": assignment_id, "workerId": worker_id, "mode": mode}
    uid = f"{worker_id}:{assignment_id}"
    async with browser(app) as http:
        assert (await http.get("/exp", params=ids)).status_code == 200
        started = await http.post("/inexp", data={"uniqueId": uid})
        assert started.status_code == 200, started.text
        saved = await http.put(f"/sync/{uid}", json={"data": [], "questiondata": {}, "eventdata": []})
        assert saved.status_code == 200, saved.text
        if bonus is not None:
            await set_bonus(app, uid, bonus)
        assert (await http.get("/complete", params={"uniqueId": uid, "mode": mode})).status_code == 200
        if submit:
            assert (await http.get("/worker_submitted", params={"uniqueId": uid})).status_code == 200
    if submit:
        fake.submit(assignment_id)
    return assignment_id


async def set_bonus(app: FastAPI, uid: str, bonus: float) -> None:
    from participant_flow import set_row

    await set_row(app, uid, bonus=bonus)


async def status_of(app: FastAPI, worker_id: str, assignment_id: str) -> int:
    found = await row(app, f"{worker_id}:{assignment_id}")
    assert found is not None
    return int(found["status"])


async def ledger(app: FastAPI) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from psiturk_async.mturk.models import LedgerEntry

    async with app.state.engine.connect() as connection:
        rows = await connection.execute(select(LedgerEntry.__table__).order_by(LedgerEntry.__table__.c.id))  # type: ignore[attr-defined]
        return [dict(found) for found in rows.mappings()]


@asynccontextmanager
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def calls_when_answered(fake: FakeMTurk, operation: str, count: int) -> list[dict[str, Any]]:
    """The calls of `operation` once `count` have been answered (a delayed answer is logged when sent)."""
    for _ in range(100):
        found = fake.calls(operation)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the fake answered {len(found)} {operation} calls, not {count}")


def operations(fake: FakeMTurk) -> list[str]:
    return [call["operation"] for call in fake.calls()]
