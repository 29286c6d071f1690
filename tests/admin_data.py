"""Participants for the admin API, export and CLI tests, built from the shared datastring fixture."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from psiturk_async.db import create_engine, session_factory
from psiturk_async.models import Participant, Status
from psiturk_async.settings import Settings

FIXTURE = Path(__file__).parent / "fixtures" / "datastring.json"
GOLDEN = Path(__file__).parent / "golden"
TOKEN = "test-admin-token-5f1c0b8e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FIXTURE_UID = "A3FIXTUREWORKER:3FIXTUREASSIGNMENTID01"


def record(worker: str, assignment: str, hit: str = "H1") -> dict[str, Any]:
    """The fixture's model, moved to another worker and assignment."""
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    uid = f"{worker}:{assignment}"
    data.update(workerId=worker, assignmentId=assignment, hitId=hit, id=uid)
    for trial in data["data"]:
        trial["uniqueid"] = uid
    return data


def participant(worker: str, assignment: str, *, datastring: str | None = None, hit: str = "H1",
                status: int = Status.COMPLETED, cond: int = 0, counterbalance: int = 0, mode: str = "live",
                codeversion: str = "1.0", beginhit: datetime | None = None) -> Participant:
    return Participant(uniqueid=f"{worker}:{assignment}", workerid=worker, assignmentid=assignment, hitid=hit,
                       status=int(status), cond=cond, counterbalance=counterbalance, mode=mode,
                       codeversion=codeversion, beginhit=beginhit or datetime(2026, 11, 25, 12, 0, 0),
                       ipaddress="203.0.113.9", browser="firefox", platform="linux", language="en-US",
                       datastring=datastring)


def golden_participants() -> list[Participant]:
    """The export goldens' study: the fixture, an awkward record, a broken one, an empty one, a partial one."""
    awkward = record("B2WORKER", "B2ASSIGNMENT")
    awkward["data"].append({"uniqueid": "B2WORKER:B2ASSIGNMENT", "current_trial": 14, "dateTime": 1764072060000,
                            "trialdata": {"text": "naïve, “quoted” ✓", "x": 0.1, "none": None}})
    awkward["eventdata"].append({"eventtype": "resize", "value": {"w": 1, "h": 2}, "timestamp": 1764072061000,
                                 "interval": 1000.5})
    awkward["eventdata"].append({"eventtype": "flag", "value": True, "timestamp": 1764072062000,
                                 "interval": 1000})
    awkward["questiondata"] = {"list": [1, 2], "none": None, "bool": True, "float": 2.5, "comma": "a, b",
                               "quote": 'say "hi"', "newline": "one\r\ntwo"}
    partial = {"data": [], "eventdata": [{"eventtype": "focus"}], "questiondata": {"q": "a"}}
    return [
        participant("A3FIXTUREWORKER", "3FIXTUREASSIGNMENTID01", cond=1,
                    datastring=FIXTURE.read_text(encoding="utf-8")),
        participant("B2WORKER", "B2ASSIGNMENT", cond=0, counterbalance=1, datastring=json.dumps(awkward)),
        participant("C3BROKEN", "C3ASSIGNMENT", datastring='{"data": [{"current_trial": 0'),
        participant("D4EMPTY", "D4ASSIGNMENT", status=Status.ALLOCATED, mode="sandbox"),
        participant("E5PARTIAL", "E5ASSIGNMENT", status=Status.QUITEARLY, datastring=json.dumps(partial)),
    ]


async def insert(app: FastAPI, participants: list[Participant]) -> None:
    async with app.state.sessions() as session:
        session.add_all(participants)
        await session.commit()


def seed(settings: Settings, participants: list[Participant]) -> None:
    """Insert from synchronous code (an engine of its own, on an event loop of its own)."""
    async def run() -> None:
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as session:
                session.add_all(participants)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
