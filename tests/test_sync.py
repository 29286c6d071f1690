"""Saving a participant's data: their browser only, whole or in deltas, never losing stored trials."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from participant_flow import (
    arrive,
    browser,
    delete_row,
    error_number,
    fixture_record,
    ids,
    reach,
    row,
    running_app,
    secret_of,
    set_row,
    stored_record,
)
from psiturk_async.models import Status

SECRET_HEADER = "X-PsiTurk-Secret"


def first_rows(model: dict[str, Any], trials: int, events: int) -> dict[str, Any]:
    """The model as the client held it earlier: fewer trials and events."""
    return {**model, "data": model["data"][:trials], "eventdata": model["eventdata"][:events]}


def delta(data_from: int = 0, data: list | None = None, eventdata_from: int = 0, eventdata: list | None = None,
          questiondata: dict | None = None, attributes: dict | None = None) -> dict[str, Any]:
    return {"data_from": data_from, "data": data or [], "eventdata_from": eventdata_from,
            "eventdata": eventdata or [], "questiondata": questiondata or {}, "attributes": attributes or {}}


def request_for(route: str, uid: str) -> dict[str, Any]:
    """httpx.request arguments for one participant route that needs the secret, acting on `uid`."""
    return {
        "GET /sync": {"method": "GET", "url": f"/sync/{uid}"},
        "PUT /sync": {"method": "PUT", "url": f"/sync/{uid}", "json": {"data": [], "currenttrial": 0}},
        "POST /sync/delta": {"method": "POST", "url": f"/sync/{uid}/delta",
                             "json": delta(data=[{"trialdata": "forged"}])},
        "POST /inexp": {"method": "POST", "url": "/inexp", "data": {"uniqueId": uid}},
        "POST /quitter": {"method": "POST", "url": "/quitter", "data": {"uniqueId": uid}},
        "GET /complete": {"method": "GET", "url": "/complete", "params": {"uniqueId": uid, "mode": "live"}},
        "GET /worker_complete": {"method": "GET", "url": "/worker_complete", "params": {"uniqueId": uid}},
    }[route]


SECRET_ROUTES = ["GET /sync", "PUT /sync", "POST /sync/delta", "POST /inexp", "POST /quitter", "GET /complete",
                 "GET /worker_complete"]
JSON_SECRET_ROUTES = [route for route in SECRET_ROUTES if route != "GET /complete"]


@pytest.fixture
async def saved(client: httpx.AsyncClient) -> AsyncIterator[str]:
    """A participant of `client` with the fixture model saved."""
    uid = await arrive(client)
    assert (await client.put(f"/sync/{uid}", json=fixture_record())).status_code == 200
    yield uid


@pytest.mark.parametrize("mode", ["live", "debug"])
@pytest.mark.parametrize("route", SECRET_ROUTES)
async def test_another_browser_cannot_touch_a_participant(client: httpx.AsyncClient, app: FastAPI, route: str,
                                                          mode: str) -> None:
    uid = await arrive(client, mode=mode)
    await client.put(f"/sync/{uid}", json=fixture_record())
    before = await row(app, uid)

    async with browser(app) as other:
        response = await other.request(**request_for(route, uid))

    assert response.status_code == 403
    assert await row(app, uid) == before


@pytest.mark.parametrize("route", JSON_SECRET_ROUTES)
async def test_a_refusal_for_a_json_route_is_json(client: httpx.AsyncClient, app: FastAPI, saved: str,
                                                  route: str) -> None:
    async with browser(app) as other:
        response = await other.request(**request_for(route, saved))

    assert response.json()["error"] == "forbidden"
    assert response.json()["detail"]


async def test_complete_from_another_browser_shows_an_error_page(client: httpx.AsyncClient, app: FastAPI,
                                                                 saved: str) -> None:
    async with browser(app) as other:
        response = await other.get("/complete", params={"uniqueId": saved, "mode": "live"})

    assert response.status_code == 403
    assert error_number(response) == 1021


@pytest.mark.parametrize("route", SECRET_ROUTES)
async def test_another_participants_secret_does_not_open_this_one(client: httpx.AsyncClient, app: FastAPI,
                                                                  saved: str, route: str) -> None:
    async with browser(app) as other:
        other_uid = await arrive(other, worker="W2", assignment="A2")
        before = await row(app, saved)

        response = await other.request(**request_for(route, saved),
                                       headers={SECRET_HEADER: secret_of(other, other_uid)})

    assert response.status_code == 403
    assert await row(app, saved) == before


async def test_the_secret_in_a_header_lets_another_browser_save(client: httpx.AsyncClient, app: FastAPI,
                                                                saved: str) -> None:
    model = fixture_record()
    model["currenttrial"] = 99

    async with browser(app, headers={SECRET_HEADER: secret_of(client, saved)}) as other:
        put = await other.put(f"/sync/{saved}", json=model)
        got = await other.get(f"/sync/{saved}")

    assert put.status_code == 200
    assert got.json()["currenttrial"] == 99


async def test_a_wrong_secret_in_a_header_is_refused(client: httpx.AsyncClient, app: FastAPI, saved: str) -> None:
    async with browser(app, headers={SECRET_HEADER: "0" * 32}) as other:
        response = await other.get(f"/sync/{saved}")

    assert response.status_code == 403


async def test_the_secret_cookie_is_named_for_the_participant_and_http_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/exp", params=ids())

    cookie = response.headers["set-cookie"]
    name = "psiturk_secret_" + hashlib.sha256(b"W1:A1").hexdigest()[:12]
    assert cookie.startswith(f"{name}=")
    assert "HttpOnly" in cookie and "Path=/" in cookie
    assert "samesite=lax" in cookie.lower() and "Secure" not in cookie


async def test_over_https_the_secret_cookie_works_in_a_frame(app: FastAPI) -> None:
    async with browser(app, base_url="https://testserver") as http:
        response = await http.get("/exp", params=ids())

    cookie = response.headers["set-cookie"]
    assert "samesite=none" in cookie.lower() and "Secure" in cookie


@pytest.mark.parametrize(("trusted", "secure"), [("203.0.113.7", True), ("198.51.100.1", False)])
async def test_a_proxys_https_counts_only_when_the_proxy_is_trusted(make_settings, trusted: str,  # type: ignore[no-untyped-def]
                                                                    secure: bool) -> None:
    async with running_app(make_settings(trusted_proxies=trusted)) as app, browser(app) as http:
        response = await http.get("/exp", params=ids(), headers={"X-Forwarded-Proto": "https"})

    assert ("Secure" in response.headers["set-cookie"]) is secure


BAD_BODIES = {
    "not JSON": b"{data: [}",
    "empty": b"",
    "a JSON array": b"[1, 2]",
    "JSON null": b"null",
    "a JSON string": b'"data"',
    "not UTF-8": b'{"data": "\xff"}',
    "NaN, which is not JSON": b'{"data": [], "bonus": NaN}',
    "an object followed by more": b'{"data": []} {"data": []}',
    "trailing comma": b'{"data": [1,],}',
    "single quotes": b"{'data': []}",
    "a lone surrogate escape": b'{"data": [], "note": "\\ud800"}',
    "a lone surrogate among other escapes": b'{"data": [], "note": "\\"q\\" \\uDC00"}',
    "an array after white space": b' \n[{"data": []}]',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_put_sync_refuses_a_body_that_is_not_a_json_object(client: httpx.AsyncClient, app: FastAPI,
                                                                  saved: str, body: bytes) -> None:
    before = await row(app, saved)

    response = await client.put(f"/sync/{saved}", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert set(response.json()) >= {"error", "detail"}
    assert await row(app, saved) == before


BAD_DELTAS = {
    **BAD_BODIES,
    "data_from not a number": orjson.dumps(delta() | {"data_from": "start"}),
    "negative data_from": orjson.dumps(delta() | {"data_from": -1}),
    "fractional eventdata_from": orjson.dumps(delta() | {"eventdata_from": 1.5}),
    "data not a list": orjson.dumps(delta() | {"data": {"trialdata": 1}}),
    "eventdata not a list": orjson.dumps(delta() | {"eventdata": "keydown"}),
    "questiondata not an object": orjson.dumps(delta() | {"questiondata": ["engagement", 5]}),
    "attributes not an object": orjson.dumps(delta() | {"attributes": [["currenttrial", 3]]}),
    "attributes holding data": orjson.dumps(delta(attributes={"data": []})),
    "attributes holding eventdata": orjson.dumps(delta(attributes={"eventdata": []})),
    "attributes holding questiondata": orjson.dumps(delta(attributes={"questiondata": {}})),
}


@pytest.mark.parametrize("body", BAD_DELTAS.values(), ids=BAD_DELTAS.keys())
async def test_a_malformed_delta_is_refused(client: httpx.AsyncClient, app: FastAPI, saved: str,
                                            body: bytes) -> None:
    before = await row(app, saved)

    response = await client.post(f"/sync/{saved}/delta", content=body, headers={"Content-Type": "text/plain"})

    assert response.status_code == 400
    assert set(response.json()) >= {"error", "detail"}
    assert await row(app, saved) == before


@pytest.mark.parametrize("route", ["/inexp", "/quitter"])
async def test_a_status_post_without_its_form_field_is_400(client: httpx.AsyncClient, app: FastAPI, saved: str,
                                                           route: str) -> None:
    before = await row(app, saved)

    response = await client.post(route, json={"uniqueId": saved})

    assert response.status_code == 400
    assert await row(app, saved) == before


@pytest.fixture
def small_app_settings(make_settings):  # type: ignore[no-untyped-def]
    return make_settings(max_sync_bytes=1000)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 256):
        yield body[start:start + 256]


@pytest.mark.parametrize("sent_as", ["with a length", "chunked"])
@pytest.mark.parametrize("route", ["PUT /sync", "POST /sync/delta"])
async def test_a_save_above_the_size_limit_is_413(small_app_settings, route: str, sent_as: str) -> None:  # type: ignore[no-untyped-def]
    async with running_app(small_app_settings) as app, browser(app) as http:
        uid = await arrive(http)
        body = orjson.dumps(fixture_record() if route == "PUT /sync" else delta(data=fixture_record()["data"]))
        assert len(body) > 1000
        method, url = ("PUT", f"/sync/{uid}") if route == "PUT /sync" else ("POST", f"/sync/{uid}/delta")

        response = await http.request(method, url, content=body if sent_as == "with a length" else _chunks(body),
                                      headers={"Content-Type": "application/json"})

        assert response.status_code == 413
        assert response.json()["error"] == "too_large"
        assert (await row(app, uid))["datastring"] is None


async def test_a_save_at_the_size_limit_is_stored(small_app_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(small_app_settings) as app, browser(app) as http:
        uid = await arrive(http)
        body = orjson.dumps({"data": [], "comment": "x" * (1000 - len(b'{"data":[],"comment":""}'))})
        assert len(body) == 1000

        response = await http.put(f"/sync/{uid}", content=body, headers={"Content-Type": "application/json"})

        assert response.status_code == 200
        assert await stored_record(app, uid) == orjson.loads(body)


@pytest.mark.parametrize("route", JSON_SECRET_ROUTES)
async def test_a_participant_no_longer_on_record_is_404(client: httpx.AsyncClient, app: FastAPI, saved: str,
                                                        route: str) -> None:
    # The browser still holds the secret of a row that was deleted since.
    await delete_row(app, saved)

    response = await client.request(**request_for(route, saved))

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_participant"
    assert response.json()["detail"]


async def test_complete_for_a_participant_no_longer_on_record_is_error_1017(client: httpx.AsyncClient,
                                                                           app: FastAPI, saved: str) -> None:
    await delete_row(app, saved)

    response = await client.get("/complete", params={"uniqueId": saved, "mode": "live"})

    assert response.status_code == 404
    assert error_number(response) == 1017


async def test_worker_submitted_for_an_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/worker_submitted", params={"uniqueId": "nobody:none"})

    assert response.status_code == 404
    assert set(response.json()) >= {"error", "detail"}


async def test_an_unknown_id_without_a_secret_is_403_not_a_hint(client: httpx.AsyncClient) -> None:
    response = await client.get("/sync/nobody:none")

    assert response.status_code == 403


async def test_a_late_full_save_with_fewer_trials_is_refused(client: httpx.AsyncClient, app: FastAPI,
                                                             saved: str) -> None:
    late = first_rows(fixture_record(), trials=10, events=5)

    response = await client.put(f"/sync/{saved}", json=late)

    assert response.status_code == 409
    assert response.json()["error"] == "stale_save"
    assert response.json()["data_length"] == 14
    assert await stored_record(app, saved) == fixture_record()


async def test_a_full_save_with_as_many_trials_replaces_the_record(client: httpx.AsyncClient, app: FastAPI,
                                                                   saved: str) -> None:
    model = fixture_record()
    model["questiondata"]["comments"] = "changed my mind"

    response = await client.put(f"/sync/{saved}", json=model)

    assert response.status_code == 200
    assert (await stored_record(app, saved))["questiondata"]["comments"] == "changed my mind"


SAVABLE = ["allocated", "started", "quit", "completed", "submitted"]


async def _put_in(http: httpx.AsyncClient, app: FastAPI, where: str) -> tuple[str, httpx.Response]:
    uid = await arrive(http)
    await reach(http, uid, where)
    return uid, await http.put(f"/sync/{uid}", json=fixture_record())


@pytest.mark.parametrize("where", SAVABLE)
async def test_a_full_save_is_accepted_until_approval(client: httpx.AsyncClient, app: FastAPI,
                                                      where: str) -> None:
    uid, response = await _put_in(client, app, where)

    assert response.status_code == 200
    assert await stored_record(app, uid) == fixture_record()


@pytest.mark.parametrize("where", SAVABLE)
async def test_a_delta_is_accepted_until_approval(client: httpx.AsyncClient, app: FastAPI, where: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, where)

    response = await client.post(f"/sync/{uid}/delta", json=delta(data=[{"trialdata": 1}]))

    assert response.status_code == 200
    assert (await stored_record(app, uid))["data"] == [{"trialdata": 1}]


@pytest.mark.parametrize("paid", [Status.CREDITED, Status.BONUSED])
@pytest.mark.parametrize("route", ["PUT /sync", "POST /sync/delta"])
async def test_the_record_is_frozen_once_approved(client: httpx.AsyncClient, app: FastAPI, saved: str,
                                                  paid: Status, route: str) -> None:
    await set_row(app, saved, status=int(paid))
    before = await row(app, saved)
    body = fixture_record() | {"currenttrial": 99} if route == "PUT /sync" else delta(attributes={"bonus": 9})
    method, url = ("PUT", f"/sync/{saved}") if route == "PUT /sync" else ("POST", f"/sync/{saved}/delta")

    response = await client.request(method, url, json=body)

    assert response.status_code == 409
    assert response.json()["error"] == "record_frozen"
    assert await row(app, saved) == before


async def test_a_delta_appends_only_rows_not_yet_stored(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await client.post(f"/sync/{uid}/delta", json=delta(data=[{"n": 0}, {"n": 1}]))

    response = await client.post(f"/sync/{uid}/delta", json=delta(data_from=1, data=[{"n": 1}, {"n": 2}]))

    assert response.json() == {"status": "user data saved", "data_length": 3, "eventdata_length": 0}
    assert (await stored_record(app, uid))["data"] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_a_repeated_delta_is_applied_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    body = delta(data=[{"n": 0}], eventdata=[{"eventtype": "focus"}], questiondata={"q": 1},
                 attributes={"currenttrial": 1})
    await client.post(f"/sync/{uid}/delta", json=body)
    once = await stored_record(app, uid)

    response = await client.post(f"/sync/{uid}/delta", json=body)

    assert response.json()["data_length"] == 1
    assert await stored_record(app, uid) == once


@pytest.mark.parametrize("gap", [{"data_from": 3}, {"eventdata_from": 2}])
async def test_a_delta_after_a_gap_is_refused_with_the_stored_lengths(client: httpx.AsyncClient, app: FastAPI,
                                                                      gap: dict[str, int]) -> None:
    uid = await arrive(client)
    await client.post(f"/sync/{uid}/delta", json=delta(data=[{"n": 0}], eventdata=[{"eventtype": "focus"}]))
    before = await row(app, uid)

    response = await client.post(f"/sync/{uid}/delta", json=delta(data=[{"n": 9}], eventdata=[{"e": 9}]) | gap)

    assert response.status_code == 409
    assert response.json() | {"detail": ""} == {"error": "gap", "detail": "", "data_length": 1,
                                                "eventdata_length": 1}
    assert await row(app, uid) == before


async def test_a_delta_sent_as_text_plain_is_accepted(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)

    response = await client.post(f"/sync/{uid}/delta", content=orjson.dumps(delta(data=[{"n": 0}])),
                                 headers={"Content-Type": "text/plain;charset=UTF-8"})

    assert response.status_code == 200
    assert (await stored_record(app, uid))["data"] == [{"n": 0}]


def deltas_of(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The model as an incremental client sends it: a few rows at a time, some resent, answers last."""
    attributes = {key: value for key, value in model.items() if key not in {"data", "eventdata", "questiondata"}}
    data, events = model["data"], model["eventdata"]
    return [
        delta(data=data[:4], eventdata=events[:2], attributes=attributes | {"currenttrial": 3}),
        delta(data_from=2, data=data[2:9], eventdata_from=2, eventdata=events[2:3]),
        delta(data_from=9, data=data[9:]),
        delta(data_from=len(data), eventdata_from=1, eventdata=events[1:], questiondata=model["questiondata"],
              attributes=attributes),
    ]


