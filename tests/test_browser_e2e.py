"""The example experiment end to end in headless Chromium, like a participant, against `psiturk-async serve`.

Each test reads the participant's row back from the SQLite file the server wrote. One run goes through the
debug link, one through the MTurk sandbox popup flow; one stops the server in the middle of the task and
starts it again; two run an experiment page written for psiTurk 3 (classic script, global PsiTurk), one of
them reloading the page while saves fail.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from browser import Server, chromium, served, server_environ, stored, wait_for
from psiturk_async.models import Status
from psiturk_async.project import setup_example

pytestmark = pytest.mark.browser

TRIALS = 12
KEYS = {"red": "r", "green": "g", "blue": "b"}
WRONG_KEYS = {"red": "g", "green": "b", "blue": "r"}
# condition -> how many trials of each relation (task.js's TRIAL_MIXES)
TRIAL_MIXES = [{"congruent": 4, "incongruent": 4, "unrelated": 4},
               {"congruent": 8, "incongruent": 2, "unrelated": 2}]
ANSWERS = {"difficulty": "3", "engagement": "4", "color_vision": "no", "comments": "Fine — thanks ✓"}
# Reading forward, going back once from page 2, then forward to the end.
INSTRUCTION_ACTIONS = ["Begin", "NextPage", "PrevPage", "NextPage", "NextPage", "NextPage", "FinishInstructions"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """The example project served for the whole module (each run is its own participant); and its database."""
    folder = tmp_path_factory.mktemp("example")
    env, database = server_environ(folder)
    with served(setup_example(folder / "project"), env, folder / "server.log") as server:
        yield server, database


@pytest.fixture
def env_and_db(tmp_path: Path) -> tuple[dict[str, str], Path]:
    return server_environ(tmp_path)


@pytest.fixture
def own_server(project_dir: Path, env_and_db: tuple[dict[str, str], Path], tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for a test that stops it."""
    with served(project_dir, env_and_db[0], tmp_path / "server.log") as server:
        yield server


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile; no page of it may throw an uncaught error."""
    context = browser.new_context()
    page_errors: list[str] = []
    context.on("weberror", lambda error: page_errors.append(str(error.error)))
    try:
        yield context.new_page()
    finally:
        context.close()
    assert not page_errors


def new_ids(mode: str) -> dict[str, str]:
    # The debug rule: hitId "debug…" or mode=debug. The sandbox run must not look like debugging.
    prefix = "debug" if mode == "debug" else "A"
    return {"assignmentId": f"{prefix}{secrets.token_hex(4)}", "hitId": f"{prefix}{secrets.token_hex(4)}",
            "workerId": f"{prefix}{secrets.token_hex(4)}", "mode": mode}


def uid_of(ids: dict[str, str]) -> str:
    return f"{ids['workerId']}:{ids['assignmentId']}"


def open_study_from_ad(page: Page, server: Server, ids: dict[str, str]) -> Page:
    """The ad, its "Begin" popup, the consent form, "I agree": the experiment page in the popup."""
    page.goto(f"{server.url}/ad?{urlencode(ids)}")
    expect(page.locator("h1")).to_have_text("Colour and word")
    with page.expect_popup() as opened:
        page.click("#begin")
    popup = opened.value
    expect(popup.locator("h1")).to_have_text("Consent to take part in research")
    assert f"mode={ids['mode']}" in popup.url
    popup.click("#agree")
    popup.wait_for_url(re.compile(r"/exp\?"))
    return popup


def read_instructions(page: Page) -> None:
    eyebrow = page.locator(".eyebrow")
    steps = [(".continue", 2), (".previous", 1), (".continue", 2), (".continue", 3), (".continue", 4)]
    expect(eyebrow).to_contain_text("1 of 4")
    for button, shown in steps:
        page.click(f".instructionsnav {button}")
        expect(eyebrow).to_contain_text(f"{shown} of 4")
    page.click(".instructionsnav .continue")


def answer_trials(page: Page, numbers: range, *, wrong: set[int]) -> None:
    """Answer trials `numbers` (1-based) by key presses: the ink colour, or a wrong key on trials in `wrong`."""
    stim = page.locator("#stim")
    inked = re.compile(r"\bink-(red|green|blue)\b")
    for number in numbers:
        expect(page.locator("#progress")).to_have_text(f"Word {number} of {TRIALS}")
        expect(stim).to_have_class(inked)
        match = inked.search(stim.get_attribute("class") or "")
        assert match is not None
        key = (WRONG_KEYS if number in wrong else KEYS)[match.group(1)]
        # The task listens from the frame after the word is painted; a press just before that is not seen,
        # so press again until the word goes away.
        for _attempt in range(20):
            page.keyboard.press(key)
            try:
                expect(stim).not_to_have_class(inked, timeout=250)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"trial {number} did not take the key press")


def answer_questionnaire(page: Page) -> None:
    expect(page.locator("h1")).to_have_text("Almost done: a few questions")
    for field in ("difficulty", "engagement", "color_vision"):
        page.select_option(f"#{field}", ANSWERS[field])
    page.fill("#comments", ANSWERS["comments"])
    page.click("#next")


def check_finished_record(database: Path, uid: str, *, status: Status, wrong: set[int]) -> None:
    """Everything the participant did is stored once, in order, and the bonus counts the right answers."""
    row = stored(database, uid)
    assert row.status == status
    data = row.record["data"]
    assert [entry["current_trial"] for entry in data] == list(range(len(data)))
    assert {entry["uniqueid"] for entry in data} == {uid}
    assert [trial["action"] for trial in row.phase("INSTRUCTIONS")] == INSTRUCTION_ACTIONS
    tests = row.phase("TEST")
    assert len(tests) == TRIALS
    relations = {relation: sum(t["relation"] == relation for t in tests) for relation in TRIAL_MIXES[0]}
    assert relations == TRIAL_MIXES[row.cond]
    assert [t["hit"] for t in tests] == [number not in wrong for number in range(1, TRIALS + 1)]
    assert all(t["response"] in KEYS and isinstance(t["rt"], int) and t["rt"] >= 0 for t in tests)
    assert [t["status"] for t in row.phase("postquestionnaire")] == ["begin", "submit"]
    assert row.record["questiondata"] == ANSWERS
    assert row.event_types[:2] == ["initialized", "window_resize"]
    events = row.record["eventdata"]
    pairs = zip(events, events[1:], strict=False)
    assert [event["interval"] for event in events[1:]] == [e["timestamp"] - p["timestamp"] for p, e in pairs]
    assert row.bonus == pytest.approx(0.02 * (TRIALS - len(wrong)))


@pytest.mark.parametrize("mode", ["debug", "sandbox"])
def test_participant_takes_the_example_from_ad_to_completion(
        page: Page, example: tuple[Server, Path], mode: str) -> None:
    server, database = example
    ids = new_ids(mode)
    uid = uid_of(ids)
    study = open_study_from_ad(page, server, ids)
    read_instructions(study)
    assert stored(database, uid).status in (Status.ALLOCATED, Status.STARTED)

    answer_trials(study, range(1, 6), wrong={3})
    study.set_viewport_size({"width": 900, "height": 700})
    answer_trials(study, range(6, TRIALS + 1), wrong={3})
    answer_questionnaire(study)

    if mode == "debug":
        study.wait_for_url(re.compile(r"/complete\?"))
        expect(study.locator("h1")).to_have_text("Thank you, the session is complete")
    else:
        # closepopup.html reloads the ad in the opener and closes itself; the ad then offers "Submit HIT".
        study.wait_for_event("close")
        expect(page.locator("h1")).to_have_text("Thank you for taking part!")
        page.route("https://workersandbox.mturk.com/**", lambda route: route.fulfill(body="submitted"))
        with page.expect_request(re.compile(r"^https://workersandbox\.mturk\.com/mturk/externalSubmit")):
            page.click("#submit-hit")

    check_finished_record(database, uid, status=Status.COMPLETED if mode == "debug" else Status.SUBMITTED,
                          wrong={3})
    resizes = [e["value"] for e in stored(database, uid).record["eventdata"] if e["eventtype"] == "window_resize"]
    assert resizes[-1] == [900, 700]
    server.assert_no_server_errors()


def test_no_trial_is_lost_when_the_server_restarts_mid_task(
        page: Page, own_server: Server, env_and_db: tuple[dict[str, str], Path]) -> None:
    server, (_env, database) = own_server, env_and_db
    ids = new_ids("debug")
    uid = uid_of(ids)
    study = open_study_from_ad(page, server, ids)
    read_instructions(study)
    answer_trials(study, range(1, 7), wrong=set())

    server.stop()
    # The rest of the task happens while the server is down: trials, the checkpoint save after them and the
    # questionnaire's save all fail and wait in the outbox, retried with backoff.
    answer_trials(study, range(7, TRIALS + 1), wrong=set())
    answer_questionnaire(study)
    expect(study.locator("#save-status")).to_have_text("Saving your answers\u2026")
    outbox = study.evaluate("(uid) => JSON.parse(localStorage.getItem('psiturk-outbox:' + uid))", uid)
    assert len([row for row in outbox["data"] if row["trialdata"].get("phase") == "TEST"]) >= TRIALS - 6
    study.wait_for_timeout(3000)
    server.start()

    # The save retries by itself for a while; on a slow machine the restart can outlast that, and then the
    # questionnaire offers "Try again", which a participant would press.
    try_again = study.locator("#next", has_text="Try again")
    deadline = time.monotonic() + 90
    while "/complete?" not in study.url:
        assert time.monotonic() < deadline, "the study did not complete after the restart"
        if try_again.is_visible() and try_again.is_enabled():
            try_again.click()
        study.wait_for_timeout(250)
    expect(study.locator("h1")).to_have_text("Thank you, the session is complete")
    check_finished_record(database, uid, status=Status.COMPLETED, wrong=set())
    server.assert_no_server_errors()


OLD_EXP_HTML = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>An experiment written for psiTurk 3</title>
  <script type="text/javascript">
    var uniqueId = "{{ uniqueId }}";
    var condition = {{ condition }};
    var counterbalance = {{ counterbalance }};
    var adServerLoc = "{{ adServerLoc }}";
    var mode = "{{ mode }}";
  </script>
  <script src="/static/js/psiturk.js" type="text/javascript"></script>
  <script src="/static/js/old-task.js" type="text/javascript"></script>
</head>
<body><p>Loading</p></body>
</html>
"""

