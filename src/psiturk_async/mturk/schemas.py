"""Shapes of the MTurk part of the admin API. Import-light (pydantic only): the CLI parses answers with them.

Money travels as strings of dollars and cents ("1.50"), never as floats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

Mode = Literal["sandbox", "live"]
Money = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]{1,2})?$", examples=["1.50"],
                             description="US dollars with at most two decimals.")]
MODE_FIELD = Field(description="The mode you mean to act in; refused with 409 mode_changed when the server's "
                               "mode differs, so a command confirmed for the sandbox never spends live money.")
DRY_RUN = Field(default=False, description="Work out and return exactly what would be sent; send nothing.")
EXPECT_TOTAL = Field(default=None, description="The total you confirmed (from a dry run); refused with 409 "
                                               "plan_changed when the total to send now differs.")
ItemOutcome = Literal["planned", "sent", "already", "skipped", "refused", "unknown"]


class SpendingPublic(BaseModel):
    """The study's recorded spending in one mode, fees included; max_spend counts against `recorded`."""

    mode: Mode
    recorded: str = Field(description="hits + bonuses + other_approvals.")
    hits: str = Field(description="What this study's HITs can still cost: every assignment not released "
                                  "(released = nobody took it before the HIT expired), reward plus fee.")
    bonuses: str = Field(description="Bonuses paid or in flight, with fees.")
    other_approvals: str = Field(description="Approvals of assignments of HITs this study did not create.")
    max_spend: str | None
    remaining: str | None


class Balance(BaseModel):
    mode: Mode
    available: str
    on_hold: str | None = None
    spending: SpendingPublic


class HitCreate(BaseModel):
    mode: Mode = MODE_FIELD
    assignments: int = Field(ge=1, le=1_000_000, description="Number of workers (MaxAssignments).")
    reward: Money
    duration_hours: float = Field(gt=0, description="Time a worker has for one assignment, in hours.")
    require_qualification_ids: list[str] = Field(default_factory=list)
    block_qualification_ids: list[str] = Field(default_factory=list)
    dry_run: bool = DRY_RUN
    expect_total: Money | None = EXPECT_TOTAL


class HitPlan(BaseModel):
    mode: Mode
    ad_url: str
    external_url: str = Field(description="The URL inside the ExternalQuestion (before XML escaping).")
    assignments: int
    reward: str
    duration_hours: float
    lifetime_hours: float
    masters: bool
    fee: str
    total: str
    requests: list[dict[str, Any]] = Field(description="The MTurk calls, in order, with their parameters.")
    spending: SpendingPublic


class HitCreated(BaseModel):
    plan: HitPlan
    dry_run: bool
    hit_id: str | None = None
    worker_url: str | None = Field(default=None, description="Where workers find it on MTurk's worker site.")


class HitPublic(BaseModel):
    hit_id: str
    title: str
    status: str
    reward: str
    max_assignments: int
    pending: int = Field(description="Accepted, being worked on.")
    available: int
    submitted: int = Field(description="Submitted, awaiting approval or rejection.")
    completed: int = Field(description="Approved or rejected.")
    created_at: datetime | None = None
    expires_at: datetime | None = None
    expired: bool
    this_study: bool


class HitQuery(BaseModel):
    active: bool = Field(default=False, description="Only HITs that have not expired.")
    reviewable: bool = Field(default=False, description="Only Reviewable or Reviewing HITs.")
    all_studies: bool = Field(default=False, description="Every HIT of the account, not only this study's.")

    @model_validator(mode="after")
    def _one_filter(self) -> HitQuery:
        if self.active and self.reviewable:
            raise ValueError("choose active or reviewable, not both")
        return self


class AssignmentQuery(BaseModel):
    status: Literal["Submitted", "Approved", "Rejected"] | None = None
    hit_id: str | None = Field(default=None, max_length=128, description="That HIT only.")


class HitList(BaseModel):
    mode: Mode
    hits: list[HitPublic]


class HitExtend(BaseModel):
    mode: Mode = MODE_FIELD
    assignments: int | None = Field(default=None, ge=1, description="Assignments to add.")
    minutes: float | None = Field(default=None, gt=0, description="Minutes to add to the expiration "
                                                                 "(counted from now if it already passed).")
    dry_run: bool = DRY_RUN
    expect_total: Money | None = EXPECT_TOTAL

    @model_validator(mode="after")
    def _something(self) -> HitExtend:
        if self.assignments is None and self.minutes is None:
            raise ValueError("give assignments, minutes, or both")
        return self


