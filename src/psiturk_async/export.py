"""Participant data as files: psiTurk's three CSVs exactly as `download_datafiles` wrote them, JSON and JSON Lines.

The CSVs have no header, Python's default csv dialect (commas, quotes only when needed, CRLF) and one row
per trial, event or question, as psiTurk 3 wrote them, so old analysis scripts read them unchanged. JSON
(one array) and JSON Lines hold one record per row, with the column names below and the values as stored.

Participants are read in batches in uniqueid order, each batch in a short transaction of its own, so the
memory used stays flat however many participants there are, the first bytes leave before the last
participant is read, and no transaction stays open while a slow client drains the response.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from .models import Participant
from .schemas import ExportFormat, ExportKind

logger = logging.getLogger(__name__)

COLUMNS: dict[str, tuple[str, ...]] = {
    "trialdata": ("uniqueid", "current_trial", "dateTime", "trialdata"),
    "eventdata": ("uniqueid", "eventtype", "interval", "value", "timestamp"),
    "questiondata": ("uniqueid", "key", "value"),
}
FIRST_BATCH = 16
MAX_BATCH = 1000
BATCH_CHARS = 4 * 1024 * 1024
FLUSH_BYTES = 64 * 1024


def parse_datastring(datastring: str | None) -> tuple[Any, str | None]:
    """The datastring parsed (None when empty), and why not when it cannot be parsed."""
    if not datastring:
        return None, None
    try:
        return orjson.loads(datastring), None
    except orjson.JSONDecodeError:
        pass
    try:
        # What orjson refuses but psiTurk's reader took: NaN, Infinity, integers past 64 bits.
        return json.loads(datastring), None
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON ({exc})"


def extract(kind: ExportKind, uniqueid: str, record: Any) -> list[tuple[Any, ...]]:
    """One participant's rows, as psiTurk picked them out. Raises where psiTurk skipped the participant."""
    if kind == "trialdata":
        return [(uniqueid, trial["current_trial"], trial["dateTime"], trial["trialdata"])
                for trial in record["data"]]
    if kind == "eventdata":
        return [(uniqueid, event["eventtype"], event["interval"], event["value"], event["timestamp"])
                for event in record["eventdata"]]
    questions = record["questiondata"]
    return [(uniqueid, key, questions[key]) for key in questions]


def csv_text(kind: ExportKind, rows: list[tuple[Any, ...]]) -> str:
    """Rows as psiTurk's csv.writer wrote them: None empty, other values through str(), trialdata as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if kind == "trialdata":
        rows = [(*row[:3], json.dumps(row[3])) for row in rows]
    writer.writerows(rows)
    return buffer.getvalue()


def json_record(kind: ExportKind, row: tuple[Any, ...]) -> bytes:
    record = dict(zip(COLUMNS[kind], row, strict=True))
    try:
        return orjson.dumps(record)
    except TypeError:
        # Integers past 64 bits or lone surrogates: the standard library writes those (ASCII-escaped).
        return json.dumps(record).encode()


def encode_rows(kind: ExportKind, fmt: ExportFormat, rows: list[tuple[Any, ...]], *, opened: bool) -> bytes:
    """One participant's rows in the file's format; `opened` once a JSON array has its first record."""
    if fmt == "csv":
        return csv_text(kind, rows).encode("utf-8", "replace")
    records = [json_record(kind, row) for row in rows]
    if fmt == "jsonl":
        return b"\n".join(records) + b"\n"
    return (b",\n" if opened else b"[\n") + b",\n".join(records)


@dataclass
class ExportReport:
    """What one export did; logged when it ends, skipped participants named as they are met."""

    kind: str
    format: str
    participants: int = 0
    rows: int = 0
    skipped: int = 0


def participant_rows(kind: ExportKind, uniqueid: str, datastring: str | None,
                     report: ExportReport) -> list[tuple[Any, ...]]:
    """The participant's rows; none (and a warning) when the datastring cannot give them."""
    record, problem = parse_datastring(datastring)
    if record is None and problem is None:
        return []
    if problem is None:
        try:
            return extract(kind, uniqueid, record)
        except KeyError as exc:
            problem = f"missing key {exc}"
        except (TypeError, IndexError) as exc:
            problem = f"unexpected shape ({exc})"
    report.skipped += 1
    logger.warning("export %s: skipped participant %s: %s", kind, uniqueid, problem)
    return []


async def datastring_batches(engine: AsyncEngine, where: Sequence[ColumnElement[bool]], *,
                             batch_chars: int = BATCH_CHARS) -> AsyncIterator[list[tuple[str, str]]]:
    """(uniqueid, datastring) of the matching participants, in uniqueid order, a batch per transaction.

    A batch holds about `batch_chars` of datastrings (sized from the previous batch), so studies with huge
    records take small batches and studies with small ones take few queries.
    """
    size, after = FIRST_BATCH, None
    while True:
        query = (select(col(Participant.uniqueid), col(Participant.datastring))
                 .where(*where, col(Participant.datastring).is_not(None))
                 .order_by(col(Participant.uniqueid)).limit(size))
        if after is not None:
            query = query.where(col(Participant.uniqueid) > after)
        async with engine.connect() as connection:
            rows = [(row[0], row[1]) for row in (await connection.execute(query)).all()]
        if not rows:
            return
        yield rows
        after = rows[-1][0]
        average = sum(len(datastring) for _, datastring in rows) / len(rows)
        size = max(1, min(MAX_BATCH, int(batch_chars / max(average, 1.0))))


async def stream(engine: AsyncEngine, *, kind: ExportKind, fmt: ExportFormat,
                 where: Sequence[ColumnElement[bool]] = (),
                 batch_chars: int = BATCH_CHARS) -> AsyncIterator[bytes]:
    """The export file, in chunks of about FLUSH_BYTES (at least one per batch of participants)."""
    report = ExportReport(kind=kind, format=fmt)
    pending: list[bytes] = []
    pending_size = 0
    opened = False
    async for batch in datastring_batches(engine, where, batch_chars=batch_chars):
        for uniqueid, datastring in batch:
            report.participants += 1
            rows = participant_rows(kind, uniqueid, datastring, report)
            if not rows:
                continue
            report.rows += len(rows)
            piece = encode_rows(kind, fmt, rows, opened=opened)
            opened = True
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= FLUSH_BYTES:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            yield b"".join(pending)
            pending, pending_size = [], 0
    if fmt == "json":
        yield b"\n]\n" if opened else b"[]\n"
    log = logger.warning if report.skipped else logger.info
    log("export %s.%s: %d participants read, %d rows written, %d participants skipped",
        kind, fmt, report.participants, report.rows, report.skipped)