# psiTurk 3 style: a global constructor that returns with the saved state loaded, callbacks, methods passed
# around unbound, taskdata.get/set, no modules and no promises awaited.
OLD_TASK_JS = """
var psiTurk = new PsiTurk(uniqueId, adServerLoc, mode);
psiTurk.recordUnstructuredData('loaded_worker', psiTurk.taskdata.get('workerId'));
psiTurk.taskdata.set('custom_field', 'kept');

var record = psiTurk.recordTrialData;
var pages = ['instructions/instruct-1.html', 'stage.html'];

psiTurk.preloadPages(pages).then(function () {
  psiTurk.doInstructions(['instructions/instruct-1.html'], startTrials);
});

function startTrials() {
  psiTurk.showPage('stage.html');
  document.getElementById('stim').textContent = 'Press any key';
  var count = 0;
  function onKey(event) {
    count += 1;
    record({phase: 'TEST', key: event.key, hit: true});
    document.getElementById('progress').textContent = 'Pressed ' + count;
    if (count < 3) return;
    document.removeEventListener('keydown', onKey);
    psiTurk.saveData({
      success: function () {
        psiTurk.computeBonus('compute_bonus', function () { psiTurk.completeHIT(); });
      },
      error: function () { document.body.innerHTML = '<p id="failed">The save failed</p>'; }
    });
  }
  document.addEventListener('keydown', onKey);
}
"""


