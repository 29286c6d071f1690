"""Three ways to run the participant store's SQL: asyncpg, SQLite on the event loop, SQLite in a thread.

SQLite work on the hot path is a few hundred microseconds of C. Handing each statement to aiosqlite's thread
costs more CPU than the statement itself, so the store first runs a unit of work directly on the event loop
with a busy timeout of zero: it either completes at once, or finds the database locked (another process is
writing) and changes nothing. Only then is the same unit of work run in a thread that waits for the lock.
A unit of work run inline never suspends, so no other request interleaves with it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import SQLITE_BUSY_TIMEOUT_MS, sqlite_pragmas
from .sqlite_inline import BUSY_FIRST_WAIT_S, BUSY_MAX_WAIT_S, is_busy

POSTGRES_POOL_SIZE = 5
POSTGRES_ACQUIRE_TIMEOUT_S = 60
# After this long finding the lock held, a unit of work waits for it in a thread instead (see Runner.run).
INLINE_RETRY_TOTAL_S = 2.0


class Busy(Exception):
    """SQLite's write lock is held elsewhere; nothing was changed."""


class Connection(Protocol):
    async def execute(self, sql: str, *params: Any) -> int: ...
    async def fetchrow(self, sql: str, *params: Any) -> tuple[Any, ...] | None: ...
    async def fetchall(self, sql: str, *params: Any) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> Any: ...


