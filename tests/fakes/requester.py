"""The fake's MTurk operations: each takes the state and a request body and returns a response body.

Inputs arrive already checked against botocore's model (tests/fakes/shapes.py); the checks here are MTurk's
own rules on top of the model. TurkErrorCodes marked "assumed" are plausible names, not confirmed ones.
"""

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from psiturk_async.mturk.fees import assignment_cost, bonus_cost, format_money, hit_cost, parse_money

from .mturk_state import (
    DEFAULT_AUTO_APPROVAL_DELAY,
    HIT,
    REJECTION_OVERRIDE_WINDOW,
    SUBMITTED_OR_REVIEWED,
    Assignment,
    Bonus,
    FakeMTurkState,
    HITType,
    MTurkError,
    new_id,
)

Body = dict[str, Any]
Operation = Callable[[FakeMTurkState, Body], Body]

OPERATIONS: dict[str, Operation] = {}
DEFAULT_PAGE_SIZE = 10  # MTurk's default is undocumented; a small one exposes code that forgets to page
EXTERNAL_QUESTION = (
    "{http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd}"
)
MAX_QUESTION_BYTES = 65_535
YEAR = 365 * 24 * 3600


def operation(name: str) -> Callable[[Operation], Operation]:
    def register(function: Operation) -> Operation:
        OPERATIONS[name] = function
        return function

    return register


def invalid(message: str, code: str = "AWS.MechanicalTurk.InvalidParameterValue") -> MTurkError:
    return MTurkError(message, code)  # the default code is assumed


def _in_range(body: Body, name: str, low: int, high: int) -> None:
    if name in body and not low <= body[name] <= high:
        raise invalid(f"{name} must be between {low} and {high}, got {body[name]}.")


def _money(text: str, name: str) -> Decimal:
    try:
        return parse_money(text)
    except ValueError as exc:
        raise invalid(f"{name} is not a valid amount: {text!r}.") from exc


def _page(body: Body, operation_name: str, items: list[Body], key: str) -> Body:
    start = 0
    if "NextToken" in body:
        try:
            name, _, offset = base64.urlsafe_b64decode(body["NextToken"].encode()).decode().partition(":")
            start = int(offset)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            name = ""
        if name != operation_name or start < 0:
            raise invalid(f"The NextToken {body['NextToken']!r} is not valid for {operation_name}.")
    end = start + body.get("MaxResults", DEFAULT_PAGE_SIZE)
    page: Body = {"NumResults": len(items[start:end]), key: items[start:end]}
    if end < len(items):
        page["NextToken"] = base64.urlsafe_b64encode(f"{operation_name}:{end}".encode()).decode()
    return page


def _present(**members: Any) -> Body:
    """The members that have a value: optional members are left out of MTurk's answers, never sent as null."""
    return {key: value for key, value in members.items() if value is not None}


def hit_json(state: FakeMTurkState, hit: HIT) -> Body:
    """A HIT as the service returns it, its four counters mutually consistent."""
    hit_type = hit.hit_type
    counts = state.counts(hit)
    out: Body = {
        "HITId": hit.hit_id,
        "HITTypeId": hit_type.hit_type_id,
        "HITGroupId": hit_type.group_id,
        "CreationTime": hit.created_at,
        "Title": hit_type.title,
        "Description": hit_type.description,
        "HITStatus": state.hit_status(hit),
        "MaxAssignments": hit.max_assignments,
        "Reward": format_money(hit_type.reward),
        "AutoApprovalDelayInSeconds": hit_type.auto_approval_delay,
        "Expiration": hit.expires_at,
        "AssignmentDurationInSeconds": hit_type.assignment_duration,
        "QualificationRequirements": hit_type.qualification_requirements,
        "HITReviewStatus": "NotReviewed",
        "NumberOfAssignmentsPending": counts.pending,
        "NumberOfAssignmentsAvailable": counts.available,
        "NumberOfAssignmentsCompleted": counts.completed,
    }
    return out | _present(
        Question=hit.question,
        HITLayoutId=hit.layout_id,
        Keywords=hit_type.keywords,
        RequesterAnnotation=hit.requester_annotation,
    )


