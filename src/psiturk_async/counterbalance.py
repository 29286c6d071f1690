"""Choosing a participant's (condition, counterbalance): psiTurk's rule, as pure functions."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

Cell = tuple[int, int]


def choose_cell(counts: Mapping[Cell, int], *, num_conds: int, num_counters: int,
                rng: random.Random | None = None) -> Cell:
    """A random cell among the least-filled ones of the num_conds x num_counters grid.

    `counts` may hold cells outside the grid (rows from an older design); they are ignored, as in psiTurk.
    Random rather than round-robin, so that arrival order cannot line up with condition.
    """
    grid = [(cond, counter) for cond in range(num_conds) for counter in range(num_counters)]
    filled = {cell: counts.get(cell, 0) for cell in grid}
    fewest = min(filled.values())
    return (rng or random).choice([cell for cell in grid if filled[cell] == fewest])


def add_counts(*groups: Iterable[tuple[int | None, int | None, int]]) -> dict[Cell, int]:
    """Sum (cond, counterbalance, count) rows from several queries into one table."""
    total: dict[Cell, int] = {}
    for rows in groups:
        for cond, counter, count in rows:
            if cond is None or counter is None:
                continue
            total[(cond, counter)] = total.get((cond, counter), 0) + count
    return total


class ConditionsFileError(Exception):
    pass


def read_conditions_file(project_dir: Path) -> int | None:
    """The number of conditions in the project's conditions.json, or None when there is no such file.

    psiTurk's rule: the number of top-level keys is the number of conditions, with one counterbalance level.
    """
    path = project_dir / "conditions.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConditionsFileError(f"{path}: cannot be read: {exc}") from exc
    try:
        conditions = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConditionsFileError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(conditions, dict) or not conditions:
        raise ConditionsFileError(f"{path}: must be a JSON object with one key per condition")
    return len(conditions)
