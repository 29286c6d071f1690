"""The admin token: every /api route refuses without it, guessing is slowed, the token file, no leaks."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from admin_data import AUTH, TOKEN
from conftest import started_app
from psiturk_async.admin_token import TOKEN_FILE, ensure_token, read_token
from psiturk_async.auth import FAILURES_ALLOWED, FailureLimiter, same_token
from psiturk_async.settings import Settings
from psiturk_async.startup import prepare_admin_token

SAMPLE_PATH_VALUES = {"kind": "trialdata", "uniqueid": "W1:A1"}


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(admin_token=TOKEN)


def api_requests(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every route under /api the app has, in or out of the OpenAPI document."""
    found = []
    # Included routers stay nested in app.routes; this walks them as the app's router matches them.
    for route in iter_route_contexts(app.routes):
        if not route.path or not route.path.startswith("/api"):
            continue
        path = re.sub(r"{(\w+)(:\w+)?}", lambda match: SAMPLE_PATH_VALUES.get(match.group(1), "x"), route.path)
        found.extend((method, path) for method in sorted(route.methods or {"GET"}) if method != "HEAD")
    return found


async def unprotected(app: FastAPI) -> list[str]:
    """The /api requests that are not refused 401 JSON, without a token and with a wrong one."""
    problems = []
    for number, (method, path) in enumerate(api_requests(app)):
        # A fresh address per request, so the brake on wrong tokens does not answer 429 instead.
        transport = httpx.ASGITransport(app=app, client=(f"198.51.{number // 250}.{number % 250 + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
                response = await http.request(method, path, headers=headers)
                body = response.json() if response.headers.get("content-type") == "application/json" else {}
                if response.status_code != 401 or body.get("error") != "unauthorized":
                    problems.append(f"{method} {path} with {headers or 'no header'}: {response.status_code}")
    return problems


async def test_every_api_route_refuses_without_the_token(app: FastAPI) -> None:
    requests = api_requests(app)
    documented = {path for path in app.openapi()["paths"] if path.startswith("/api")}
    assert len(requests) >= len(documented) >= 8
    assert await unprotected(app) == []


async def test_the_sweep_catches_a_route_hidden_from_the_schema(app: FastAPI) -> None:
    async def leak() -> dict[str, str]:
        return {"secret": "data"}

    app.add_api_route("/api/hidden", leak, include_in_schema=False)
    assert "/api/hidden" not in app.openapi()["paths"]
    problems = await unprotected(app)
    assert len(problems) == 3 and all(problem.startswith("GET /api/hidden with ") for problem in problems)


async def test_a_refusal_is_401_json_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/status", follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized" and "Bearer" in response.json()["detail"]


async def test_the_right_token_is_let_through(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/status", headers=AUTH)).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs"])
async def test_docs_and_health_stay_public(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_the_openapi_document_declares_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["AdminToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert document["paths"]["/api/status"]["get"]["security"] == [{"AdminToken": []}]
    assert "401" in document["paths"]["/api/status"]["get"]["responses"]


async def test_repeated_wrong_tokens_from_one_address_are_slowed(app: FastAPI) -> None:
    def browser(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 1)),
                                 base_url="http://testserver")

    async with browser("192.0.2.50") as guesser, browser("192.0.2.51") as neighbour:
        for _ in range(3):
            assert (await guesser.get("/api/status")).status_code == 401  # no header: not a guess
        for attempt in range(FAILURES_ALLOWED):
            response = await guesser.get("/api/status", headers={"Authorization": f"Bearer guess{attempt}"})
            assert response.status_code == 401
        refused = await guesser.get("/api/status", headers=AUTH)
        assert refused.status_code == 429 and refused.json()["error"] == "too_many_requests"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await neighbour.get("/api/status", headers=AUTH)).status_code == 200


def test_the_brake_lifts_when_the_window_has_passed() -> None:
    limiter = FailureLimiter(allowed=2, window=10)
    limiter.record("a", 100.0)
    assert limiter.retry_after("a", 100.5) is None
    limiter.record("a", 101.0)
    assert limiter.retry_after("a", 105.0) == pytest.approx(5.0)
    assert limiter.retry_after("a", 110.5) is None


def test_the_brake_remembers_a_bounded_number_of_addresses() -> None:
    limiter = FailureLimiter(allowed=1, window=10, tracked=3)
    for number in range(10):
        limiter.record(f"198.51.100.{number}", 100.0 + number)
    assert len(limiter._failures) == 3
    assert limiter.retry_after("198.51.100.9", 109.5) is not None


def test_serve_writes_a_private_token_file_once(make_settings: Any, project_dir: Path) -> None:
    settings = make_settings()
    prepare_admin_token(settings)
    path = project_dir / TOKEN_FILE
    token = read_token(project_dir)
    assert token and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    prepare_admin_token(settings)
    assert read_token(project_dir) == token


def test_a_configured_token_means_no_token_file(project_dir: Path, settings: Settings) -> None:
    prepare_admin_token(settings)
    assert not (project_dir / TOKEN_FILE).exists()


def test_a_token_file_readable_by_others_is_made_private(project_dir: Path) -> None:
    ensure_token(project_dir)
    path = project_dir / TOKEN_FILE
    path.chmod(0o644)
    assert ensure_token(project_dir) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_the_server_accepts_the_token_from_the_file(make_settings: Any, project_dir: Path) -> None:
    settings = make_settings()
    application, lifespan = await started_app(settings)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            missing = await http.get("/api/status", headers={"Authorization": "Bearer anything"})
            assert missing.status_code == 401 and "no admin token" in missing.json()["detail"]
            prepare_admin_token(settings)
            token = read_token(project_dir)
            response = await http.get("/api/status", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
    finally:
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def test_the_token_appears_neither_in_logs_nor_in_the_config(client: httpx.AsyncClient,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await client.get("/api/status", headers=AUTH)
        await client.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}x"})
        config = await client.get("/api/config", headers=AUTH)
    assert caplog.records and TOKEN not in caplog.text
    assert TOKEN not in config.text
    entry = next(item for item in config.json()["entries"] if item["key"] == "admin_token")
    assert entry == {"section": "Server Parameters", "key": "admin_token", "value": "********",
                     "source": "PSITURK_ADMIN_TOKEN", "secret": True}


def test_tokens_are_compared_whole() -> None:
    assert same_token(TOKEN, TOKEN)
    assert not same_token(TOKEN[:-1], TOKEN) and not same_token(TOKEN + "x", TOKEN) and not same_token("", TOKEN)
