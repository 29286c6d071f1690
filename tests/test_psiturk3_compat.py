"""psiTurk 3.3.1's own example project, and its own psiturk.js, under `psiturk-async serve`.

psiTurk 3.3.1 is installed from PyPI into a throwaway Python 3.11 venv kept in the pytest cache
(.pytest_cache/d/psiturk-3.3.1, never committed), once; `psiturk-setup-example` from that venv writes the
example project each session. The project is served as psiTurk wrote it except for one file: its custom.py is
written for Flask (the legacy custom.py is a separate piece of work), so it is moved aside to custom.py.flask
and the FastAPI form of the same /compute_bonus route (our example's custom.py) takes its place; psiTurk's
task.js only finishes the HIT once /compute_bonus answers.

To drive psiTurk's task with psiTurk's own client, the browser is handed psiTurk 3.3.1's psiturk_js/psiturk.js
whenever the page asks for /static/js/psiturk.js (a Playwright route in the test's browser context). That is
the least invasive substitution: neither the project nor the server changes, and every other request,
including each save, goes to the server as it would from a participant's browser.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

import psiturk_async
from browser import Server, Stored, begin_from_the_ad, chromium, served, server_environ, stored, wait_for
from conftest import unavailable
from psiturk_async.identity import cookie_name
from psiturk_async.models import Status

PINS = ["psiturk==3.3.1", "cryptography==37.0.4"]
RAW_PAGES = ["instructions/instruct-1.html", "instructions/instruct-2.html", "instructions/instruct-3.html",
             "instructions/instruct-ready.html", "stage.html", "postquestionnaire.html"]
KEYS = {"red": "r", "green": "g", "blue": "b"}
STIMULI = 9  # psiTurk's Stroop task shows each of its nine stimuli once


@dataclass
class PsiTurk3:
    example: Path  # what psiturk-setup-example wrote; copy it before changing anything
    client_js: Path  # psiTurk 3.3.1's psiturk_js/psiturk.js


def _run(command: list[str], *, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=cwd, env=env)


@pytest.fixture(scope="session")
def psiturk3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PsiTurk3:
    """psiTurk 3.3.1 in its own venv (made once, reused from the pytest cache) and its example project."""
    python = shutil.which("python3.11")
    if python is None:
        unavailable("python3.11 is needed to install psiTurk 3.3.1")
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider: install afresh
    venv = (cache.mkdir("psiturk-3.3.1") if cache else tmp_path_factory.mktemp("psiturk-3.3.1")) / "venv"
    installed = venv / "installed.txt"
    if not installed.is_file() or installed.read_text() != " ".join(PINS):
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([str(python), "-m", "venv", str(venv)])
        if made.returncode != 0:
            unavailable(f"could not make a venv for psiTurk 3.3.1:\n{made.stderr}")
        pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *PINS])
        if pip.returncode != 0:
            unavailable(f"could not install {' '.join(PINS)}:\n{pip.stderr[-3000:]}")
        installed.write_text(" ".join(PINS))
    python_in_venv = str(venv / "bin" / "python")
    purelib = _run([python_in_venv, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    client_js = Path(purelib.stdout.strip()) / "psiturk" / "psiturk_js" / "psiturk.js"
    assert client_js.is_file(), client_js
    workdir = tmp_path_factory.mktemp("psiturk3")
    made = _run([str(venv / "bin" / "psiturk-setup-example")], cwd=workdir,
                env={**os.environ, "HOME": str(workdir)})
    example = workdir / "psiturk-example"
    assert made.returncode == 0 and (example / "templates" / "exp.html").is_file(), made.stdout + made.stderr
    return PsiTurk3(example=example, client_js=client_js)


@pytest.fixture(scope="module")
def project(psiturk3: PsiTurk3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("served") / "psiturk-example"
    shutil.copytree(psiturk3.example, target)
    (target / "custom.py").rename(target / "custom.py.flask")
    shutil.copy(Path(psiturk_async.__file__).parent / "example" / "custom.py", target / "custom.py")
    return target


@pytest.fixture(scope="module")
def server_and_db(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    folder = tmp_path_factory.mktemp("server")
    env, database = server_environ(folder)
    with served(project, env, folder / "server.log") as server:
        yield server, database


def new_ids() -> dict[str, str]:
    return {"hitId": f"H{secrets.token_hex(4)}", "assignmentId": f"A{secrets.token_hex(4)}",
            "workerId": f"W{secrets.token_hex(4)}", "mode": "sandbox"}


def test_psiturk3_example_pages_are_served(server_and_db: tuple[Server, Path], project: Path) -> None:
    server, _database = server_and_db
    ids = new_ids()
    with httpx.Client(base_url=server.url) as http:
        assert "Welcome to psiTurk!" in http.get("/").text

        preview = http.get("/ad", params={**ids, "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"})
        assert preview.status_code == 200 and "Call for participants" in preview.text

        ad = http.get("/ad", params=ids)
        assert ad.status_code == 200 and "Thank you for accepting this HIT!" in ad.text
        # server_location is never passed, so links stay root-relative; insert_mode adds the mode.
        assert 'src="/static/images/university.png"' in ad.text
        assert (f"'/consent?hitId={ids['hitId']}&assignmentId={ids['assignmentId']}&workerId={ids['workerId']}"
                f"&mode=sandbox'") in ad.text

        consent = http.get("/consent", params=ids)
        assert consent.status_code == 200 and "We need your consent to proceed" in consent.text
        assert (f"'/exp?hitId={ids['hitId']}&assignmentId={ids['assignmentId']}&workerId={ids['workerId']}"
                f"&mode=sandbox'") in consent.text

        exp = http.get("/exp", params=ids)
        uid = f"{ids['workerId']}:{ids['assignmentId']}"
        assert exp.status_code == 200
        for line in (f'var uniqueId = "{uid}";', "var condition = 0;", "var counterbalance = 0;",
                     'var adServerLoc = "/complete";', 'var mode = "sandbox";', 'var codeversion = "0.0.1";',
                     '<script src="/static/js/psiturk.js"', '<script src="/static/js/task.js"'):
            assert line in exp.text
        assert cookie_name(uid) in exp.headers["set-cookie"]

        for page in RAW_PAGES:
            raw = http.get(f"/{page}")
            assert raw.status_code == 200
            assert raw.text == (project / "templates" / page).read_text(encoding="utf-8")
        for path in ("/static/lib/jquery-3.4.1.min.js", "/static/lib/backbone-min.js", "/static/js/task.js"):
            served_file = http.get(path)
            assert served_file.status_code == 200 and "javascript" in served_file.headers["content-type"]
            assert served_file.content == (project / path.lstrip("/")).read_bytes()
        ours = http.get("/static/js/psiturk.js")
        assert "globalThis.createPsiTurk" in ours.text
        assert http.get("/layouts/layout.html").status_code == 404
    server.assert_no_server_errors()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def instruction_index(page: Page) -> int:
    return page.evaluate("() => psiTurk.getInstructionIndicator().currently_viewing.indexOf")


def read_instructions(page: Page, *, go_back: bool) -> None:
    """psiTurk's four instruction pages through its own instruction controller."""
    # (psiTurk's getInstructionIndicator throws until doInstructions has run, so wait for the first page.)
    expect(page.locator(".instructionsnav .continue")).to_be_visible()
    steps = [".continue", ".previous", ".continue"] if go_back else [".continue"]
    steps += [".continue", ".continue"]
    for button in steps:
        before = instruction_index(page)
        page.click(f".instructionsnav {button}")
        expected = before + (1 if button == ".continue" else -1)
        page.wait_for_function("(i) => psiTurk.getInstructionIndicator().currently_viewing.indexOf === i",
                               arg=expected)
    page.click(".instructionsnav .continue")  # "Begin experiment": FinishInstructions, then startTask
    expect(page.locator("h1")).to_have_text("Respond Quickly!")


