"""Counterbalancing: psiTurk's least-filled-cell rule and its inputs (conditions.json, custom.py, cutoff)."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from participant_flow import arrive, browser, row, rows, running_app, set_row
from psiturk_async.counterbalance import choose_cell
from psiturk_async.models import Status
from psiturk_async.settings import Settings


def test_the_least_filled_cell_is_chosen() -> None:
    counts = {(0, 0): 2, (0, 1): 1, (1, 0): 2, (1, 1): 3}

    assert choose_cell(counts, num_conds=2, num_counters=2, rng=random.Random(1)) == (0, 1)


def test_ties_are_broken_at_random_among_the_least_filled() -> None:
    rng = random.Random(7)
    counts = {(0, 0): 1}

    chosen = Counter(choose_cell(counts, num_conds=2, num_counters=2, rng=rng) for _ in range(600))

    assert set(chosen) == {(0, 1), (1, 0), (1, 1)}
    assert min(chosen.values()) > 150


def test_the_same_seed_gives_the_same_choices() -> None:
    def draws(seed: int) -> list[tuple[int, int]]:
        rng = random.Random(seed)
        return [choose_cell({}, num_conds=3, num_counters=3, rng=rng) for _ in range(20)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_the_same_counts_do_not_always_give_the_same_cell() -> None:
    # Round-robin or first-of-the-ties would line arrival order up with condition.
    firsts = {choose_cell({}, num_conds=2, num_counters=3, rng=random.Random(seed)) for seed in range(40)}

    assert len(firsts) == 6


def test_cells_outside_the_grid_are_ignored() -> None:
    counts = {(0, 0): 1, (5, 0): 0, (0, 7): 0, (-1, 0): 0}

    chosen = {choose_cell(counts, num_conds=1, num_counters=2, rng=random.Random(seed)) for seed in range(20)}

    assert chosen == {(0, 1)}


def test_an_empty_table_can_give_any_cell() -> None:
    chosen = {choose_cell({}, num_conds=2, num_counters=2, rng=random.Random(seed)) for seed in range(60)}

    assert chosen == {(0, 0), (0, 1), (1, 0), (1, 1)}


async def cells(app: FastAPI) -> Counter[tuple[int, int]]:
    return Counter((found["cond"], found["counterbalance"]) for found in await rows(app))


async def arrivals(http: httpx.AsyncClient, count: int, *, first: int = 0, mode: str = "live") -> list[str]:
    return [await arrive(http, worker=f"W{n}", assignment=f"A{n}", mode=mode) for n in range(first, first + count)]


async def test_sequential_arrivals_fill_a_2x3_design_evenly(make_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(num_conds=2, num_counters=3)) as app, browser(app) as http:
        await arrivals(http, 18)

        assert await cells(app) == {(cond, counter): 3 for cond in range(2) for counter in range(3)}


async def test_conditions_json_sets_the_number_of_conditions(make_settings, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    conditions = {"slow": {"speed": 1}, "medium": {"speed": 2}, "fast": {"speed": 3}}
    (settings.project_dir / "conditions.json").write_text(json.dumps(conditions), encoding="utf-8")

    async with running_app(make_settings(num_conds=2, num_counters=2)) as app, browser(app) as http:
        await arrivals(http, 6)

        assert await cells(app) == {(0, 0): 2, (1, 0): 2, (2, 0): 2}


CUSTOM_CONDITION = '''
def custom_get_condition(mode):
    return (9, 9) if mode == "live" else (4, 2)
'''

ASYNC_CUSTOM_CONDITION = '''
async def custom_get_condition(mode):
    return (7, 1)
'''


async def test_custom_get_condition_from_custom_py_chooses(make_settings, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    (settings.project_dir / "custom.py").write_text(CUSTOM_CONDITION, encoding="utf-8")

    async with running_app(make_settings()) as app, browser(app) as http:
        page = await http.get("/exp", params={"hitId": "H", "assignmentId": "A", "workerId": "W", "mode": "live"})

        assert (await row(app, "W:A"))["cond"] == 9 and (await row(app, "W:A"))["counterbalance"] == 9
        assert "var condition = 9;" in page.text and "var counterbalance = 9;" in page.text


async def test_custom_get_condition_is_given_the_mode(make_settings, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    (settings.project_dir / "custom.py").write_text(CUSTOM_CONDITION, encoding="utf-8")

    async with running_app(make_settings()) as app, browser(app) as http:
        uid = await arrive(http, mode="sandbox")

        assert ((await row(app, uid))["cond"], (await row(app, uid))["counterbalance"]) == (4, 2)


async def test_custom_get_condition_may_be_async(make_settings, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    (settings.project_dir / "custom.py").write_text(ASYNC_CUSTOM_CONDITION, encoding="utf-8")

    async with running_app(make_settings()) as app, browser(app) as http:
        uid = await arrive(http)

        assert ((await row(app, uid))["cond"], (await row(app, uid))["counterbalance"]) == (7, 1)


def _hours_ago(hours: float) -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=hours)


async def _two_old_in_cell_0_one_new_in_cell_1(app: FastAPI, http: httpx.AsyncClient, *, old_status: Status,
                                               **old_values: object) -> None:
    first, second, third = await arrivals(http, 3)
    for uid in (first, second):
        await set_row(app, uid, cond=0, counterbalance=0, status=int(old_status), beginhit=_hours_ago(2),
                      **old_values)
    await set_row(app, third, cond=1, counterbalance=0)


@pytest.mark.parametrize("status", [Status.ALLOCATED, Status.STARTED, Status.QUITEARLY])
async def test_unfinished_participants_older_than_the_cutoff_do_not_count(make_settings, status: Status) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(num_conds=2, num_counters=1, cutoff_time=30)) as app, \
            browser(app) as http:
        await _two_old_in_cell_0_one_new_in_cell_1(app, http, old_status=status)

        newcomer = (await arrivals(http, 1, first=10))[0]

        assert (await row(app, newcomer))["cond"] == 0


async def test_unfinished_participants_within_the_cutoff_count(make_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(num_conds=2, num_counters=1, cutoff_time=180)) as app, \
            browser(app) as http:
        await _two_old_in_cell_0_one_new_in_cell_1(app, http, old_status=Status.STARTED)

        newcomer = (await arrivals(http, 1, first=10))[0]

        assert (await row(app, newcomer))["cond"] == 1


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.SUBMITTED, Status.CREDITED, Status.BONUSED])
async def test_finished_participants_always_count(make_settings, status: Status) -> None:  # type: ignore[no-untyped-def]
    async with running_app(make_settings(num_conds=2, num_counters=1, cutoff_time=30)) as app, \
            browser(app) as http:
        await _two_old_in_cell_0_one_new_in_cell_1(app, http, old_status=status)

        newcomer = (await arrivals(http, 1, first=10))[0]

        assert (await row(app, newcomer))["cond"] == 1


@pytest.mark.parametrize("elsewhere", [{"mode": "sandbox"}, {"codeversion": "0.0.0-old"}])
async def test_participants_of_another_mode_or_code_version_do_not_count(make_settings,  # type: ignore[no-untyped-def]
                                                                         elsewhere: dict[str, str]) -> None:
    async with running_app(make_settings(num_conds=2, num_counters=1)) as app, browser(app) as http:
        await _two_old_in_cell_0_one_new_in_cell_1(app, http, old_status=Status.COMPLETED, **elsewhere)

        newcomer = (await arrivals(http, 1, first=10))[0]

        assert (await row(app, newcomer))["cond"] == 0
