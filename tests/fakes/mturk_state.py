"""The fake's model of one MTurk requester account: HITs, assignments and money, plus what the fake records.

Rules follow the API reference where it is explicit (mturk-and-prolific-apis.md §1); where MTurk's behaviour is not
documented the fake picks one simple, explicit rule and says so in a comment.
"""

import secrets
import string
import threading
import time
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from psiturk_async.mturk.fees import parse_money

ID_ALPHABET = string.ascii_uppercase + string.digits
DEFAULT_BALANCE = Decimal("10000.00")  # the sandbox's balance
DEFAULT_AUTO_APPROVAL_DELAY = 2_592_000  # 30 days, what the live service fills in
TOKEN_LIFETIME = 24 * 3600  # a UniqueRequestToken is remembered for 24 hours
REJECTION_OVERRIDE_WINDOW = 30 * 24 * 3600
MASTERS_QUALIFICATION_IDS = frozenset({"2F1QJWKUDD8XADTFD2Q0G6UTO95ALH", "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"})
# Visible assignment statuses; "Accepted", "Returned" and "Abandoned" exist only inside the fake.
REVIEWED = ("Approved", "Rejected")
SUBMITTED_OR_REVIEWED = ("Submitted", *REVIEWED)
HOLDS_A_SLOT = ("Accepted", *SUBMITTED_OR_REVIEWED)


def new_id(length: int = 30) -> str:
    """A random identifier shaped like MTurk's (upper-case letters and digits)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def new_worker_id() -> str:
    """A random worker id shaped like MTurk's ("A" and 13 more characters)."""
    return "A" + new_id(13)


