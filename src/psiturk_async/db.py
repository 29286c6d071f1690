"""Engine factory, SQLite tuning, sessions, and the database-level lock for serialised work."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from . import sqlite_inline
from .settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The page size a new SQLite database is made with (an existing one keeps its own: SQLite ignores the pragma
# then). A datastring of tens of KiB lives in a chain of overflow pages, and any change to its row (a save, a
# status, a bonus) rewrites the chain: at 16 KiB a 30 KiB record is two pages instead of eight, which halves
# the writes and system calls of a save (benchmarks/README.md). Only honoured before journal_mode=WAL.
SQLITE_PAGE_SIZE = 16384
IMMEDIATE = "psiturk_async_immediate"
POOL_SIZE = 5
POOL_OVERFLOW = 5


def sqlite_file(settings: Settings) -> str | None:
    """The SQLite file the settings name, or None for PostgreSQL and in-memory databases."""
    url = settings.async_database_url
    if not url.startswith("sqlite"):
        return None
    path = make_url(url).database or ""
    return None if path in ("", ":memory:") or path.startswith("file:") else path


def create_engine(settings: Settings, *, background_checkpoints: bool = False) -> AsyncEngine:
    """An async engine for the configured database: SQLite on the event loop, asyncpg for PostgreSQL.

    With `background_checkpoints`, SQLite connections leave WAL checkpoints to a WalCheckpointer
    (sqlite_checkpoint.py), which the server runs beside them."""
    url = settings.async_database_url
    if url.startswith("sqlite"):
        path = sqlite_file(settings)
        if path is None:
            # Each aiosqlite connection to an in-memory database is a database of its own; keep its thread.
            engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _tune_sqlite(engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
            return engine
        engine = create_async_engine(url, async_creator=sqlite_inline.connector(
            path, patience_s=SQLITE_BUSY_TIMEOUT_MS / 1000))
        # The inline connection waits for a lock with asyncio sleeps; a busy timeout would block the loop.
        _tune_sqlite(engine, busy_timeout_ms=0, autocheckpoint=not background_checkpoints)
        return engine
    # Small per-process pools: several processes (and hosts) share the server's connection limit, and a burst
    # waits in the pool's queue rather than failing with "too many clients".
    return create_async_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=60,
                               pool_pre_ping=True, pool_recycle=3600)


def sqlite_pragmas(*, busy_timeout_ms: int, autocheckpoint: bool = True) -> list[str]:
    """What every SQLite connection of ours sets first, in this order (page_size must come before WAL).

    Without `autocheckpoint` the connection never copies the WAL back itself: a WalCheckpointer does."""
    return [f"PRAGMA page_size={SQLITE_PAGE_SIZE}", "PRAGMA journal_mode=WAL",
            f"PRAGMA busy_timeout={busy_timeout_ms}", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL",
            *([] if autocheckpoint else ["PRAGMA wal_autocheckpoint=0"])]


def _tune_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int, autocheckpoint: bool = True) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transactions into our own hands so a write can begin IMMEDIATE (see `begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in sqlite_pragmas(busy_timeout_ms=busy_timeout_ms, autocheckpoint=autocheckpoint):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        # A write that first reads must hold the write lock from the start, or two processes can each read,
        # then deadlock upgrading; IMMEDIATE makes the second one wait on the busy timeout instead.
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        # Straight to the driver's cursor: through exec_driver_sql a BEGIN cost as much CPU as the statement
        # after it (a driver error still reaches the error handlers, which answer 503 for it).
        cursor = connection.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        finally:
            cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose transactions, on SQLite, hold the write lock from the start.

    Session code (custom.py routes, the admin API) often reads a row and then writes it; in WAL mode a read
    transaction that then writes fails at once ("database is locked") when another connection wrote in
    between, instead of waiting. Short transactions that hold the lock from the start simply wait their turn.
    Plain engine connections (exports, health) stay deferred and never block writers.
    """
    return async_sessionmaker(engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False)


async def begin_write(session: AsyncSession, *, lock: str | None = None) -> None:
    """Start a write transaction; with `lock`, one that no other process holding the same lock overlaps.

    On SQLite every write transaction already excludes every other one (BEGIN IMMEDIATE); on PostgreSQL a
    transaction-scoped advisory lock serialises the units of work that name the same lock.
    """
    if session.in_transaction():
        # End the read-only transaction a lookup opened, so this one can begin with the write lock held.
        await session.commit()
    connection = await session.connection(execution_options={IMMEDIATE: True})
    if lock is not None and connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(lock)})


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock from a lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session for one request; the work inside commits explicitly."""
    async with factory() as session:
        yield session
