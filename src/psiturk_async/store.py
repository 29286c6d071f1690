"""The participant store: every read and write of the participant routes, in plain SQL.

Each participant flow makes a dozen saves and status changes. Through the ORM session each costs about
2.5 ms of CPU (session, greenlet hops, statement compilation); the same work as one statement on the driver's
own connection costs a fraction of that (benchmarks/README.md). So the handful of statements the participant
routes need are written here once per dialect. Saves and moves are single guarded UPDATEs: the database
checks the status and the late-save rule in the statement that writes, so two requests at once cannot
interleave. The ORM models stay the interface for everything else (admin API, exports, custom.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import records
from .cell_counts import CellCounter
from .counterbalance import Cell
from .db import advisory_key
from .drivers import Connection, Runner
from .lifecycle import LEGAL_FROM, SAVABLE, Move, decide
from .models import Status, unique_id, utcnow

JSON_WHITESPACE = " \t\n\r"
SURROGATE_ESCAPE = re.compile(r"\\u[dD]")
MALFORMED_JSON = "malformed JSON"
ROW = "status, cond, counterbalance, assignmentid, workerid, hitid, bonus, mode, datastring"
SUMMARY = "uniqueid, assignmentid, hitid, status, cond, counterbalance, mode"
INSERTED = ("uniqueid", "assignmentid", "workerid", "hitid", "ipaddress", "browser", "platform", "language",
            "cond", "counterbalance", "codeversion", "beginhit", "bonus", "status", "mode")


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


@dataclass
class Summary:
    uniqueid: str
    assignmentid: str
    hitid: str
    status: int | None
    cond: int | None
    counterbalance: int | None
    mode: str | None


@dataclass
class Arrival:
    hit_id: str
    assignment_id: str
    worker_id: str
    mode: str
    ipaddress: str
    browser: str
    platform: str
    language: str


class Refused(Exception):
    """A save or move the rules refuse; becomes a JSON error response."""

    def __init__(self, status_code: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code, self.error, self.detail, self.extra = status_code, error, detail, extra


class RepeatWorker(Exception):
    """The worker already took part in another assignment and repeats are not allowed."""


def _in_list(values: Any) -> str:
    return ", ".join(str(int(value)) for value in sorted(values))


class ParticipantStore:
    """Statements for one participants table on one database, run by the fastest safe driver path."""

    def __init__(self, engine: AsyncEngine, table: str, *, background_checkpoints: bool = False) -> None:
        self.runner = Runner(engine, background_checkpoints=background_checkpoints)
        self.postgres = self.runner.postgres
        quoted = engine.dialect.identifier_preparer.quote(table)
        self.table = quoted
        savable = _in_list(SAVABLE)
        if self.postgres:
            stored_length = "coalesce(json_array_length(datastring::json -> 'data'), 0)"
        else:
            # A stored record SQLite cannot read counts as unknown (NULL), so the UPDATE does not apply and the
            # locked path below counts its trials with the forgiving reader: never as none.
            stored_length = ("(CASE WHEN coalesce(datastring, '') = '' THEN 0 WHEN json_valid(datastring) "
                             "THEN coalesce(json_array_length(datastring, '$.data'), 0) END)")
        self.sql_save = self._sql(f"UPDATE {quoted} SET datastring = ? WHERE uniqueid = ? "
                                  f"AND status IN ({savable}) AND {stored_length} <= ?")
        # On SQLite the statement itself checks the body: strict JSON (json_valid keeps to RFC 8259 in every
        # version, where later ones let the other JSON functions read JSON5) with at least as many trials as
        # are stored. Its parser does that in a fraction of the time orjson takes to build the Python objects
        # of a 30 KiB datastring only to count them; the Python check runs when this one says no. Each JSON
        # function parses its text anew, so the statement calls as few as it can: that the body is an object
        # is seen from its first character (_sqlite_may_judge), and the stored record is counted without
        # json_valid, since one that is not JSON makes the statement fail, unchanged, and Python decides.
        self.sql_save_checked = (
            f"UPDATE {quoted} SET datastring = ?1 WHERE uniqueid = ?2 AND status IN ({savable}) "
            # CASE, not AND: SQLite's JSON functions raise on malformed text, and AND may evaluate both sides.
            f"AND (CASE WHEN json_valid(?1) THEN coalesce(json_array_length(datastring, '$.data'), 0) "
            f"<= coalesce(json_array_length(?1, '$.data'), 0) ELSE 0 END)")
        self.sql_row_for_client = (f"SELECT {ROW}, CASE WHEN json_valid(datastring) THEN "
                                   f"json_type(datastring) = 'object' ELSE 0 END FROM {quoted} WHERE uniqueid = ?")
        self.sql_row = self._sql(f"SELECT {ROW} FROM {quoted} WHERE uniqueid = ?")
        self.sql_row_locked = self.sql_row + (" FOR UPDATE" if self.postgres else "")
        self.sql_write = self._sql(f"UPDATE {quoted} SET datastring = ? WHERE uniqueid = ?")
        self.sql_resume = self._sql(f"UPDATE {quoted} SET datastring = ?, status = ? WHERE uniqueid = ?")
        self.sql_worker = self._sql(f"SELECT {SUMMARY} FROM {quoted} WHERE workerid = ? ORDER BY beginhit")
        self.sql_count_worker = self._sql(f"SELECT count(*) FROM {quoted} WHERE workerid = ?")
        self.cells = CellCounter(table, quoted, postgres=self.postgres, sql=self._sql)
        self.sql_insert = self._sql(f"INSERT INTO {quoted} ({', '.join(INSERTED)}) "
                                    f"VALUES ({', '.join('?' for _ in INSERTED)})")

    def _sql(self, sql: str) -> str:
        """Write statements with ?; PostgreSQL's driver numbers them ($1, $2, ...)."""
        if not self.postgres:
            return sql
        pieces = sql.split("?")
        return "".join(piece + (f"${number}" if number < len(pieces) else "")
                       for number, piece in enumerate(pieces, start=1))

    def _now(self) -> datetime | str:
        now = utcnow()
        # SQLite stores DateTime as text; this is the form SQLAlchemy and psiTurk wrote.
        return now if self.postgres else now.isoformat(sep=" ")

    def _time(self, moment: datetime) -> datetime | str:
        return moment if self.postgres else moment.isoformat(sep=" ")

    async def aclose(self) -> None:
        await self.runner.aclose()

    async def _row(self, connection: Connection, uid: str, *, locked: bool = False) -> Row | None:
        found = await connection.fetchrow(self.sql_row_locked if locked else self.sql_row, uid)
        return Row(*found) if found is not None else None

    async def read(self, uid: str) -> Row | None:
        return await self.runner.run(lambda connection: self._row(connection, uid))

    async def read_for_client(self, uid: str) -> tuple[Row, bool] | None:
        """The row, and whether its datastring is a JSON object the client can be given back as it is."""
        if self.postgres:
            row = await self.read(uid)
            return (row, records.parse_record(row.datastring) is not None) if row else None
        # Asked of SQLite's JSON parser in the same statement: far cheaper than building the record in Python
        # only to throw it away. What it refuses (psiTurk wrote NaN, say) Python still gets to judge.
        found = await self.runner.run(lambda connection: connection.fetchrow(self.sql_row_for_client, uid))
        if found is None:
            return None
        row = Row(*found[:-1])
        return row, bool(found[-1]) or records.parse_record(row.datastring) is not None

    async def rows_of_worker(self, worker_id: str) -> list[Summary]:
        async def work(connection: Connection) -> list[Summary]:
            return [Summary(*row) for row in await connection.fetchall(self.sql_worker, worker_id)]
        return await self.runner.run(work)

    async def create(self, arrival: Arrival, *, codeversion: str, cutoff_minutes: float, allow_repeats: bool,
                     choose: Callable[[dict[Cell, int]], Cell]) -> tuple[Summary, bool]:
        """The participant for this arrival, created with a condition unless another request just did.

        Counting and inserting happen under one database lock per (codeversion, mode) — an advisory lock on
        PostgreSQL, the write lock on SQLite — so simultaneous arrivals, in any number of server processes,
        see each other's rows and fill the cells evenly. `choose` must not wait on anything.
        """
        uid = unique_id(arrival.worker_id, arrival.assignment_id)

        async def work(connection: Connection) -> tuple[Summary, bool]:
            async with connection.transaction():
                if self.postgres:
                    await connection.fetchrow("SELECT pg_advisory_xact_lock($1)",
                                              advisory_key(f"counterbalance:{codeversion}:{arrival.mode}"))
                existing = await self._row(connection, uid)
                if existing is not None:
                    return _summary(uid, existing), False
                if not allow_repeats:
                    (others,) = await connection.fetchrow(self.sql_count_worker, arrival.worker_id) or (0,)
                    if others:
                        raise RepeatWorker(arrival.worker_id)
                counts = await self.cells.counts(
                    connection, codeversion=codeversion, mode=arrival.mode,
                    started_after=self._time(utcnow() - timedelta(minutes=cutoff_minutes)))
                cond, counter = choose(counts)
                await connection.execute(
                    self.sql_insert, uid, arrival.assignment_id, arrival.worker_id, arrival.hit_id,
                    arrival.ipaddress, arrival.browser, arrival.platform, arrival.language, cond, counter,
                    codeversion, self._now(), 0.0, int(Status.ALLOCATED), arrival.mode)
                return Summary(uid, arrival.assignment_id, arrival.hit_id, int(Status.ALLOCATED), cond, counter,
                               arrival.mode), True

        return await self.runner.run(work)

    async def save_full(self, uid: str, body: str) -> None:
        """Store a full save as sent, unless it is not a JSON object, the record is frozen, or the save would
        drop stored trials."""
        if not self.postgres and _sqlite_may_judge(body) and await self._save_checked(uid, body):
            return
        record = records.parse_record(body, strict=True)
        if record is None:
            raise Refused(400, "invalid_json", "the body must be a JSON object")
        data_length = records.list_length(record, "data")

        async def work(connection: Connection) -> None:
            try:
                if await connection.execute(self.sql_save, body, uid, data_length):
                    return
            except Exception as exc:
                # A stored datastring PostgreSQL cannot read as JSON: decide in Python below instead.
                if not self.postgres or not {"json", "array"} & set(str(exc).lower().split()):
                    raise
            async with connection.transaction():
                row = await self._row(connection, uid, locked=True)
                row = _savable(uid, row)
                stored_length = records.list_length(records.parse_record(row.datastring), "data")
                if data_length < stored_length:
                    raise Refused(409, "stale_save", "this save holds fewer trials than are already stored; "
                                  "the longer record is kept", data_length=stored_length)
                await connection.execute(self.sql_write, body, uid)

        await self.runner.run(work)

    async def _save_checked(self, uid: str, body: str) -> bool:
        """A full save as SQLite's one checked UPDATE; False when it did not apply and Python must decide."""
        try:
            return bool(await self.runner.run(
                lambda connection: connection.execute(self.sql_save_checked, body, uid)))
        except sqlite3.OperationalError as exc:
            if MALFORMED_JSON not in str(exc):
                raise
            return False  # the stored record is not JSON SQLite reads (psiTurk could write NaN)

    async def save_delta(self, uid: str, delta: dict[str, Any]) -> tuple[int, int]:
        """Apply an incremental save under the row's lock; the stored lengths of data and eventdata."""
        async def work(connection: Connection) -> tuple[int, int]:
            async with connection.transaction():
                row = _savable(uid, await self._row(connection, uid, locked=True))
                current = row.record()
                try:
                    updated = records.apply_delta(current, delta)
                except records.Gap:
                    raise Refused(409, "gap", "this save starts after the end of the stored data; resend from "
                                  "the stored lengths", data_length=records.list_length(current, "data"),
                                  eventdata_length=records.list_length(current, "eventdata")) from None
                await connection.execute(self.sql_write, records.dumps(updated), uid)
                return records.list_length(updated, "data"), records.list_length(updated, "eventdata")

        return await self.runner.run(work)

    async def move(self, uid: str, target: Status, *, stamp: str | None = None) -> tuple[Move | None, int | None]:
        """Move to `target` when the status machine allows it, in one guarded UPDATE.

        Returns (None, None) for an unknown participant, else the verdict and the status now stored.
        """
        setting = f", {stamp} = ?" if stamp else ""
        sql = self._sql(f"UPDATE {self.table} SET status = ?{setting} WHERE uniqueid = ? "
                        f"AND status IN ({_in_list(LEGAL_FROM[target])})")
        params: tuple[Any, ...] = (int(target), self._now(), uid) if stamp else (int(target), uid)

        async def work(connection: Connection) -> tuple[Move | None, int | None]:
            row = None
            for _attempt in range(3):
                if await connection.execute(sql, *params):
                    return Move.APPLY, int(target)
                row = await self._row(connection, uid)
                if row is None:
                    return None, None
                verdict = decide(row.status, target)
                if verdict is not Move.APPLY:
                    return verdict, row.status
                # The status changed between the two statements to one we may move from: try again.
            return Move.ILLEGAL, row.status if row else None

        return await self.runner.run(work)

    async def resume(self, uid: str, *, timestamp_ms: int) -> int | None:
        """A returning participant goes back to STARTED; the return is recorded as a "resumed" event."""
        async def work(connection: Connection) -> int | None:
            async with connection.transaction():
                row = await self._row(connection, uid, locked=True)
                if row is None:
                    return None
                record = records.add_event(row.record(), eventtype="resumed", value=Status(row.status).name,
                                           timestamp_ms=timestamp_ms)
                await connection.execute(self.sql_resume, records.dumps(record), int(Status.STARTED), uid)
                return row.status

        return await self.runner.run(work)


def _sqlite_may_judge(body: str) -> bool:
    """Whether SQLite's check of this save would agree with orjson's: the body opens as an object and has none
    of the escapes SQLite lets through and orjson (so every later reader) refuses, lone surrogates \\uDxxx."""
    if not body.lstrip(JSON_WHITESPACE).startswith("{"):
        return False
    # A backslash is looked for at memory speed; the pattern only runs over the bodies that have one.
    return "\\" not in body or SURROGATE_ESCAPE.search(body) is None


def _summary(uid: str, row: Row) -> Summary:
    return Summary(uid, row.assignmentid, row.hitid, row.status, row.cond, row.counterbalance, row.mode)


def _savable(uid: str, row: Row | None) -> Row:
    if row is None:
        raise Refused(404, "unknown_participant", f"no participant {uid!r}")
    if row.status not in SAVABLE:
        raise Refused(409, "record_frozen", f"the record is {Status(row.status).name}: approved or paid "
                      "participants' data no longer changes", current_status=row.status)
    return row
