"""The participant pages of psiTurk 3, black-box: psiTurk's own route tests rewritten, plus the holes it left."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from participant_flow import (
    CHROME,
    IPAD_SAFARI,
    arrive,
    browser,
    error_number,
    fixture_record,
    ids,
    row,
    rows,
    running_app,
    serve_until_exit,
    set_row,
)
from psiturk_async.experiment_errors import CATALOGUE
from psiturk_async.main import create_app
from psiturk_async.models import Status
from psiturk_async.settings import Settings, load_settings

CLIENT_DIR = Path(__file__).resolve().parents[1] / "client"
# psiTurk 3.3.1's catalogue (spec §6): the names and numbers existing error.html templates know.
PSITURK_ERRORS = {
    "status_incorrectly_set": 1000, "hit_assign_worker_id_not_set_in_mturk": 1001,
    "hit_assign_worker_id_not_set_in_consent": 1002, "hit_assign_worker_id_not_set_in_exp": 1003,
    "hit_assign_appears_in_database_more_than_once": 1004, "already_started_exp": 1008,
    "already_started_exp_mturk": 1009, "already_did_exp_hit": 1010, "tried_to_quit": 1011,
    "intermediate_save": 1012, "improper_inputs": 1013, "browser_type_not_allowed": 1014,
    "api_server_not_reachable": 1015, "ad_not_found": 1016, "error_setting_worker_complete": 1017,
    "hit_not_registered_with_ad_server": 1018, "template_unsafe": 1019, "insert_mode_failed": 1020,
    "page_not_found": 404, "in_debug": 2005, "unknown_error": 9999,
}


def without(params: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in params.items() if key != name}


async def test_default_page_is_the_projects_front_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert "Your experiment server is running" in response.text
    assert response.headers["cache-control"] == "no-cache"


async def test_exp_without_parameters_shows_error_1003(client: httpx.AsyncClient) -> None:
    response = await client.get("/exp")

    assert response.status_code == 400
    assert "<b>Error</b>: 1003" in response.text


async def test_ad_without_parameters_shows_error_1001(client: httpx.AsyncClient) -> None:
    response = await client.get("/ad")

    assert response.status_code == 400
    assert "<b>Error</b>: 1001" in response.text


@pytest.mark.parametrize(("path", "missing", "code"), [
    ("/ad", "hitId", 1001), ("/ad", "assignmentId", 1001), ("/ad", "mode", 1001),
    ("/pub", "mode", 1001),
    ("/consent", "hitId", 1002), ("/consent", "assignmentId", 1002), ("/consent", "workerId", 1002),
    ("/consent", "mode", 1002),
    ("/exp", "hitId", 1003), ("/exp", "assignmentId", 1003), ("/exp", "workerId", 1003), ("/exp", "mode", 1003),
])
async def test_a_missing_parameter_on_a_page_shows_its_error_page(
        client: httpx.AsyncClient, path: str, missing: str, code: int) -> None:
    response = await client.get(path, params=without(ids(), missing))

    assert response.status_code == 400
    assert error_number(response) == code


@pytest.mark.parametrize("missing", ["uniqueId", "mode"])
async def test_complete_without_its_parameters_shows_error_1013(
        client: httpx.AsyncClient, missing: str) -> None:
    uid = await arrive(client)

    response = await client.get("/complete", params=without({"uniqueId": uid, "mode": "live"}, missing))

    assert response.status_code == 400
    assert error_number(response) == 1013


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/inexp"), ("POST", "/quitter"), ("GET", "/worker_complete"), ("GET", "/worker_submitted"),
    ("GET", "/check_worker_status"),
])
async def test_a_json_route_without_its_id_answers_400_bad_request(
        client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)

    assert response.status_code == 400
    assert response.json()["status"] == "bad request"
    assert response.json()["error"] == "missing_parameter"


async def test_ad_with_all_ids_shows_the_accepted_ad(client: httpx.AsyncClient) -> None:
    params = ids(worker="debugW", assignment="debugA", hit="debugH", mode="sandbox")

    response = await client.get("/ad", params=params, headers={"User-Agent": CHROME})

    assert response.status_code == 200
    assert 'id="begin"' in response.text
    assert error_number(response) is None


async def test_ad_in_preview_shows_no_begin_button(client: httpx.AsyncClient) -> None:
    params = ids(assignment="ASSIGNMENT_ID_NOT_AVAILABLE", mode="sandbox")

    response = await client.get("/ad", params=without(params, "workerId"))

    assert response.status_code == 200
    assert "This is a preview" in response.text
    assert 'id="begin"' not in response.text


async def test_pub_is_the_ad(client: httpx.AsyncClient) -> None:
    params = ids(mode="sandbox")

    ad = await client.get("/ad", params=params)
    pub = await client.get("/pub", params=params)

    assert pub.status_code == 200
    assert pub.text == ad.text


async def test_the_ads_consent_link_carries_the_mode(client: httpx.AsyncClient) -> None:
    response = await client.get("/ad", params=ids(worker="W9", assignment="A9", hit="H9", mode="sandbox"))

    assert "/consent?hitId=H9&assignmentId=A9&workerId=W9&mode=sandbox" in response.text


async def test_the_consent_forms_exp_link_carries_the_mode(client: httpx.AsyncClient) -> None:
    response = await client.get("/consent", params=ids(worker="W9", assignment="A9", hit="H9", mode="sandbox"))

    assert response.status_code == 200
    assert "/exp?hitId=H9&assignmentId=A9&workerId=W9&mode=sandbox" in response.text


async def test_a_query_parameter_is_not_rendered_into_the_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/exp", params={"errornum": "5", "errordesc": "<script>x</script>"})

    assert response.status_code == 400
    assert error_number(response) == 1003
    assert "<script>x</script>" not in response.text


async def test_sync_put_saves_the_model(client: httpx.AsyncClient) -> None:
    uid = await arrive(client, worker="debugW", assignment="debugA", hit="debugH", mode="debug")

    response = await client.put(f"/sync/{uid}", json=fixture_record())

    assert response.status_code == 200
    assert response.json() == {"status": "user data saved"}


async def test_sync_get_before_a_save_gives_ids_and_condition(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client, worker="W2", assignment="A2", hit="H2", mode="")
    stored = await row(app, uid)

    response = await client.get(f"/sync/{uid}")

    assert response.json() == {"condition": stored["cond"], "counterbalance": stored["counterbalance"],
                               "assignmentId": "A2", "workerId": "W2", "hitId": "H2", "bonus": 0}


async def test_sync_get_returns_what_was_put(client: httpx.AsyncClient) -> None:
    uid = await arrive(client)
    model = fixture_record()
    await client.put(f"/sync/{uid}", json=model)

    response = await client.get(f"/sync/{uid}")

    assert response.status_code == 200
    assert response.json() == model


async def test_sync_accepts_the_url_encoded_id(client: httpx.AsyncClient) -> None:
    uid = await arrive(client)

    response = await client.put("/sync/W1%3AA1", json={"data": [], "currenttrial": 0})

    assert response.status_code == 200
    assert (await client.get(f"/sync/{uid}")).json() == {"data": [], "currenttrial": 0}


async def test_favicon_is_the_projects(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/favicon.ico")

    assert response.status_code == 200
    assert response.content == (settings.project_dir / "static" / "favicon.ico").read_bytes()


@pytest.mark.parametrize("replacement", ["missing", "a folder"])
async def test_a_project_without_a_favicon_answers_404(client: httpx.AsyncClient, settings: Settings,
                                                       replacement: str) -> None:
    icon = settings.project_dir / "static" / "favicon.ico"
    icon.unlink()
    if replacement == "a folder":
        icon.mkdir()

    response = await client.get("/favicon.ico")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_complete_in_debug_mode_shows_the_complete_page(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client, mode="debug")

    response = await client.get("/complete", params={"uniqueId": uid, "mode": "debug"})

    assert response.status_code == 200
    assert "the session is complete" in response.text
    assert (await row(app, uid))["status"] == 3


async def test_complete_on_mturk_closes_the_popup(client: httpx.AsyncClient) -> None:
    uid = await arrive(client, mode="sandbox")

    response = await client.get("/complete", params={"uniqueId": uid, "mode": "sandbox"})

    assert response.status_code == 200
    assert "window.opener.location.reload()" in response.text


async def _finish(http: httpx.AsyncClient, **kwargs: str) -> str:
    uid = await arrive(http, **kwargs)
    assert (await http.put(f"/sync/{uid}", json=fixture_record())).status_code == 200
    assert (await http.get("/complete", params={"uniqueId": uid, "mode": kwargs.get("mode", "live")})).is_success
    return uid


@pytest.mark.parametrize("page", ["/ad", "/exp"])
async def test_a_worker_who_finished_cannot_take_a_second_assignment(
        client: httpx.AsyncClient, page: str) -> None:
    await _finish(client, worker="W1", assignment="A1")

    response = await client.get(page, params=ids(worker="W1", assignment="A2"))

    assert response.status_code == 403
    assert error_number(response) == 1010


@pytest.mark.parametrize("page", ["/ad", "/exp"])
async def test_an_earlier_assignment_in_another_mode_still_blocks(client: httpx.AsyncClient, page: str) -> None:
    await arrive(client, worker="W1", assignment="A1", mode="sandbox")

    response = await client.get(page, params=ids(worker="W1", assignment="A2", mode="live"))

    assert error_number(response) == 1010


async def test_allow_repeats_lets_a_worker_take_a_second_assignment(make_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(allow_repeats="true")) as app, browser(app) as http:
        await _finish(http, worker="W1", assignment="A1")

        ad = await http.get("/ad", params=ids(worker="W1", assignment="A2"))
        second = await _finish(http, worker="W1", assignment="A2")

        assert ad.status_code == 200 and error_number(ad) is None
        assert (await row(app, second))["status"] == 3
        assert len(await rows(app)) == 2


@pytest.mark.parametrize("allow_repeats", ["false", "true"])
@pytest.mark.parametrize("left_by", ["/inexp", "/quitter"])
@pytest.mark.parametrize(("page", "code"), [("/ad", 1009), ("/exp", 1008)])
async def test_a_started_assignment_cannot_be_restarted_from_another_browser(
        make_settings, allow_repeats: str, left_by: str, page: str, code: int) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(allow_repeats=allow_repeats)) as app, browser(app) as first:
        uid = await arrive(first)
        await first.post("/inexp", data={"uniqueId": uid})
        if left_by == "/quitter":
            await first.post("/quitter", data={"uniqueId": uid})
        status = (await row(app, uid))["status"]

        async with browser(app) as second:
            response = await second.get(page, params=ids())

        assert response.status_code == 403
        assert error_number(response) == code
        assert (await row(app, uid))["status"] == status


async def test_an_ipad_safari_is_refused_the_ad(client: httpx.AsyncClient) -> None:
    response = await client.get("/ad", params=ids(), headers={"User-Agent": IPAD_SAFARI})

    assert response.status_code == 403
    assert error_number(response) == 1014


@pytest.mark.parametrize("rule", ["MSIE, , mobile", "MSIE, mobile,", ","])
async def test_an_empty_browser_exclude_entry_blocks_nobody(make_settings, rule: str) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(browser_exclude_rule=rule)) as app, browser(app) as http:
        response = await http.get("/ad", params=ids(), headers={"User-Agent": CHROME})

    assert response.status_code == 200
    assert error_number(response) is None


async def test_a_named_browser_exclude_entry_still_blocks(make_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(browser_exclude_rule="Firefox, ")) as app, browser(app) as http:
        response = await http.get("/ad", params=ids(), headers={
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"})

    assert error_number(response) == 1014


def test_every_psiturk_error_keeps_its_name_and_number() -> None:
    assert {name: CATALOGUE[name].code for name in PSITURK_ERRORS} == PSITURK_ERRORS


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_error_has_a_description_and_a_4xx_or_5xx_status(name: str) -> None:
    kind = CATALOGUE[name]

    assert kind.description.strip()
    assert 400 <= kind.http_status < 600


def test_error_numbers_are_unique() -> None:
    codes = [kind.code for kind in CATALOGUE.values()]

    assert len(codes) == len(set(codes))


async def test_check_worker_status_of_an_unknown_worker_is_0(client: httpx.AsyncClient) -> None:
    response = await client.get("/check_worker_status", params={"workerId": "W1", "assignmentId": "A1"})

    assert response.json() == {"status": 0}


async def test_check_worker_status_follows_the_assignment(client: httpx.AsyncClient) -> None:
    uid = await arrive(client)
    query = {"workerId": "W1", "assignmentId": "A1"}
    allocated = (await client.get("/check_worker_status", params=query)).json()
    await client.get("/complete", params={"uniqueId": uid, "mode": "live"})

    completed = (await client.get("/check_worker_status", params=query)).json()

    assert (allocated, completed) == ({"status": 1}, {"status": 3})


async def test_check_worker_status_without_repeats_reports_the_workers_furthest_assignment(
        client: httpx.AsyncClient, app: FastAPI) -> None:
    await _finish(client, worker="W1", assignment="A1")

    response = await client.get("/check_worker_status", params={"workerId": "W1", "assignmentId": "A2"})

    assert response.json() == {"status": 3}


async def test_check_worker_status_ranks_completed_above_quit(make_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(allow_repeats="true")) as app, browser(app) as http:
        await _finish(http, worker="W1", assignment="A1")
        quitter = await arrive(http, worker="W1", assignment="A2")
        await http.post("/quitter", data={"uniqueId": quitter})
    async with running_app(make_settings(allow_repeats="false")) as app, browser(app) as http:
        response = await http.get("/check_worker_status", params={"workerId": "W1", "assignmentId": "A3"})

    # psiTurk compared raw numbers, so a QUITEARLY (6) elsewhere hid a COMPLETED (3).
    assert response.json() == {"status": 3}


async def test_check_worker_status_without_an_assignment_is_not_an_error(client: httpx.AsyncClient) -> None:
    await arrive(client)

    response = await client.get("/check_worker_status", params={"workerId": "W1"})

    assert response.status_code == 200
    assert response.json() == {"status": 1}


async def test_raw_pages_are_served_as_they_are_on_disk(client: httpx.AsyncClient, settings: Settings) -> None:
    page = settings.project_dir / "templates" / "instructions" / "instruct-1.html"
    page.write_text("<p>{{ filled_in_by_the_browser }}</p>{% raw %}", encoding="utf-8")

    response = await client.get("/instructions/instruct-1.html")

    assert response.status_code == 200
    assert response.text == "<p>{{ filled_in_by_the_browser }}</p>{% raw %}"


async def test_an_edited_raw_page_is_served_without_a_restart(client: httpx.AsyncClient,
                                                              settings: Settings) -> None:
    page = settings.project_dir / "templates" / "stage.html"
    await client.get("/stage.html")
    page.write_text("<div id='stim'>edited</div>", encoding="utf-8")

    response = await client.get("/stage.html")

    assert response.text == "<div id='stim'>edited</div>"


@pytest.mark.parametrize("path", [
    "/ad.html", "/consent.html", "/exp.html", "/error.html", "/complete.html", "/thanks-mturksubmit.html",
    "/closepopup.html", "/default.html", "/layouts/layout.html",
])
async def test_server_rendered_templates_are_never_served_raw(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert "{%" not in response.text


@pytest.mark.parametrize("raw_path", [
    b"/ad.html/", b"/./ad.html", b"/instructions/%2e%2e/ad.html", b"/instructions/..%2fexp.html",
    b"/instructions/%2e%2e/layouts/layout.html", b"/layouts//layout.html", b"//layouts/layout.html",
])
async def test_server_rendered_templates_are_not_reachable_by_another_spelling(
        client: httpx.AsyncClient, raw_path: bytes) -> None:
    response = await client.get(httpx.URL("http://testserver", raw_path=raw_path))

    assert response.status_code == 404
    assert "{%" not in response.text


@pytest.mark.parametrize("raw_path", [
    b"/%2e%2e/config.txt", b"/..%2fconfig.txt", b"/instructions/%2e%2e/%2e%2e/custom.py",
    b"/%2e%2e%2f%2e%2e%2fetc%2fpasswd", b"//etc/passwd", b"/%2fetc%2fpasswd",
])
async def test_nothing_outside_templates_is_served(client: httpx.AsyncClient, raw_path: bytes) -> None:
    response = await client.get(httpx.URL("http://testserver", raw_path=raw_path))

    assert response.status_code == 404
    assert "root:" not in response.text
    assert "[Server Parameters]" not in response.text and "custom_code" not in response.text


async def test_an_absent_page_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/instructions/nowhere.html")

    assert response.status_code == 404
    assert error_number(response) == 404


@pytest.mark.parametrize("name", ["psiturk.js", "psiturk.mjs"])
async def test_the_client_script_is_served_as_javascript(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/static/js/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == (CLIENT_DIR / name).read_bytes()


async def test_project_static_files_are_served(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/static/js/task.js")

    assert response.status_code == 200
    assert response.content == (settings.project_dir / "static" / "js" / "task.js").read_bytes()


def _near_utc_now(value: datetime | None, started: datetime) -> bool:
    return value is not None and started - timedelta(seconds=2) <= value <= datetime.now(UTC).replace(
        tzinfo=None) + timedelta(seconds=2)


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A local time zone 14 hours ahead of UTC, so a timestamp taken in local time shows."""
    monkeypatch.setenv("TZ", "XYZ-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_beginhit_is_set_in_utc_on_arrival(far_from_utc, client: httpx.AsyncClient, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    started = datetime.now(UTC).replace(tzinfo=None)

    uid = await arrive(client)

    stored = await row(app, uid)
    assert _near_utc_now(stored["beginhit"], started)
    assert stored["beginexp"] is None and stored["endhit"] is None


async def test_beginexp_is_set_in_utc_by_inexp(far_from_utc, client: httpx.AsyncClient, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    uid = await arrive(client)
    started = datetime.now(UTC).replace(tzinfo=None)

    await client.post("/inexp", data={"uniqueId": uid})

    assert _near_utc_now((await row(app, uid))["beginexp"], started)


async def test_endhit_is_set_in_utc_by_complete(far_from_utc, client: httpx.AsyncClient, app: FastAPI) -> None:  # type: ignore[no-untyped-def]
    uid = await arrive(client)
    started = datetime.now(UTC).replace(tzinfo=None)

    await client.get("/complete", params={"uniqueId": uid, "mode": "live"})

    assert _near_utc_now((await row(app, uid))["endhit"], started)


async def test_arrival_records_the_browser(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.get("/exp", params=ids(), headers={"User-Agent": CHROME,
                                                               "Accept-Language": "de-CH, en;q=0.5"})
    assert response.status_code == 200

    stored = await row(app, "W1:A1")

    assert (stored["browser"], stored["platform"], stored["language"]) == ("chrome", "windows", "de-CH")
    assert (stored["ipaddress"], stored["mode"], stored["hitid"]) == ("203.0.113.7", "live", "H1")


@pytest.mark.parametrize("field", ["workerId", "assignmentId", "hitId", "mode"])
async def test_an_id_too_long_to_store_is_refused_with_the_exp_error(
        client: httpx.AsyncClient, app: FastAPI, field: str) -> None:
    params = {**ids(), field: "x" * 200}

    response = await client.get("/exp", params=params)

    assert response.status_code == 400
    assert error_number(response) == 1003
    assert await rows(app) == []


async def test_a_very_long_accept_language_does_not_break_arrival(client: httpx.AsyncClient,
                                                                  app: FastAPI) -> None:
    response = await client.get("/exp", params=ids(), headers={"Accept-Language": "x" * 300})

    assert response.status_code == 200
    assert len((await row(app, "W1:A1"))["language"]) <= 128


@pytest.mark.parametrize(("path", "params"), [
    ("/exp", {**ids(), "workerId": "W\x001"}),
    ("/ad", {**ids(), "workerId": "W\x001"}),
    ("/check_worker_status", {"workerId": "W\x001", "assignmentId": "A1"}),
    ("/worker_submitted", {"uniqueId": "W\x001:A1"}),
])
async def test_a_nul_character_in_an_id_is_not_a_server_error(client: httpx.AsyncClient, app: FastAPI,
                                                               path: str, params: dict[str, str]) -> None:
    response = await client.get(path, params=params)

    # PostgreSQL refuses NUL in text; the id counts as missing instead.
    assert response.status_code < 500
    assert await rows(app) == []


AD_FOR_STATUS = [(Status.ALLOCATED, None), (Status.STARTED, 1009), (Status.COMPLETED, "thanks"),
                 (Status.SUBMITTED, "thanks"), (Status.CREDITED, 1000), (Status.QUITEARLY, 1009),
                 (Status.BONUSED, 1000)]


def ad_outcome(response: httpx.Response) -> int | str | None:
    """What the ad route showed: an error number, the thank-you page, or the ad itself (None)."""
    if "externalSubmit" in response.text:
        return "thanks"
    return error_number(response)


@pytest.mark.parametrize(("status", "shown"), AD_FOR_STATUS)
async def test_the_ad_follows_psiturks_decision_for_each_status(client: httpx.AsyncClient, app: FastAPI,
                                                                status: Status, shown: int | str | None) -> None:
    uid = await arrive(client, mode="sandbox")
    await set_row(app, uid, status=int(status))

    async with browser(app) as mturk_frame:
        response = await mturk_frame.get("/ad", params=ids(mode="sandbox"))

    assert ad_outcome(response) == shown


@pytest.mark.parametrize(("status", "shown"), [
    (Status.STARTED, None), (Status.QUITEARLY, None), (Status.CREDITED, None), (Status.COMPLETED, "thanks")])
@pytest.mark.parametrize("debug_ids", [{"mode": "debug"}, {"hit": "debugH1", "mode": "sandbox"}])
async def test_in_debug_mode_the_ad_is_shown_whatever_the_status(client: httpx.AsyncClient, app: FastAPI,
                                                                 status: Status, shown: str | None,
                                                                 debug_ids: dict[str, str]) -> None:
    uid = await arrive(client, **debug_ids)
    await set_row(app, uid, status=int(status))

    async with browser(app) as mturk_frame:
        response = await mturk_frame.get("/ad", params=ids(**debug_ids))

    assert ad_outcome(response) == shown


async def test_in_debug_mode_the_ad_is_shown_to_a_repeat_worker(client: httpx.AsyncClient) -> None:
    await arrive(client, worker="W1", assignment="A1", mode="debug")

    response = await client.get("/ad", params=ids(worker="W1", assignment="A2", mode="debug"))

    assert response.status_code == 200
    assert ad_outcome(response) is None


async def test_the_thank_you_page_submits_to_the_sandbox_in_sandbox_mode(client: httpx.AsyncClient,
                                                                         app: FastAPI) -> None:
    uid = await arrive(client, mode="sandbox")
    await set_row(app, uid, status=int(Status.COMPLETED))

    response = await client.get("/ad", params=ids(mode="sandbox"))

    assert "https://workersandbox.mturk.com/mturk/externalSubmit" in response.text
    assert "/worker_submitted?uniqueId=W1:A1" in response.text


async def test_an_edited_template_is_rendered_without_a_restart(client: httpx.AsyncClient,
                                                                settings: Settings) -> None:
    page = settings.project_dir / "templates" / "consent.html"
    await client.get("/consent", params=ids())
    page.write_text(page.read_text(encoding="utf-8").replace("</main>", "<p>Edited consent.</p></main>"),
                    encoding="utf-8")

    response = await client.get("/consent", params=ids())

    assert "Edited consent." in response.text


async def test_an_ad_edited_to_lose_the_mode_marker_shows_error_1020(client: httpx.AsyncClient,
                                                                     settings: Settings) -> None:
    page = settings.project_dir / "templates" / "ad.html"
    page.write_text(page.read_text(encoding="utf-8").replace("workerId={{ workerid }}", "workerId={{workerid}}"),
                    encoding="utf-8")

    response = await client.get("/ad", params=ids())

    assert error_number(response) == 1020


@pytest.mark.parametrize("name", ["closepopup.html", "thanks-mturksubmit.html", "exp.html"])
def test_a_missing_required_template_stops_serve_with_its_name(settings: Settings, environ: dict[str, str],
                                                               name: str) -> None:
    (settings.project_dir / "templates" / name).unlink()

    result = serve_until_exit(settings.project_dir, environ)

    assert result.returncode != 0
    assert name in result.stderr


def test_an_ad_without_the_mode_marker_stops_serve(settings: Settings, environ: dict[str, str]) -> None:
    page = settings.project_dir / "templates" / "ad.html"
    page.write_text(page.read_text(encoding="utf-8").replace("workerId={{ workerid }}", "workerId={{workerid}}"),
                    encoding="utf-8")

    result = serve_until_exit(settings.project_dir, environ)

    assert result.returncode != 0
    assert "workerId={{ workerid }}" in result.stderr


@pytest.mark.parametrize("page", ["/ad", "/consent", "/exp"])
async def test_a_template_expression_in_a_parameter_is_not_evaluated(client: httpx.AsyncClient,
                                                                     page: str) -> None:
    response = await client.get(page, params=ids(worker="{{ 7 * 191 }}{% raw %}"))

    assert response.status_code == 200
    assert "1337" not in response.text
    assert "{{ 7 * 191 }}" in response.text


@pytest.mark.parametrize("page", ["/ad", "/consent", "/exp"])
async def test_markup_in_a_parameter_is_escaped(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page, params=ids(worker="<script>alert(1)</script>"))

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text


UNREACHABLE_DATABASE_ROUTES = [
    ("GET", "/check_worker_status", {"workerId": "W1"}),
    ("GET", "/worker_submitted", {"uniqueId": "W1:A1"}),
    ("GET", "/ad", {"hitId": "H1", "assignmentId": "A1", "workerId": "W1", "mode": "live"}),
    ("PUT", "/sync/W1:A1", {}),
]


@pytest.mark.parametrize(("method", "path", "params"), UNREACHABLE_DATABASE_ROUTES,
                         ids=[f"{method} {path}" for method, path, _ in UNREACHABLE_DATABASE_ROUTES])
async def test_participant_routes_answer_503_when_postgresql_is_unreachable(
        project_dir: Path, tmp_path: Path, method: str, path: str, params: dict[str, str]) -> None:
    # The participant store talks to asyncpg directly; its connection errors must read as "try again".
    settings = load_settings(project_dir, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(tmp_path),
                                                   "DATABASE_URL": "postgresql://nobody:hunter2@127.0.0.1:1/none"})
    app = create_app(settings)
    async with app.router.lifespan_context(app), browser(app) as http:
        response = await http.request(method, path, params=params, json={"data": []} if method == "PUT" else None)

    assert response.status_code == 503, response.text
    assert response.json()["error"] == "database_unavailable"
    assert "hunter2" not in response.text and "nobody" not in response.text


FILE_HEADERS = ("content-type", "content-length", "etag", "last-modified", "cache-control", "accept-ranges")


@pytest.mark.parametrize("path", ["/static/js/task.js", "/static/css/style.css", "/static/js/psiturk.js",
                                  "/instructions/instruct-1.html", "/stage.html"])
async def test_a_file_answered_at_the_door_is_what_the_router_sends(client: httpx.AsyncClient, path: str) -> None:
    # A plain GET is answered at the app's door; one that revalidates goes through FastAPI's FileResponse
    # (a date long past, so it gets the whole file too). Both must send the same bytes and headers.
    plain = await client.get(path)
    revalidating = await client.get(path, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})

    assert plain.status_code == revalidating.status_code == 200
    assert plain.content == revalidating.content
    assert {name: plain.headers.get(name) for name in FILE_HEADERS} == {
        name: revalidating.headers.get(name) for name in FILE_HEADERS}
    # A browser reloading the page revalidates what it cached: a current copy is answered 304, without a body.
    for validator in ({"If-None-Match": plain.headers["etag"]}, {"If-None-Match": f'W/{plain.headers["etag"]}'},
                      {"If-Modified-Since": plain.headers["last-modified"]}):
        unchanged = await client.get(path, headers=validator)
        assert unchanged.status_code == 304, validator
        assert unchanged.content == b"" and unchanged.headers["etag"] == plain.headers["etag"]
    changed = await client.get(path, headers={"If-None-Match": '"an-older-version"'})
    assert changed.status_code == 200 and changed.content == plain.content


@pytest.mark.parametrize("path", ["/static/js/psiturk.js", "/static/js/psiturk.mjs", "/static/js/task.js"])
async def test_a_head_request_for_a_script_gets_its_headers(client: httpx.AsyncClient, path: str) -> None:
    full = await client.get(path)
    head = await client.head(path)

    assert head.status_code == 200 and head.content == b""
    assert {name: head.headers.get(name) for name in FILE_HEADERS} == {
        name: full.headers.get(name) for name in FILE_HEADERS}


async def test_an_edited_file_is_served_as_edited(client: httpx.AsyncClient, settings: Settings) -> None:
    page = settings.project_dir / "templates" / "stage.html"
    page.write_text("<p>first</p>", encoding="utf-8")
    assert (await client.get("/stage.html")).text == "<p>first</p>"
    page.write_text("<p>second, longer</p>", encoding="utf-8")
    assert (await client.get("/stage.html")).text == "<p>second, longer</p>"


@pytest.mark.parametrize("raw_path", [
    b"/static/%2e%2e/config.txt", b"/static/..%2fcustom.py", b"/static/js/%2e%2e/%2e%2e/config.txt",
    b"/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
])
async def test_nothing_outside_static_is_served(client: httpx.AsyncClient, raw_path: bytes) -> None:
    response = await client.get(httpx.URL("http://testserver", raw_path=raw_path))

    assert response.status_code == 404
    assert "root:" not in response.text
    assert "[Server Parameters]" not in response.text and "custom_code" not in response.text


FILE_CLAIMING_ROUTER = '''
from psiturk_async.custom import APIRouter

custom_code = APIRouter()


@custom_code.get("/stage.html")
async def my_stage():
    return {"from": "custom.py"}


@custom_code.get("/assets/{name}")
async def my_assets(name: str):
    return {"asset": name}
'''


async def test_a_project_route_for_a_file_path_wins_over_the_file(settings: Settings) -> None:
    (settings.project_dir / "custom.py").write_text(FILE_CLAIMING_ROUTER, encoding="utf-8")
    (settings.project_dir / "templates" / "assets").mkdir()
    (settings.project_dir / "templates" / "assets" / "page.html").write_text("raw page", encoding="utf-8")

    async with running_app(settings) as app, browser(app) as http:
        stage = await http.get("/stage.html")
        asset = await http.get("/assets/page.html")
        other = await http.get("/instructions/instruct-1.html")

    assert stage.json() == {"from": "custom.py"}
    assert asset.json() == {"asset": "page.html"}
    assert other.status_code == 200 and "<" in other.text
