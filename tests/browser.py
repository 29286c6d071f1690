"""Helpers for the real-browser tests: Debian's Chromium under Playwright, `psiturk-async serve` as a process
that can be stopped and started again on the same port and database, and the stored record read back."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from conftest import free_port, unavailable

# Debian's package (`make browser`); Playwright is only ever pointed at it, never asked to download one.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CLI = [sys.executable, "-m", "psiturk_async.cli"]
# One request line of the server's log, e.g. "psiturk_async.requests: PUT /sync/W:A 200 3.1ms".
REQUEST_LINE = re.compile(r"psiturk_async\.requests: (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) ")

expect.set_options(timeout=20_000)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, which `make test` installs (see conftest.unavailable for a machine without it)."""
    if not CHROMIUM.is_file():
        unavailable(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def server_environ(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment for a served project on its own SQLite file (no ~/.psiturkconfig); and that file."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    database = tmp_path / "participants.db"
    env = {**os.environ, "PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "DATABASE_URL": f"sqlite:///{database}",
           "AWS_EC2_METADATA_DISABLED": "true",
           # Request lines on the console, which the server's log file captures (Server.requests reads them).
           "PSITURK_ACCESSLOG": "-"}
    return env, database


class Server:
    """`psiturk-async serve` in `project`; its output goes to a file (an unread pipe fills up and stalls it)."""

    def __init__(self, project: Path, env: dict[str, str], log: Path, *, workers: int = 1) -> None:
        self.project, self.env, self.log, self.workers = project, env, log, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port), "--workers", str(self.workers)], cwd=self.project,
                env=self.env, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not become healthy:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; it must shut down cleanly."""
        assert self.process is not None
        shutdowns = self.log_text().count("Application shutdown complete")
        self.process.send_signal(signal.SIGTERM)
        # One uvicorn process re-raises the signal once it has shut down; a supervisor of workers exits 0.
        assert self.process.wait(timeout=30) in (0, -signal.SIGTERM), self.log_text()
        assert self.log_text().count("Application shutdown complete") == shutdowns + 1, self.log_text()
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the server has logged, in order."""
        return [(m["method"], m["path"], int(m["status"])) for m in REQUEST_LINE.finditer(self.log_text())]

    def assert_no_server_errors(self) -> None:
        failed = [line for line in self.requests() if line[2] >= 500]
        assert not failed, failed
        assert "Traceback" not in self.log_text(), self.log_text()


@contextmanager
def served(project: Path, env: dict[str, str], log: Path) -> Iterator[Server]:
    server = Server(project, env, log)
    server.start()
    try:
        yield server
    finally:
        server.kill()
        # Captured output: pytest shows it only when the test failed.
        print(f"--- server log ({log}) ---\n{server.log_text()[-20000:]}")


@dataclass
class Stored:
    """A participant's row as the server left it in the database."""

    status: int
    bonus: float
    cond: int
    counterbalance: int
    record: dict[str, Any]

    @property
    def trials(self) -> list[dict[str, Any]]:
        return [row["trialdata"] for row in self.record.get("data", [])]

    def phase(self, name: str) -> list[dict[str, Any]]:
        return [trial for trial in self.trials if trial.get("phase") == name]

    @property
    def event_types(self) -> list[str]:
        return [event["eventtype"] for event in self.record.get("eventdata", [])]


def stored(database: Path, uid: str) -> Stored:
    with closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT status, bonus, cond, counterbalance, datastring FROM assignments WHERE uniqueid = ?",
            (uid,)).fetchone()
    assert row is not None, f"no participant {uid!r} in the database"
    status, bonus, cond, counterbalance, datastring = row
    return Stored(status, bonus or 0.0, cond, counterbalance, json.loads(datastring) if datastring else {})


def wait_for(check: Callable[[], bool], *, timeout: float = 20, pause: Callable[[], None] | None = None,
             message: str = "condition") -> None:
    """Poll `check` until it holds. Pass `pause=lambda: page.wait_for_timeout(100)` while a page must keep
    running (Playwright's sync API only does its work while one of its calls is waiting)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        if pause is not None:
            pause()
        else:
            time.sleep(0.1)


def begin_from_the_ad(context: BrowserContext, server: Server, ids: dict[str, str]) -> tuple[Page, Page]:
    """Open a psiTurk 3 ad page (its "Begin Experiment" button) and press Begin: the ad and the study popup."""
    ad = context.new_page()
    ad.goto(f"{server.url}/ad?{urlencode(ids)}")
    with ad.expect_popup() as opened:
        ad.click("text=Begin Experiment")
    return ad, opened.value
