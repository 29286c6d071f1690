"""HIT commands through the admin API against the fake MTurk: what reaches the wire, the local records,
max_spend, dry runs, retries and unknown outcomes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aioboto3
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from admin_data import AUTH
from fakes.fixtures import FakeMTurk
from mturk_world import api, calls_when_answered, create_hit, fake_settings, take_part, use_clients
from psiturk_async.models import Hit
from psiturk_async.mturk.fees import hit_cost
from psiturk_async.mturk.models import MTurkHit
from psiturk_async.mturk.spec import QUESTION_NAMESPACE
from psiturk_async.settings import Settings

SANDBOX = {"mode": "sandbox"}


@pytest.fixture
def settings(make_settings: Any, fake_mturk: FakeMTurk) -> Settings:
    return make_settings(**fake_settings(fake_mturk))


async def hit_rows(app: FastAPI) -> list[MTurkHit]:
    async with app.state.sessions() as session:
        return list((await session.scalars(select(MTurkHit).order_by(MTurkHit.id))).all())  # type: ignore[arg-type]


async def study_ids(app: FastAPI) -> set[str]:
    async with app.state.sessions() as session:
        return set((await session.scalars(select(Hit.hitid))).all())


async def foreign_hits(fake: FakeMTurk, count: int = 1) -> list[str]:
    """HITs made in the same account by some other tool."""
    question = (f'<ExternalQuestion xmlns="{QUESTION_NAMESPACE}"><ExternalURL>https://other.example/x'
                "</ExternalURL><FrameHeight>0</FrameHeight></ExternalQuestion>")
    request = {"Title": "Other study", "Description": "d", "Reward": "0.10", "AssignmentDurationInSeconds": 60,
               "LifetimeInSeconds": 600, "Question": question, "MaxAssignments": 1}
    async with aioboto3.Session().client("mturk", **fake.client_kwargs()) as client:
        return [str((await client.create_hit(**request))["HIT"]["HITId"]) for _ in range(count)]


async def test_create_sends_psiturks_requests_and_records_the_hit(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk, make_settings: Any) -> None:
    created = await api(client, "POST", "/hits", json=SANDBOX | {
        "assignments": 12, "reward": "1.00", "duration_hours": 1.5, "require_qualification_ids": ["REQ1"],
        "block_qualification_ids": ["BLOCK1"]})
    hit_id = created["hit_id"]

    type_call, hit_call = fake_mturk.calls()
    assert (type_call["operation"], hit_call["operation"]) == ("CreateHITType", "CreateHITWithHITType")
    sent = type_call["request"]
    assert [(q["QualificationTypeId"], q["Comparator"]) for q in sent["QualificationRequirements"]] == [
        ("000000000000000000L0", "GreaterThanOrEqualTo"), ("00000000000000000040", "GreaterThanOrEqualTo"),
        ("00000000000000000071", "EqualTo"), ("REQ1", "Exists"), ("BLOCK1", "DoesNotExist")]
    assert (sent["Reward"], sent["AssignmentDurationInSeconds"]) == ("1.00", 5400)
    question = ET.fromstring(hit_call["request"]["Question"])
    url = question.findtext("{" + QUESTION_NAMESPACE + "}ExternalURL")
    assert url == "https://example.org:443/pub?mode=sandbox"
    assert (hit_call["request"]["MaxAssignments"], hit_call["request"]["LifetimeInSeconds"]) == (12, 24 * 3600)
    # psiTurk's example: 12 workers at $1.00 pay the 40 % rate of large HITs.
    assert (created["plan"]["fee"], created["plan"]["total"]) == ("4.80", "16.80")
    assert created["plan"]["total"] == str(hit_cost("1.00", 12).total)
    assert hit_id in await study_ids(app)
    [row] = await hit_rows(app)
    assert (row.hit_id, row.state, row.max_assignments, row.reward_cents) == (hit_id, "created", 12, 100)
    assert hit_call["request"]["UniqueRequestToken"] == row.token == hit_call["request"]["RequesterAnnotation"]


async def test_dry_run_shows_the_requests_and_sends_nothing(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    planned = await api(client, "POST", "/hits", json=SANDBOX | {
        "assignments": 2, "reward": "0.75", "duration_hours": 1, "dry_run": True})
    assert fake_mturk.calls() == []
    assert planned["hit_id"] is None and planned["dry_run"] is True
    assert [r["operation"] for r in planned["plan"]["requests"]] == ["CreateHITType", "CreateHITWithHITType"]
    assert planned["plan"]["requests"][0]["Reward"] == "0.75"
    assert await hit_rows(app) == [] and await study_ids(app) == set()


async def test_max_spend_refuses_a_hit_that_would_pass_it(
        make_settings: Any, fake_mturk: FakeMTurk) -> None:
    from participant_flow import running_app

    settings = make_settings(**fake_settings(fake_mturk), max_spend="5.00")
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            first = await create_hit(client, assignments=2, reward="1.00")  # $2.40 of $5.00
            body = SANDBOX | {"assignments": 3, "reward": "1.00", "duration_hours": 1}  # $3.60 more
            calls_before = len(fake_mturk.calls())
            refused = await api(client, "POST", "/hits", json=body, expect=409)
            assert refused["error"] == "max_spend_exceeded"
            assert "$2.40" in refused["detail"] and "$5.00" in refused["detail"]
            assert len(fake_mturk.calls()) == calls_before  # nothing sent
            # Expired before anyone took it, the first HIT's assignments no longer count.
            await api(client, "POST", "/hits/expire", json=SANDBOX | {"hit_ids": [first]})
            spending = (await api(client, "GET", "/balance"))["spending"]
            assert (spending["hits"], spending["remaining"]) == ("0.00", "5.00")
            await create_hit(client, assignments=3, reward="1.00")


async def test_a_mode_the_server_is_not_in_is_refused(client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    refused = await api(client, "POST", "/hits", expect=409,
                        json={"mode": "live", "assignments": 1, "reward": "1.00", "duration_hours": 1})
    assert refused["error"] == "mode_changed" and "sandbox mode, not live" in refused["detail"]
    assert fake_mturk.calls() == []


async def test_live_mode_refuses_an_http_ad_url(make_settings: Any, fake_mturk: FakeMTurk) -> None:
    from participant_flow import running_app

    settings = make_settings(**fake_settings(fake_mturk), ad_url_protocol="http", ad_url_port=80,
                             launch_in_mode="live")
    async with running_app(settings) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            refused = await api(client, "POST", "/hits", expect=422,
                                json={"mode": "live", "assignments": 1, "reward": "1.00", "duration_hours": 1})
    assert refused["error"] == "ad_url_not_https"
    assert "http://example.org:80/pub" in refused["detail"] and "ad_url_protocol = https" in refused["detail"]
    assert fake_mturk.calls() == []


async def test_a_retried_create_makes_one_hit(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    use_clients(app, settings, read_timeout=0.5, attempts=2)
    fake_mturk.inject("delay_after_commit", operation="CreateHITWithHITType", seconds=1.5)
    hit_id = await create_hit(client, assignments=2)
    attempts = await calls_when_answered(fake_mturk, "CreateHITWithHITType", 2)
    # The first attempt created the HIT (its answer came too late); the retry was told the HIT's id.
    assert sorted((c["attempt"], c["status"]) for c in attempts) == [(1, 200), (2, 400)]
    assert list(fake_mturk.state.hits) == [hit_id]
    assert await study_ids(app) == {hit_id}


async def test_a_create_without_answer_is_found_by_the_next_listing(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    use_clients(app, settings, read_timeout=0.5, attempts=1)
    fake_mturk.inject("delay_after_commit", operation="CreateHITWithHITType", seconds=1.5)
    unknown = await api(client, "POST", "/hits", expect=504,
                        json=SANDBOX | {"assignments": 2, "reward": "1.00", "duration_hours": 1})
    assert unknown["error"] == "mturk_unavailable" and "check before repeating" in unknown["detail"]
    [row] = await hit_rows(app)
    assert row.state == "creating" and row.hit_id is None
    assert Decimal((await api(client, "GET", "/balance"))["spending"]["hits"]) == hit_cost("1.00", 2).total

    assert (await api(client, "GET", "/hits"))["hits"] == []  # a plain listing records nothing
    assert (await hit_rows(app))[0].state == "creating"
    listed = await api(client, "POST", "/hits/sync", json={})
    [hit_id] = list(fake_mturk.state.hits)
    assert [h["hit_id"] for h in listed["hits"]] == [hit_id]
    [row] = await hit_rows(app)
    assert (row.state, row.hit_id) == ("created", hit_id) and await study_ids(app) == {hit_id}


async def test_list_pages_through_mturk_and_keeps_to_the_study(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    ours = await create_hit(client, assignments=1)
    await foreign_hits(fake_mturk, 104)
    before = len(fake_mturk.calls("ListHITs"))
    listed = await api(client, "GET", "/hits")
    pages = fake_mturk.calls("ListHITs")[before:]
    assert len(pages) == 2 and "NextToken" in pages[1]["request"]
    assert [h["hit_id"] for h in listed["hits"]] == [ours]
    everything = await api(client, "GET", "/hits", params={"all_studies": True})
    assert len(everything["hits"]) == 105
    assert [h["hit_id"] for h in everything["hits"] if h["this_study"]] == [ours]


async def test_active_and_reviewable_filters(app: FastAPI, client: httpx.AsyncClient,
                                             fake_mturk: FakeMTurk) -> None:
    old, new = await create_hit(client), await create_hit(client)
    await api(client, "POST", "/hits/expire", json=SANDBOX | {"hit_ids": [old]})
    assert [h["hit_id"] for h in (await api(client, "GET", "/hits", params={"active": True}))["hits"]] == [new]
    reviewable = await api(client, "GET", "/hits", params={"reviewable": True})
    assert [(h["hit_id"], h["status"], h["expired"]) for h in reviewable["hits"]] == [(old, "Reviewable", True)]


async def test_expire_all_touches_only_this_studys_open_hits(
        client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    ours = await create_hit(client)
    [other] = await foreign_hits(fake_mturk)
    planned = await api(client, "POST", "/hits/expire", json=SANDBOX | {"all": True, "dry_run": True})
    assert [(r["hit_id"], r["outcome"]) for r in planned["results"]] == [(ours, "planned")]
    assert fake_mturk.calls("UpdateExpirationForHIT") == []
    done = await api(client, "POST", "/hits/expire", json=SANDBOX | {"all": True})
    assert [(r["hit_id"], r["outcome"]) for r in done["results"]] == [(ours, "done")]
    assert [c["request"]["HITId"] for c in fake_mturk.calls("UpdateExpirationForHIT")] == [ours]
    assert fake_mturk.state.hit_status(fake_mturk.state.hits[other]) == "Assignable"


async def test_delete_says_why_a_hit_cannot_go_yet(
        app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id = await create_hit(client, assignments=2)
    await take_part(app, fake_mturk, hit_id, "A1WORKER0000001")
    early = await api(client, "POST", "/hits/delete", json=SANDBOX | {"hit_ids": [hit_id]})
    assert early["results"][0]["outcome"] == "refused" and "expire it first" in early["results"][0]["detail"]
    await api(client, "POST", "/hits/expire", json=SANDBOX | {"hit_ids": [hit_id]})
    waiting = await api(client, "POST", "/hits/delete", json=SANDBOX | {"hit_ids": [hit_id]})
    assert "1 submitted assignment(s) await review" in waiting["results"][0]["detail"]
    assert fake_mturk.calls("DeleteHIT") == []
    await api(client, "POST", "/assignments/approve", json=SANDBOX | {"hit_id": hit_id})
    planned = await api(client, "POST", "/hits/delete", json=SANDBOX | {"all": True, "dry_run": True})
    assert [(r["hit_id"], r["outcome"]) for r in planned["results"]] == [(hit_id, "planned")]
    assert fake_mturk.calls("DeleteHIT") == []
    done = await api(client, "POST", "/hits/delete", json=SANDBOX | {"all": True})
    assert [(r["hit_id"], r["outcome"]) for r in done["results"]] == [(hit_id, "done")]
    again = await api(client, "POST", "/hits/delete", json=SANDBOX | {"hit_ids": [hit_id]})
    assert again["results"][0]["outcome"] in ("refused", "already")


async def test_extend_adds_assignments_once_and_counts_them(
        app: FastAPI, settings: Settings, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    hit_id = await create_hit(client, assignments=3, reward="1.00")
    planned = await api(client, "POST", f"/hits/{hit_id}/extend",
                        json=SANDBOX | {"assignments": 2, "minutes": 30, "dry_run": True})
    assert planned["total"] == "2.40" and planned["max_assignments"] == 5
    assert [r["operation"] for r in planned["requests"]] == ["CreateAdditionalAssignmentsForHIT",
                                                            "UpdateExpirationForHIT"]
    assert fake_mturk.calls("CreateAdditionalAssignmentsForHIT") == []

    use_clients(app, settings, read_timeout=0.5, attempts=2)
    fake_mturk.inject("delay_after_commit", operation="CreateAdditionalAssignmentsForHIT", seconds=1.5)
    before = fake_mturk.state.hits[hit_id].expires_at
    await api(client, "POST", f"/hits/{hit_id}/extend", json=SANDBOX | {"assignments": 2, "minutes": 30})
    assert fake_mturk.state.hits[hit_id].max_assignments == 5  # the retry did not add two more
    assert abs(fake_mturk.state.hits[hit_id].expires_at - (before + 1800)) < 5
    assert Decimal((await api(client, "GET", "/balance"))["spending"]["hits"]) == hit_cost("1.00", 5).total

    crossing = await api(client, "POST", f"/hits/{hit_id}/extend", json=SANDBOX | {"assignments": 5}, expect=422)
    assert crossing["error"] == "extension_crosses_ten"


async def test_unknown_hit_is_mturks_error_with_its_code(client: httpx.AsyncClient) -> None:
    refused = await api(client, "POST", "/hits/NOSUCHHIT000000000000000000000/extend", expect=502,
                        json=SANDBOX | {"minutes": 5})
    assert refused["error"] == "mturk_error" and refused["code"] == "AWS.MechanicalTurk.HITDoesNotExist"
    assert "does not exist" in refused["detail"]


async def test_qualifications_list_shows_owned_types(client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    assert (await api(client, "GET", "/qualifications"))["qualification_types"] == []
    async with aioboto3.Session().client("mturk", **fake_mturk.client_kwargs()) as mturk:
        await mturk.create_qualification_type(Name="did-stroop", Description="took part",
                                              QualificationTypeStatus="Active")
    [found] = (await api(client, "GET", "/qualifications"))["qualification_types"]
    assert (found["name"], found["status"]) == ("did-stroop", "Active")


async def test_every_mturk_route_needs_the_admin_token(client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    response = await client.get("/api/mturk/balance")
    assert response.status_code == 401
    assert (await client.get("/api/mturk/balance", headers=AUTH)).status_code == 200
    assert fake_mturk.calls("GetAccountBalance")[0]["status"] == 200


async def test_no_get_route_changes_anything(app: FastAPI, client: httpx.AsyncClient,
                                             fake_mturk: FakeMTurk) -> None:
    from fastapi.routing import iter_route_contexts

    from mturk_world import ledger

    hit_id = await create_hit(client, assignments=2)
    assignment = await take_part(app, fake_mturk, hit_id, "A1WORKER0000001")
    async with aioboto3.Session().client("mturk", **fake_mturk.client_kwargs()) as other_tool:
        # Approved and expired elsewhere: a sync would record both.
        await other_tool.approve_assignment(AssignmentId=assignment)
        await other_tool.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime(2020, 1, 1, tzinfo=UTC))
    gets = [route.path for route in iter_route_contexts(app.routes)
            if route.path and route.path.startswith("/api/mturk") and "GET" in (route.methods or ())]
    assert len(gets) == 4
    before = ([(r.state, r.released) for r in await hit_rows(app)], await ledger(app))
    for path in gets:
        assert (await client.get(path, headers=AUTH)).status_code == 200, path
    assert ([(r.state, r.released) for r in await hit_rows(app)], await ledger(app)) == before
    synced = await api(client, "POST", "/assignments/sync", json={})
    assert [(a["assignment_id"], a["mturk_status"]) for a in synced["assignments"]] == [(assignment, "Approved")]
    assert len(await ledger(app)) == 1
    await api(client, "POST", "/hits/sync", json={})
    assert [(r.state, r.released) for r in await hit_rows(app)] == [("created", 1)]
