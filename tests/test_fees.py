"""MTurk fee arithmetic: exact, table-driven, with the boundaries that change the rate."""

from decimal import Decimal

import pytest

from psiturk_async.mturk.fees import (
    Cost,
    assignment_cost,
    bonus_cost,
    format_money,
    hit_cost,
    parse_money,
    reward_fee_rate,
)

D = Decimal


@pytest.mark.parametrize(
    ("reward", "assignments", "masters", "expected"),
    [
        # 20 % below ten assignments, 40 % from ten on.
        ("1.00", 1, False, Cost(D("1.00"), D("0.20"), D("1.20"))),
        ("1.00", 9, False, Cost(D("9.00"), D("1.80"), D("10.80"))),
        ("1.00", 10, False, Cost(D("10.00"), D("4.00"), D("14.00"))),
        ("1.00", 11, False, Cost(D("11.00"), D("4.40"), D("15.40"))),
        # Masters adds 5 % on top of either rate.
        ("1.00", 9, True, Cost(D("9.00"), D("2.25"), D("11.25"))),
        ("1.00", 10, True, Cost(D("10.00"), D("4.50"), D("14.50"))),
        # The minimum fee is a cent per assignment, not per HIT.
        ("0.01", 1, False, Cost(D("0.01"), D("0.01"), D("0.02"))),
        ("0.01", 9, False, Cost(D("0.09"), D("0.09"), D("0.18"))),
        ("0.04", 10, False, Cost(D("0.40"), D("0.20"), D("0.60"))),  # 0.016 -> 0.02
        ("0.02", 10, False, Cost(D("0.20"), D("0.10"), D("0.30"))),  # 0.008 -> minimum 0.01
        # Rounding is per assignment, half-up: 0.105 -> 0.11, 0.1025 -> 0.10, 0.045 -> 0.05.
        ("0.42", 1, True, Cost(D("0.42"), D("0.11"), D("0.53"))),
        ("0.41", 1, True, Cost(D("0.41"), D("0.10"), D("0.51"))),
        ("0.10", 10, True, Cost(D("1.00"), D("0.50"), D("1.50"))),
        ("0.30", 10, True, Cost(D("3.00"), D("1.40"), D("4.40"))),  # 0.135 -> 0.14 each
        ("0.07", 3, False, Cost(D("0.21"), D("0.03"), D("0.24"))),  # 0.014 -> 0.01 each
        ("0.08", 3, False, Cost(D("0.24"), D("0.06"), D("0.30"))),  # 0.016 -> 0.02 each
        # Whole dollars and psiTurk's str(float) formatting are accepted.
        ("5", 2, False, Cost(D("10.00"), D("2.00"), D("12.00"))),
        ("1.5", 2, False, Cost(D("3.00"), D("0.60"), D("3.60"))),
        # A reward of zero costs nothing.
        ("0.00", 5, False, Cost(D("0.00"), D("0.00"), D("0.00"))),
    ],
)
def test_hit_cost(reward: str, assignments: int, masters: bool, expected: Cost) -> None:
    assert hit_cost(reward, assignments, masters=masters) == expected


@pytest.mark.parametrize(
    ("reward", "assignments", "masters", "fee"),
    [
        ("1.00", 9, False, D("0.20")),
        ("1.00", 10, False, D("0.40")),
        ("1.00", 10, True, D("0.45")),
        ("0.01", 100, True, D("0.01")),
    ],
)
def test_assignment_cost_uses_the_rate_of_the_whole_hit(
    reward: str, assignments: int, masters: bool, fee: Decimal
) -> None:
    cost = assignment_cost(reward, assignments=assignments, masters=masters)
    assert cost == Cost(D(reward), fee, D(reward) + fee)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1.00", Cost(D("1.00"), D("0.20"), D("1.20"))),
        ("0.01", Cost(D("0.01"), D("0.01"), D("0.02"))),  # minimum fee
        ("0.05", Cost(D("0.05"), D("0.01"), D("0.06"))),  # exactly 0.01
        ("0.07", Cost(D("0.07"), D("0.01"), D("0.08"))),  # 0.014 -> 0.01
        ("0.08", Cost(D("0.08"), D("0.02"), D("0.10"))),  # 0.016 -> 0.02
        ("12.34", Cost(D("12.34"), D("2.47"), D("14.81"))),  # 2.468 -> 2.47
        ("100", Cost(D("100.00"), D("20.00"), D("120.00"))),
        ("0", Cost(D("0.00"), D("0.00"), D("0.00"))),
    ],
)
def test_bonus_cost(amount: str, expected: Cost) -> None:
    assert bonus_cost(amount) == expected


def test_bonus_rate_ignores_assignment_count_and_masters() -> None:
    assert bonus_cost("1.00").fee == D("0.20") < assignment_cost("1.00", assignments=10, masters=True).fee


@pytest.mark.parametrize(
    ("assignments", "masters", "rate"),
    [
        (1, False, D("0.20")),
        (9, False, D("0.20")),
        (10, False, D("0.40")),
        (9, True, D("0.25")),
        (10, True, D("0.45")),
    ],
)
def test_reward_fee_rate(assignments: int, masters: bool, rate: Decimal) -> None:
    assert reward_fee_rate(assignments, masters=masters) == rate


@pytest.mark.parametrize("assignments", [0, -1])
def test_hit_needs_an_assignment(assignments: int) -> None:
    with pytest.raises(ValueError):
        hit_cost("1.00", assignments)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", D("1.00")),
        ("1.", D("1.00")),
        ("1.5", D("1.50")),
        ("1.00", D("1.00")),
        ("0", D("0.00")),
        ("0.01", D("0.01")),
        ("101.42", D("101.42")),
        ("007.10", D("7.10")),
        (3, D("3.00")),
        (D("2.5"), D("2.50")),
        (D("2.500"), D("2.50")),  # trailing zeros are not extra precision
    ],
)
def test_parse_money_accepts(value: str | int | Decimal, expected: Decimal) -> None:
    parsed = parse_money(value)
    assert parsed == expected
    assert parsed.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "-0.01",
        "1.001",
        "0.005",
        "NaN",
        "nan",
        "Infinity",
        "inf",
        "1e2",
        "1E-2",
        "$1",
        "1,00",
        " 1.00",
        "1.00 ",
        "+1",
        "",
        ".5",
        "1..0",
        "１",  # a full-width digit: Decimal would accept it, MTurk would not
        -1,
        D("-0.01"),
        D("NaN"),
        D("Infinity"),
        D("0.001"),
    ],
)
def test_parse_money_rejects(value: str | int | Decimal) -> None:
    with pytest.raises(ValueError):
        parse_money(value)


@pytest.mark.parametrize("value", [1.5, 0.1, True, None, [1]])
def test_parse_money_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        parse_money(value)  # type: ignore[arg-type]


def test_fee_functions_reject_bad_amounts() -> None:
    with pytest.raises(ValueError):
        hit_cost("-1.00", 1)
    with pytest.raises(ValueError):
        bonus_cost("0.001")


@pytest.mark.parametrize(("amount", "text"), [(D("1"), "1.00"), (D("0.5"), "0.50"), (D("101.42"), "101.42")])
def test_format_money(amount: Decimal, text: str) -> None:
    assert format_money(amount) == text
