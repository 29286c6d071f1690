"""WAL checkpoints of the served SQLite file happen on a thread of their own, never in a commit on the loop."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from contextlib import closing

import pytest
from sqlalchemy.engine import make_url

from participant_flow import arrive, browser, running_app
from psiturk_async import main
from psiturk_async.db import sqlite_pragmas
from psiturk_async.drivers import HOT_MMAP_BYTES
from psiturk_async.settings import Settings
from psiturk_async.sqlite_checkpoint import WalCheckpointer
from psiturk_async.sqlite_inline import is_busy

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


def test_the_log_starts_again_while_saves_keep_coming(tmp_path) -> None:
    # One record rewritten over and over, as a participant's saves do, with a short pause between writes (a
    # server does other work between them). A PASSIVE checkpoint alone never lets the log rewind under such
    # a stream: the -wal file then holds every byte ever written.
    path = str(tmp_path / "saves.db")
    with closing(sqlite3.connect(path, isolation_level=None)) as writer:
        for pragma in sqlite_pragmas(busy_timeout_ms=0, autocheckpoint=False):
            writer.execute(pragma)
        writer.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, body TEXT)")
        writer.execute("INSERT INTO records VALUES (1, '')")
        checkpointer = WalCheckpointer(path, every_s=0.05).start()
        written = largest_log = saves = 0
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                body = f"{saves:08d}" + "x" * 8_000
                try:
                    writer.execute("UPDATE records SET body = ? WHERE id = 1", (body,))
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
                    time.sleep(0.0005)  # the checkpointer holds the write lock a moment: wait, as the loop does
                    continue
                saves += 1
                written += len(body)
                largest_log = max(largest_log, os.path.getsize(path + "-wal"))
                time.sleep(0.0002)
        finally:
            checkpointer.stop()
        (stored,) = writer.execute("SELECT body FROM records").fetchone()
    assert stored.startswith(f"{saves - 1:08d}")
    assert written > 2_000_000, "too few saves to tell"
    assert largest_log < written / 4, (largest_log, written)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_checkpointer_stops_when_the_app_cannot_start(settings: Settings, monkeypatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("no engine today")

    monkeypatch.setattr(main, "create_engine", refuse)
    app = main.create_app(settings)
    with pytest.raises(RuntimeError, match="no engine today"):
        async with app.router.lifespan_context(app):
            pass
    assert _checkpointers() == []
