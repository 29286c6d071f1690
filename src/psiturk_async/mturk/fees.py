"""MTurk's commission on rewards and bonuses, computed exactly in Decimal.

The one place the fee rules live; HIT creation, approval, bonuses, the CLI's cost estimate and the test fake
all call these functions. Rules (MTurk pricing, see mturk-and-prolific-apis.md §1.9):

* 20 % commission on the reward of each assignment and on each bonus;
* another 20 % on the reward when the HIT has 10 or more assignments (bonuses stay at 20 %);
* another 5 % on the reward when the HIT requires the Masters qualification;
* each fee is rounded half-up to the cent, and is at least $0.01 per assignment and per bonus
  (a zero amount pays no fee).
"""

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
MINIMUM_FEE = CENT
BASE_RATE = Decimal("0.20")
LARGE_HIT_RATE = Decimal("0.20")
LARGE_HIT_ASSIGNMENTS = 10
MASTERS_RATE = Decimal("0.05")

# MTurk's CurrencyAmount pattern (US dollars, at most two decimals, no sign, no symbol).
_MONEY = re.compile(r"[0-9]+(\.[0-9]{0,2})?")


@dataclass(frozen=True)
class Cost:
    """What a payment costs the requester: the amount workers receive, MTurk's fee, and their sum."""

    to_workers: Decimal
    fee: Decimal
    total: Decimal


def parse_money(value: str | int | Decimal) -> Decimal:
    """Parse a dollar amount such as "1", "1.5" or "1.00" into a Decimal quantized to the cent.

    Raises ValueError for negative, non-finite or sub-cent amounts, exponents, signs and currency symbols, and
    TypeError for floats and booleans (a float such as 0.1 is already inexact).
    """
    if isinstance(value, bool | float):
        raise TypeError(f"money must be a str, int or Decimal, not {type(value).__name__}")
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        if not _MONEY.fullmatch(value):
            raise ValueError(f"not a dollar amount with at most two decimals: {value!r}")
        try:
            value = Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
            raise ValueError(f"not a dollar amount: {value!r}") from exc
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be a str, int or Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"money must be finite: {value!r}")
    if value < 0 or value.is_signed():
        raise ValueError(f"money must not be negative: {value!r}")
    if value != value.quantize(CENT, rounding=ROUND_HALF_UP):
        raise ValueError(f"money has more than two decimals: {value!r}")
    return value.quantize(CENT)


def format_money(amount: Decimal) -> str:
    """Format an amount the way MTurk's CurrencyAmount expects it: "1.50", no sign, no symbol."""
    return str(parse_money(amount))


def reward_fee_rate(assignments: int, *, masters: bool = False) -> Decimal:
    """The commission rate on the reward of a HIT with this many assignments."""
    if assignments < 1:
        raise ValueError(f"a HIT has at least one assignment, got {assignments}")
    rate = BASE_RATE
    if assignments >= LARGE_HIT_ASSIGNMENTS:
        rate += LARGE_HIT_RATE
    if masters:
        rate += MASTERS_RATE
    return rate


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    if amount == 0:
        return Decimal("0.00")
    return max(MINIMUM_FEE, (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP))


def assignment_cost(reward: str | int | Decimal, *, assignments: int, masters: bool = False) -> Cost:
    """What approving one assignment costs, for a HIT with `assignments` assignments in total."""
    amount = parse_money(reward)
    fee = _fee(amount, reward_fee_rate(assignments, masters=masters))
    return Cost(to_workers=amount, fee=fee, total=amount + fee)


def hit_cost(reward: str | int | Decimal, assignments: int, *, masters: bool = False) -> Cost:
    """What a HIT costs if every one of its `assignments` assignments is approved at `reward` each."""
    one = assignment_cost(reward, assignments=assignments, masters=masters)
    return Cost(
        to_workers=one.to_workers * assignments,
        fee=one.fee * assignments,
        total=one.total * assignments,
    )


def bonus_cost(amount: str | int | Decimal) -> Cost:
    """What one bonus payment costs (bonuses pay the base rate only, whatever the HIT)."""
    bonus = parse_money(amount)
    fee = _fee(bonus, BASE_RATE)
    return Cost(to_workers=bonus, fee=fee, total=bonus + fee)