async def test_a_series_of_deltas_stores_what_one_full_save_stores(client: httpx.AsyncClient,
                                                                   app: FastAPI) -> None:
    model = fixture_record()
    whole = await arrive(client, worker="W1", assignment="A1")
    pieces = await arrive(client, worker="W2", assignment="A2")
    await client.put(f"/sync/{whole}", json=model)

    for body in deltas_of(model):
        response = await client.post(f"/sync/{pieces}/delta", json=body)
        assert response.status_code == 200, response.text

    assert response.json()["data_length"] == len(model["data"])
    assert await stored_record(app, pieces) == await stored_record(app, whole) == model


async def test_a_full_save_after_deltas_must_not_be_shorter(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    for body in deltas_of(fixture_record()):
        await client.post(f"/sync/{uid}/delta", json=body)

    response = await client.put(f"/sync/{uid}", json=first_rows(fixture_record(), trials=3, events=1))

    assert response.status_code == 409
    assert (await stored_record(app, uid)) == fixture_record()


@pytest.mark.parametrize("where", ["header", "cookie"])
async def test_a_secret_with_non_ascii_characters_is_refused_not_an_error(client: httpx.AsyncClient, app: FastAPI,
                                                                          saved: str, where: str) -> None:
    forged = "é" * 32
    sent = ({"headers": [(SECRET_HEADER.encode(), forged.encode("latin-1"))]} if where == "header" else
            {"headers": [(b"Cookie", f"psiturk_secret_{hashlib.sha256(saved.encode()).hexdigest()[:12]}="
                                      f"{forged}".encode("latin-1"))]})

    async with browser(app) as other:
        response = await other.get(f"/sync/{saved}", **sent)

    assert response.status_code == 403


# Valid JSON of the less usual kinds: stored as sent and given back whole.
UNUSUAL_BUT_VALID = {
    "an integer beyond 64 bits": b'"bonus": 123456789012345678901234567890',
    "a surrogate pair escape": b'"note": "\\ud83d\\ude00"',
    "a key given twice": b'"currenttrial": 1, "currenttrial": 2',
    "escaped quotes, newlines and accents": b'"note": "say \\"hi\\"\\n\\u00e9\\\\ud800"',
}


@pytest.mark.parametrize("extra", UNUSUAL_BUT_VALID.values(), ids=UNUSUAL_BUT_VALID.keys())
async def test_unusual_but_valid_json_is_kept_and_given_back(client: httpx.AsyncClient, app: FastAPI,
                                                             extra: bytes) -> None:
    uid = await arrive(client)
    record = fixture_record()
    body = orjson.dumps(record)[:-1] + b", " + extra + b"}"

    saved = await client.put(f"/sync/{uid}", content=body, headers={"Content-Type": "application/json"})
    assert saved.status_code == 200, saved.text
    assert (await row(app, uid))["datastring"] == body.decode()
    assert (await client.get(f"/sync/{uid}")).content == body
    # A shorter save is still refused: the stored trials were counted.
    shorter = await client.put(f"/sync/{uid}", json=first_rows(record, 1, 0))
    assert shorter.status_code == 409 and shorter.json()["data_length"] == len(record["data"])
    # A participant who comes back keeps those data too.
    assert (await client.post("/inexp", data={"uniqueId": uid})).status_code == 200
    assert (await client.get("/exp", params=ids())).status_code == 200
    resumed = await stored_record(app, uid)
    assert resumed is not None and resumed["data"] == record["data"]
    assert resumed["eventdata"][-1]["eventtype"] == "resumed"


PSITURK_WROTE = {
    "NaN": '{"data": [{"trialdata": {"rt": NaN}}], "questiondata": {}, "eventdata": []}',
    "a lone surrogate escape": '{"data": [{"trialdata": {"key": "\\ud800"}}], "questiondata": {}, '
                               '"eventdata": []}',
}


async def started_with_record(client: httpx.AsyncClient, app: FastAPI, stored: str) -> str:
    """A STARTED participant whose stored datastring is `stored`, written behind the server's back."""
    uid = await arrive(client)
    assert (await client.post("/inexp", data={"uniqueId": uid})).status_code == 200
    await set_row(app, uid, datastring=stored)
    return uid


@pytest.mark.parametrize("stored", PSITURK_WROTE.values(), ids=PSITURK_WROTE.keys())
async def test_a_datastring_psiturk_wrote_is_given_back_and_kept_on_resume(client: httpx.AsyncClient,
                                                                           app: FastAPI, stored: str) -> None:
    # psiTurk's Flask stored what Python's json allows; such a record is the participant's data all the same.
    uid = await started_with_record(client, app, stored)

    response = await client.get(f"/sync/{uid}")
    assert response.status_code == 200 and response.text == stored
    assert (await client.get("/exp", params=ids())).status_code == 200
    resumed = await stored_record(app, uid)
    assert resumed is not None and len(resumed["data"]) == len(json.loads(stored)["data"]) == 1
    assert [event["eventtype"] for event in resumed["eventdata"]] == ["resumed"]


@pytest.mark.parametrize("stored", PSITURK_WROTE.values(), ids=PSITURK_WROTE.keys())
async def test_a_save_over_a_datastring_psiturk_wrote_still_counts_its_trials(client: httpx.AsyncClient,
                                                                              app: FastAPI, stored: str) -> None:
    # SQLite cannot read these records, so its one-statement check fails and the save is judged in Python.
    uid = await started_with_record(client, app, stored)

    shorter = await client.put(f"/sync/{uid}", json={"data": [], "questiondata": {}, "eventdata": []})
    assert shorter.status_code == 409 and shorter.json()["data_length"] == 1
    assert (await row(app, uid))["datastring"] == stored
    longer = {"data": [{"trialdata": {"rt": 1}}, {"trialdata": {"rt": 2}}], "questiondata": {}, "eventdata": []}
    assert (await client.put(f"/sync/{uid}", json=longer)).status_code == 200
    assert await stored_record(app, uid) == longer
