"""Shapes of the admin API. Import-light on purpose (pydantic only): the CLI parses responses with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, computed_field, field_validator

Mode = Literal["sandbox", "live"]
ExportKind = Literal["trialdata", "eventdata", "questiondata"]
ExportFormat = Literal["csv", "json", "jsonl"]
EXPORT_KINDS: tuple[ExportKind, ...] = ("trialdata", "eventdata", "questiondata")
EXPORT_MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "json": "application/json",
                                      "jsonl": "application/x-ndjson"}

# psiTurk's status names by number; tests hold this equal to models.Status, which the CLI may not import.
STATUS_NAMES = ("NOT_ACCEPTED", "ALLOCATED", "STARTED", "COMPLETED", "SUBMITTED", "CREDITED", "QUITEARLY",
                "BONUSED")


def status_name(status: int | None) -> str:
    if status is None:
        return "NONE"
    return STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else str(status)


def status_number(value: Any) -> Any:
    """A status given by number or by name (any case) as its number; anything else is left to fail."""
    if isinstance(value, str):
        name = value.strip().upper()
        if name in STATUS_NAMES:
            return STATUS_NAMES.index(name)
    return value


StatusNumber = Annotated[int, BeforeValidator(status_number), Field(ge=0, le=len(STATUS_NAMES) - 1)]


def as_utc(value: datetime | None) -> datetime | None:
    # psiTurk's columns hold naive UTC; saying so in the output spares every client a guess.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ModePublic(BaseModel):
    """The MTurk mode every server process uses."""

    mode: Mode


class ModeUpdate(BaseModel):
    mode: Mode


class ModeChange(BaseModel):
    mode: Mode
    previous: Mode


class ServerStatus(BaseModel):
    version: str
    mode: Mode
    codeversion: str
    database: str = Field(description="The database kind: sqlite or postgresql.")
    participants: int = Field(description="Every participant row, all modes and code versions.")
    finished: int = Field(description="Finished participants (statuses 3, 4, 5, 7) of this code version "
                                      "and mode: psiTurk's completed count.")
    by_status: dict[str, int] = Field(description="Participant rows by status name.")
    started_at: datetime = Field(description="When the server process that answered started.")
    uptime_seconds: float


class ConfigEntry(BaseModel):
    section: str
    key: str
    value: Any
    source: str = Field(description='Where the value came from: "default", a file, or an environment variable.')
    secret: bool


class ConfigPublic(BaseModel):
    entries: list[ConfigEntry]


class DebugLink(BaseModel):
    url: str
    source: Literal["ad_url", "server"] = Field(
        description="ad_url: built from the ad_url settings; server: the address this request reached.")


class ParticipantFilter(BaseModel):
    """Which participants a list, a count or an export covers; every field narrows, none means all."""

    model_config = ConfigDict(extra="forbid")

    mode: str | None = Field(default=None, description="sandbox, live or debug.")
    condition: int | None = None
    counterbalance: int | None = None
    codeversion: str | None = None
    status: list[StatusNumber] = Field(default_factory=list, description="Status numbers or names; any of them.")
    completed: bool | None = Field(default=None, description="true: statuses 3, 4, 5, 7; false: the others.")
    worker_id: str | None = None
    assignment_id: str | None = None
    hit_id: str | None = None


class ParticipantQuery(ParticipantFilter):
    limit: int = Field(default=100, ge=1, le=1000)
    after: str | None = Field(default=None, description="Start after this uniqueid (the next_after of the "
                                                         "previous page).")


class ExportQuery(ParticipantFilter):
    format: ExportFormat = "csv"


class ParticipantPublic(BaseModel):
    """A participant row with psiTurk's column names, without its data."""

    model_config = ConfigDict(from_attributes=True)

    uniqueid: str
    assignmentid: str
    workerid: str
    hitid: str
    ipaddress: str | None = None
    browser: str | None = None
    platform: str | None = None
    language: str | None = None
    cond: int | None = None
    counterbalance: int | None = None
    codeversion: str | None = None
    beginhit: datetime | None = None
    beginexp: datetime | None = None
    endhit: datetime | None = None
    bonus: float | None = None
    status: int | None = None
    mode: str | None = None

    @field_validator("beginhit", "beginexp", "endhit")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_name(self) -> str:
        return status_name(self.status)


class ParticipantDetail(ParticipantPublic):
    data: Any = Field(default=None, description="The stored datastring, parsed; null when empty or unreadable.")
    data_error: str | None = Field(default=None, description="Why the datastring could not be read, if so.")


class ParticipantPage(BaseModel):
    items: list[ParticipantPublic]
    total: int = Field(description="Participants matching the filter, on every page.")
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


class CellCount(BaseModel):
    cond: int | None
    counterbalance: int | None
    count: int


class StatusCount(BaseModel):
    status: int | None
    status_name: str
    count: int


class ParticipantCounts(BaseModel):
    total: int
    cells: list[CellCount] = Field(description="Participants by condition and counterbalance.")
    statuses: list[StatusCount]
