"""WAL checkpoints of the served SQLite file happen on a thread of their own, never in a commit on the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing

import pytest
from sqlalchemy.engine import make_url

from participant_flow import arrive, browser, running_app
from psiturk_async.drivers import HOT_MMAP_BYTES
from psiturk_async.settings import Settings

CHECKPOINTER = "psiturk-sqlite-checkpoint"


def _in_database_file(path: str, uid: str) -> str | None:
    # immutable=1 reads the database file alone, as if there were no WAL: only checkpointed pages are seen.
    # It also takes no lock, so a read in the middle of a checkpoint may see a half-copied file: not yet.
    try:
        with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as connection:
            found = connection.execute("SELECT datastring FROM assignments WHERE uniqueid = ?", (uid,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return found[0] if found else None


def _checkpointers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == CHECKPOINTER]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_servers_connections_leave_checkpoints_to_the_checkpointer(settings: Settings) -> None:
    async with running_app(settings) as app, browser(app) as http:
        uid = await arrive(http)
        assert (await http.put(f"/sync/{uid}", json={"data": []})).status_code == 200
        inline = app.state.store.runner._inline.connection
        assert inline.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        assert inline.execute("PRAGMA mmap_size").fetchone() == (HOT_MMAP_BYTES,)
        async with app.state.engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
        assert len(_checkpointers()) == 1
    assert _checkpointers() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_saved_data_reach_the_database_file_while_the_server_runs(settings: Settings) -> None:
    path = make_url(settings.async_database_url).database
    assert path
    async with running_app(settings) as app, browser(app) as http:
        uid = await arrive(http)
        # Fewer pages than SQLite's own threshold (1000), which would not have checkpointed them at all yet.
        body = {"data": [{"trialdata": {"stimulus": "x" * 1000, "trial": n}} for n in range(8_000)]}
        assert (await http.put(f"/sync/{uid}", json=body)).status_code == 200
        for _ in range(100):
            stored = _in_database_file(path, uid)
            if stored is not None and len(stored) > 8_000_000:
                break
            await asyncio.sleep(0.1)
        assert stored is not None and len(stored) > 8_000_000