def assignment_json(assignment: Assignment) -> Body:
    """An assignment as the service returns it; times appear only once they have happened."""
    out: Body = {
        "AssignmentId": assignment.assignment_id,
        "WorkerId": assignment.worker_id,
        "HITId": assignment.hit_id,
        "AssignmentStatus": assignment.status,
        "AcceptTime": assignment.accepted_at,
        "Deadline": assignment.deadline,
    }
    return out | _present(
        SubmitTime=assignment.submitted_at,
        AutoApprovalTime=assignment.auto_approval_at,
        ApprovalTime=assignment.approved_at,
        RejectionTime=assignment.rejected_at,
        Answer=assignment.answer,
        RequesterFeedback=assignment.feedback,
    )


def _check_question(question: str) -> None:
    if len(question.encode()) > MAX_QUESTION_BYTES:
        raise invalid(f"Question is longer than {MAX_QUESTION_BYTES} bytes.")
    try:
        root = ET.fromstring(question)
    except ET.ParseError as exc:
        raise invalid(f"Question is not well-formed XML: {exc}.", "AWS.MechanicalTurk.XMLParseError") from exc
    if root.tag.endswith("ExternalQuestion"):
        url = root.findtext(f"{EXTERNAL_QUESTION}ExternalURL")
        height = root.findtext(f"{EXTERNAL_QUESTION}FrameHeight")
        if root.tag != f"{EXTERNAL_QUESTION}ExternalQuestion" or url is None or height is None:
            raise invalid(
                "ExternalQuestion needs the ExternalQuestion.xsd namespace, ExternalURL and FrameHeight."
            )
        if not url.strip().startswith("https://"):
            raise invalid(f"ExternalURL must use HTTPS: {url!r}.")
        if not height.strip().isdigit():
            raise invalid(f"FrameHeight must be a whole number of pixels: {height!r}.")


def _filled_requirements(requirements: list[Body]) -> list[Body]:
    if len(requirements) > 10:
        raise invalid("A HIT can have at most 10 QualificationRequirements.")
    filled = []
    for requirement in requirements:
        requirement = dict(requirement)
        # The live service fills these in even when they were not sent.
        requirement.setdefault("RequiredToPreview", False)
        requirement.setdefault(
            "ActionsGuarded", "PreviewAndAccept" if requirement["RequiredToPreview"] else "Accept"
        )
        filled.append(requirement)
    return filled


def _register_hit_type(state: FakeMTurkState, body: Body) -> HITType:
    _in_range(body, "AssignmentDurationInSeconds", 30, YEAR)
    _in_range(body, "AutoApprovalDelayInSeconds", 0, DEFAULT_AUTO_APPROVAL_DELAY)
    candidate = HITType(
        hit_type_id=new_id(),
        group_id=new_id(),
        title=body["Title"],
        description=body["Description"],
        reward=_money(body["Reward"], "Reward"),
        assignment_duration=body["AssignmentDurationInSeconds"],
        auto_approval_delay=body.get("AutoApprovalDelayInSeconds", DEFAULT_AUTO_APPROVAL_DELAY),
        keywords=body.get("Keywords"),
        qualification_requirements=_filled_requirements(body.get("QualificationRequirements", [])),
    )

    def same(hit_type: HITType) -> tuple[Any, ...]:
        fields = vars(hit_type)
        return tuple(value for key, value in fields.items() if key not in ("hit_type_id", "group_id"))

    # Registering identical values returns the existing HIT type.
    for existing in state.hit_types.values():
        if same(existing) == same(candidate):
            return existing
    state.hit_types[candidate.hit_type_id] = candidate
    return candidate


