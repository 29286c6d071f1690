"""Finished participants per cell, kept by database triggers (migration 0003) and read when choosing a cell."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from alembic import command

from participant_flow import arrive, browser, complete, row, running_app
from psiturk_async.cell_counts import COUNTS_TABLE, FINISHED_SQL, unfinished_index_name
from psiturk_async.db import create_engine
from psiturk_async.migrate import alembic_config, upgrade
from psiturk_async.models import utcnow
from psiturk_async.settings import Settings
from psiturk_async.store import ParticipantStore
from test_migrations import PSITURK_DDL, _run, _table_names

CELL = "codeversion, mode, cond, counterbalance"
INSERT = ("INSERT INTO assignments (uniqueid, assignmentid, workerid, hitid, status, cond, counterbalance, "
          "codeversion, mode) VALUES (:u, :u, :u, 'H', :status, :cond, :counter, :version, :mode)")


def _postgres(settings: Settings) -> bool:
    return settings.database_url.startswith("postgres")


def _insert(uid: str, status: int | None, cond: int | None = 0, counter: int = 0, version: str = "1.0",
            mode: str = "live") -> tuple[str, dict[str, Any]]:
    return INSERT, dict(u=uid, status=status, cond=cond, counter=counter, version=version, mode=mode)


def _sql(statement: str) -> tuple[str, None]:
    return statement, None


async def _kept(settings: Settings) -> dict[tuple, int]:
    """What the counts table says, leaving out cells that went back to zero."""
    [found] = await _run(settings, [_sql(f"SELECT {CELL}, finished FROM {COUNTS_TABLE} WHERE finished <> 0")])
    return {tuple(found_row[:4]): found_row[4] for found_row in found}


async def _counted_now(settings: Settings) -> dict[tuple, int]:
    """The same numbers counted afresh from the participants table."""
    [found] = await _run(settings, [_sql(
        f"SELECT {CELL}, count(*) FROM assignments WHERE status IN ({FINISHED_SQL}) AND codeversion IS NOT NULL "
        f"AND mode IS NOT NULL AND cond IS NOT NULL AND counterbalance IS NOT NULL GROUP BY {CELL}")])
    return {tuple(found_row[:4]): found_row[4] for found_row in found}


WRITES = [
    _insert("a", 3),
    _insert("b", 1),
    _insert("c", None, cond=1),
    _insert("d", 4, cond=None),
    _insert("e", 7, cond=1, counter=1, mode="sandbox"),
    _insert("f", 4),
    _sql("UPDATE assignments SET status = 3 WHERE uniqueid = 'b'"),  # into finished
    _sql("UPDATE assignments SET status = 4 WHERE uniqueid = 'a'"),  # finished to finished
    _sql("UPDATE assignments SET status = 6 WHERE uniqueid = 'a'"),  # out of finished
    _sql("UPDATE assignments SET cond = 1 WHERE uniqueid = 'b'"),
    _sql("UPDATE assignments SET mode = 'live' WHERE uniqueid = 'e'"),
    _sql("UPDATE assignments SET codeversion = '2.0' WHERE uniqueid = 'e'"),
    _sql("UPDATE assignments SET cond = 0 WHERE uniqueid = 'd'"),  # NULL cond to a cell
    _sql("UPDATE assignments SET status = 5 WHERE uniqueid = 'c'"),  # NULL status to finished
    _sql("UPDATE assignments SET status = 5 WHERE status IN (3, 4)"),  # several rows in one statement
    _sql("UPDATE assignments SET datastring = '{}' WHERE uniqueid = 'f'"),
    _sql("DELETE FROM assignments WHERE uniqueid = 'b'"),
    _sql("DELETE FROM assignments WHERE uniqueid = 'a'"),
    _sql("UPDATE assignments SET cond = NULL WHERE uniqueid = 'c'"),
    _insert("g", 7, cond=1),
    _sql("UPDATE assignments SET status = NULL WHERE uniqueid = 'g'"),
]


async def test_the_counts_stay_exact_through_every_kind_of_write(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)

    for number, write in enumerate(WRITES):
        await _run(settings, [write])
        assert await _kept(settings) == await _counted_now(settings), (number, write)

    assert await _kept(settings) == {("1.0", "live", 0, 0): 2, ("2.0", "live", 1, 1): 1}


async def test_a_participant_finishing_through_the_routes_is_counted(settings: Settings) -> None:
    async with running_app(settings) as app, browser(app) as http:
        uid = await arrive(http)
        assert await _kept(settings) == {}

        await complete(http, uid)

        found = await row(app, uid)
        assert found is not None
        assert await _kept(settings) == {(found["codeversion"], "live", found["cond"], found["counterbalance"]): 1}


async def test_an_adopted_psiturk_database_has_its_finished_rows_counted(settings: Settings) -> None:
    dialect = "postgresql" if _postgres(settings) else "sqlite"
    ddl = [_sql(statement) for statement in PSITURK_DDL[dialect].split(";")]
    await _run(settings, ddl + [
        _insert("old1", 3), _insert("old2", 4), _insert("old3", 5), _insert("old4", 7, cond=1),
        _insert("old5", 2, cond=1), _insert("old6", 3, cond=None), _insert("old7", 4, mode="debug"),
    ])

    await asyncio.to_thread(upgrade, settings)

    assert await _kept(settings) == {("1.0", "live", 0, 0): 3, ("1.0", "live", 1, 0): 1, ("1.0", "debug", 0, 0): 1}
    await _run(settings, [_sql("UPDATE assignments SET status = 4 WHERE uniqueid = 'old5'")])
    assert await _kept(settings) == {("1.0", "live", 0, 0): 3, ("1.0", "live", 1, 0): 2, ("1.0", "debug", 0, 0): 1}


def _drop_triggers(settings: Settings) -> list[tuple[str, None]]:
    if _postgres(settings):
        return [_sql("DROP FUNCTION psiturk_async_cell_counts_row_assignments() CASCADE")]
    return [_sql(f"DROP TRIGGER psiturk_async_cell_counts_{event}_assignments")
            for event in ("insert", "delete", "update")]


async def _newcomer_cond(settings: Settings) -> int:
    async with running_app(settings) as app, browser(app) as http:
        found = await row(app, await arrive(http, worker="NEW", assignment="NEW"))
        assert found is not None
        return found["cond"]


# The counts table is told cell 1 holds five finished participants while the participants table has two in
# cell 0: a store reading the table sends a newcomer to cell 0, a store counting rows sends it to cell 1.
def _two_in_cell_0_but_counts_say_five_in_cell_1(settings: Settings) -> list[tuple[str, Any]]:
    version = settings.experiment_code_version
    return [
        _insert("x1", 3, cond=0, version=version), _insert("x2", 4, cond=0, version=version),
        _sql(f"DELETE FROM {COUNTS_TABLE}"),
        (f"INSERT INTO {COUNTS_TABLE} ({CELL}, finished) VALUES (:version, 'live', 1, 0, 5)",
         {"version": version}),
    ]


async def test_the_store_reads_the_counts_the_triggers_keep(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(num_conds=2, num_counters=1)
    await asyncio.to_thread(upgrade, settings)
    await _run(settings, _two_in_cell_0_but_counts_say_five_in_cell_1(settings))

    assert await _newcomer_cond(settings) == 0


async def test_without_the_triggers_the_store_counts_the_rows(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(num_conds=2, num_counters=1)
    await asyncio.to_thread(upgrade, settings)
    await _run(settings, _drop_triggers(settings) + _two_in_cell_0_but_counts_say_five_in_cell_1(settings))

    assert await _newcomer_cond(settings) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_one_missing_trigger_is_enough_to_count_the_rows(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(num_conds=2, num_counters=1)
    await asyncio.to_thread(upgrade, settings)
    await _run(settings, [_sql("DROP TRIGGER psiturk_async_cell_counts_update_assignments")]
               + _two_in_cell_0_but_counts_say_five_in_cell_1(settings))

    assert await _newcomer_cond(settings) == 1


async def test_recent_participants_without_a_status_still_count(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(num_conds=2, num_counters=1)
    await asyncio.to_thread(upgrade, settings)
    version = settings.experiment_code_version
    await _run(settings, [
        _insert("n1", None, cond=0, version=version), _insert("n2", None, cond=0, version=version),
        _insert("f1", 3, cond=1, version=version),
        ("UPDATE assignments SET beginhit = :now", {"now": utcnow() - timedelta(minutes=1)}),
    ])

    assert await _newcomer_cond(settings) == 1


async def _trigger_names(settings: Settings) -> set[str]:
    sql = ("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal UNION ALL SELECT proname FROM pg_proc "
           "WHERE proname LIKE 'psiturk%'" if _postgres(settings)
           else "SELECT name FROM sqlite_master WHERE type = 'trigger'")
    [found] = await _run(settings, [_sql(sql)])
    return {name for (name,) in found}


async def _index_names(settings: Settings) -> set[str]:
    sql = ("SELECT indexname FROM pg_indexes" if _postgres(settings)
           else "SELECT name FROM sqlite_master WHERE type = 'index'")
    [found] = await _run(settings, [_sql(sql)])
    return {name for (name,) in found}


async def test_the_migration_downgrades_and_upgrades_again(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)
    await _run(settings, [_insert("before", 3)])
    assert await _trigger_names(settings) and unfinished_index_name("assignments") in await _index_names(settings)

    await asyncio.to_thread(command.downgrade, alembic_config(settings), "0002")

    assert await _trigger_names(settings) == set()
    assert unfinished_index_name("assignments") not in await _index_names(settings)
    # Without the counts table, writes still work: nothing is left that would write to it.
    await _run(settings, [_insert("between", 1),
                          _sql("UPDATE assignments SET status = 4 WHERE uniqueid = 'between'"),
                          _sql("DELETE FROM assignments WHERE uniqueid = 'before'")])
    assert COUNTS_TABLE not in await _table_names(settings)

    await asyncio.to_thread(upgrade, settings)

    assert await _kept(settings) == {("1.0", "live", 0, 0): 1}


async def test_the_recent_count_reads_only_unfinished_rows_through_their_index(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)
    postgres = _postgres(settings)
    finished = [_insert(f"done{number}", 3 + number % 2, cond=number % 2)[1] for number in range(2000)]
    # Finished a minute ago: inside the cutoff window, so only the index's condition can leave them out.
    await _run(settings, [(INSERT, finished),  # type: ignore[list-item]
                          ("UPDATE assignments SET beginhit = :now", {"now": utcnow() - timedelta(minutes=1)}),
                          _sql("ANALYZE")])
    engine = create_engine(settings)
    store = ParticipantStore(engine, "assignments")
    started = utcnow() - timedelta(minutes=30)
    try:
        plan = await store.runner.run(lambda connection: connection.fetchall(
            ("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + store.cells.sql_from_table,
            "1.0", "live", "1.0", "live", started if postgres else started.isoformat(sep=" ")))
    finally:
        await store.aclose()
        await engine.dispose()

    text = "\n".join(str(line) for line in plan)
    assert unfinished_index_name("assignments") in text, text
    [[definition]] = await _run(settings, [(
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name" if postgres
        else "SELECT sql FROM sqlite_master WHERE name = :name", {"name": unfinished_index_name("assignments")})])
    assert "WHERE" in definition[0] and FINISHED_SQL in definition[0], definition  # a partial index
    assert "Seq Scan on assignments" not in text and "SCAN assignments" not in text, text
