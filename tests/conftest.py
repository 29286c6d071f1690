"""Shared fixtures: every database test runs on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from psiturk_async.main import create_app
from psiturk_async.migrate import upgrade
from psiturk_async.project import setup_example
from psiturk_async.settings import Settings, load_settings

pytest_plugins = ["fakes.fixtures"]

POSTGRES_URL = os.environ.get("PSITURK_TEST_POSTGRES_URL", "")
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="PSITURK_TEST_POSTGRES_URL is not set (CI always sets it)"))]

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(statements: list[str], database: str | None = None) -> None:
    dsn = _admin_dsn(POSTGRES_URL) if database is None else postgres_url_for(database)
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def postgres_url_for(name: str) -> str:
    base, _, _ = _admin_dsn(POSTGRES_URL).rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One PostgreSQL database for this test session (its name is random, so runs at once do not meet)."""
    name = f"psiturk_test_{secrets.token_hex(6)}"
    asyncio.run(_admin([f'CREATE DATABASE "{name}"']))
    try:
        yield name
    finally:
        asyncio.run(_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


def _empty_postgres(name: str) -> None:
    """Make the session's database empty again: cheaper than a new database for every test."""
    asyncio.run(_admin([
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        "DROP SCHEMA public CASCADE",
        "CREATE SCHEMA public",
    ], database=name))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or the session's PostgreSQL database, emptied for this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'participants.db'}"
        return
    name = request.getfixturevalue("postgres_database")
    _empty_postgres(name)
    yield postgres_url_for(name)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A fresh copy of the example project (tests change what they need)."""
    return setup_example(tmp_path / "project")


@pytest.fixture
def environ(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A clean environment for load_settings: no ~/.psiturkconfig, the test's database."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "DATABASE_URL": database_url}


@pytest.fixture
def make_settings(project_dir: Path, environ: dict[str, str]) -> Callable[..., Settings]:
    """Settings for the test project; keyword arguments become PSITURK_<KEY> variables."""
    def build(**overrides: object) -> Settings:
        extra = {f"PSITURK_{key.upper()}": str(value) for key, value in overrides.items()}
        return load_settings(project_dir, environ={**environ, **extra})
    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def started_app(settings: Settings) -> tuple[FastAPI, object]:
    await asyncio.to_thread(upgrade, settings)
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    return app, lifespan


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app for the test project, database migrated, lifespan running."""
    application, lifespan = await started_app(settings)
    try:
        yield application
    finally:
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Stop a server the way a process manager does (SIGTERM), reading its pipes so its workers can finish
    writing their last lines; then end whatever is left of its process group (start it with
    start_new_session=True), so no worker outlives the test."""
    if process.poll() is None:
        process.terminate()
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def unavailable(message: str) -> None:
    """A test's outside requirement (Chromium, python3.11, a package from PyPI) is missing: skipped on a
    developer's machine, a failure under `make test` and CI, which set PSITURK_TEST_STRICT after installing
    everything, so no test can silently stop running there."""
    if os.environ.get("PSITURK_TEST_STRICT"):
        pytest.fail(message)
    pytest.skip(message)
