"""The participant's datastring as data: reading it, the base record, incremental saves. Pure functions."""

from __future__ import annotations

import json
from typing import Any

import orjson

APPENDED = ("data", "eventdata")
MERGED = "questiondata"


class Gap(Exception):
    """A save starts past the end of what is stored: something in between never arrived."""


def parse_record(datastring: str | bytes | None, *, strict: bool = False) -> dict[str, Any] | None:
    """The datastring as a dict, or None when it is empty, not JSON, or not a JSON object.

    `strict` is how a save is judged: orjson alone. A stored record is read more forgivingly: what orjson
    refuses but Python's json reads (the NaN psiTurk's Flask could write, a lone surrogate escape) is still
    the participant's data, never to be taken for missing."""
    if not datastring:
        return None
    try:
        record = orjson.loads(datastring)
    except orjson.JSONDecodeError:
        if strict:
            return None
        try:
            record = json.loads(datastring)
        except (ValueError, RecursionError):
            return None
    return record if isinstance(record, dict) else None


def base_record(*, cond: int | None, counterbalance: int | None, assignment_id: str, worker_id: str,
                hit_id: str, bonus: float | None) -> dict[str, Any]:
    """What GET /sync answers before the first save: the fields the old client expects to find."""
    return {"condition": cond, "counterbalance": counterbalance, "assignmentId": assignment_id,
            "workerId": worker_id, "hitId": hit_id, "bonus": bonus if bonus is not None else 0}


def list_length(record: dict[str, Any] | None, key: str) -> int:
    value = record.get(key) if record else None
    return len(value) if isinstance(value, list) else 0


def merge_rows(stored: list[Any], start: int, incoming: list[Any]) -> list[Any]:
    """Append `incoming`, sent as beginning at position `start`, skipping rows already stored from there on.

    A retried or duplicated save therefore adds nothing twice, and a row the server added itself (a resume
    event) does not hide a new row from the client that was meant for the same position.
    """
    if start > len(stored):
        raise Gap(start)
    window = list(stored[start:])
    merged = list(stored)
    for row in incoming:
        if row in window:
            window.remove(row)
        else:
            merged.append(row)
    return merged


def apply_delta(record: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The record after an incremental save; the same record a full save of the client's model would give."""
    updated = dict(record)
    updated.update(delta.get("attributes") or {})
    for key in APPENDED:
        rows = delta.get(key) or []
        existing = record.get(key) if isinstance(record.get(key), list) else []
        if rows or key not in updated:
            updated[key] = merge_rows(existing, int(delta.get(f"{key}_from", 0)), rows)
    questions = delta.get(MERGED) or {}
    if questions or MERGED not in updated:
        current = record.get(MERGED) if isinstance(record.get(MERGED), dict) else {}
        updated[MERGED] = {**current, **questions}
    return updated


def add_event(record: dict[str, Any], *, eventtype: str, value: Any, timestamp_ms: int) -> dict[str, Any]:
    """Append a server-side event, with psiTurk's interval (ms since the previous event)."""
    events = list(record.get("eventdata") or []) if isinstance(record.get("eventdata"), list) else []
    previous = events[-1].get("timestamp") if events and isinstance(events[-1], dict) else None
    interval = timestamp_ms - previous if isinstance(previous, int | float) else 0
    events.append({"eventtype": eventtype, "value": value, "timestamp": timestamp_ms, "interval": interval})
    return {**record, "eventdata": events}


def dumps(record: dict[str, Any]) -> str:
    try:
        return orjson.dumps(record).decode()
    except TypeError:
        # A record only Python's json could read (see parse_record) is written back the same way, escaped.
        return json.dumps(record, separators=(",", ":"))
