"""psiTurk 3 projects with their Flask custom.py, served by `psiturk-async serve` and taken through Debian's
headless Chromium, on SQLite and PostgreSQL.

psiTurk 3.3.1's own example folder runs unchanged (its custom.py, its task.js, psiturk-async's psiturk.js).
A project built file by file the way a psiTurk 3 lab kept one (see legacy_old_project.py) goes from the ad
through consent, the task and the docs' /compute_bonus to completion, submission on the fake MTurk and
approval; then `psiturk-async worker bonus --auto --dry-run`, run against the server, shows the bonus the
legacy route computed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from admin_data import AUTH, TOKEN
from browser import Server, begin_from_the_ad, chromium, served
from fakes.fixtures import FakeMTurk
from legacy_old_project import build_old_project
from mturk_world import fake_settings
from participant_flow import error_number
from psiturk_async.models import Status
from test_psiturk3_compat import STIMULI, PsiTurk3, answer_stroop, psiturk3, read_instructions  # noqa: F401

CLI = [sys.executable, "-m", "psiturk_async.cli"]
SANDBOX_SUBMIT = re.compile(r"^https://workersandbox\.mturk\.com/mturk/externalSubmit")

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(database_url: str) -> Iterator[Browser]:
    """Chromium, launched after the database is ready: Playwright's sync API keeps an event loop running in
    this thread, where conftest's PostgreSQL set-up (asyncio.run) could no longer run."""
    with chromium() as launched:
        yield launched


def serve_environ(tmp_path: Path, database_url: str, **settings: Any) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    extra = {f"PSITURK_{name.upper()}": str(value) for name, value in settings.items()}
    return {**os.environ, "PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "DATABASE_URL": database_url,
            "AWS_EC2_METADATA_DISABLED": "true", "PSITURK_ADMIN_TOKEN": TOKEN,
            # Request lines in the captured log, which assert_no_server_errors reads.
            "PSITURK_ACCESSLOG": "-", **extra}


