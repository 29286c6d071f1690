"""The guarded participant status machine: which moves are legal, which are harmless repeats."""

from __future__ import annotations

from enum import Enum

from .models import Status

S = Status
# target status -> the statuses it may be reached from.
LEGAL_FROM: dict[Status, frozenset[Status]] = {
    S.STARTED: frozenset({S.ALLOCATED}),
    S.QUITEARLY: frozenset({S.ALLOCATED, S.STARTED}),
    # A participant who quit (or whose old client fired /quitter on unload) may come back and finish.
    S.COMPLETED: frozenset({S.ALLOCATED, S.STARTED, S.QUITEARLY}),
    S.SUBMITTED: frozenset({S.COMPLETED}),
    S.CREDITED: frozenset({S.COMPLETED, S.SUBMITTED}),
    S.BONUSED: frozenset({S.CREDITED}),
}
# target status -> statuses that mean "this already happened": repeating the move answers 200, changes nothing.
ALREADY: dict[Status, frozenset[Status]] = {
    S.STARTED: frozenset({S.STARTED}),
    S.QUITEARLY: frozenset({S.QUITEARLY}),
    S.COMPLETED: frozenset({S.COMPLETED, S.SUBMITTED, S.CREDITED, S.BONUSED}),
    S.SUBMITTED: frozenset({S.SUBMITTED, S.CREDITED, S.BONUSED}),
    S.CREDITED: frozenset({S.CREDITED, S.BONUSED}),
    S.BONUSED: frozenset({S.BONUSED}),
}
# Statuses in which a save is accepted; from CREDITED on the record is frozen.
SAVABLE = frozenset({S.ALLOCATED, S.STARTED, S.QUITEARLY, S.COMPLETED, S.SUBMITTED})


class Move(Enum):
    APPLY = "apply"
    ALREADY = "already"
    ILLEGAL = "illegal"


def decide(current: int | None, target: Status) -> Move:
    """Whether moving a participant from `current` to `target` is done, a harmless repeat, or refused."""
    try:
        status = Status(current if current is not None else S.ALLOCATED)
    except ValueError:
        return Move.ILLEGAL
    if status in ALREADY[target]:
        return Move.ALREADY
    if status in LEGAL_FROM[target]:
        return Move.APPLY
    return Move.ILLEGAL


def is_debug(*, mode: str | None, hit_id: str | None) -> bool:
    """The one debug rule, used everywhere: mode=debug, or a hitId that starts with "debug"."""
    return mode == "debug" or bool(hit_id and hit_id.startswith("debug"))


def status_name(status: int | None) -> str:
    try:
        return Status(status).name if status is not None else "NONE"
    except ValueError:
        return str(status)