def _create_hit(state: FakeMTurkState, hit_type: HITType, body: Body) -> Body:
    token = body.get("UniqueRequestToken")
    if (existing := state.check_token("HIT", token)) is not None:
        raise MTurkError(
            f"There is already a HIT with this UniqueRequestToken: {existing}.",
            "AWS.MechanicalTurk.HitAlreadyExists",
        )
    _in_range(body, "LifetimeInSeconds", 30, YEAR)
    _in_range(body, "MaxAssignments", 1, 1_000_000)
    if ("Question" in body) == ("HITLayoutId" in body):
        raise invalid("Exactly one of Question and HITLayoutId must be given.")
    if "Question" in body:
        _check_question(body["Question"])
    max_assignments = body.get("MaxAssignments", 1)
    state.can_pay(hit_cost(hit_type.reward, max_assignments, masters=hit_type.masters).total)
    now = state.now()
    hit = HIT(
        hit_id=new_id(),
        hit_type=hit_type,
        created_at=now,
        expires_at=now + body["LifetimeInSeconds"],
        max_assignments=max_assignments,
        question=body.get("Question"),
        layout_id=body.get("HITLayoutId"),
        requester_annotation=body.get("RequesterAnnotation"),
    )
    state.hits[hit.hit_id] = hit
    state.remember_token("HIT", token, hit.hit_id)
    return {"HIT": hit_json(state, hit)}


@operation("GetAccountBalance")
def get_account_balance(state: FakeMTurkState, body: Body) -> Body:
    return {"AvailableBalance": format_money(state.balance)}


@operation("CreateHITType")
def create_hit_type(state: FakeMTurkState, body: Body) -> Body:
    return {"HITTypeId": _register_hit_type(state, body).hit_type_id}


@operation("CreateHIT")
def create_hit(state: FakeMTurkState, body: Body) -> Body:
    return _create_hit(state, _register_hit_type(state, body), body)


@operation("CreateHITWithHITType")
def create_hit_with_hit_type(state: FakeMTurkState, body: Body) -> Body:
    hit_type = state.hit_types.get(body["HITTypeId"])
    if hit_type is None:
        raise invalid(f"HITType {body['HITTypeId']} does not exist.", "AWS.MechanicalTurk.HITTypeDoesNotExist")
    return _create_hit(state, hit_type, body)


@operation("GetHIT")
def get_hit(state: FakeMTurkState, body: Body) -> Body:
    return {"HIT": hit_json(state, state.hit(body["HITId"]))}


@operation("ListHITs")
def list_hits(state: FakeMTurkState, body: Body) -> Body:
    hits = [hit_json(state, hit) for hit in state.hits.values() if not hit.deleted]
    return _page(body, "ListHITs", hits, "HITs")


@operation("ListReviewableHITs")
def list_reviewable_hits(state: FakeMTurkState, body: Body) -> Body:
    wanted = body.get("Status", "Reviewable")
    hits = [
        hit_json(state, hit)
        for hit in state.hits.values()
        if state.hit_status(hit) == wanted and body.get("HITTypeId") in (None, hit.hit_type.hit_type_id)
    ]
    return _page(body, "ListReviewableHITs", hits, "HITs")


def _live_hit(state: FakeMTurkState, hit_id: str) -> HIT:
    hit = state.hit(hit_id)
    if hit.deleted:
        raise MTurkError(f"Hit {hit_id} has been deleted.", "AWS.MechanicalTurk.HITDoesNotExist")
    return hit


@operation("UpdateExpirationForHIT")
def update_expiration_for_hit(state: FakeMTurkState, body: Body) -> Body:
    hit = _live_hit(state, body["HITId"])
    hit.expires_at = max(float(body["ExpireAt"]), state.now())  # a time in the past expires the HIT now
    return {}


@operation("CreateAdditionalAssignmentsForHIT")
def create_additional_assignments_for_hit(state: FakeMTurkState, body: Body) -> Body:
    token = body.get("UniqueRequestToken")
    if state.check_token("Assignments", token) is not None:
        raise invalid(f"The UniqueRequestToken {token} was already used.", "AWS.MechanicalTurk.DuplicateRequest")
    hit = _live_hit(state, body["HITId"])
    extra = body["NumberOfAdditionalAssignments"]
    if extra < 1:
        raise invalid(f"NumberOfAdditionalAssignments must be at least 1, got {extra}.")
    if hit.max_assignments < 10 <= hit.max_assignments + extra:
        raise invalid(
            "A HIT created with fewer than 10 assignments cannot be extended to 10 or more.",
            "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease",
        )
    hit_type = hit.hit_type
    state.can_pay(hit_cost(hit_type.reward, hit.max_assignments + extra, masters=hit_type.masters).total)
    hit.max_assignments += extra
    state.remember_token("Assignments", token, hit.hit_id)
    return {}