def answer_stroop(page: Page, count: int) -> None:
    """Answer `count` of psiTurk's Stroop trials correctly, reading the ink colour off its #word element."""
    for _ in range(count):
        done = page.evaluate("() => psiTurk.getTrialData().length")
        color = page.locator("#word").evaluate("(word) => word.style.color")
        page.keyboard.press(KEYS[color])
        # (After the last trial the questionnaire records its own "begin" row at once.)
        page.wait_for_function("(n) => psiTurk.getTrialData().length >= n", arg=done + 1)


def stroop_hits(row: Stored) -> list[bool]:
    return [trial["hit"] for trial in row.phase("TEST")]


@pytest.mark.browser
def test_psiturk3_client_saves_resumes_after_reload_and_completes(
        browser: Browser, server_and_db: tuple[Server, Path], psiturk3: PsiTurk3) -> None:
    server, database = server_and_db
    ids = new_ids()
    uid = f"{ids['workerId']}:{ids['assignmentId']}"
    context = browser.new_context()
    page_errors: list[str] = []
    context.on("weberror", lambda error: page_errors.append(str(error.error)))
    context.route("**/static/js/psiturk.js",
                  lambda route: route.fulfill(path=psiturk3.client_js, content_type="application/javascript"))
    context.route("https://workersandbox.mturk.com/**", lambda route: route.fulfill(body="submitted"))
    try:
        ad, study = begin_from_the_ad(context, server, ids)
        expect(study.locator("h1")).to_have_text("We need your consent to proceed")
        study.click("text=I agree")
        study.wait_for_url(re.compile(r"/exp\?"))
        # psiTurk's own client (Backbone underneath), not ours.
        assert study.evaluate("() => typeof Backbone.Notifications === 'object' && !window.createPsiTurk")

        with study.expect_response(lambda r: r.request.method == "PUT" and "/sync/" in r.url) as first_save:
            read_instructions(study, go_back=True)
        assert first_save.value.status == 200
        wait_for(lambda: stored(database, uid).status == Status.STARTED, message="STARTED after /inexp")
        assert [t["action"] for t in stored(database, uid).phase("INSTRUCTIONS")][-1] == "FinishInstructions"
        answer_stroop(study, 4)

        # Reloading: psiTurk's beforeunload handler saves (PUT) and reports a quitter (POST /quitter), then the
        # reloaded /exp goes out. Those requests race to the server; the reload is held here until the first
        # two have landed, the order they arrive in when left alone, made certain. (Were the quitter to land
        # after /exp, the participant would stay QUITEARLY until /complete, which still accepts them.)
        held: list[Route] = []
        study.on("dialog", lambda dialog: dialog.accept())
        study.route(re.compile(r"/exp\?"), lambda route: held.append(route))
        study.evaluate("() => { window.beforeReload = true; setTimeout(() => location.reload(), 0); }")

        def pump() -> None:  # the page runs on while this test polls the database
            study.wait_for_timeout(100)

        wait_for(lambda: bool(held), pause=pump, message="the reload's request for /exp")
        wait_for(lambda: stored(database, uid).status == Status.QUITEARLY
                 and len(stored(database, uid).phase("TEST")) == 4, pause=pump,
                 message="the unload save and /quitter")
        held[0].continue_()
        reloaded = "() => !window.beforeReload && window.psiTurk && document.readyState === 'complete'"
        study.wait_for_function(reloaded)
        study.unroute(re.compile(r"/exp\?"))

        resumed = stored(database, uid)
        assert resumed.status == Status.STARTED
        assert resumed.record["eventdata"][-1]["eventtype"] == "resumed"
        assert resumed.record["eventdata"][-1]["value"] == "QUITEARLY"
        # The secret cookie came back with the reload, and psiTurk's client loaded the saved state from it.
        assert any(c["name"] == cookie_name(uid) and c["httpOnly"] for c in context.cookies())
        assert len(resumed.record["data"]) == 11
        assert study.evaluate("() => psiTurk.getTrialData().slice(0, 11)") == resumed.record["data"]
        assert study.evaluate("() => psiTurk.getEventData().map(e => e.eventtype)").count("resumed") == 1

        # psiTurk's task has no resume logic of its own: it starts over, appending to what was saved.
        read_instructions(study, go_back=False)
        answer_stroop(study, STIMULI)
        expect(study.locator("h1")).to_have_text("Task Complete")
        study.select_option("#engagement", "8")
        study.select_option("#difficulty", "3")
        with study.expect_event("close"):  # closepopup.html reloads the ad and closes the study window
            study.click("#next")

        expect(ad.locator("h1")).to_have_text("Thanks for your participation")
        finished = stored(database, uid)
        assert finished.status == Status.COMPLETED
        with ad.expect_request(re.compile(r"^https://workersandbox\.mturk\.com/mturk/externalSubmit")):
            ad.click("text=Complete HIT")
        assert stored(database, uid).status == Status.SUBMITTED
    finally:
        context.close()

    assert not page_errors
    data = finished.record["data"]
    assert [entry["current_trial"] for entry in data] == list(range(len(data))) and len(data) == 27
    assert len(finished.phase("TEST")) == 4 + STIMULI and all(stroop_hits(finished))
    assert [t["status"] for t in finished.phase("postquestionnaire")] == ["begin", "submit"]
    assert finished.record["questiondata"] == {"engagement": "8", "difficulty": "3"}
    assert finished.event_types.count("resumed") == 1
    assert finished.bonus == pytest.approx(0.02 * (4 + STIMULI))
    requests = server.requests()
    sync = f"/sync/{uid}"
    assert ("PUT", sync, 200) in requests and ("POST", "/quitter", 200) in requests
    assert not [r for r in requests if r[1].startswith(sync + "/delta")]  # psiTurk's client saves whole models
    server.assert_no_server_errors()

