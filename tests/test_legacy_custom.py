"""The legacy layer in process: a psiTurk 3 Flask custom.py served beside the async app, on both databases."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from legacy_project import DOCS_CUSTOM_PY, MORE_ROUTES, docs_bonus, stroop_record, write_custom
from participant_flow import arrive, browser, complete, error_number, ids, row, running_app
from psiturk_async.extensions import CustomCodeError
from psiturk_async.main import create_app
from psiturk_async.settings import Settings

LOGIN = {"login_username": "lab", "login_pw": "pa:ss%word", "secret_key": "signing"}


HITS = [True, False, True, True]


@pytest.fixture
def legacy_settings(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(**LOGIN, experiment_code_version="9.9", num_conds=3, us_only="false")
    write_custom(settings.project_dir, DOCS_CUSTOM_PY + MORE_ROUTES)
    return settings


@asynccontextmanager
async def legacy_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(settings) as app, browser(app) as http:
        yield app, http


async def test_the_docs_compute_bonus_stores_the_bonus_the_server_reads(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (app, http):
        uid = await arrive(http)
        assert (await http.put(f"/sync/{uid}", json=stroop_record(uid, HITS))).status_code == 200

        response = await http.get("/compute_bonus", params={"uniqueId": uid})

        assert response.status_code == 200
        assert response.json() == {"bonusComputed": "success"}
        stored = await row(app, uid)
        assert stored is not None and stored["bonus"] == pytest.approx(0.06)
        # Nothing else in the row moved: the ORM wrote the one column it changed.
        assert stored["status"] == 1 and stored["datastring"] is not None


async def test_compute_bonus_for_an_unknown_participant_is_flasks_404(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        response = await http.get("/compute_bonus", params={"uniqueId": "nobody:none"})

    assert response.status_code == 404
    assert "Not Found" in response.text


async def test_an_experiment_error_in_a_blueprint_is_our_error_page(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        missing_id = await http.get("/compute_bonus")
        ours = await http.get("/exp", params={"hitId": "H1", "workerId": "W1", "mode": "live"})
        theirs = await http.get("/exp_error", params={"hitId": "H1", "workerId": "W1", "mode": "live"})

    assert missing_id.status_code == 400 and error_number(missing_id) == 1013
    assert "text/html" in missing_id.headers["content-type"]
    assert error_number(ours) == 1003
    assert (theirs.status_code, theirs.headers["content-type"], theirs.text) == (
        ours.status_code, ours.headers["content-type"], ours.text)
    assert "HIT ID: H1" in theirs.text and "Worker ID: W1" in theirs.text


async def test_invalid_usage_error_answers_psiturks_json(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        response = await http.get("/bad_request")

    assert response.status_code == 400
    assert response.json() == {"field": "x", "message": "no such thing"}


async def test_requires_auth_keeps_http_basic_with_the_login_settings(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        done = await arrive(http, worker="W1", assignment="A1")
        await complete(http, done)
        await arrive(http, worker="W2", assignment="A2")
        anonymous = await http.get("/view_data")
        wrong = await http.get("/view_data", auth=("lab", "guess"))
        right = await http.get("/view_data", auth=("lab", "pa:ss%word"))

    for refused in (anonymous, wrong):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="Login Required"'
        assert refused.text.startswith("Could not verify your access level for that URL.")
    assert right.status_code == 200 and right.json() == [done]


def test_psiturk_authorization_without_a_login_stops_start_up(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    write_custom(settings.project_dir, DOCS_CUSTOM_PY + MORE_ROUTES)

    with pytest.raises(CustomCodeError, match="login_username"):
        create_app(settings)


async def test_templates_static_urls_and_nocache_work_as_in_psiturk(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        response = await http.get("/my_custom_view")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    # The project's templates/custom.html, extending its layouts/layout.html.
    assert "A page of your own" in response.text and "<code>/my_custom_view</code>" in response.text


async def test_psiturk_config_holds_the_servers_settings(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        response = await http.get("/settings_seen")

    assert response.json() == {"codeversion": "9.9", "num_conds": 3, "us_only": False, "table": "assignments"}


async def test_a_participant_custom_py_creates_is_one_the_server_serves(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (app, http):
        made = await http.post("/add_participant", data={"workerId": "W9", "assignmentId": "A9", "hitId": "H9"})
        assert made.status_code == 200
        assert made.json() | {"ipaddress": None} == {
            "uniqueid": "W9:A9", "workerid": "W9", "assignmentid": "A9", "hitid": "H9", "mode": "debug", "cond": 1,
            "counterbalance": 0, "status": 1, "codeversion": "9.9", "bonus": 0.0, "beginexp": None,
            "endhit": None, "ipaddress": None, "browser": None, "platform": None, "language": None}
        stored = await row(app, "W9:A9")
        assert stored is not None and stored["beginhit"] is not None and stored["beginhit"].tzinfo is None
        # The same worker on another assignment is a returning worker to the server.
        refused = await http.get("/ad", params=ids(worker="W9", assignment="B1"))
    assert error_number(refused) == 1010


async def test_the_servers_routes_keep_priority_over_the_blueprint(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        exp = await http.get("/exp", params=ids())
        raw = await http.get("/instructions/instruct-1.html")
        unknown = await http.get("/not-a-route")
        wrong_method = await http.post("/compute_bonus")
        static = await http.get("/static/css/style.css")

    assert exp.status_code == 200 and "the blueprint must not answer" not in exp.text
    assert raw.status_code == 200
    assert raw.text == (legacy_settings.project_dir / "templates/instructions/instruct-1.html").read_text()
    assert unknown.status_code == 404 and error_number(unknown) == 404
    assert wrong_method.status_code == 405
    assert static.status_code == 200 and static.headers["cache-control"] == "public, max-age=10"


async def test_init_app_is_called_with_the_flask_app(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        response = await http.get("/added_by_init_app")

    assert response.json() == {"flask_app": "Experiment_Server"}


async def test_a_slow_legacy_route_does_not_hold_up_the_server(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (_app, http):
        started = time.monotonic()
        slow = asyncio.create_task(http.get("/slow", params={"seconds": "1.5"}))
        await asyncio.sleep(0.2)
        health = await http.get("/healthz")
        answered_after = time.monotonic() - started
        assert not slow.done()
        assert (await slow).text == "slept"

    assert health.status_code == 200
    assert answered_after < 1.2


async def test_saves_and_legacy_bonus_writes_at_once_all_land(legacy_settings: Settings) -> None:
    async with legacy_app(legacy_settings) as (app, http):
        uids = [await arrive(http, worker=f"W{n}", assignment=f"A{n}") for n in range(8)]

        async def save_then_bonus(uid: str) -> tuple[int, int]:
            saved = await http.put(f"/sync/{uid}", json=stroop_record(uid, HITS))
            computed = await http.get("/compute_bonus", params={"uniqueId": uid})
            return saved.status_code, computed.status_code

        answers = await asyncio.gather(*(save_then_bonus(uid) for uid in uids))
        bonuses = [(await row(app, uid) or {})["bonus"] for uid in uids]

    assert answers == [(200, 200)] * len(uids)
    assert bonuses == pytest.approx([docs_bonus(HITS)] * len(uids))


async def test_the_import_names_live_with_the_legacy_app_only(legacy_settings: Settings,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="psiturk_async.legacy")
    async with legacy_app(legacy_settings) as (app, _http):
        models = sys.modules["psiturk.models"]
        assert sys.modules["custom"].Participant is models.Participant
        assert app.state.custom.router is None and app.state.custom.legacy is not None
    assert not [name for name in sys.modules if name == "psiturk" or name.startswith("psiturk.")]
    active = [r.getMessage() for r in caplog.records if "compatibility layer active" in r.getMessage()]
    assert len(active) == 1 and "/compute_bonus" in active[0] and "/static" not in active[0]


async def test_a_native_custom_py_gets_no_psiturk_names(settings: Settings) -> None:
    async with running_app(settings):
        assert "psiturk" not in sys.modules


def test_a_psiturk_module_the_layer_lacks_is_named_with_what_to_do(settings: Settings) -> None:
    write_custom(settings.project_dir, DOCS_CUSTOM_PY + "from psiturk.amt_services_wrapper import Wrapper\n")

    with pytest.raises(CustomCodeError) as raised:
        create_app(settings)

    message = str(raised.value)
    assert "psiturk.amt_services_wrapper is not provided" in message and "Coming from psiTurk 3" in message
    assert "psiturk" not in sys.modules


async def test_an_installed_psiturk_is_answered_by_the_layer_and_said_so(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    real = tmp_path / "site" / "psiturk"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("raise RuntimeError('the real psiTurk was imported')\n")
    (real / "models.py").write_text("raise RuntimeError('the real psiTurk was imported')\n")
    monkeypatch.syspath_prepend(str(real.parent))
    write_custom(settings.project_dir, DOCS_CUSTOM_PY)

    async with legacy_app(settings) as (_app, http):
        uid = await arrive(http)
        await http.put(f"/sync/{uid}", json=stroop_record(uid, HITS))
        assert (await http.get("/compute_bonus", params={"uniqueId": uid})).status_code == 200

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("psiTurk is installed" in message and str(real) in message for message in warnings)


CONDITION_HOOK = '''
from psiturk.models import Participant
from psiturk.db import db_session


def custom_get_condition(mode):
    # Alternate conditions by how many participants are on record (a synchronous query, as in psiTurk).
    return Participant.query.count() % 2, 0
'''


async def test_custom_get_condition_can_query_through_psiturks_session(settings: Settings) -> None:
    write_custom(settings.project_dir, CONDITION_HOOK)

    async with legacy_app(settings) as (app, http):
        first = await arrive(http, worker="W1", assignment="A1")
        second = await arrive(http, worker="W2", assignment="A2")
        third = await arrive(http, worker="W3", assignment="A3")
        conditions = [(await row(app, uid) or {})["cond"] for uid in (first, second, third)]

    assert conditions == [0, 1, 0]


def readme_python_blocks() -> list[str]:
    """The Python code blocks of the README's "Coming from psiTurk 3" section."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Coming from psiTurk 3", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.parametrize("form", ["flask", "native"])