def participant(server: Server, uid: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/participants/{uid}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def take_part(browser: Browser, server: Server, ids: dict[str, str], task: Any) -> list[str]:
    """ad -> Begin (popup) -> consent -> exp -> `task(study)` -> save -> /compute_bonus -> complete ->
    the ad reloads as the thanks page -> Complete HIT (MTurk's externalSubmit is answered in the browser)."""
    context = browser.new_context()
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    context.route("https://workersandbox.mturk.com/**", lambda route: route.fulfill(body="submitted"))
    try:
        ad, study = begin_from_the_ad(context, server, ids)
        study.click("text=I agree")
        study.wait_for_url(re.compile(r"/exp\?"))
        with study.expect_event("close", timeout=60_000):
            with study.expect_response(lambda r: "/compute_bonus" in r.url) as bonus:
                task(study)
            assert bonus.value.status == 200
        expect(ad.locator("h1")).to_have_text("Thanks for your participation")
        with ad.expect_request(SANDBOX_SUBMIT):
            ad.click("text=Complete HIT")
    finally:
        context.close()
    return errors


def test_psiturk3_example_runs_unchanged_with_its_flask_custom_py(
        browser: Browser, psiturk3: PsiTurk3, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    project = tmp_path / "psiturk-example"
    shutil.copytree(psiturk3.example, project)
    assert "from flask import Blueprint" in (project / "custom.py").read_text()
    ids = {"hitId": "HEXAMPLE1", "assignmentId": "AEXAMPLE1", "workerId": "WEXAMPLE1", "mode": "sandbox"}
    uid = f"{ids['workerId']}:{ids['assignmentId']}"

    def stroop(study: Page) -> None:
        read_instructions(study, go_back=False)
        answer_stroop(study, STIMULI)
        expect(study.locator("h1")).to_have_text("Task Complete")
        study.select_option("#engagement", "7")
        study.click("#next")

    with served(project, serve_environ(tmp_path, database_url), tmp_path / "server.log") as server:
        log = server.log_text()
        assert "psiTurk 3 compatibility layer active" in log and "/compute_bonus, /my_custom_view" in log
        custom = httpx.get(f"{server.url}/my_custom_view")
        assert custom.status_code == 200 and "this is an example custom route" in custom.text
        missing = httpx.get(f"{server.url}/compute_bonus")
        assert missing.status_code == 400 and error_number(missing) == 1013

        errors = take_part(browser, server, ids, stroop)

        row = participant(server, uid)
        server.assert_no_server_errors()
    assert not errors
    assert row["status"] == Status.SUBMITTED
    hits = [t["trialdata"]["hit"] for t in row["data"]["data"] if t["trialdata"].get("phase") == "TEST"]
    assert len(hits) == STIMULI and all(hits)
    assert row["bonus"] == pytest.approx(0.02 * STIMULI)
    assert row["data"]["questiondata"]["engagement"] == "7"


def cli(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PSITURK_URL": server.url, "PSITURK_ADMIN_TOKEN": TOKEN, "COLUMNS": "250"}
    done = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_an_old_project_with_a_flask_custom_py_end_to_end_then_the_bonus_dry_run(
        browser: Browser, psiturk3: PsiTurk3, database_url: str, tmp_path: Path,  # noqa: F811
        fake_mturk: FakeMTurk) -> None:
    project = build_old_project(tmp_path / "old-project", psiturk3.example / "static" / "lib")
    environ = serve_environ(tmp_path, database_url, **fake_settings(fake_mturk))
    answers = {"first": True, "second": False, "third": True, "fourth": True}

    def letters(study: Page) -> None:
        study.click(".instructionsnav .continue")
        expect(study.locator("#stim")).to_have_attribute("data-letter", re.compile("^[rgb]$"))
        for n, correct in enumerate(answers.values(), start=1):
            letter = study.locator("#stim").get_attribute("data-letter")
            assert letter
            study.keyboard.press(letter if correct else ("x" if letter != "x" else "y"))
            expect(study.locator("#progress")).to_have_text(f"Answered {n}")

    with served(project, environ, tmp_path / "server.log") as server:
        assert "psiTurk 3 compatibility layer active" in server.log_text()
        created = cli(server, "--json", "hit", "create", "1", "1.00", "0.5", cwd=tmp_path)
        hit_id = re.search(r'"hit_id":\s*"([^"]+)"', created.stdout)
        assert hit_id, created.stdout
        worker = "A1OLDSTYLEWORKER"
        assignment = fake_mturk.accept(hit_id.group(1), worker)
        ids = {"hitId": hit_id.group(1), "assignmentId": assignment, "workerId": worker, "mode": "sandbox"}
        uid = f"{worker}:{assignment}"

        errors = take_part(browser, server, ids, letters)

        submitted = participant(server, uid)
        fake_mturk.submit(assignment)
        cli(server, "worker", "approve", assignment, cwd=tmp_path)
        dry_run = cli(server, "worker", "bonus", "--auto", "--all", "--dry-run", "--reason", "Thank you!",
                      cwd=tmp_path)
        credited = participant(server, uid)
        server.assert_no_server_errors()

    assert not errors
    trials = [t["trialdata"] for t in submitted["data"]["data"]]
    assert [t["hit"] for t in trials if t["phase"] == "TEST"] == list(answers.values())
    assert submitted["data"]["questiondata"] == {"letters_seen": 4}
    assert submitted["status"] == Status.SUBMITTED and submitted["bonus"] == pytest.approx(0.06)
    assert credited["status"] == Status.CREDITED
    output = dry_run.stdout
    assert re.search(rf"{assignment}\s+{worker}\s+\$0\.06\s+\$0\.0\d\s+planned", output), output
    assert (f'SendBonus {{"WorkerId": "{worker}", "AssignmentId": "{assignment}", "BonusAmount": "0.06", '
            f'"Reason": "Thank you!"') in output
    assert "Dry run: nothing was sent." in output
    assert fake_mturk.bonuses() == []
