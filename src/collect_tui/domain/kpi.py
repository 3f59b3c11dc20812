"""Collection KPIs as plain formulas over numbers (Decimal for money).

Each function returns None when its denominator is zero (the KPI is undefined, not 0).
Money ratios (DSO, CEI, collected per day) are Decimal, rounded for display; rates over
counts (contact, promise and kept rates, contacts per hour) are floats.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

ONE_DECIMAL = Decimal("0.1")
CENT = Decimal("0.01")
HUNDRED = Decimal("100")


def _money(value: Decimal | int) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value)


def dso(receivables_end: Decimal, credit_sales: Decimal, days: int) -> Decimal | None:
    """Days sales outstanding of a period.

    DSO = receivables at the end of the period / credit sales in the period x days in the
    period, to 0.1 day. None when there were no credit sales.
    """
    receivables_end, credit_sales = _money(receivables_end), _money(credit_sales)
    if credit_sales <= 0 or days <= 0:
        return None
    return (receivables_end / credit_sales * days).quantize(ONE_DECIMAL, ROUND_HALF_EVEN)


def cei(
    beginning_receivables: Decimal,
    credit_sales: Decimal,
    ending_total_receivables: Decimal,
    ending_current_receivables: Decimal,
) -> Decimal | None:
    """Collection effectiveness index of a period, in percent.

    CEI = (beginning receivables + credit sales - ending total receivables)
          / (beginning receivables + credit sales - ending current receivables) x 100,
    to 0.1 point: what was collected out of what could have been collected (100 is
    perfect). None when nothing was collectable.
    """
    available = _money(beginning_receivables) + _money(credit_sales)
    collectable = available - _money(ending_current_receivables)
    if collectable <= 0:
        return None
    collected = available - _money(ending_total_receivables)
    return (collected / collectable * HUNDRED).quantize(ONE_DECIMAL, ROUND_HALF_EVEN)


def _rate(numerator: int, denominator: int) -> float | None:
    if numerator < 0 or denominator < 0:
        raise ValueError("counts cannot be negative")
    return numerator / denominator if denominator else None


def right_party_contact_rate(right_party_contacts: int, call_attempts: int) -> float | None:
    """Right-party contact rate = right-party contacts / call attempts (0..1)."""
    return _rate(right_party_contacts, call_attempts)


def promise_rate(promises: int, right_party_contacts: int) -> float | None:
    """Promise rate = promises to pay taken / right-party contacts."""
    return _rate(promises, right_party_contacts)


def kept_rate(kept: int, partially_kept: int, broken: int) -> float | None:
    """Kept rate = kept / (kept + partially kept + broken), over the promises due in the
    period whose outcome is known (pending ones are left out)."""
    return _rate(kept, kept + partially_kept + broken)


def contacts_per_hour(contacts: int, hours: float) -> float | None:
    """Contacts per hour = contacts / hours worked."""
    if contacts < 0 or hours < 0:
        raise ValueError("contacts and hours cannot be negative")
    return contacts / hours if hours else None


def collected_per_day(collected: Decimal, days: int) -> Decimal | None:
    """Collected per day = amount collected in the period / days in the period, to the cent."""
    if days <= 0:
        return None
    return (_money(collected) / days).quantize(CENT, ROUND_HALF_EVEN)