@pytest.fixture
def old_style(project_dir: Path, env_and_db: tuple[dict[str, str], Path], tmp_path: Path) -> Iterator[Server]:
    """The example project with its experiment page replaced by one written for psiTurk 3, served."""
    (project_dir / "templates" / "exp.html").write_text(OLD_EXP_HTML, encoding="utf-8")
    (project_dir / "static" / "js" / "old-task.js").write_text(OLD_TASK_JS, encoding="utf-8")
    with served(project_dir, env_and_db[0], tmp_path / "server.log") as server:
        yield server


def test_old_style_psiturk3_page_saves_and_completes(
        page: Page, old_style: Server, env_and_db: tuple[dict[str, str], Path]) -> None:
    server, (_env, database) = old_style, env_and_db
    ids = new_ids("debug")
    uid = uid_of(ids)
    page.goto(f"{server.url}/exp?{urlencode(ids)}")
    page.click(".instructionsnav .continue")
    expect(page.locator("#stim")).to_have_text("Press any key")
    for key in "xyz":
        page.keyboard.press(key)
    page.wait_for_url(re.compile(r"/complete\?"))
    expect(page.locator("h1")).to_have_text("Thank you, the session is complete")
    server.assert_no_server_errors()

    row = stored(database, uid)
    assert row.status == Status.COMPLETED
    assert [t["action"] for t in row.phase("INSTRUCTIONS")] == ["Begin", "FinishInstructions"]
    assert [t["key"] for t in row.phase("TEST")] == ["x", "y", "z"]
    assert row.record["questiondata"] == {"loaded_worker": ids["workerId"]}
    assert row.record["custom_field"] == "kept"
    assert row.bonus == pytest.approx(0.06)


