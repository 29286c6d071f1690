"""Helpers for the black-box participant tests: browsers, arrivals, and reading rows back from the database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from psiturk_async.identity import cookie_name
from psiturk_async.main import create_app
from psiturk_async.migrate import upgrade
from psiturk_async.models import Participant
from psiturk_async.settings import Settings

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
IPAD_SAFARI = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/16.6 Mobile/15E148 Safari/604.1")
DATASTRING = Path(__file__).parent / "fixtures" / "datastring.json"
ERROR_MARKER = re.compile(r"<b>Error</b>: (\d+)")


def ids(worker: str = "W1", assignment: str = "A1", hit: str = "H1", mode: str = "live") -> dict[str, str]:
    """psiTurk 3's query parameters for one worker's assignment."""
    return {"hitId": hit, "assignmentId": assignment, "workerId": worker, "mode": mode}


def uid_of(params: dict[str, str]) -> str:
    return f"{params['workerId']}:{params['assignmentId']}"


async def arrive(http: httpx.AsyncClient, **kwargs: str) -> str:
    """Open /exp as a new participant (the browser keeps the secret cookie); returns the unique id."""
    params = ids(**kwargs)
    response = await http.get("/exp", params=params)
    assert response.status_code == 200, response.text
    return uid_of(params)


async def start(http: httpx.AsyncClient, uid: str) -> None:
    assert (await http.post("/inexp", data={"uniqueId": uid})).status_code == 200


async def quit_early(http: httpx.AsyncClient, uid: str) -> None:
    assert (await http.post("/quitter", data={"uniqueId": uid})).status_code == 200


async def complete(http: httpx.AsyncClient, uid: str) -> None:
    assert (await http.get("/complete", params={"uniqueId": uid, "mode": "live"})).status_code == 200


async def submit(http: httpx.AsyncClient, uid: str) -> None:
    assert (await http.get("/worker_submitted", params={"uniqueId": uid})).status_code == 200


STEPS = {"allocated": [], "started": [start], "quit": [start, quit_early], "completed": [complete],
         "submitted": [complete, submit]}


async def reach(http: httpx.AsyncClient, uid: str, where: str) -> None:
    """Drive a newly allocated participant to `where` (a key of STEPS) through the participant routes."""
    for step in STEPS[where]:
        await step(http, uid)


@asynccontextmanager
async def browser(app: FastAPI, *, address: str = "203.0.113.7", base_url: str = "http://testserver",
                  headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser on the same app: its own cookie jar, so it holds no participant's secret."""
    transport = httpx.ASGITransport(app=app, client=(address, 50001))
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as http:
        yield http


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app built now (after the test changed the project), migrated and with its lifespan running."""
    await asyncio.to_thread(upgrade, settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def serve_until_exit(project_dir: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`psiturk-async serve --no-migrate` in the project, for the start-up checks that stop it at once."""
    return subprocess.run([sys.executable, "-m", "psiturk_async.cli", "serve", "--no-migrate", "--port", "1"],
                          cwd=project_dir, env={**os.environ, **environ}, capture_output=True, text=True,
                          timeout=60)


def secret_of(http: httpx.AsyncClient, uid: str) -> str | None:
    """The participant secret this browser holds for `uid` (from the cookie /exp set)."""
    return http.cookies.get(cookie_name(uid))


def error_number(response: httpx.Response) -> int | None:
    """psiTurk's error number from a rendered error page, or None when the page is not one."""
    found = ERROR_MARKER.search(response.text)
    return int(found.group(1)) if found else None


def fixture_record() -> dict[str, Any]:
    """The shared psiturk.js model (tests/fixtures/datastring.json), a fresh copy each call."""
    return json.loads(DATASTRING.read_text(encoding="utf-8"))


def _table() -> Any:
    return Participant.__table__  # type: ignore[attr-defined]


async def row(app: FastAPI, uid: str) -> dict[str, Any] | None:
    """The participant's stored row, every column, read straight from the database."""
    async with app.state.engine.connect() as connection:
        found = (await connection.execute(select(_table()).where(_table().c.uniqueid == uid))).mappings().first()
    return dict(found) if found else None


async def rows(app: FastAPI) -> list[dict[str, Any]]:
    async with app.state.engine.connect() as connection:
        return [dict(found) for found in (await connection.execute(select(_table()))).mappings()]


async def stored_record(app: FastAPI, uid: str) -> dict[str, Any] | None:
    """The stored datastring, parsed (None before the first save)."""
    found = await row(app, uid)
    assert found is not None, uid
    return json.loads(found["datastring"]) if found["datastring"] else None


async def set_row(app: FastAPI, uid: str, **values: Any) -> None:
    """Change a row behind the server's back (statuses set by the MTurk side, ages for the cutoff)."""
    async with app.state.engine.begin() as connection:
        await connection.execute(update(_table()).where(_table().c.uniqueid == uid).values(**values))


async def delete_row(app: FastAPI, uid: str) -> None:
    async with app.state.engine.begin() as connection:
        await connection.execute(delete(_table()).where(_table().c.uniqueid == uid))