async def test_the_readmes_compute_bonus_in_both_forms(settings: Settings, form: str) -> None:
    flask_form, native_form = readme_python_blocks()
    write_custom(settings.project_dir, flask_form if form == "flask" else native_form)

    async with legacy_app(settings) as (app, http):
        uid = await arrive(http)
        await http.put(f"/sync/{uid}", json=stroop_record(uid, HITS))
        computed = await http.get("/compute_bonus", params={"uniqueId": uid})
        missing = await http.get("/compute_bonus")
        unknown = await http.get("/compute_bonus", params={"uniqueId": "nobody:none"})
        stored = await row(app, uid)
        assert (app.state.custom.legacy is not None) == (form == "flask")

    assert computed.json() == {"bonusComputed": "success"}
    assert stored is not None and stored["bonus"] == pytest.approx(0.06)
    assert missing.status_code == 400 and error_number(missing) == 1013
    assert unknown.status_code == 404


def test_an_init_app_that_fails_stops_create_app_with_its_cause(settings: Settings) -> None:
    write_custom(settings.project_dir, DOCS_CUSTOM_PY + "\ndef init_app(app):\n    raise KeyError('nokey')\n")

    with pytest.raises(CustomCodeError, match="nokey") as raised:
        create_app(settings)

    assert isinstance(raised.value.__cause__, KeyError)
    assert "psiturk" not in sys.modules
