"""Parsing and Textual validators for the account forms (money, dates, times).

The rules themselves live in the domain (:func:`~collect_tui.domain.promises.validate_promise`)
and the services; these validators run them on one field as the agent types, so the
message appears next to that field before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from textual.validation import ValidationResult, Validator

from collect_tui.domain.money import format_money
from collect_tui.domain.promises import DEFAULT_HORIZON_DAYS, validate_promise
from collect_tui.services.workspace import AccountView, Freshness
from collect_tui.widgets.elapsed import ago

DATE_HINT = "YYYY-MM-DD or +days"
_RELATIVE = re.compile(r"^\+(\d{1,3})$")
_TIME = re.compile(r"^(\d{1,2})[:.]?(\d{2})$")


def parse_money(text: str) -> Decimal | None:
    """``1,234.50`` -> Decimal; None when it is not a number."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_day(text: str, today: date) -> date | None:
    """``2026-11-09``, ``+7`` (days after ``today``), ``today`` or ``tomorrow``; else None."""
    cleaned = text.strip().lower()
    if cleaned in ("today", "t"):
        return today
    if cleaned == "tomorrow":
        return today + timedelta(days=1)
    match = _RELATIVE.match(cleaned)
    if match:
        return today + timedelta(days=int(match.group(1)))
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        return None


def parse_clock(text: str) -> time | None:
    """``14:30``, ``1430`` or ``9:05`` -> time; None otherwise."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_count(text: str) -> int | None:
    """A whole number of installments, or None."""
    cleaned = text.strip()
    return int(cleaned) if cleaned.isdigit() else None


class FieldRule(Validator):
    """A validator from a function returning the problem with a value, or None."""

    def __init__(self, check: Callable[[str], str | None]) -> None:
        super().__init__()
        self.check = check

    def validate(self, value: str) -> ValidationResult:
        problem = self.check(value)
        return self.success() if problem is None else self.failure(problem)


def promise_amount_rule(balance: Decimal, today: date) -> FieldRule:
    """Amount of a promise: a positive number in cents, not above the balance."""

    def check(text: str) -> str | None:
        amount = parse_money(text)
        if amount is None:
            return "enter the amount, e.g. 250.00"
        errors = validate_promise(amount, today, balance, today)
        return next((e.message for e in errors if e.field == "amount"), None)

    return FieldRule(check)


def promise_date_rule(today: date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> FieldRule:
    """Date of a promise: not in the past nor beyond the horizon (debtor's calendar)."""

    def check(text: str) -> str | None:
        due = parse_day(text, today)
        if due is None:
            return f"enter the date as {DATE_HINT}"
        errors = validate_promise(Decimal("0.01"), due, Decimal("0.01"), today, horizon_days)
        return next((e.message for e in errors if e.field == "due_date"), None)

    return FieldRule(check)


def day_rule(today: date, horizon_days: int, what: str) -> FieldRule:
    """A date from ``today`` to ``horizon_days`` ahead."""

    def check(text: str) -> str | None:
        day = parse_day(text, today)
        if day is None:
            return f"enter the date as {DATE_HINT}"
        if day < today:
            return f"the {what} is in the past"
        if day > today + timedelta(days=horizon_days):
            return f"the {what} is more than {horizon_days} days ahead"
        return None

    return FieldRule(check)


def clock_rule() -> FieldRule:
    """A time of day, HH:MM."""
    return FieldRule(lambda text: None if parse_clock(text) else "enter the time as HH:MM")


def money_rule(
    what: str, *, below: Decimal | None = None, at_most: Decimal | None = None
) -> FieldRule:
    """A positive amount in cents, optionally under ``below`` or up to ``at_most``."""

    def check(text: str) -> str | None:
        amount = parse_money(text)
        if amount is None:
            return f"enter the {what}, e.g. 250.00"
        if amount <= 0:
            return f"the {what} must be more than zero"
        if amount != amount.quantize(Decimal("0.01")):
            return f"the {what} must be in whole cents"
        if below is not None and amount >= below:
            return f"the {what} must be less than the balance ({below:,.2f})"
        if at_most is not None and amount > at_most:
            return f"the {what} is more than the balance ({at_most:,.2f})"
        return None

    return FieldRule(check)


def count_rule() -> FieldRule:
    """A number of installments (the service checks the upper limit)."""

    def check(text: str) -> str | None:
        count = parse_count(text)
        if count is None or count < 1:
            return "enter a whole number of installments"
        return None

    return FieldRule(check)


def freshness_text(account: AccountView, now: datetime) -> tuple[str, bool]:
    """How current the balance is, in a few words, and whether the agent should be wary.

    Wary when the last sync is more than a day old, never happened, or payments were
    received that are not applied to the invoices yet (the balance may already be paid).
    """
    fresh: Freshness = account.freshness
    stamps = [s for s in (fresh.debtor_synced_at, fresh.invoices_synced_at) if s is not None]
    zone = account.debtor.local_time.tzinfo
    if stamps:
        last = max(stamps)
        synced = f"Synced {ago(last, now)} ({last.astimezone(zone):%m-%d %H:%M})"
        stale = (now - last) > timedelta(days=1)
    else:
        synced, stale = "Never synced", True
    if fresh.unapplied_payments:
        count = fresh.unapplied_payments
        money = format_money(fresh.unapplied_amount, account.debtor.currency)
        plural = "s" if count > 1 else ""
        return f"{synced}; {count} unapplied payment{plural} {money}: check first", True
    return f"{synced}; no unapplied payments", stale
