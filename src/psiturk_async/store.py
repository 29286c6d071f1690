"""The participant hot path in plain SQL on the driver connection: reads, saves and status moves.

Every participant flow sends a dozen saves and status changes. Through the ORM session each costs about
2.5 ms of CPU (session, greenlet hops, statement compilation); the same work as one prepared statement on
the driver's own connection costs about 0.5 ms (benchmarks/README.md). So these few statements are written
once per dialect here, and each save is a single guarded UPDATE: the database checks the status and the
late-save rule in the same statement that writes, so two saves at once cannot interleave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import records
from .lifecycle import LEGAL_FROM, SAVABLE, Move, decide
from .models import Status, utcnow

ROW = "status, cond, counterbalance, assignmentid, workerid, hitid, bonus, mode, datastring"


@dataclass
class Row:
    status: int | None
    cond: int | None
    counterbalance: int | None
    assignmentid: str
    workerid: str
    hitid: str
    bonus: float | None
    mode: str | None
    datastring: str | None

    def record(self) -> dict[str, Any]:
        """The stored record, or the base record a participant starts from."""
        return records.parse_record(self.datastring) or records.base_record(
            cond=self.cond, counterbalance=self.counterbalance, assignment_id=self.assignmentid,
            worker_id=self.workerid, hit_id=self.hitid, bonus=self.bonus)


class Refused(Exception):
    """A save or move the rules refuse; becomes a JSON error response."""

    def __init__(self, status_code: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code, self.error, self.detail, self.extra = status_code, error, detail, extra


def _in_list(values: Iterable[int]) -> str:
    return ", ".join(str(int(value)) for value in sorted(values))


class ParticipantStore:
    """Prepared statements for one participants table on one database."""

    def __init__(self, engine: AsyncEngine, table: str) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        quoted = engine.dialect.identifier_preparer.quote(table)
        savable = _in_list(SAVABLE)
        if self.postgres:
            stored_length = "coalesce(json_array_length(datastring::json -> 'data'), 0)"
            self.sql_save = (f"UPDATE {quoted} SET datastring = $1 WHERE uniqueid = $2 "
                             f"AND status IN ({savable}) AND {stored_length} <= $3")
            self.sql_row = f"SELECT {ROW} FROM {quoted} WHERE uniqueid = $1"
            self.sql_row_locked = self.sql_row + " FOR UPDATE"
            self.sql_write = f"UPDATE {quoted} SET datastring = $1 WHERE uniqueid = $2"
            self.sql_resume = f"UPDATE {quoted} SET datastring = $1, status = $2 WHERE uniqueid = $3"
            self.sql_move = (f"UPDATE {quoted} SET status = $1{{stamp}} WHERE uniqueid = $2 "
                             "AND status IN ({legal})")
        else:
            stored_length = ("(CASE WHEN json_valid(datastring) "
                             "THEN coalesce(json_array_length(datastring, '$.data'), 0) ELSE 0 END)")
            self.sql_save = (f"UPDATE {quoted} SET datastring = ? WHERE uniqueid = ? "
                             f"AND status IN ({savable}) AND {stored_length} <= ?")
            self.sql_row = f"SELECT {ROW} FROM {quoted} WHERE uniqueid = ?"
            self.sql_row_locked = self.sql_row
            self.sql_write = f"UPDATE {quoted} SET datastring = ? WHERE uniqueid = ?"
            self.sql_resume = f"UPDATE {quoted} SET datastring = ?, status = ? WHERE uniqueid = ?"
            self.sql_move = (f"UPDATE {quoted} SET status = ?{{stamp}} WHERE uniqueid = ? "
                             "AND status IN ({legal})")

    @asynccontextmanager
    async def _driver(self) -> AsyncIterator[Any]:
        """The driver's own connection (asyncpg, or aiosqlite in autocommit), borrowed from the pool."""
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            yield raw.driver_connection

    async def _execute(self, driver: Any, sql: str, *params: Any) -> int:
        """Run a write; the number of rows it changed."""
        if self.postgres:
            outcome = await driver.execute(sql, *params)
            return int(outcome.rsplit(" ", 1)[-1])
        cursor = await driver.execute(sql, params)
        return cursor.rowcount

    async def _fetch_row(self, driver: Any, sql: str, uid: str) -> Row | None:
        if self.postgres:
            found = await driver.fetchrow(sql, uid)
            return Row(*found) if found is not None else None
        cursor = await driver.execute(sql, (uid,))
        found = await cursor.fetchone()
        return Row(*found) if found is not None else None

    async def read(self, uid: str) -> Row | None:
        async with self._driver() as driver:
            return await self._fetch_row(driver, self.sql_row, uid)

    async def save_full(self, uid: str, body: str, data_length: int) -> None:
        """Store a full save as sent, unless the record is frozen or the save would drop stored trials."""
        async with self._driver() as driver:
            try:
                if await self._execute(driver, self.sql_save, body, uid, data_length):
                    return
            except Exception as exc:
                # A stored datastring PostgreSQL cannot read as JSON: decide in Python below instead.
                if not self.postgres or "json" not in str(exc).lower():
                    raise
            async with self._transaction(driver):
                row = await self._fetch_row(driver, self.sql_row_locked, uid)
                self._check_savable(uid, row)
                assert row is not None
                stored_length = records.list_length(records.parse_record(row.datastring), "data")
                if data_length < stored_length:
                    raise Refused(409, "stale_save", "this save holds fewer trials than are already stored; "
                                  "the longer record is kept", data_length=stored_length)
                await self._execute(driver, self.sql_write, body, uid)

    async def save_delta(self, uid: str, delta: dict[str, Any]) -> tuple[int, int]:
        """Apply an incremental save under the row's lock; the stored lengths of data and eventdata."""
        async with self._driver() as driver, self._transaction(driver):
            row = await self._fetch_row(driver, self.sql_row_locked, uid)
            self._check_savable(uid, row)
            assert row is not None
            current = row.record()
            try:
                updated = records.apply_delta(current, delta)
            except records.Gap:
                raise Refused(409, "gap", "this save starts after the end of the stored data; resend from the "
                              "stored lengths", data_length=records.list_length(current, "data"),
                              eventdata_length=records.list_length(current, "eventdata")) from None
            await self._execute(driver, self.sql_write, records.dumps(updated), uid)
            return records.list_length(updated, "data"), records.list_length(updated, "eventdata")

    async def move(self, uid: str, target: Status, *, stamp: str | None = None) -> tuple[Move | None, int | None]:
        """Move to `target` when the status machine allows it, in one guarded UPDATE.

        Returns (None, None) for an unknown participant, else the verdict and the status now stored.
        """
        sql = self.sql_move.format(stamp=f", {stamp} = {'$3' if self.postgres else '?'}" if stamp else "",
                                   legal=_in_list(LEGAL_FROM[target]))
        if not stamp:
            params: tuple[Any, ...] = (int(target), uid)
        elif self.postgres:
            params = (int(target), uid, self._now())  # $1, $2, $3 by number
        else:
            params = (int(target), self._now(), uid)  # ? by position
        async with self._driver() as driver:
            for _attempt in range(3):
                if await self._execute(driver, sql, *params):
                    return Move.APPLY, int(target)
                row = await self._fetch_row(driver, self.sql_row, uid)
                if row is None:
                    return None, None
                verdict = decide(row.status, target)
                if verdict is not Move.APPLY:
                    return verdict, row.status
                # The status changed between the two statements to one we may move from: try again.
        return Move.ILLEGAL, row.status

    async def resume(self, uid: str, *, timestamp_ms: int) -> int | None:
        """A returning participant goes back to STARTED; the return is recorded as a "resumed" event."""
        async with self._driver() as driver, self._transaction(driver):
            row = await self._fetch_row(driver, self.sql_row_locked, uid)
            if row is None:
                return None
            record = records.add_event(row.record(), eventtype="resumed", value=Status(row.status).name,
                                       timestamp_ms=timestamp_ms)
            await self._execute(driver, self.sql_resume, records.dumps(record), int(Status.STARTED), uid)
            return row.status

    def _now(self) -> datetime | str:
        now = utcnow()
        # SQLite stores DateTime as text; this is the form SQLAlchemy and psiTurk wrote.
        return now if self.postgres else now.isoformat(sep=" ")

    @staticmethod
    def _check_savable(uid: str, row: Row | None) -> None:
        if row is None:
            raise Refused(404, "unknown_participant", f"no participant {uid!r}")
        if row.status not in SAVABLE:
            raise Refused(409, "record_frozen", f"the record is {Status(row.status).name}: approved or paid "
                          "participants' data no longer changes", current_status=row.status)

    @asynccontextmanager
    async def _transaction(self, driver: Any) -> AsyncIterator[None]:
        if self.postgres:
            async with driver.transaction():
                yield
            return
        # aiosqlite runs in autocommit here; IMMEDIATE takes the write lock before the read.
        await driver.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await driver.execute("ROLLBACK")
            raise
        await driver.execute("COMMIT")