@operation("DeleteHIT")
def delete_hit(state: FakeMTurkState, body: Body) -> Body:
    hit = _live_hit(state, body["HITId"])
    if state.hit_status(hit) != "Reviewable" or state.counts(hit).submitted:
        raise invalid(
            "This HIT is not Reviewable with every submitted assignment approved or rejected.",
            "AWS.MechanicalTurk.InvalidHITState",  # assumed
        )
    hit.deleted = True
    return {}


@operation("ListAssignmentsForHIT")
def list_assignments_for_hit(state: FakeMTurkState, body: Body) -> Body:
    hit = state.hit(body["HITId"])
    wanted = body.get("AssignmentStatuses") or SUBMITTED_OR_REVIEWED
    rows = [assignment_json(a) for a in state.assignments_of(hit.hit_id) if a.status in wanted]
    return _page(body, "ListAssignmentsForHIT", rows, "Assignments")


def _wrong_state(allowed: str) -> MTurkError:
    return MTurkError(
        f"This operation can be called with a status of: {allowed}", "AWS.MechanicalTurk.InvalidAssignmentState"
    )


@operation("GetAssignment")
def get_assignment(state: FakeMTurkState, body: Body) -> Body:
    assignment = state.assignment(body["AssignmentId"])
    if assignment.status == "Accepted":
        raise _wrong_state("Reviewable,Approved,Rejected")
    return {"Assignment": assignment_json(assignment), "HIT": hit_json(state, state.hit(assignment.hit_id))}


def approve(state: FakeMTurkState, assignment: Assignment, *, feedback: str | None) -> None:
    """Approve and pay for one assignment (reward plus fee at the rate of its HIT)."""
    hit = state.hit(assignment.hit_id)
    hit_type = hit.hit_type
    state.pay(assignment_cost(hit_type.reward, assignments=hit.max_assignments, masters=hit_type.masters).total)
    assignment.status = "Approved"
    assignment.approved_at = state.now()
    assignment.rejected_at = None
    if feedback is not None:
        assignment.feedback = feedback


@operation("ApproveAssignment")
def approve_assignment(state: FakeMTurkState, body: Body) -> Body:
    assignment = state.assignment(body["AssignmentId"])
    if assignment.status == "Rejected" and body.get("OverrideRejection"):
        submitted_at = assignment.submitted_at or 0.0
        if state.hit(assignment.hit_id).deleted or state.now() - submitted_at > REJECTION_OVERRIDE_WINDOW:
            raise _wrong_state("Submitted")
    elif assignment.status != "Submitted":
        raise _wrong_state("Submitted")
    approve(state, assignment, feedback=body.get("RequesterFeedback"))
    return {}


@operation("RejectAssignment")
def reject_assignment(state: FakeMTurkState, body: Body) -> Body:
    assignment = state.assignment(body["AssignmentId"])
    if assignment.status != "Submitted":
        raise _wrong_state("Submitted")
    assignment.status = "Rejected"
    assignment.rejected_at = state.now()
    assignment.feedback = body["RequesterFeedback"]
    return {}


@operation("SendBonus")
def send_bonus(state: FakeMTurkState, body: Body) -> Body:
    token = body.get("UniqueRequestToken")
    if (earlier := state.check_token("Bonus", token)) is not None:
        raise invalid(
            f"A bonus with UniqueRequestToken {token} was already sent for assignment {earlier}.",
            "AWS.MechanicalTurk.DuplicateRequest",  # assumed
        )
    amount = _money(body["BonusAmount"], "BonusAmount")
    if amount <= 0:
        raise invalid("BonusAmount must be greater than 0.")  # assumed: MTurk refuses an empty bonus
    if not body["Reason"].strip():
        raise invalid("Reason must not be empty.")
    assignment = state.assignment(body["AssignmentId"])
    if assignment.worker_id != body["WorkerId"]:
        raise invalid(f"Assignment {assignment.assignment_id} was not done by worker {body['WorkerId']}.")
    if assignment.status not in SUBMITTED_OR_REVIEWED:
        raise _wrong_state("Submitted,Approved,Rejected")
    cost = bonus_cost(amount)
    state.pay(cost.total)
    state.bonuses.append(
        Bonus(
            worker_id=assignment.worker_id,
            assignment_id=assignment.assignment_id,
            hit_id=assignment.hit_id,
            amount=amount,
            fee=cost.fee,
            reason=body["Reason"],
            granted_at=state.now(),
            token=token,
        )
    )
    state.remember_token("Bonus", token, assignment.assignment_id)
    return {}