class MTurkError(Exception):
    """An error answered on the MTurk protocol: a modeled RequestError / ServiceFault, or a front-door error."""

    def __init__(
        self, message: str, code: str | None = None, *, error_type: str = "RequestError", status: int = 400
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type
        self.status = status


class ControlError(Exception):
    """A refused test-control action (unknown id, HIT not assignable, ...)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class HITType:
    hit_type_id: str
    group_id: str
    title: str
    description: str
    reward: Decimal
    assignment_duration: int
    auto_approval_delay: int
    keywords: str | None
    qualification_requirements: list[dict[str, Any]]

    @property
    def masters(self) -> bool:
        return any(q["QualificationTypeId"] in MASTERS_QUALIFICATION_IDS for q in self.qualification_requirements)


@dataclass
class HIT:
    hit_id: str
    hit_type: HITType
    created_at: float
    expires_at: float
    max_assignments: int
    question: str | None
    layout_id: str | None
    requester_annotation: str | None
    deleted: bool = False


@dataclass
class Assignment:
    assignment_id: str
    hit_id: str
    worker_id: str
    status: str  # Accepted | Submitted | Approved | Rejected | Returned | Abandoned
    accepted_at: float
    deadline: float
    submitted_at: float | None = None
    auto_approval_at: float | None = None
    approved_at: float | None = None
    rejected_at: float | None = None
    answer: str | None = None
    feedback: str | None = None


@dataclass
class Bonus:
    worker_id: str
    assignment_id: str
    hit_id: str
    amount: Decimal
    fee: Decimal
    reason: str
    granted_at: float
    token: str | None


@dataclass
class Counts:
    pending: int
    available: int
    submitted: int
    completed: int


@dataclass
class Fault:
    """A fault to inject into the next `times` calls (of `operation`, or of any operation when it is None)."""

    kind: str  # throttle | service_fault | delay | delay_after_commit | corrupt_response
    operation: str | None = None
    times: int = 1
    seconds: float = 0.0
    status: int = 500
    patch: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    """One request seen on the MTurk endpoint and how it was answered."""

    operation: str
    request: Any
    status: int
    error: str | None
    attempt: int | None  # botocore's amz-sdk-request attempt number


def _system_qualification_types() -> dict[str, dict[str, Any]]:
    created = 1_500_000_000.0
    rows = [
        ("2ARFPLSP75KLA8M8DH1HTEQVJT3SY6", "Masters", "Masters (sandbox)"),
        ("2F1QJWKUDD8XADTFD2Q0G6UTO95ALH", "Masters", "Masters (live)"),
        ("00000000000000000071", "Worker_Locale", "The worker's location"),
        ("000000000000000000L0", "Worker_PercentAssignmentsApproved", "Percentage of assignments approved"),
        ("00000000000000000040", "Worker_NumberHITsApproved", "Total approved HITs"),
    ]
    return {
        type_id: {
            "QualificationTypeId": type_id,
            "CreationTime": created,
            "Name": name,
            "Description": description,
            "QualificationTypeStatus": "Active",
            "IsRequestable": False,
            "AutoGranted": False,
        }
        for type_id, name, description in rows
    }


@dataclass
class FakeMTurkState:
    """Everything the fake knows; operations run under `lock` (the server runs in another thread)."""

    balance: Decimal = DEFAULT_BALANCE
    charge: bool = True  # False keeps the balance constant, as the sandbox does
    clock_offset: float = 0.0
    hit_types: dict[str, HITType] = field(default_factory=dict)
    hits: dict[str, HIT] = field(default_factory=dict)
    assignments: dict[str, Assignment] = field(default_factory=dict)
    bonuses: list[Bonus] = field(default_factory=list)
    tokens: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    qualification_types: dict[str, dict[str, Any]] = field(default_factory=_system_qualification_types)
    owned_qualification_types: set[str] = field(default_factory=set)
    worker_blocks: dict[str, str] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)  # ends delay faults early

    def now(self) -> float:
        return time.time() + self.clock_offset

    def hit(self, hit_id: str) -> HIT:
        hit = self.hits.get(hit_id)
        if hit is None:
            raise MTurkError(f"Hit {hit_id} does not exist.", "AWS.MechanicalTurk.HITDoesNotExist")
        return hit

    def assignment(self, assignment_id: str) -> Assignment:
        assignment = self.assignments.get(assignment_id)
        if assignment is None or assignment.status in ("Returned", "Abandoned"):
            raise MTurkError(
                f"Assignment {assignment_id} does not exist.", "AWS.MechanicalTurk.AssignmentDoesNotExist"
            )
        return assignment

    def assignments_of(self, hit_id: str) -> list[Assignment]:
        return [a for a in self.assignments.values() if a.hit_id == hit_id]

    def counts(self, hit: HIT) -> Counts:
        statuses = [a.status for a in self.assignments_of(hit.hit_id)]
        pending = statuses.count("Accepted")
        submitted = statuses.count("Submitted")
        completed = statuses.count("Approved") + statuses.count("Rejected")
        return Counts(pending, hit.max_assignments - pending - submitted - completed, submitted, completed)

    def hit_status(self, hit: HIT) -> str:
        # Simplified transitions: open while unexpired with a free slot; Reviewable once expired or full with
        # nobody still working; Unassignable in between.
        if hit.deleted:
            return "Disposed"
        counts = self.counts(hit)
        open_ = self.now() < hit.expires_at and counts.available > 0
        if open_:
            return "Assignable"
        return "Unassignable" if counts.pending else "Reviewable"

    def remember_token(self, namespace: str, token: str | None, result: str) -> None:
        if token is not None:
            self.tokens[(namespace, token)] = (self.now(), result)

    def check_token(self, namespace: str, token: str | None) -> str | None:
        """The result recorded for a token used within the last 24 hours, if any."""
        if token is None:
            return None
        seen = self.tokens.get((namespace, token))
        if seen is None or self.now() - seen[0] > TOKEN_LIFETIME:
            return None
        return seen[1]

    def pay(self, amount: Decimal) -> None:
        if not self.charge:
            return
        if amount > self.balance:
            raise MTurkError(
                f"Your account balance is not sufficient to pay ${amount}.", "AWS.MechanicalTurk.InsufficientFunds"
            )
        self.balance -= amount

    def can_pay(self, amount: Decimal) -> None:
        if self.charge and amount > self.balance:
            raise MTurkError(
                f"Your account balance is not sufficient for a cost of ${amount}.",
                "AWS.MechanicalTurk.InsufficientFunds",
            )

    def set_balance(self, amount: str) -> None:
        self.balance = parse_money(amount)

    def reset(self) -> None:
        """Forget everything but the lock and the stop signal, which the server thread may be waiting on."""
        fresh = FakeMTurkState()
        for item in fields(self):
            if item.name not in ("lock", "stopping"):
                setattr(self, item.name, getattr(fresh, item.name))
