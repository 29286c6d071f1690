"""SQLite on the event loop: a locked database makes a session wait, never the whole server, and loses nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy.engine import make_url

from participant_flow import arrive, browser, ids, row, running_app
from psiturk_async.settings import Settings

BONUS_ROUTER = '''
from psiturk_async.custom import APIRouter, DbSession, Participant

custom_code = APIRouter()


@custom_code.post("/add_cent")
async def add_cent(session: DbSession, uniqueId: str):
    participant = await session.get(Participant, uniqueId)
    participant.bonus = (participant.bonus or 0) + 0.01
    await session.commit()
    return {"bonus": participant.bonus}
'''


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_session_waits_for_another_connections_lock_without_holding_up_the_server(
        settings: Settings) -> None:
    (settings.project_dir / "custom.py").write_text(BONUS_ROUTER, encoding="utf-8")
    path = make_url(settings.async_database_url).database
    assert path

    async with running_app(settings) as app, browser(app) as http:
        uid = await arrive(http, worker="W1", assignment="A1")
        other_process = sqlite3.connect(path, isolation_level=None)
        other_process.execute("BEGIN IMMEDIATE")
        longest_stall = 0.0

        async def watch_the_loop() -> None:
            nonlocal longest_stall
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                longest_stall = max(longest_stall, time.monotonic() - before)

        watcher = asyncio.create_task(watch_the_loop())
        try:
            adding = asyncio.create_task(http.post("/add_cent", params={"uniqueId": uid}))
            await asyncio.sleep(0.3)
            assert not adding.done()
            # Meanwhile the event loop serves others: reads (WAL readers never wait) and pages.
            assert (await http.get("/healthz")).json()["status"] == "ok"
            assert (await http.get("/consent", params=ids(worker="W2", assignment="A2"))).status_code == 200
            assert not adding.done()
        finally:
            other_process.execute("COMMIT")
            other_process.close()
        added = await asyncio.wait_for(adding, timeout=10)
        watcher.cancel()

        # A connection that waited in SQLite's busy handler would have stopped the loop for the whole wait
        # (seconds); a generous bound keeps a slow machine from failing this.
        assert longest_stall < 1.0, longest_stall
        assert added.status_code == 200 and added.json() == {"bonus": 0.01}
        assert (await row(app, uid))["bonus"] == 0.01


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_simultaneous_sessions_each_apply_their_change_once(settings: Settings) -> None:
    # Read-modify-write sessions on one row: each holds the write lock from its first statement, so none
    # overwrites another's change.
    (settings.project_dir / "custom.py").write_text(BONUS_ROUTER, encoding="utf-8")

    async with running_app(settings) as app, browser(app) as http:
        uid = await arrive(http, worker="W1", assignment="A1")
        answers = await asyncio.gather(*(http.post("/add_cent", params={"uniqueId": uid}) for _ in range(40)))

        assert [answer.status_code for answer in answers] == [200] * 40
        assert round((await row(app, uid))["bonus"], 2) == 0.40
