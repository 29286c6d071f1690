"""SQLite for SQLAlchemy's async engine, run on the event loop instead of aiosqlite's thread per connection.

A SQLite statement on this project's tables takes tens of microseconds of C. aiosqlite hands every call (cursor,
execute, fetch, commit, close) to a thread and back, and each hand-off costs more CPU than the statement, with
the two threads taking turns on the GIL; an ORM session in a custom.py route makes about ten of them. Here
each call runs directly, so a session costs what its statements cost.

A direct call must never block the event loop on another connection's write lock, so the connection has no
busy timeout: a statement that finds the database locked fails at once without changing anything, and is tried
again after an asyncio sleep — the wait SQLite's own busy handler would do, without holding the loop. This is
the object SQLAlchemy's aiosqlite dialect expects from `aiosqlite.connect` (its `async_creator` hook), so the
dialect, the pool and every session work unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

BUSY_FIRST_WAIT_S = 0.0005
BUSY_MAX_WAIT_S = 0.02
# SQLITE_BUSY_SNAPSHOT: a read transaction's snapshot is too old to write; trying again cannot help.
BUSY_SNAPSHOT = 517


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """The database is locked by another connection: trying again later can succeed."""
    if getattr(exc, "sqlite_errorcode", None) == BUSY_SNAPSHOT:
        return False
    message = str(exc).lower()
    return "locked" in message or "busy" in message


async def _retrying(call: Callable[[], Any], patience_s: float) -> Any:
    """Run `call`; while the database is locked elsewhere, sleep and try again, up to `patience_s`."""
    wait, deadline = BUSY_FIRST_WAIT_S, None
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            deadline = deadline or now + patience_s
            if now >= deadline:
                raise
        await asyncio.sleep(wait)
        wait = min(wait * 2, BUSY_MAX_WAIT_S)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor, patience_s: float) -> None:
        self._cursor = cursor
        self._patience_s = patience_s

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await _retrying(lambda: self._cursor.execute(sql, parameters), self._patience_s)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # an iterator would be spent by a first, locked attempt
        await _retrying(lambda: self._cursor.executemany(sql, rows), self._patience_s)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses directly to set the isolation level."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    """An aiosqlite-shaped connection whose calls run on the calling thread."""

    _tx = _RunNow()

    def __init__(self, path: str, patience_s: float) -> None:
        # Pooled connections may be closed by the garbage collector on another thread.
        self._conn: sqlite3.Connection | None = sqlite3.connect(path, timeout=0, check_same_thread=False)
        self._patience_s = patience_s

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("Connection closed")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._open().cursor(), self._patience_s)

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await _retrying(self._open().commit, self._patience_s)

    async def rollback(self) -> None:
        self._open().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connector(path: str, *, patience_s: float) -> Callable[[], Any]:
    """The `async_creator` for an engine on the SQLite file at `path`."""

    async def connect() -> InlineConnection:
        return InlineConnection(path, patience_s)

    return connect