@operation("ListBonusPayments")
def list_bonus_payments(state: FakeMTurkState, body: Body) -> Body:
    if ("HITId" in body) == ("AssignmentId" in body):
        raise invalid("Exactly one of HITId and AssignmentId must be given.")
    if "HITId" in body:
        state.hit(body["HITId"])
    rows = [
        {
            "WorkerId": bonus.worker_id,
            "BonusAmount": format_money(bonus.amount),
            "AssignmentId": bonus.assignment_id,
            "Reason": bonus.reason,
            "GrantTime": bonus.granted_at,
        }
        for bonus in state.bonuses
        if body.get("HITId", bonus.hit_id) == bonus.hit_id
        and body.get("AssignmentId", bonus.assignment_id) == bonus.assignment_id
    ]
    return _page(body, "ListBonusPayments", rows, "BonusPayments")


@operation("CreateQualificationType")
def create_qualification_type(state: FakeMTurkState, body: Body) -> Body:
    owned_names = {state.qualification_types[i]["Name"] for i in state.owned_qualification_types}
    if body["Name"] in owned_names:
        raise invalid(f"You have already created a QualificationType named {body['Name']!r}.")
    type_id = new_id()
    qualification = dict(body) | {
        "QualificationTypeId": type_id,
        "CreationTime": state.now(),
        "IsRequestable": True,
    }
    qualification.setdefault("AutoGranted", False)
    state.qualification_types[type_id] = qualification
    state.owned_qualification_types.add(type_id)
    return {"QualificationType": qualification}


@operation("ListQualificationTypes")
def list_qualification_types(state: FakeMTurkState, body: Body) -> Body:
    query = body.get("Query", "").lower()
    rows = [
        qualification
        for type_id, qualification in state.qualification_types.items()
        if (qualification["IsRequestable"] or not body["MustBeRequestable"])
        and (type_id in state.owned_qualification_types or not body.get("MustBeOwnedByCaller", False))
        and any(query in qualification.get(key, "").lower() for key in ("Name", "Description", "Keywords"))
    ]
    return _page(body, "ListQualificationTypes", rows, "QualificationTypes")


@operation("CreateWorkerBlock")
def create_worker_block(state: FakeMTurkState, body: Body) -> Body:
    if not body["Reason"].strip():
        raise invalid("Reason must not be empty.")
    state.worker_blocks[body["WorkerId"]] = body["Reason"]
    return {}


@operation("DeleteWorkerBlock")
def delete_worker_block(state: FakeMTurkState, body: Body) -> Body:
    state.worker_blocks.pop(body["WorkerId"], None)
    return {}


@operation("ListWorkerBlocks")
def list_worker_blocks(state: FakeMTurkState, body: Body) -> Body:
    rows = [{"WorkerId": worker, "Reason": reason} for worker, reason in state.worker_blocks.items()]
    return _page(body, "ListWorkerBlocks", rows, "WorkerBlocks")


@operation("NotifyWorkers")
def notify_workers(state: FakeMTurkState, body: Body) -> Body:
    if len(body["Subject"]) > 200 or len(body["MessageText"]) > 4096 or not 1 <= len(body["WorkerIds"]) <= 100:
        raise invalid("Subject holds at most 200 characters, MessageText 4096, WorkerIds 1 to 100 ids.")
    # Email reaches only workers whose work this requester has approved or rejected.
    reviewed = {a.worker_id for a in state.assignments.values() if a.status in ("Approved", "Rejected")}
    failures = []
    for worker in body["WorkerIds"]:
        if worker in reviewed:
            state.notifications.append(
                {"WorkerId": worker, "Subject": body["Subject"], "Text": body["MessageText"]}
            )
        else:
            failures.append(
                {
                    "NotifyWorkersFailureCode": "HardFailure",
                    "NotifyWorkersFailureMessage": f"Cannot send a message to worker {worker}.",
                    "WorkerId": worker,
                }
            )
    return {"NotifyWorkersFailureStatuses": failures}
