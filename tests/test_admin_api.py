"""The admin API: status, mode, config, debug link, participants, counts; GETs change nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import event, select, text

from admin_data import AUTH, FIXTURE, FIXTURE_UID, TOKEN, golden_participants, insert, participant
from conftest import started_app
from psiturk_async import __version__
from psiturk_async.models import AppState, Participant, Status
from psiturk_async.reports import config_entries
from psiturk_async.schemas import STATUS_NAMES
from psiturk_async.settings import Settings

DEBUG_LINK = re.compile(r"\?assignmentId=debug[A-Z0-9]{6}&hitId=debug[A-Z0-9]{6}&workerId=debug[A-Z0-9]{6}"
                        r"&mode=debug$")


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(admin_token=TOKEN, experiment_code_version="1.0")


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> httpx.AsyncClient:
    client.headers.update(AUTH)
    return client


def test_the_cli_knows_the_status_names_of_the_models() -> None:
    assert list(STATUS_NAMES) == [status.name for status in sorted(Status)]


async def test_status_reports_the_server_and_its_participants(app: FastAPI, admin: httpx.AsyncClient,
                                                              database_url: str) -> None:
    await insert(app, golden_participants())
    status = (await admin.get("/api/status")).json()
    assert status["version"] == __version__
    assert status["mode"] == "sandbox" and status["codeversion"] == "1.0"
    assert status["database"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert status["participants"] == 5
    assert status["by_status"] == {"ALLOCATED": 1, "COMPLETED": 3, "QUITEARLY": 1}
    assert status["finished"] == 0  # the finished ones are live; the mode is sandbox
    await admin.patch("/api/mode", json={"mode": "live"})
    assert (await admin.get("/api/status")).json()["finished"] == 3
    assert 0 <= status["uptime_seconds"] < 600 and status["started_at"].endswith("Z")


async def test_the_mode_starts_as_launch_in_mode(make_settings: Any) -> None:
    application, lifespan = await started_app(make_settings(admin_token=TOKEN, launch_in_mode="live"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t",
                                     headers=AUTH) as http:
            assert (await http.get("/api/mode")).json() == {"mode": "live"}
    finally:
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def test_setting_the_mode_reaches_every_server_process(admin: httpx.AsyncClient, settings: Settings) -> None:
    assert (await admin.get("/api/mode")).json() == {"mode": "sandbox"}
    live = {"mode": "live"}
    assert (await admin.patch("/api/mode", json=live)).json() == {"mode": "live", "previous": "sandbox"}
    assert (await admin.patch("/api/mode", json=live)).json() == {"mode": "live", "previous": "live"}
    other, lifespan = await started_app(settings)  # another worker: its own engine, the same database
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://t",
                                     headers=AUTH) as http:
            assert (await http.get("/api/mode")).json() == {"mode": "live"}
    finally:
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", [{"mode": "debug"}, {"mode": "LIVE"}, {}])
async def test_only_sandbox_and_live_are_modes(admin: httpx.AsyncClient, body: dict[str, str]) -> None:
    response = await admin.patch("/api/mode", json=body)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert (await admin.get("/api/mode")).json() == {"mode": "sandbox"}


async def database_contents(app: FastAPI) -> list[Any]:
    async with app.state.sessions() as session:
        participants = (await session.execute(select(Participant.__table__))).all()  # type: ignore[attr-defined]
        state = (await session.execute(select(AppState.key, AppState.value))).all()
    return [sorted(map(tuple, participants)), sorted(map(tuple, state))]


async def test_no_get_route_changes_anything(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await insert(app, golden_participants())
    before = await database_contents(app)
    gets = [route.path for route in iter_route_contexts(app.routes)
            if route.path and route.path.startswith("/api") and "GET" in (route.methods or ())
            and not route.path.startswith("/api/mturk")]  # these need MTurk: see tests/test_mturk_hits.py
    assert len(gets) >= 8
    for path in gets:
        concrete = path.replace("{kind}", "trialdata").replace("{uniqueid}", FIXTURE_UID)
        assert (await admin.get(concrete)).status_code == 200, concrete
    assert await database_contents(app) == before
    async with app.state.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM psiturk_async_state WHERE key = 'mode'"))
                ).scalar_one() == 0


async def test_config_shows_each_value_with_its_source_and_hides_secrets(make_settings: Any,
                                                                         project_dir: Any) -> None:
    settings = make_settings(admin_token=TOKEN, aws_secret_access_key="AWS-SECRET-VALUE", login_pw="pw-value")
    application, lifespan = await started_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t",
                                     headers=AUTH) as http:
            response = await http.get("/api/config")
    finally:
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]
    entries = {entry["key"]: entry for entry in response.json()["entries"]}
    assert "AWS-SECRET-VALUE" not in response.text and "pw-value" not in response.text
    assert entries["aws_secret_access_key"] == {"section": "AWS Access", "key": "aws_secret_access_key",
                                                "value": "********", "source": "PSITURK_AWS_SECRET_ACCESS_KEY",
                                                "secret": True}
    assert entries["num_conds"]["source"] == str(project_dir / "config.txt")
    assert entries["server_timeout"] == {"section": "Server Parameters", "key": "server_timeout", "value": 30,
                                         "source": "default", "secret": False}
    assert entries["database_url"]["source"] == "DATABASE_URL"


def test_config_hides_the_database_password() -> None:
    settings = Settings(database_url="postgresql://lab:hunter2@db.example/study")
    shown = {entry.key: entry.value for entry in config_entries(settings).entries}
    assert shown["database_url"] == "postgresql://lab:********@db.example/study"


async def test_a_debug_link_goes_to_the_address_asked(admin: httpx.AsyncClient) -> None:
    first = (await admin.get("/api/debug-link")).json()
    second = (await admin.get("/api/debug-link")).json()
    assert first["source"] == "server" and first["url"].startswith("http://testserver/ad?")
    assert DEBUG_LINK.search(first["url"]) and first["url"] != second["url"]


async def test_a_debug_link_uses_the_configured_ad_url(make_settings: Any) -> None:
    settings = make_settings(admin_token=TOKEN, ad_url_domain="lab.example.org")
    application, lifespan = await started_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t",
                                     headers=AUTH) as http:
            link = (await http.get("/api/debug-link")).json()
    finally:
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]
    assert link["source"] == "ad_url" and link["url"].startswith("https://lab.example.org:443/pub?")
    assert DEBUG_LINK.search(link["url"])


def study() -> list[Participant]:
    statuses = [Status.ALLOCATED, Status.STARTED, Status.COMPLETED, Status.SUBMITTED, Status.QUITEARLY]
    return [participant(f"W{n:02d}", f"A{n:02d}", hit="HA" if n < 6 else "HB", status=statuses[n % 5],
                        cond=n % 2, counterbalance=n % 3, mode="sandbox" if n < 8 else "live",
                        codeversion="1.0" if n < 10 else "2.0") for n in range(12)]


async def listed(admin: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await admin.get("/api/participants", params=params)
    assert response.status_code == 200, response.text
    return [item["uniqueid"] for item in response.json()["items"]]


@pytest.mark.parametrize(("params", "expected"), [
    ({}, list(range(12))),
    ({"mode": "live"}, [8, 9, 10, 11]),
    ({"condition": 1}, [1, 3, 5, 7, 9, 11]),
    ({"counterbalance": 2}, [2, 5, 8, 11]),
    ({"codeversion": "2.0"}, [10, 11]),
    ({"status": [2, "submitted"]}, [1, 3, 6, 8, 11]),
    ({"completed": "true"}, [2, 3, 7, 8]),
    ({"completed": "false"}, [0, 1, 4, 5, 6, 9, 10, 11]),
    ({"worker_id": "W03"}, [3]),
    ({"assignment_id": "A04"}, [4]),
    ({"hit_id": "HB", "condition": 0}, [6, 8, 10]),
])
async def test_participants_are_filtered(app: FastAPI, admin: httpx.AsyncClient, params: dict[str, Any],
                                         expected: list[int]) -> None:
    await insert(app, study())
    assert await listed(admin, **params) == [f"W{n:02d}:A{n:02d}" for n in expected]


async def test_participants_come_a_page_at_a_time(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await insert(app, study())
    seen, after = [], None
    while True:
        page = (await admin.get("/api/participants", params={"limit": 5} | ({"after": after} if after else {}))
                ).json()
        assert page["total"] == 12
        seen += [item["uniqueid"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == [f"W{n:02d}:A{n:02d}" for n in range(12)]


async def test_a_listed_participant_has_psiturks_columns_but_not_its_data(app: FastAPI,
                                                                          admin: httpx.AsyncClient) -> None:
    await insert(app, golden_participants()[:1])
    [item] = (await admin.get("/api/participants")).json()["items"]
    assert item == {"uniqueid": FIXTURE_UID, "assignmentid": "3FIXTUREASSIGNMENTID01",
                    "workerid": "A3FIXTUREWORKER", "hitid": "H1", "ipaddress": "203.0.113.9", "browser": "firefox",
                    "platform": "linux", "language": "en-US", "cond": 1, "counterbalance": 0, "codeversion": "1.0",
                    "beginhit": "2026-11-25T12:00:00Z", "beginexp": None, "endhit": None, "bonus": 0.0,
                    "status": 3, "status_name": "COMPLETED", "mode": "live"}


async def test_a_page_of_participants_leaves_their_data_in_the_database(app: FastAPI,
                                                                        admin: httpx.AsyncClient) -> None:
    # A page holds up to 1,000 participants; their datastrings, tens of KiB each, are never shown there.
    await insert(app, golden_participants()[:1])
    statements: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", note)
    try:
        page = (await admin.get("/api/participants")).json()
        assert [item["uniqueid"] for item in page["items"]] == [FIXTURE_UID]
        listing = list(statements)
        assert (await admin.get(f"/api/participants/{FIXTURE_UID}")).json()["data"] is not None
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", note)
    assert any("FROM" in statement for statement in listing)
    assert not any("datastring" in statement for statement in listing), listing
    assert any("datastring" in statement for statement in statements[len(listing):])


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"status": "finished"}, {"conditon": 1}])
async def test_bad_filters_are_refused(admin: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await admin.get("/api/participants", params=params)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


async def test_one_participant_comes_with_its_data(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await insert(app, golden_participants())
    found = (await admin.get(f"/api/participants/{FIXTURE_UID}")).json()
    assert found["data"] == json.loads(FIXTURE.read_text())
    assert found["data_error"] is None and found["status_name"] == "COMPLETED"
    broken = (await admin.get("/api/participants/C3BROKEN:C3ASSIGNMENT")).json()
    assert broken["data"] is None and broken["data_error"].startswith("not JSON")
    empty = (await admin.get("/api/participants/D4EMPTY:D4ASSIGNMENT")).json()
    assert empty["data"] is None and empty["data_error"] is None


async def test_an_unknown_participant_is_404(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/api/participants/nobody:none")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "no participant 'nobody:none'"}


async def test_counts_are_grouped_by_cell_and_by_status(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await insert(app, study())
    counts = (await admin.get("/api/participants/counts", params={"codeversion": "1.0"})).json()
    assert counts["total"] == 10
    assert counts["cells"] == [
        {"cond": 0, "counterbalance": 0, "count": 2}, {"cond": 0, "counterbalance": 1, "count": 1},
        {"cond": 0, "counterbalance": 2, "count": 2}, {"cond": 1, "counterbalance": 0, "count": 2},
        {"cond": 1, "counterbalance": 1, "count": 2}, {"cond": 1, "counterbalance": 2, "count": 1}]
    assert counts["statuses"] == [
        {"status": number, "status_name": STATUS_NAMES[number], "count": 2} for number in (1, 2, 3, 4, 6)]
