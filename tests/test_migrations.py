"""Migrations make the schema from empty and adopt a database psiTurk 3 created, keeping every row."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from psiturk_async.db import SQLITE_PAGE_SIZE, create_engine
from psiturk_async.migrate import VERSION_TABLE, upgrade
from psiturk_async.settings import Settings

# psiTurk 3.3.1's tables as its SQLAlchemy models create them (spec §3), in each database's own types.
PSITURK_DDL = {
    "sqlite": """
        CREATE TABLE assignments (uniqueid VARCHAR(128) NOT NULL, assignmentid VARCHAR(128) NOT NULL,
          workerid VARCHAR(128) NOT NULL, hitid VARCHAR(128) NOT NULL, ipaddress VARCHAR(128),
          browser VARCHAR(128), platform VARCHAR(128), language VARCHAR(128), cond INTEGER,
          counterbalance INTEGER, codeversion VARCHAR(128), beginhit DATETIME, beginexp DATETIME,
          endhit DATETIME, bonus FLOAT, status INTEGER, mode VARCHAR(128), datastring TEXT(4294967295),
          PRIMARY KEY (uniqueid));
        CREATE TABLE amt_hit (hitid VARCHAR(128) NOT NULL, PRIMARY KEY (hitid));
        CREATE TABLE campaign (id INTEGER NOT NULL, codeversion VARCHAR(128) NOT NULL, mode VARCHAR(128) NOT NULL,
          goal INTEGER NOT NULL, minutes_between_rounds INTEGER NOT NULL, assignments_per_round INTEGER NOT NULL,
          hit_reward FLOAT NOT NULL, hit_duration_hours FLOAT NOT NULL, is_active BOOLEAN, created DATETIME,
          ended DATETIME, PRIMARY KEY (id), CHECK (is_active IN (0, 1)));
        CREATE TABLE apscheduler_jobs (id VARCHAR(191) NOT NULL, next_run_time FLOAT, job_state BLOB NOT NULL,
          PRIMARY KEY (id))
    """,
    "postgresql": """
        CREATE TABLE assignments (uniqueid VARCHAR(128) NOT NULL, assignmentid VARCHAR(128) NOT NULL,
          workerid VARCHAR(128) NOT NULL, hitid VARCHAR(128) NOT NULL, ipaddress VARCHAR(128),
          browser VARCHAR(128), platform VARCHAR(128), language VARCHAR(128), cond INTEGER,
          counterbalance INTEGER, codeversion VARCHAR(128), beginhit TIMESTAMP WITHOUT TIME ZONE,
          beginexp TIMESTAMP WITHOUT TIME ZONE, endhit TIMESTAMP WITHOUT TIME ZONE, bonus FLOAT, status INTEGER,
          mode VARCHAR(128), datastring TEXT, PRIMARY KEY (uniqueid));
        CREATE TABLE amt_hit (hitid VARCHAR(128) NOT NULL, PRIMARY KEY (hitid));
        CREATE TABLE campaign (id SERIAL NOT NULL, codeversion VARCHAR(128) NOT NULL, mode VARCHAR(128) NOT NULL,
          goal INTEGER NOT NULL, minutes_between_rounds INTEGER NOT NULL, assignments_per_round INTEGER NOT NULL,
          hit_reward FLOAT NOT NULL, hit_duration_hours FLOAT NOT NULL, is_active BOOLEAN, created TIMESTAMP,
          ended TIMESTAMP, PRIMARY KEY (id));
        CREATE TABLE apscheduler_jobs (id VARCHAR(191) NOT NULL, next_run_time FLOAT, job_state BYTEA NOT NULL,
          PRIMARY KEY (id))
    """,
}

ROWS = [
    ("W1:A1", "A1", "W1", "H1", 3, '{"data": [{"trialdata": {"hit": true}}]}', "live"),
    ("W2:A2", "A2", "W2", "H1", 6, None, "live"),
    ("debugW3:debugA3", "debugA3", "debugW3", "debugH3", 1, "", "debug"),
]


async def _run(settings: Settings, statements: list[tuple[str, dict | None]]) -> list:
    engine = create_engine(settings)
    results = []
    try:
        async with engine.begin() as connection:
            for statement, params in statements:
                result = await connection.execute(text(statement), params or {})
                results.append(result.fetchall() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return results


async def _table_names(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_creates_every_table(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)
    tables = await _table_names(settings)
    assert {"assignments", "amt_hit", "campaign", "psiturk_async_state", VERSION_TABLE} <= tables
    # Running it again is a no-op, as every `serve` start does.
    await asyncio.to_thread(upgrade, settings)


async def test_configured_table_names_are_used(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(table_name="turkers", hits_table_name="my_hits")
    await asyncio.to_thread(upgrade, settings)
    tables = await _table_names(settings)
    assert {"turkers", "my_hits"} <= tables and "assignments" not in tables


async def test_psiturk_database_is_adopted_with_rows_intact(settings: Settings) -> None:
    dialect = "postgresql" if settings.database_url.startswith("postgres") else "sqlite"
    ddl = [(statement, None) for statement in PSITURK_DDL[dialect].split(";")]
    inserts = [("INSERT INTO assignments (uniqueid, assignmentid, workerid, hitid, status, datastring, mode, "
                "cond, counterbalance, codeversion, beginhit, bonus) VALUES (:u, :a, :w, :h, :s, :d, :m, 0, 0, "
                "'0.0.1', '2022-03-04 05:06:07.123456', 0.5)",
                dict(u=u, a=a, w=w, h=h, s=s, d=d, m=m)) for u, a, w, h, s, d, m in ROWS]
    inserts.append(("INSERT INTO amt_hit (hitid) VALUES ('H1')", None))
    await _run(settings, ddl + inserts)

    await asyncio.to_thread(upgrade, settings)

    [rows, hits, version] = await _run(settings, [
        ("SELECT uniqueid, assignmentid, workerid, hitid, status, datastring, mode FROM assignments "
         "ORDER BY uniqueid", None),
        ("SELECT hitid FROM amt_hit", None),
        (f"SELECT version_num FROM {VERSION_TABLE}", None),
    ])
    assert sorted(tuple(row) for row in rows) == sorted(ROWS)
    assert [tuple(hit) for hit in hits] == [("H1",)]
    assert len(version) == 1
    tables = await _table_names(settings)
    assert "apscheduler_jobs" in tables  # psiTurk's own tables are left alone


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_psiturk_can_still_insert_after_adoption(settings: Settings) -> None:
    """A lab may roll back to psiTurk 3: its plain INSERT (no new columns) must still work."""
    await asyncio.to_thread(upgrade, settings)
    await _run(settings, [("INSERT INTO assignments (uniqueid, assignmentid, workerid, hitid, status) "
                           "VALUES ('W:A', 'A', 'W', 'H', 1)", None)])


def _page_size(settings: Settings) -> int:
    # Read with Python's own sqlite3, outside every hook of ours.
    with closing(sqlite3.connect(make_url(settings.database_url).database or "")) as connection:
        return connection.execute("PRAGMA page_size").fetchone()[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_new_sqlite_database_has_large_pages(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)
    assert _page_size(settings) == SQLITE_PAGE_SIZE


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_adopted_sqlite_database_keeps_its_pages(settings: Settings) -> None:
    path = make_url(settings.database_url).database or ""
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(PSITURK_DDL["sqlite"])  # as psiTurk made it: SQLite's default pages
    before = _page_size(settings)
    assert before != SQLITE_PAGE_SIZE
    await asyncio.to_thread(upgrade, settings)
    assert _page_size(settings) == before
    assert {"assignments", VERSION_TABLE} <= await _table_names(settings)