class HitExtension(BaseModel):
    mode: Mode
    hit_id: str
    dry_run: bool
    max_assignments: int
    expires_at: datetime | None
    fee: str
    total: str = Field(description="What the added assignments (and reopened ones) can cost.")
    requests: list[dict[str, Any]]
    spending: SpendingPublic


class HitSelection(BaseModel):
    mode: Mode = MODE_FIELD
    all: bool = Field(default=False, description="Every HIT of this study it applies to.")
    hit_ids: list[str] = Field(default_factory=list)
    dry_run: bool = DRY_RUN

    @model_validator(mode="after")
    def _one_way(self) -> HitSelection:
        if self.all == bool(self.hit_ids):
            raise ValueError("give either all or hit_ids")
        return self


class HitActionResult(BaseModel):
    hit_id: str
    outcome: Literal["planned", "done", "already", "refused", "unknown"]
    detail: str


class HitActions(BaseModel):
    mode: Mode
    action: Literal["expire", "delete"]
    dry_run: bool
    results: list[HitActionResult]


class AssignmentSelection(BaseModel):
    """Which assignments: all of this study's, one HIT's, or these ids. Exactly one."""

    mode: Mode = MODE_FIELD
    all: bool = False
    hit_id: str | None = None
    assignment_ids: list[str] = Field(default_factory=list)
    dry_run: bool = DRY_RUN
    expect_total: Money | None = EXPECT_TOTAL

    @model_validator(mode="after")
    def _one_way(self) -> AssignmentSelection:
        if sum([self.all, self.hit_id is not None, bool(self.assignment_ids)]) != 1:
            raise ValueError("give exactly one of all, hit_id or assignment_ids")
        return self


class RejectRequest(AssignmentSelection):
    reason: str = Field(default="", max_length=1024, description="RequesterFeedback: the worker sees it.")

    @model_validator(mode="after")
    def _not_all(self) -> RejectRequest:
        if self.all:
            raise ValueError("reject needs hit_id or assignment_ids, never all")
        return self


class BonusRequest(AssignmentSelection):
    amount: Money | None = Field(default=None, description="The same bonus for everyone selected.")
    auto: bool = Field(default=False, description="Each participant's own `bonus` column.")
    reason: str | None = Field(default=None, max_length=4096, description="Shown to the worker; default: the "
                                                                           "bonus_message setting.")
    again: bool = Field(default=False, description="Pay assignments that were bonused before another bonus.")

    @model_validator(mode="after")
    def _amount(self) -> BonusRequest:
        if (self.amount is None) == (not self.auto):
            raise ValueError("give either amount or auto")
        return self


class PaidBonus(BaseModel):
    amount: str
    state: str
    reason: str | None
    at: datetime


class ItemResult(BaseModel):
    """One assignment of an approve, reject, unreject or bonus: what is (or was) sent and what came of it."""

    assignment_id: str
    worker_id: str | None
    hit_id: str | None
    uniqueid: str | None = None
    local_status: str | None = None
    amount: str = "0.00"
    fee: str = "0.00"
    request: dict[str, Any] | None = Field(default=None, description="The MTurk call and its parameters.")
    previous: list[PaidBonus] = Field(default_factory=list, description="Bonuses recorded before, for --again.")
    outcome: ItemOutcome
    detail: str = ""


class ActionReport(BaseModel):
    mode: Mode
    action: Literal["approve", "reject", "unreject", "bonus"]
    dry_run: bool
    total: str = Field(description="Amounts plus fees of the items planned or sent.")
    items: list[ItemResult]
    spending: SpendingPublic


class AssignmentPublic(BaseModel):
    assignment_id: str
    worker_id: str
    hit_id: str
    mturk_status: str
    accepted_at: datetime | None = None
    submitted_at: datetime | None = None
    uniqueid: str | None = None
    local_status: str | None = None
    bonus: float | None = Field(default=None, description="The participant's bonus column (for --auto).")
    bonuses_paid: str = Field(description="Bonuses recorded as paid, fees excluded.")
    synced: str | None = Field(default=None, description="What this listing changed locally to match MTurk.")


class AssignmentList(BaseModel):
    mode: Mode
    assignments: list[AssignmentPublic]


class QualificationPublic(BaseModel):
    qualification_type_id: str
    name: str
    description: str | None = None
    status: str | None = None
    created_at: datetime | None = None


class QualificationList(BaseModel):
    mode: Mode
    qualification_types: list[QualificationPublic]