class PostgresConnection:
    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def execute(self, sql: str, *params: Any) -> int:
        outcome = await self.driver.execute(sql, *params)
        return int(outcome.rsplit(" ", 1)[-1])

    async def fetchrow(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        found = await self.driver.fetchrow(sql, *params)
        return tuple(found) if found is not None else None

    async def fetchall(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.driver.fetch(sql, *params)]

    def transaction(self) -> Any:
        return self.driver.transaction()


# The participant routes' connection writes every save: a datastring of tens of KiB rewrites a chain of
# overflow pages, which SQLite's default 2 MiB page cache keeps re-reading once a study has a few hundred
# participants (measured on 27 KiB saves over 400 participants: 0.32 ms of CPU a save with 2 MiB, 0.09 ms
# with 64 MiB; less when other connections write in between, which empties the cache). Pages are allocated
# only as they are used.
HOT_CACHE_KIB = 65536
# The same connection reads the database file through a memory map instead of a read() per page: after another
# connection has written (a custom.py route, the admin API, the checkpoint thread), SQLite must read its pages
# again, and a read from the map costs no system call (measured: about a tenth of a participant flow's server
# CPU, benchmarks/README.md). Writes still go through the WAL as before. At most this much of the file is
# mapped; the rest is read as usual.
HOT_MMAP_BYTES = 256 << 20


def open_sqlite(path: str, *, busy_timeout_ms: int, autocheckpoint: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in sqlite_pragmas(busy_timeout_ms=busy_timeout_ms, autocheckpoint=autocheckpoint):
        connection.execute(pragma)
    connection.execute(f"PRAGMA cache_size=-{HOT_CACHE_KIB}")
    connection.execute(f"PRAGMA mmap_size={HOT_MMAP_BYTES}")
    return connection


class InlineSqlite:
    """SQLite on the event loop thread; raises Busy instead of waiting for another process's lock."""

    def __init__(self, path: str, *, autocheckpoint: bool) -> None:
        self.connection = open_sqlite(path, busy_timeout_ms=0, autocheckpoint=autocheckpoint)

    def _call(self, function: Callable[[], Any]) -> Any:
        try:
            return function()
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                if self.connection.in_transaction:
                    self.connection.rollback()
                raise Busy() from exc
            raise

    async def execute(self, sql: str, *params: Any) -> int:
        return self._call(lambda: self.connection.execute(sql, params).rowcount)

    async def fetchrow(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        return self._call(lambda: self.connection.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self._call(lambda: self.connection.execute(sql, params).fetchall())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # IMMEDIATE takes the write lock before the first read, so the read-then-write cannot be raced.
        self._call(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        try:
            yield
        except BaseException:
            if self.connection.in_transaction:
                self.connection.rollback()
            raise
        self._call(lambda: self.connection.execute("COMMIT"))

    def close(self) -> None:
        self.connection.close()


class ThreadSqlite(InlineSqlite):
    """SQLite on a thread of its own with a long busy timeout: for when the inline attempt found the lock held.

    Its own thread, not a shared pool: a unit of work holding the lock must never wait for a pool thread
    that another unit, blocked on the same lock, is occupying.
    """

    def __init__(self, path: str, *, autocheckpoint: bool) -> None:
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psiturk-sqlite")
        self.connection = None  # type: ignore[assignment]
        self.path = path
        self.autocheckpoint = autocheckpoint

    async def _in_thread(self, function: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.thread, function)

    async def open(self) -> ThreadSqlite:
        self.connection = await self._in_thread(
            lambda: open_sqlite(self.path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS,
                                autocheckpoint=self.autocheckpoint))
        return self

    async def execute(self, sql: str, *params: Any) -> int:
        return await self._in_thread(lambda: self.connection.execute(sql, params).rowcount)

    async def fetchrow(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        return await self._in_thread(lambda: self.connection.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await self._in_thread(lambda: self.connection.execute(sql, params).fetchall())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        await self._in_thread(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        try:
            yield
        except BaseException:
            await self._in_thread(self.connection.rollback)
            raise
        await self._in_thread(lambda: self.connection.execute("COMMIT"))

    async def aclose(self) -> None:
        if self.connection is not None:
            await self._in_thread(self.connection.close)
        self.thread.shutdown(wait=False)


async def _reset_if_in_transaction(connection: asyncpg.Connection) -> None:
    """What the pool does to a connection given back: roll back a transaction left open, and nothing else.

    asyncpg's default reset is a round trip to the server on every release, which for a one-statement save
    costs as much as the save; every unit of work here ends its own transactions."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class Runner:
    """Runs a unit of work `work(connection)` on the right kind of connection for the engine's database.

    On PostgreSQL that is a small asyncpg pool of its own rather than the engine's: checking a connection out
    of SQLAlchemy's pool pings the server first (pool_pre_ping), a round trip that cost as much CPU as the
    statement. A connection the server dropped fails its statement instead (503, nothing written), and the
    pool replaces it.

    With `background_checkpoints`, its SQLite connections leave WAL checkpoints to a WalCheckpointer."""

    def __init__(self, engine: AsyncEngine, *, background_checkpoints: bool = False) -> None:
        self.engine = engine
        self.autocheckpoint = not background_checkpoints
        self.postgres = engine.dialect.name == "postgresql"
        self.sqlite_path = "" if self.postgres else str(Path(engine.url.database or ""))
        self._inline: InlineSqlite | None = None
        self._pool: asyncpg.Pool | None = None
        self._pool_opening = asyncio.Lock()

    async def _postgres_pool(self) -> asyncpg.Pool:
        async with self._pool_opening:
            if self._pool is None:
                dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                self._pool = await asyncpg.create_pool(dsn, min_size=1, max_size=POSTGRES_POOL_SIZE,
                                                       reset=_reset_if_in_transaction)
        return self._pool

    async def run(self, work: Callable[[Any], Any]) -> Any:
        if self.postgres:
            pool = self._pool or await self._postgres_pool()
            async with pool.acquire(timeout=POSTGRES_ACQUIRE_TIMEOUT_S) as connection:
                return await work(PostgresConnection(connection))
        if self._inline is None:
            self._inline = InlineSqlite(self.sqlite_path, autocheckpoint=self.autocheckpoint)
        # The lock is usually held by this process's own session code for a millisecond or two: waiting on
        # the event loop and trying again is far cheaper than a thread blocked in SQLite's busy handler.
        delay, waited = BUSY_FIRST_WAIT_S, 0.0
        while waited < INLINE_RETRY_TOTAL_S:
            try:
                return await work(self._inline)
            except Busy:
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, BUSY_MAX_WAIT_S)
        waiting = await ThreadSqlite(self.sqlite_path, autocheckpoint=self.autocheckpoint).open()
        try:
            return await work(waiting)
        finally:
            await waiting.aclose()

    async def aclose(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
