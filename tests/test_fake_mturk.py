"""The MTurk fake, driven over the wire by real aioboto3: protocol, rules, money, faults and its shape checks."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aioboto3
import httpx
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from fakes import fixtures
from fakes.fixtures import FakeMTurk
from psiturk_async.mturk.fees import assignment_cost, bonus_cost

fake_mturk = fixtures.fake_mturk

QUESTION = (
    '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/'
    'ExternalQuestion.xsd"><ExternalURL>https://example.org/pub?mode=sandbox</ExternalURL>'
    "<FrameHeight>600</FrameHeight></ExternalQuestion>"
)
PSITURK_QUALIFICATIONS = [
    {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [95]},
    {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [0]},
    {"QualificationTypeId": "00000000000000000071", "Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]},
]


@asynccontextmanager
async def mturk(fake: FakeMTurk, **options: Any) -> AsyncIterator[Any]:
    async with aioboto3.Session().client("mturk", **fake.client_kwargs(**options)) as client:
        yield client


async def create_hit(client: Any, *, reward: str = "1.00", assignments: int = 2, lifetime: int = 3600) -> str:
    """psiTurk's way: CreateHITType, then CreateHITWithHITType."""
    hit_type = await client.create_hit_type(
        Title="Stroop task",
        Description="Name the ink colour",
        Keywords="psychology, stroop",
        Reward=reward,
        AssignmentDurationInSeconds=3600,
        QualificationRequirements=PSITURK_QUALIFICATIONS,
    )
    created = await client.create_hit_with_hit_type(
        HITTypeId=hit_type["HITTypeId"], Question=QUESTION, LifetimeInSeconds=lifetime, MaxAssignments=assignments
    )
    return str(created["HIT"]["HITId"])


async def submitted_assignment(client: Any, fake: FakeMTurk, worker_id: str | None = None) -> tuple[str, str]:
    """A new HIT (2 assignments, $1.00) and one submitted assignment of it: (HITId, AssignmentId)."""
    hit_id = await create_hit(client)
    assignment_id = fake.accept(hit_id, worker_id)
    fake.submit(assignment_id)
    return hit_id, assignment_id


async def approved_assignment(client: Any, fake: FakeMTurk, worker_id: str) -> tuple[str, str]:
    hit_id, assignment_id = await submitted_assignment(client, fake, worker_id)
    await client.approve_assignment(AssignmentId=assignment_id)
    return hit_id, assignment_id


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str | None]:
    response: dict[str, Any] = info.value.response  # type: ignore[assignment]
    return response["Error"]["Code"], response.get("TurkErrorCode")


@pytest.mark.asyncio
async def test_create_hit_type_and_hit_with_literal_client(fake_mturk: FakeMTurk) -> None:
    async with aioboto3.Session().client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=fake_mturk.url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    ) as client:
        assert (await client.get_account_balance())["AvailableBalance"] == "10000.00"
        hit_id = await create_hit(client, assignments=3)
        hit = (await client.get_hit(HITId=hit_id))["HIT"]

    assert hit["HITStatus"] == "Assignable"
    assert hit["MaxAssignments"] == 3
    assert hit["Reward"] == "1.00"
    assert (hit["NumberOfAssignmentsAvailable"], hit["NumberOfAssignmentsPending"]) == (3, 0)
    assert hit["Expiration"] - hit["CreationTime"] == timedelta(hours=1)
    assert hit["Expiration"] > datetime.now(UTC)
    # The live service fills these in on every requirement.
    assert all(
        q["RequiredToPreview"] is False and q["ActionsGuarded"] == "Accept"
        for q in hit["QualificationRequirements"]
    )


@pytest.mark.asyncio
async def test_identical_hit_type_values_return_the_same_hit_type(fake_mturk: FakeMTurk) -> None:
    values = {"Title": "t", "Description": "d", "Reward": "0.50", "AssignmentDurationInSeconds": 600}
    async with mturk(fake_mturk) as client:
        first = await client.create_hit_type(**values)
        second = await client.create_hit_type(**values)
        other = await client.create_hit_type(**(values | {"Reward": "0.60"}))
    assert first["HITTypeId"] == second["HITTypeId"] != other["HITTypeId"]