def test_unsaved_trials_survive_a_reload_through_the_outbox(
        page: Page, old_style: Server, env_and_db: tuple[dict[str, str], Path]) -> None:
    server, (_env, database) = old_style, env_and_db
    ids = new_ids("debug")
    uid = uid_of(ids)
    # Every save fails while `saves_fail` is set, and the old page's beacon at unload is lost (Playwright
    # cannot intercept beacons, so sendBeacon itself drops it): what was recorded can only reach the server
    # through the outbox in localStorage, after the reload.
    saves_fail = [False]
    page.route(re.compile(r"/sync/[^/?]+/delta$"),
               lambda route: route.abort() if saves_fail[0] else route.continue_())
    page.add_init_script("""
      const sendBeacon = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = (...args) => (window.beforeReload ? true : sendBeacon(...args));
    """)
    page.goto(f"{server.url}/exp?{urlencode(ids)}")
    page.click(".instructionsnav .continue")
    expect(page.locator("#stim")).to_have_text("Press any key")
    wait_for(lambda: stored(database, uid).status == Status.STARTED, message="STARTED")
    wait_for(lambda: len(stored(database, uid).phase("INSTRUCTIONS")) == 2, message="the first save")

    saves_fail[0] = True
    for key in "ab":
        page.keyboard.press(key)
    outbox = "(uid) => JSON.parse(localStorage.getItem('psiturk-outbox:' + uid)) || {data: []}"
    page.wait_for_function(f"(uid) => ({outbox})(uid).data.length === 2", arg=uid)
    page.evaluate("() => { window.beforeReload = true; }")
    page.reload()
    page.wait_for_function("() => !window.beforeReload && window.psiTurk")
    assert stored(database, uid).phase("TEST") == []
    saves_fail[0] = False  # the new page retries the outbox's save

    wait_for(lambda: len(stored(database, uid).phase("TEST")) == 2, message="the outbox's trials",
             pause=lambda: page.wait_for_timeout(100))
    page.click(".instructionsnav .continue")
    for key in "xyz":
        page.keyboard.press(key)
    page.wait_for_url(re.compile(r"/complete\?"))

    row = stored(database, uid)
    assert row.status == Status.COMPLETED
    assert [t["key"] for t in row.phase("TEST")] == ["a", "b", "x", "y", "z"]
    assert row.event_types.count("resumed") == 1
    data = row.record["data"]
    assert [entry["current_trial"] for entry in data] == list(range(len(data)))
    server.assert_no_server_errors()
