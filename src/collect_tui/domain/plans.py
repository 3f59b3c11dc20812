"""Payment plans: the installments of a total, dated with ``dateutil.rrule``.

Amounts are whole cents. With ``count`` every installment but the last is the total
divided by the count, rounded down to the cent; with ``amount`` every installment but
the last is that amount. Either way the LAST installment absorbs the remainder, so the
installments always add up to the total exactly.

Monthly plans keep the day of the month of the first date and fall back to the last
day of shorter months: a plan starting Jan 31 is due Feb 28 (29), Mar 31, Apr 30, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Literal, get_args

from dateutil.rrule import MONTHLY, WEEKLY, rrule

from collect_tui.domain.money import CENT

Frequency = Literal["weekly", "biweekly", "monthly"]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)
MAX_INSTALLMENTS = 120


@dataclass(frozen=True)
class Installment:
    """One installment of a plan: its number (from 1), due date and amount."""

    no: int
    due_date: date
    amount: Decimal


def _whole_cents(value: Decimal, what: str) -> Decimal:
    if isinstance(value, float) or not isinstance(value, Decimal | int):
        raise ValueError(f"the {what} must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"the {what} must be a finite amount")
    if value != value.quantize(CENT):
        raise ValueError(f"the {what} must be in whole cents (got {value})")
    return value.quantize(CENT)


def installment_dates(first_date: date, frequency: Frequency, count: int) -> list[date]:
    """``count`` due dates from ``first_date`` on (inclusive), ``frequency`` apart."""
    if frequency not in FREQUENCIES:
        raise ValueError(f"the frequency must be one of {', '.join(FREQUENCIES)}")
    if count < 1:
        return []
    if frequency == "monthly":
        # The first date's day of the month, or the month's last day when it is shorter:
        # of the set {day, last day} that exists in a month, take the earliest.
        rule = rrule(
            MONTHLY, dtstart=first_date, count=count, bymonthday=(first_date.day, -1), bysetpos=1
        )
    else:
        rule = rrule(WEEKLY, dtstart=first_date, count=count, interval=_weeks(frequency))
    return [moment.date() for moment in rule]


def _weeks(frequency: str) -> int:
    return 2 if frequency == "biweekly" else 1


def generate_installments(
    total: Decimal,
    first_date: date,
    frequency: Frequency,
    *,
    count: int | None = None,
    amount: Decimal | None = None,
) -> list[Installment]:
    """The installments of ``total``: ``count`` of them, or as many of ``amount`` as needed.

    Exactly one of ``count`` and ``amount`` is given. Raises ``ValueError`` with a message
    fit for the agent on a non-positive total, a count outside 1..120, an installment
    amount above the total or below one cent, or an unknown frequency.
    """
    total = _whole_cents(total, "plan total")
    if total <= 0:
        raise ValueError("the plan total must be more than zero")
    if frequency not in FREQUENCIES:
        raise ValueError(f"the frequency must be one of {', '.join(FREQUENCIES)}")
    if (count is None) == (amount is None):
        raise ValueError("give either the number of installments or the installment amount")
    if amount is not None:
        amount = _whole_cents(amount, "installment amount")
        if amount <= 0:
            raise ValueError("the installment amount must be more than zero")
        if amount > total:
            raise ValueError(f"the installment amount {amount} is more than the total {total}")
        total_cents, amount_cents = int(total / CENT), int(amount / CENT)
        count = -(-total_cents // amount_cents)  # ceiling division, on whole cents
        if count > MAX_INSTALLMENTS:
            raise ValueError(
                f"{amount} a time needs {count} installments; at most {MAX_INSTALLMENTS} "
                "are allowed, raise the amount"
            )
        regular = amount
    else:
        assert count is not None
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError("the number of installments must be a whole number")
        if not 1 <= count <= MAX_INSTALLMENTS:
            raise ValueError(f"the number of installments must be 1 to {MAX_INSTALLMENTS}")
        regular = (total / count).quantize(CENT, rounding=ROUND_DOWN)
        if regular <= 0:
            raise ValueError(f"{total} cannot be split into {count} installments of a cent or more")
    last = total - regular * (count - 1)
    dates = installment_dates(first_date, frequency, count)
    return [
        Installment(no, due, last if no == count else regular)
        for no, due in enumerate(dates, start=1)
    ]


def describe_plan(installments: list[Installment], frequency: str, currency: str = "") -> str:
    """``6 monthly installments of USD 100.00 from 2026-01-31`` (last one may differ)."""
    if not installments:
        return "no installments"
    first = installments[0]
    prefix = f"{currency} " if currency else ""
    words = f"{len(installments)} {frequency} installment{'s' if len(installments) > 1 else ''}"
    text = f"{words} of {prefix}{first.amount:,.2f} from {first.due_date.isoformat()}"
    if len(installments) > 1 and installments[-1].amount != first.amount:
        text += f" (last {prefix}{installments[-1].amount:,.2f})"
    return text