@pytest.mark.asyncio
async def test_create_hit_directly_and_token_reuse(fake_mturk: FakeMTurk) -> None:
    request = {
        "Title": "t",
        "Description": "d",
        "Reward": "0.10",
        "AssignmentDurationInSeconds": 600,
        "LifetimeInSeconds": 600,
        "Question": QUESTION,
        "UniqueRequestToken": "hit-token-1",
    }
    async with mturk(fake_mturk) as client:
        hit = (await client.create_hit(**request))["HIT"]
        with pytest.raises(client.exceptions.RequestError) as info:
            await client.create_hit(**request)
    assert error_of(info) == ("RequestError", "AWS.MechanicalTurk.HitAlreadyExists")
    assert hit["HITId"] in info.value.response["Error"]["Message"]
    assert len(fake_mturk.state.hits) == 1


@pytest.mark.asyncio
async def test_list_hits_pages_with_next_token(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        created = [await create_hit(client) for _ in range(5)]
        pages = [
            page async for page in client.get_paginator("list_hits").paginate(PaginationConfig={"PageSize": 2})
        ]
        first = await client.list_hits(MaxResults=3)
        rest = await client.list_hits(MaxResults=3, NextToken=first["NextToken"])
        with pytest.raises(client.exceptions.RequestError):
            await client.list_hits(NextToken="not-a-token")

    assert [page["NumResults"] for page in pages] == [2, 2, 1]
    assert [hit["HITId"] for page in pages for hit in page["HITs"]] == created
    assert "NextToken" not in pages[-1]
    assert [hit["HITId"] for hit in first["HITs"] + rest["HITs"]] == created
    assert "NextToken" not in rest


@pytest.mark.asyncio
async def test_accept_submit_return_keep_the_counters_consistent(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id = await create_hit(client, assignments=3)
        submitted = fake_mturk.accept(hit_id)
        returned = fake_mturk.accept(hit_id)
        working = fake_mturk.accept(hit_id)
        full = (await client.get_hit(HITId=hit_id))["HIT"]
        fake_mturk.submit(submitted, {"answer": "red"})
        fake_mturk.return_assignment(returned)
        hit = (await client.get_hit(HITId=hit_id))["HIT"]
        listed = (await client.list_assignments_for_hit(HITId=hit_id))["Assignments"]

    assert full["HITStatus"] == "Unassignable"
    assert (full["NumberOfAssignmentsPending"], full["NumberOfAssignmentsAvailable"]) == (3, 0)
    assert hit["HITStatus"] == "Assignable"
    counters = (hit["NumberOfAssignmentsPending"], hit["NumberOfAssignmentsAvailable"])
    assert counters + (hit["NumberOfAssignmentsCompleted"],) == (1, 1, 0)
    # Accepted and returned work is not listed; only the submitted assignment is.
    assert [a["AssignmentId"] for a in listed] == [submitted]
    assert listed[0]["AssignmentStatus"] == "Submitted"
    assert "<FreeText>red</FreeText>" in listed[0]["Answer"]
    assert working not in {a["AssignmentId"] for a in listed}


@pytest.mark.asyncio
async def test_approve_pays_reward_and_fee_once(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id = await create_hit(client, reward="1.00", assignments=2)
        assignment_id = fake_mturk.accept(hit_id)
        with pytest.raises(client.exceptions.RequestError) as early:
            await client.get_assignment(AssignmentId=assignment_id)
        fake_mturk.submit(assignment_id)
        await client.approve_assignment(AssignmentId=assignment_id, RequesterFeedback="thanks")
        with pytest.raises(client.exceptions.RequestError) as again:
            await client.approve_assignment(AssignmentId=assignment_id)
        got = await client.get_assignment(AssignmentId=assignment_id)
        balance = (await client.get_account_balance())["AvailableBalance"]

    assert error_of(early)[1] == "AWS.MechanicalTurk.InvalidAssignmentState"
    assert "Reviewable,Approved,Rejected" in early.value.response["Error"]["Message"]
    assert error_of(again)[1] == "AWS.MechanicalTurk.InvalidAssignmentState"
    assert got["Assignment"]["AssignmentStatus"] == "Approved"
    assert got["Assignment"]["RequesterFeedback"] == "thanks"
    assert got["HIT"]["NumberOfAssignmentsCompleted"] == 1
    assert (
        Decimal(balance)
        == Decimal("10000.00") - assignment_cost("1.00", assignments=2).total
        == Decimal("9998.80")
    )


@pytest.mark.asyncio
async def test_reject_then_override(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id, assignment_id = await submitted_assignment(client, fake_mturk)
        await client.reject_assignment(AssignmentId=assignment_id, RequesterFeedback="")
        rejected = await client.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Rejected"])
        with pytest.raises(client.exceptions.RequestError):
            await client.approve_assignment(AssignmentId=assignment_id, OverrideRejection=False)
        await client.approve_assignment(AssignmentId=assignment_id, OverrideRejection=True)
        approved = await client.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Approved"])
        still_rejected = await client.list_assignments_for_hit(HITId=hit_id, AssignmentStatuses=["Rejected"])

    assert [a["AssignmentId"] for a in rejected["Assignments"]] == [assignment_id]
    assert [a["AssignmentId"] for a in approved["Assignments"]] == [assignment_id]
    assert still_rejected["NumResults"] == 0


@pytest.mark.asyncio
async def test_approval_without_funds_fails(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id, assignment_id = await submitted_assignment(client, fake_mturk)
        fake_mturk.set_balance("1.19")
        with pytest.raises(client.exceptions.RequestError) as info:
            await client.approve_assignment(AssignmentId=assignment_id)
        fake_mturk.set_balance("1.20")
        await client.approve_assignment(AssignmentId=assignment_id)
        balance = (await client.get_account_balance())["AvailableBalance"]

    assert error_of(info)[1] == "AWS.MechanicalTurk.InsufficientFunds"
    assert balance == "0.00"


@pytest.mark.asyncio
async def test_send_bonus_charges_fee_and_rejects_a_repeated_token(fake_mturk: FakeMTurk) -> None:
    worker = "A1WORKER0000001"
    async with mturk(fake_mturk) as client:
        hit_id, assignment_id = await approved_assignment(client, fake_mturk, worker)
        before = Decimal((await client.get_account_balance())["AvailableBalance"])
        bonus = {"WorkerId": worker, "AssignmentId": assignment_id, "BonusAmount": "1.00", "Reason": "well done"}
        await client.send_bonus(**bonus, UniqueRequestToken="bonus-1")
        with pytest.raises(client.exceptions.RequestError) as repeated:
            await client.send_bonus(**bonus, UniqueRequestToken="bonus-1")
        await client.send_bonus(**(bonus | {"BonusAmount": "0.05"}), UniqueRequestToken="bonus-2")
        after = Decimal((await client.get_account_balance())["AvailableBalance"])

    assert "bonus-1" in repeated.value.response["Error"]["Message"]
    assert [b["UniqueRequestToken"] for b in fake_mturk.bonuses()] == ["bonus-1", "bonus-2"]
    assert [b["Fee"] for b in fake_mturk.bonuses()] == ["0.20", "0.01"]
    assert before - after == bonus_cost("1.00").total + bonus_cost("0.05").total == Decimal("1.26")


@pytest.mark.asyncio
async def test_send_bonus_refuses_the_wrong_worker_and_unsubmitted_work(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id, assignment_id = await approved_assignment(client, fake_mturk, "A1WORKER0000001")
        working = fake_mturk.accept(await create_hit(client), "A1WORKER0000002")
        with pytest.raises(client.exceptions.RequestError):
            await client.send_bonus(
                WorkerId="A1WORKER0000002", AssignmentId=assignment_id, BonusAmount="1.00", Reason="r"
            )
        with pytest.raises(client.exceptions.RequestError) as info:
            await client.send_bonus(
                WorkerId="A1WORKER0000002", AssignmentId=working, BonusAmount="1.00", Reason="r"
            )
    assert error_of(info)[1] == "AWS.MechanicalTurk.InvalidAssignmentState"
    assert fake_mturk.bonuses() == []


@pytest.mark.asyncio
async def test_list_bonus_payments_by_hit_and_assignment(fake_mturk: FakeMTurk) -> None:
    worker = "A1WORKER0000001"
    async with mturk(fake_mturk) as client:
        hit_id = await create_hit(client, assignments=3)
        other_hit, other_assignment = await approved_assignment(client, fake_mturk, worker)
        first = fake_mturk.accept(hit_id, worker)
        second = fake_mturk.accept(hit_id, "A1WORKER0000002")
        for assignment_id in (first, second):
            fake_mturk.submit(assignment_id)
        for worker_id, assignment_id, amount in [
            (worker, first, "0.50"),
            ("A1WORKER0000002", second, "0.75"),
            (worker, first, "0.25"),
            (worker, other_assignment, "9.99"),
        ]:
            await client.send_bonus(WorkerId=worker_id, AssignmentId=assignment_id, BonusAmount=amount, Reason="r")
        by_hit = [
            bonus
            async for page in client.get_paginator("list_bonus_payments").paginate(
                HITId=hit_id, PaginationConfig={"PageSize": 1}
            )
            for bonus in page["BonusPayments"]
        ]
        by_assignment = await client.list_bonus_payments(AssignmentId=first)
        with pytest.raises(client.exceptions.RequestError):
            await client.list_bonus_payments()

    assert [b["BonusAmount"] for b in by_hit] == ["0.50", "0.75", "0.25"]
    assert [b["BonusAmount"] for b in by_assignment["BonusPayments"]] == ["0.50", "0.25"]
    assert {b["WorkerId"] for b in by_assignment["BonusPayments"]} == {worker}
    assert isinstance(by_hit[0]["GrantTime"], datetime)


@pytest.mark.asyncio
async def test_delete_hit_only_when_reviewable_and_reviewed(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id, assignment_id = await submitted_assignment(client, fake_mturk)
        with pytest.raises(client.exceptions.RequestError):
            await client.delete_hit(HITId=hit_id)  # still assignable
        await client.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime.now(UTC) - timedelta(days=30))
        expired = (await client.get_hit(HITId=hit_id))["HIT"]
        with pytest.raises(client.exceptions.RequestError):
            await client.delete_hit(HITId=hit_id)  # a submitted assignment awaits review
        await client.approve_assignment(AssignmentId=assignment_id)
        await client.delete_hit(HITId=hit_id)
        listed = await client.list_hits()
        disposed = (await client.get_hit(HITId=hit_id))["HIT"]
        with pytest.raises(client.exceptions.RequestError) as info:
            await client.get_hit(HITId="3NOSUCHHIT0000000000000000000")

    assert expired["HITStatus"] == "Reviewable"
    assert expired["Expiration"] <= datetime.now(UTC)
    assert listed["NumResults"] == 0
    assert disposed["HITStatus"] == "Disposed"
    assert error_of(info) == ("RequestError", "AWS.MechanicalTurk.HITDoesNotExist")


@pytest.mark.asyncio
async def test_extend_hit_and_the_ten_assignment_rule(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id = await create_hit(client, assignments=5)
        await client.create_additional_assignments_for_hit(HITId=hit_id, NumberOfAdditionalAssignments=4)
        with pytest.raises(client.exceptions.RequestError) as info:
            await client.create_additional_assignments_for_hit(HITId=hit_id, NumberOfAdditionalAssignments=1)
        hit = (await client.get_hit(HITId=hit_id))["HIT"]
        later = hit["Expiration"] + timedelta(minutes=30)
        await client.update_expiration_for_hit(HITId=hit_id, ExpireAt=later)
        extended = (await client.get_hit(HITId=hit_id))["HIT"]

    assert error_of(info)[1] == "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"
    assert (hit["MaxAssignments"], hit["NumberOfAssignmentsAvailable"]) == (9, 9)
    assert abs((extended["Expiration"] - later).total_seconds()) < 1


@pytest.mark.asyncio
async def test_clock_abandons_overdue_work_and_auto_approves(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id = await create_hit(client, reward="0.50")
        late = fake_mturk.accept(hit_id)
        done = fake_mturk.accept(hit_id)
        fake_mturk.submit(done)
        fake_mturk.advance_clock(3601)  # past the one-hour assignment duration and the HIT's lifetime
        hit = (await client.get_hit(HITId=hit_id))["HIT"]
        fake_mturk.advance_clock(30 * 24 * 3600)  # past the 30-day auto-approval delay
        approved = (await client.get_assignment(AssignmentId=done))["Assignment"]

    statuses = {a["AssignmentId"]: a["AssignmentStatus"] for a in fake_mturk.assignments(hit_id)}
    assert statuses[late] == "Abandoned"
    assert hit["HITStatus"] == "Reviewable"
    assert approved["AssignmentStatus"] == "Approved"
    assert fake_mturk.state.balance == Decimal("10000.00") - assignment_cost("0.50", assignments=2).total


@pytest.mark.asyncio
async def test_list_qualification_types_owned_by_caller(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        created = await client.create_qualification_type(
            Name="did-stroop", Description="already took part", QualificationTypeStatus="Active"
        )
        owned = await client.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True)
        everything = await client.list_qualification_types(MustBeRequestable=False, Query="masters")

    type_id = created["QualificationType"]["QualificationTypeId"]
    assert [q["QualificationTypeId"] for q in owned["QualificationTypes"]] == [type_id]
    assert {q["Name"] for q in everything["QualificationTypes"]} == {"Masters"}


@pytest.mark.asyncio
async def test_worker_blocks_and_notifications(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id, _ = await approved_assignment(client, fake_mturk, "A1WORKER0000001")
        await client.create_worker_block(WorkerId="A1BLOCKED000001", Reason="took part already")
        blocks = await client.list_worker_blocks()
        sent = await client.notify_workers(
            Subject="Thanks", MessageText="Bonus coming", WorkerIds=["A1WORKER0000001", "A1STRANGER00001"]
        )

    assert blocks["WorkerBlocks"] == [{"WorkerId": "A1BLOCKED000001", "Reason": "took part already"}]
    with pytest.raises(AssertionError, match="blocked"):
        fake_mturk.accept(hit_id, "A1BLOCKED000001")
    failures = sent["NotifyWorkersFailureStatuses"]
    assert [(f["WorkerId"], f["NotifyWorkersFailureCode"]) for f in failures] == [
        ("A1STRANGER00001", "HardFailure")
    ]
    assert [n["WorkerId"] for n in fake_mturk.state.notifications] == ["A1WORKER0000001"]


@pytest.mark.asyncio
async def test_throttling_is_retried_by_botocore(fake_mturk: FakeMTurk) -> None:
    fake_mturk.inject("throttle", operation="GetAccountBalance")
    async with mturk(fake_mturk, attempts=3) as client:
        balance = await client.get_account_balance()

    calls = fake_mturk.calls("GetAccountBalance")
    assert balance["AvailableBalance"] == "10000.00"
    assert [(c["status"], c["error"]) for c in calls] == [(400, "ThrottlingException"), (200, None)]
    assert [c["attempt"] for c in calls] == [1, 2]


@pytest.mark.asyncio
async def test_service_fault_is_retried_then_surfaces(fake_mturk: FakeMTurk) -> None:
    fake_mturk.inject("service_fault", operation="ListHITs")
    async with mturk(fake_mturk, attempts=2) as client:
        assert (await client.list_hits())["NumResults"] == 0
        fake_mturk.inject("service_fault", operation="ListHITs", times=2)
        with pytest.raises(client.exceptions.ServiceFault):
            await client.list_hits()
    assert [c["status"] for c in fake_mturk.calls("ListHITs")] == [500, 200, 500, 500]


@pytest.mark.asyncio
async def test_delay_beyond_the_read_timeout_changes_nothing(fake_mturk: FakeMTurk) -> None:
    fake_mturk.inject("delay", operation="CreateHITType", seconds=2)
    async with mturk(fake_mturk, attempts=1, read_timeout=0.5) as client:
        with pytest.raises(ReadTimeoutError):
            await client.create_hit_type(Title="t", Description="d", Reward="1", AssignmentDurationInSeconds=60)
    assert fake_mturk.state.hit_types == {}


@pytest.mark.asyncio
async def test_bonus_whose_answer_is_lost_is_paid_once_on_retry(fake_mturk: FakeMTurk) -> None:
    worker = "A1WORKER0000001"
    async with mturk(fake_mturk) as client:
        _, assignment_id = await approved_assignment(client, fake_mturk, worker)
    bonus = {"WorkerId": worker, "AssignmentId": assignment_id, "BonusAmount": "2.00", "Reason": "r"}
    fake_mturk.inject("delay_after_commit", operation="SendBonus", seconds=1.5)
    async with mturk(fake_mturk, attempts=1, read_timeout=0.5) as client:
        with pytest.raises(ReadTimeoutError):
            await client.send_bonus(**bonus, UniqueRequestToken="bonus-lost-answer")
        # The outcome was unknown; the bonus was in fact paid, and a retry with the same token says so.
        assert [b["UniqueRequestToken"] for b in fake_mturk.bonuses()] == ["bonus-lost-answer"]
        with pytest.raises(client.exceptions.RequestError) as info:
            await client.send_bonus(**bonus, UniqueRequestToken="bonus-lost-answer")
        paid = await client.list_bonus_payments(AssignmentId=assignment_id)

    assert "bonus-lost-answer" in info.value.response["Error"]["Message"]
    assert paid["NumResults"] == 1


@pytest.mark.asyncio
async def test_shape_check_catches_a_malformed_response(fake_mturk: FakeMTurk) -> None:
    async with mturk(fake_mturk) as client:
        hit_id = await create_hit(client)
        fake_mturk.inject(
            "corrupt_response", operation="GetHIT", patch={"HIT": {"HITStatus": "Bogus", "MaxAssignments": "2"}}
        )
        with pytest.raises(client.exceptions.ServiceFault) as info:
            await client.get_hit(HITId=hit_id)

    problems = fake_mturk.take_problems()
    assert error_of(info)[1] == "Fake.ResponseShapeMismatch"
    assert any("GetHIT output.HIT.HITStatus: 'Bogus' is not one of" in p for p in problems)
    assert any("GetHIT output.HIT.MaxAssignments: expected an integer" in p for p in problems)


@pytest.mark.asyncio
async def test_shape_check_catches_what_botocore_lets_through(fake_mturk: FakeMTurk) -> None:
    # botocore checks only required members, types and minimums; patterns, enums and maximums reach the wire.
    async with mturk(fake_mturk) as client:
        with pytest.raises(client.exceptions.RequestError):
            await client.get_hit(HITId="lower-case-id")
        with pytest.raises(client.exceptions.RequestError):
            await client.list_hits(MaxResults=500)
        with pytest.raises(client.exceptions.RequestError):
            await client.list_assignments_for_hit(HITId="ABC", AssignmentStatuses=["Accepted"])

    problems = fake_mturk.take_problems()
    assert any("GetHIT input.HITId: 'lower-case-id' does not match" in p for p in problems)
    assert any("ListHITs input.MaxResults: 500 is above the maximum 100" in p for p in problems)
    assert any("AssignmentStatuses[0]: 'Accepted' is not one of" in p for p in problems)


def _signed_looking_headers(operation: str) -> dict[str, str]:
    return {
        "X-Amz-Target": f"MTurkRequesterServiceV20170117.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Date": "20260101T000000Z",
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/mturk-requester/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
        ),
    }


def test_shape_check_catches_a_malformed_request(fake_mturk: FakeMTurk) -> None:
    body = {"AssignmentId": "3ABC", "BonusAmount": "$1", "Reason": "r", "Extra": 1}
    response = httpx.post(fake_mturk.url, headers=_signed_looking_headers("SendBonus"), json=body)

    problems = fake_mturk.take_problems()
    assert response.status_code == 400
    assert response.json()["__type"] == "RequestError"
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert "SendBonus input.WorkerId: required member missing" in problems
    assert "SendBonus input.BonusAmount: '$1' does not match ^[0-9]+(\\.)?[0-9]{0,2}$" in problems
    assert "SendBonus input.Extra: not a member of this structure" in problems
    assert fake_mturk.bonuses() == []


@pytest.mark.parametrize(
    ("change", "error_type", "status"),
    [
        ({"X-Amz-Target": "MTurkRequesterServiceV20170117.LaunchRockets"}, "UnknownOperationException", 400),
        ({"Content-Type": "application/json"}, "SerializationException", 400),
        ({"Authorization": ""}, "IncompleteSignatureException", 403),
    ],
)
def test_protocol_mistakes_are_refused_and_recorded(
    fake_mturk: FakeMTurk, change: dict[str, str], error_type: str, status: int
) -> None:
    headers = _signed_looking_headers("GetAccountBalance") | change
    response = httpx.post(fake_mturk.url, headers=headers, content=b"{}")
    assert (response.status_code, response.json()["__type"]) == (status, error_type)
    assert len(fake_mturk.take_problems()) == 1


@pytest.mark.asyncio
async def test_wrong_region_is_refused(fake_mturk: FakeMTurk) -> None:
    kwargs = fake_mturk.client_kwargs(attempts=1) | {"region_name": "us-west-2"}
    async with aioboto3.Session().client("mturk", **kwargs) as client:
        with pytest.raises(ClientError) as info:
            await client.get_account_balance()
    assert error_of(info)[0] == "InvalidSignatureException"
    assert "us-west-2" in fake_mturk.take_problems()[0]


def test_leftover_problems_fail_at_the_end() -> None:
    with pytest.raises(AssertionError, match="GetHIT output.HIT: something"):
        with fixtures.running_fake_mturk() as fake:
            fake.state.problems.append("GetHIT output.HIT: something")


def test_taken_problems_do_not_fail() -> None:
    with fixtures.running_fake_mturk() as fake:
        fake.state.problems.append("GetHIT output.HIT: something")
        assert fake.take_problems() == ["GetHIT output.HIT: something"]
