"""Data export: psiTurk's CSVs byte for byte, JSON and JSON Lines, skipping bad records, streaming.

The files in tests/golden/ were written once from the study in admin_data.golden_participants() and checked by
hand against psiTurk's layout (spec §15). A difference is a format change: review it; to accept one, run with
PSITURK_REGENERATE_GOLDEN=1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from admin_data import AUTH, FIXTURE_UID, GOLDEN, TOKEN, golden_participants, insert, participant, record
from psiturk_async.export import csv_text, parse_datastring
from psiturk_async.settings import Settings

KINDS = ["trialdata", "eventdata", "questiondata"]
FORMATS = ["csv", "json", "jsonl"]


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(admin_token=TOKEN)


def test_csv_rows_are_written_as_psiturk_wrote_them() -> None:
    # The rows psiTurk 3.3.1 was seen writing (spec §15).
    assert csv_text("trialdata", [("W1:A1", 0, 1, {"phase": "TEST", "hit": True})]) == \
        'W1:A1,0,1,"{""phase"": ""TEST"", ""hit"": true}"\r\n'
    assert csv_text("eventdata", [("W1:A1", "window_resize", 0, [933, 708], 5)]) == \
        'W1:A1,window_resize,0,"[933, 708]",5\r\n'
    assert csv_text("eventdata", [("W1:A1", "initialized", 0, None, 5)]) == "W1:A1,initialized,0,,5\r\n"
    assert csv_text("questiondata", [("W1:A1", "answers", [1, 2])]) == 'W1:A1,answers,"[1, 2]"\r\n'


def test_datastrings_psiturk_could_read_are_read_even_where_orjson_refuses() -> None:
    assert parse_datastring('{"rt": NaN, "big": 123456789012345678901234567890}')[0]["big"] == \
        123456789012345678901234567890
    assert parse_datastring(None) == (None, None)
    data, problem = parse_datastring('{"data": [')
    assert data is None and problem is not None and problem.startswith("not JSON")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
async def test_export_matches_the_golden_file(app: FastAPI, client: httpx.AsyncClient, kind: str,
                                              fmt: str) -> None:
    await insert(app, golden_participants())
    response = await client.get(f"/api/export/{kind}", params={"format": fmt}, headers=AUTH)
    assert response.status_code == 200
    golden = GOLDEN / f"{kind}.{fmt}"
    if os.environ.get("PSITURK_REGENERATE_GOLDEN"):
        golden.write_bytes(response.content)
    assert response.content == golden.read_bytes()
    assert response.headers["content-disposition"] == f'attachment; filename="{kind}.{fmt}"'
    if fmt != "csv":
        lines = response.content.decode().splitlines()
        records = json.loads(response.content) if fmt == "json" else [json.loads(line) for line in lines]
        assert records and all(record["uniqueid"] for record in records)


async def test_the_quoting_in_the_golden_files_is_psiturks(app: FastAPI, client: httpx.AsyncClient) -> None:
    await insert(app, golden_participants())
    questions = (await client.get("/api/export/questiondata", headers=AUTH)).content.decode()
    assert f'{FIXTURE_UID},comments,"Clear, short and ""fun"".\nNo problems."\r\n' in questions
    assert 'B2WORKER:B2ASSIGNMENT,quote,"say ""hi"""\r\n' in questions
    assert 'B2WORKER:B2ASSIGNMENT,newline,"one\r\ntwo"\r\n' in questions
    trials = (await client.get("/api/export/trialdata", headers=AUTH)).content.decode()
    assert (f'{FIXTURE_UID},10,1764072038000,"{{""phase"": ""RECALL"", ""prompt"": ""Type every word you '
            f'remember."", ""response"": ""ship, red, \\""green\\""\\nand one I forget"", ""rt"": 11342}}"\r\n'
            ) in trials


async def test_a_malformed_datastring_is_reported_and_skipped(app: FastAPI, client: httpx.AsyncClient,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    await insert(app, golden_participants())
    with caplog.at_level(logging.INFO, logger="psiturk_async.export"):
        response = await client.get("/api/export/eventdata", headers=AUTH)
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0].startswith(FIXTURE_UID) and lines[-1].startswith("B2WORKER:B2ASSIGNMENT,flag,")
    assert "C3BROKEN" not in response.text and "E5PARTIAL" not in response.text
    skipped = [entry.getMessage() for entry in caplog.records if "skipped participant" in entry.getMessage()]
    assert skipped == ["export eventdata: skipped participant C3BROKEN:C3ASSIGNMENT: not JSON (Expecting ',' "
                       "delimiter: line 1 column 30 (char 29))",
                       "export eventdata: skipped participant E5PARTIAL:E5ASSIGNMENT: missing key 'interval'"]
    assert any("4 participants read" in entry.getMessage() and "2 participants skipped" in entry.getMessage()
               for entry in caplog.records)


async def test_the_export_is_filtered_like_the_list(app: FastAPI, client: httpx.AsyncClient) -> None:
    await insert(app, golden_participants())
    finished = await client.get("/api/export/questiondata", params={"completed": "true"}, headers=AUTH)
    assert "E5PARTIAL" not in finished.text and FIXTURE_UID in finished.text
    condition = await client.get("/api/export/questiondata", params={"condition": 1, "format": "jsonl"},
                                 headers=AUTH)
    assert {json.loads(line)["uniqueid"] for line in condition.text.splitlines()} == {FIXTURE_UID}


@pytest.mark.parametrize(("fmt", "empty"), [("csv", b""), ("json", b"[]\n"), ("jsonl", b"")])
async def test_an_empty_study_exports_an_empty_file(client: httpx.AsyncClient, fmt: str, empty: bytes) -> None:
    response = await client.get("/api/export/trialdata", params={"format": fmt}, headers=AUTH)
    assert response.status_code == 200 and response.content == empty


async def test_unknown_kinds_and_formats_are_refused(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/export/bonusdata", headers=AUTH)).status_code == 422
    refused = await client.get("/api/export/trialdata", params={"format": "xlsx"}, headers=AUTH)
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_request"


async def test_the_export_streams(app: FastAPI) -> None:
    """The first rows leave before the last participant is read: one that appears after they left is in it."""
    await insert(app, [participant(f"W{n}", f"A{n}", datastring=json.dumps(record(f"W{n}", f"A{n}")))
                       for n in range(3)])
    chunks: list[bytes] = []
    done = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body":
            if message.get("body"):
                if not chunks:
                    await insert(app, [participant("ZZLATE", "A9", datastring=json.dumps(record("ZZLATE", "A9")))])
                chunks.append(message["body"])
            if not message.get("more_body"):
                done.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/api/export/trialdata", "raw_path": b"/api/export/trialdata",
             "root_path": "", "query_string": b"format=csv", "client": ("203.0.113.7", 50000),
             "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {TOKEN}".encode())]}
    await app(scope, receive, send)
    assert b"ZZLATE" not in chunks[0]
    assert b"".join(chunks).count(b"ZZLATE:A9,") == 14
