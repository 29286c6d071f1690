"""What workers do (accept, submit, return) and what time does (abandonment, auto-approval): the parts of an
assignment's life that have no requester API, driven by the fake's /_fake/ routes and its clock."""

from xml.sax.saxutils import escape

from .mturk_state import HOLDS_A_SLOT, Assignment, ControlError, FakeMTurkState, MTurkError, new_id, new_worker_id
from .requester import approve

ANSWERS_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"


def answer_xml(answers: dict[str, str]) -> str:
    """Answers as MTurk's QuestionFormAnswers XML, one FreeText answer per field."""
    parts = "".join(
        f"<Answer><QuestionIdentifier>{escape(key)}</QuestionIdentifier>"
        f"<FreeText>{escape(str(value))}</FreeText></Answer>"
        for key, value in answers.items()
    )
    header = '<?xml version="1.0" encoding="UTF-8"?>'
    return f'{header}<QuestionFormAnswers xmlns="{ANSWERS_NS}">{parts}</QuestionFormAnswers>'


def advance_time(state: FakeMTurkState) -> None:
    """Apply what the passage of time does: abandon overdue work, auto-approve old submissions."""
    now = state.now()
    for assignment in state.assignments.values():
        if assignment.status == "Accepted" and now >= assignment.deadline:
            assignment.status = "Abandoned"
        elif assignment.status == "Submitted" and now >= (assignment.auto_approval_at or now + 1):
            try:
                approve(state, assignment, feedback=None)
            except MTurkError:
                pass  # the account cannot pay: the work stays Submitted


def accept(state: FakeMTurkState, hit_id: str, worker_id: str | None = None) -> Assignment:
    """A worker accepts a HIT: a new assignment, pending until submitted, returned or abandoned."""
    hit = state.hits.get(hit_id)
    if hit is None or hit.deleted:
        raise ControlError(f"no HIT {hit_id}", status=404)
    if state.hit_status(hit) != "Assignable":
        raise ControlError(f"HIT {hit_id} is {state.hit_status(hit)}, not Assignable")
    worker_id = worker_id or new_worker_id()
    if worker_id in state.worker_blocks:
        raise ControlError(f"worker {worker_id} is blocked")
    if any(a.worker_id == worker_id and a.status in HOLDS_A_SLOT for a in state.assignments_of(hit_id)):
        raise ControlError(f"worker {worker_id} already holds an assignment of HIT {hit_id}")
    now = state.now()
    assignment = Assignment(
        assignment_id=new_id(),
        hit_id=hit_id,
        worker_id=worker_id,
        status="Accepted",
        accepted_at=now,
        deadline=now + hit.hit_type.assignment_duration,
    )
    state.assignments[assignment.assignment_id] = assignment
    return assignment


def _accepted(state: FakeMTurkState, assignment_id: str) -> Assignment:
    assignment = state.assignments.get(assignment_id)
    if assignment is None:
        raise ControlError(f"no assignment {assignment_id}", status=404)
    if assignment.status != "Accepted":
        raise ControlError(f"assignment {assignment_id} is {assignment.status}, not Accepted")
    return assignment


def submit(state: FakeMTurkState, assignment_id: str, answers: dict[str, str] | None = None) -> Assignment:
    """A worker submits accepted work (answers become QuestionFormAnswers XML)."""
    assignment = _accepted(state, assignment_id)
    assignment.answer = answer_xml(answers or {})
    assignment.status = "Submitted"
    assignment.submitted_at = state.now()
    assignment.auto_approval_at = (
        assignment.submitted_at + state.hit(assignment.hit_id).hit_type.auto_approval_delay
    )
    return assignment


def give_back(state: FakeMTurkState, assignment_id: str) -> Assignment:
    """A worker returns accepted work; the slot becomes available again."""
    assignment = _accepted(state, assignment_id)
    assignment.status = "Returned"
    return assignment
