"""The guarded status machine through the participant routes: legal moves, harmless repeats, refused moves."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from participant_flow import (
    arrive,
    browser,
    complete,
    error_number,
    fixture_record,
    ids,
    quit_early,
    reach,
    row,
    set_row,
    start,
    stored_record,
    submit,
)
from psiturk_async.lifecycle import Move, decide
from psiturk_async.models import Status

S = Status


async def status_of(app: FastAPI, uid: str) -> int:
    return (await row(app, uid))["status"]


async def test_a_new_participant_is_allocated(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)

    assert await status_of(app, uid) == S.ALLOCATED


async def test_inexp_starts_an_allocated_participant(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)

    response = await client.post("/inexp", data={"uniqueId": uid})

    assert response.json() == {"status": "success"}
    assert await status_of(app, uid) == S.STARTED


async def test_a_repeated_inexp_is_harmless(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await start(client, uid)
    began = (await row(app, uid))["beginexp"]

    response = await client.post("/inexp", data={"uniqueId": uid})

    assert response.status_code == 200
    assert (await row(app, uid))["beginexp"] == began


@pytest.mark.parametrize("before", ["allocated", "started"])
async def test_quitter_marks_an_unfinished_participant(client: httpx.AsyncClient, app: FastAPI,
                                                       before: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, before)

    response = await client.post("/quitter", data={"uniqueId": uid})

    assert response.json() == {"status": "marked as quitter"}
    assert await status_of(app, uid) == S.QUITEARLY


async def test_a_repeated_quitter_is_harmless(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await quit_early(client, uid)

    response = await client.post("/quitter", data={"uniqueId": uid})

    assert response.status_code == 200
    assert await status_of(app, uid) == S.QUITEARLY


@pytest.mark.parametrize("before", ["allocated", "started", "quit"])
async def test_complete_finishes_an_unfinished_participant(client: httpx.AsyncClient, app: FastAPI,
                                                           before: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, before)

    response = await client.get("/complete", params={"uniqueId": uid, "mode": "live"})

    assert response.status_code == 200
    assert await status_of(app, uid) == S.COMPLETED


async def test_a_reloaded_complete_is_harmless(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)
    ended = (await row(app, uid))["endhit"]

    response = await client.get("/complete", params={"uniqueId": uid, "mode": "live"})

    assert response.status_code == 200
    assert (await row(app, uid))["endhit"] == ended


async def test_complete_after_submission_keeps_the_submission(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)
    await submit(client, uid)

    response = await client.get("/complete", params={"uniqueId": uid, "mode": "live"})

    assert response.status_code == 200
    assert await status_of(app, uid) == S.SUBMITTED


async def test_worker_complete_finishes_a_started_participant(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await start(client, uid)

    response = await client.get("/worker_complete", params={"uniqueId": uid})

    assert response.json() == {"status": "success"}
    assert await status_of(app, uid) == S.COMPLETED
    assert (await row(app, uid))["endhit"] is not None


async def test_a_repeated_worker_complete_is_harmless(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)

    response = await client.get("/worker_complete", params={"uniqueId": uid})

    assert response.json() == {"status": "success"}
    assert await status_of(app, uid) == S.COMPLETED


async def test_worker_submitted_submits_a_completed_participant(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)

    response = await client.get("/worker_submitted", params={"uniqueId": uid})

    assert response.json() == {"status": "success"}
    assert await status_of(app, uid) == S.SUBMITTED


async def test_worker_submitted_needs_no_secret(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)

    async with browser(app) as mturk_frame:
        response = await mturk_frame.get("/worker_submitted", params={"uniqueId": uid})

    assert response.status_code == 200
    assert await status_of(app, uid) == S.SUBMITTED


async def test_a_second_worker_submitted_is_harmless(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)
    await submit(client, uid)

    response = await client.get("/worker_submitted", params={"uniqueId": uid})

    assert response.json() == {"status": "success"}
    assert await status_of(app, uid) == S.SUBMITTED


@pytest.mark.parametrize("before", ["allocated", "started", "quit"])
async def test_worker_submitted_before_completion_is_refused(client: httpx.AsyncClient, app: FastAPI,
                                                             before: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, before)
    status = await status_of(app, uid)

    async with browser(app) as mturk_frame:
        response = await mturk_frame.get("/worker_submitted", params={"uniqueId": uid})

    assert response.status_code == 409
    assert response.json()["error"] == "illegal_status_change"
    assert response.json()["current_status"] == status
    assert await status_of(app, uid) == status


@pytest.mark.parametrize("finished", ["completed", "submitted"])
async def test_quitter_after_completion_is_refused(client: httpx.AsyncClient, app: FastAPI,
                                                   finished: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, finished)
    status = await status_of(app, uid)

    response = await client.post("/quitter", data={"uniqueId": uid})

    assert response.status_code == 409
    assert response.json()["current_status"] == status
    assert await status_of(app, uid) == status


@pytest.mark.parametrize("finished", ["completed", "submitted"])
async def test_inexp_after_completion_is_refused(client: httpx.AsyncClient, app: FastAPI,
                                                 finished: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, finished)
    before = await row(app, uid)

    response = await client.post("/inexp", data={"uniqueId": uid})

    assert response.status_code == 409
    assert response.json()["current_status"] == before["status"]
    assert await row(app, uid) == before


async def test_inexp_after_quitting_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await quit_early(client, uid)

    response = await client.post("/inexp", data={"uniqueId": uid})

    assert response.status_code == 409
    assert response.json()["current_status"] == S.QUITEARLY
    assert await status_of(app, uid) == S.QUITEARLY


@pytest.mark.parametrize("paid", [S.CREDITED, S.BONUSED])
async def test_quitter_after_approval_is_refused(client: httpx.AsyncClient, app: FastAPI, paid: Status) -> None:
    uid = await arrive(client)
    await set_row(app, uid, status=int(paid))

    response = await client.post("/quitter", data={"uniqueId": uid})

    assert response.status_code == 409
    assert await status_of(app, uid) == paid


@pytest.mark.parametrize(("current", "verdict"), [
    (S.ALLOCATED, Move.ILLEGAL), (S.STARTED, Move.ILLEGAL), (S.QUITEARLY, Move.ILLEGAL),
    (S.COMPLETED, Move.APPLY), (S.SUBMITTED, Move.APPLY), (S.CREDITED, Move.ALREADY), (S.BONUSED, Move.ALREADY),
])
def test_approval_moves_only_finished_participants_to_credited(current: Status, verdict: Move) -> None:
    assert decide(current, S.CREDITED) is verdict


@pytest.mark.parametrize(("current", "verdict"), [
    (S.ALLOCATED, Move.ILLEGAL), (S.STARTED, Move.ILLEGAL), (S.QUITEARLY, Move.ILLEGAL),
    (S.COMPLETED, Move.ILLEGAL), (S.SUBMITTED, Move.ILLEGAL), (S.CREDITED, Move.APPLY), (S.BONUSED, Move.ALREADY),
])
def test_a_bonus_moves_only_credited_participants_to_bonused(current: Status, verdict: Move) -> None:
    assert decide(current, S.BONUSED) is verdict


def test_an_unknown_stored_status_moves_nowhere() -> None:
    assert {decide(42, target) for target in (S.STARTED, S.QUITEARLY, S.COMPLETED, S.SUBMITTED)} == {Move.ILLEGAL}


def resume_events(record: dict | None) -> list[dict]:
    return [event for event in (record or {}).get("eventdata", []) if event.get("eventtype") == "resumed"]


@pytest.mark.parametrize(("left", "was"), [("started", "STARTED"), ("quit", "QUITEARLY")])
async def test_a_reload_with_the_secret_resumes(client: httpx.AsyncClient, app: FastAPI, left: str,
                                                was: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, left)

    response = await client.get("/exp", params=ids())

    assert response.status_code == 200
    assert await status_of(app, uid) == S.STARTED
    assert [event["value"] for event in resume_events(await stored_record(app, uid))] == [was]


async def test_a_resume_keeps_the_saved_data_and_appends_the_event(client: httpx.AsyncClient,
                                                                   app: FastAPI) -> None:
    uid = await arrive(client)
    await start(client, uid)
    model = fixture_record()
    await client.put(f"/sync/{uid}", json=model)

    await client.get("/exp", params=ids())

    stored = await stored_record(app, uid)
    assert stored["data"] == model["data"]
    assert stored["eventdata"][:-1] == model["eventdata"]
    assert stored["eventdata"][-1]["eventtype"] == "resumed"


async def test_a_resumed_participant_can_complete(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)
    await reach(client, uid, "quit")
    await client.get("/exp", params=ids())

    await complete(client, uid)

    assert await status_of(app, uid) == S.COMPLETED


@pytest.mark.parametrize("left", ["started", "quit"])
async def test_a_reload_without_the_secret_is_error_1008(client: httpx.AsyncClient, app: FastAPI,
                                                         left: str) -> None:
    uid = await arrive(client)
    await reach(client, uid, left)
    before = await row(app, uid)

    async with browser(app) as other:
        response = await other.get("/exp", params=ids())

    assert response.status_code == 403
    assert error_number(response) == 1008
    assert await row(app, uid) == before


async def test_a_reload_before_starting_is_no_resume(client: httpx.AsyncClient, app: FastAPI) -> None:
    uid = await arrive(client)

    response = await client.get("/exp", params=ids())

    assert response.status_code == 200
    assert await status_of(app, uid) == S.ALLOCATED
    assert resume_events(await stored_record(app, uid)) == []


async def test_a_reload_after_completion_does_not_reopen_the_experiment(client: httpx.AsyncClient,
                                                                        app: FastAPI) -> None:
    uid = await arrive(client)
    await complete(client, uid)

    response = await client.get("/exp", params=ids())

    assert error_number(response) == 1010
    assert await status_of(app, uid) == S.COMPLETED


@pytest.mark.parametrize("debug_ids", [{"mode": "debug"}, {"hit": "debugH1", "mode": "sandbox"}])
async def test_a_debug_participant_is_not_marked_as_a_quitter(client: httpx.AsyncClient, app: FastAPI,
                                                              debug_ids: dict[str, str]) -> None:
    uid = await arrive(client, **debug_ids)
    await start(client, uid)

    response = await client.post("/quitter", data={"uniqueId": uid})

    assert response.json() == {"status": "didn't mark as quitter since this is debugging"}
    assert await status_of(app, uid) == S.STARTED


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "urlencoded, repeated"])
async def test_inexp_and_quitter_read_the_form_however_it_is_encoded(client: httpx.AsyncClient, app: FastAPI,
                                                                      encoding: str) -> None:
    # psiturk.js sends a urlencoded form (answered at the app's door); a multipart one goes through FastAPI's
    # own parser. Either way the last uniqueId wins, as FastAPI reads a form.
    uid = await arrive(client, worker="W1", assignment="A1")

    def form() -> dict[str, object]:
        if encoding == "multipart":
            return {"files": {"uniqueId": (None, uid)}}
        if encoding == "urlencoded, repeated":
            return {"content": f"uniqueId=someone%3Aelse&uniqueId={uid.replace(':', '%3A')}",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
        return {"data": {"uniqueId": uid}}

    started = await client.post("/inexp", **form())  # type: ignore[arg-type]
    assert (started.status_code, started.json()) == (200, {"status": "success"})
    assert await status_of(app, uid) == S.STARTED
    quitter = await client.post("/quitter", **form())  # type: ignore[arg-type]
    assert (quitter.status_code, quitter.json()) == (200, {"status": "marked as quitter"})
    assert await status_of(app, uid) == S.QUITEARLY
