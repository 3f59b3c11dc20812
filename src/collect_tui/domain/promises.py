"""Promises to pay: checking a new one, and judging one against the payments received.

A promise counts the payments dated from the day it was made up to its due date plus a
grace period (and not after the day of the evaluation). It is *kept* as soon as they
reach its amount; once the grace period is over it is *partially kept* (something was
paid) or *broken* (nothing was); until then it is *pending*. Installments of a plan
share the plan's payments in order: the first installment is covered first, the
surplus goes to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

PromiseStatus = Literal["pending", "kept", "partially_kept", "broken"]
DEFAULT_GRACE_DAYS = 3
DEFAULT_HORIZON_DAYS = 30
ZERO = Decimal("0")

PaymentFact = tuple[date, Decimal]  # (paid on, amount)


@dataclass(frozen=True)
class PromiseEvaluation:
    """The status of a promise and how much of it was paid."""

    status: PromiseStatus
    paid: Decimal


@dataclass(frozen=True)
class FieldError:
    """A problem with one field of a form, in words fit for the agent."""

    field: str
    message: str


def grace_end(due_date: date, grace_days: int = DEFAULT_GRACE_DAYS) -> date:
    """The last day a payment still counts for a promise due on ``due_date``."""
    return due_date + timedelta(days=grace_days)


def _paid_within(payments: Iterable[PaymentFact], start: date | None, end: date) -> Decimal:
    total = ZERO
    for paid_on, amount in payments:
        if (start is None or paid_on >= start) and paid_on <= end:
            total += amount
    return total


def _status(
    amount: Decimal, paid: Decimal, due_date: date, today: date, grace_days: int
) -> PromiseStatus:
    if paid >= amount:
        return "kept"
    if today <= grace_end(due_date, grace_days):
        return "pending"
    return "partially_kept" if paid > 0 else "broken"


def evaluate_promise(
    amount: Decimal,
    due_date: date,
    payments: Sequence[PaymentFact],
    *,
    today: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
    created_on: date | None = None,
) -> PromiseEvaluation:
    """Judge one promise of ``amount`` due on ``due_date`` against ``payments``.

    Payments dated from ``created_on`` (when given) to ``due_date + grace_days`` count
    (none dated after ``today``: an evaluation as of a past day sees only that day's facts).
    Kept as soon as they reach ``amount``; after the grace period, partially kept when
    something was paid and broken when nothing was; pending before that.
    """
    if grace_days < 0:
        raise ValueError("the grace period cannot be negative")
    paid = _paid_within(payments, created_on, min(today, grace_end(due_date, grace_days)))
    return PromiseEvaluation(_status(amount, paid, due_date, today, grace_days), paid)


def evaluate_installments(
    installments: Sequence[tuple[Decimal, date]],
    payments: Sequence[PaymentFact],
    *,
    today: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
    created_on: date | None = None,
) -> list[PromiseEvaluation]:
    """Judge the installments ``(amount, due date)`` of one plan, in due-date order.

    Each installment counts what was paid since ``created_on`` up to its own grace end,
    less what the earlier installments used, never more than its amount; so one payment
    is never counted twice and an early or large payment covers later installments.
    """
    if grace_days < 0:
        raise ValueError("the grace period cannot be negative")
    results: list[PromiseEvaluation] = []
    used = ZERO
    for amount, due_date in installments:
        end = min(today, grace_end(due_date, grace_days))
        available = _paid_within(payments, created_on, end) - used
        paid = min(max(available, ZERO), amount)
        used += paid
        results.append(PromiseEvaluation(_status(amount, paid, due_date, today, grace_days), paid))
    return results


def validate_promise(
    amount: Decimal,
    due_date: date,
    balance: Decimal,
    today: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> list[FieldError]:
    """What is wrong with a promise of ``amount`` on ``due_date`` (empty when nothing is).

    The date may be today but not in the past, nor more than ``horizon_days`` ahead;
    the amount must be more than zero, in cents, and not above the open ``balance``.
    """
    errors: list[FieldError] = []
    if due_date < today:
        errors.append(FieldError("due_date", "the promise date is in the past"))
    elif due_date > today + timedelta(days=horizon_days):
        errors.append(
            FieldError("due_date", f"the promise date is more than {horizon_days} days ahead")
        )
    if not isinstance(amount, Decimal) or not amount.is_finite():
        errors.append(FieldError("amount", "the amount is not a number"))
    elif amount <= 0:
        errors.append(FieldError("amount", "the amount must be more than zero"))
    elif amount != amount.quantize(Decimal("0.01")):
        errors.append(FieldError("amount", "the amount must be in whole cents"))
    elif amount > balance:
        errors.append(FieldError("amount", f"the amount is more than the balance ({balance:,.2f})"))
    return errors
