"""Money helpers: Decimal only, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


def to_money(value: Decimal | int | str) -> Decimal:
    """A Decimal rounded to cents (banker's rounding); refuses floats."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def format_money(amount: Decimal, currency: str | None = None) -> str:
    """``USD 12,400.00`` style, or just the figure without a currency."""
    figure = f"{to_money(amount):,.2f}"
    return f"{currency} {figure}" if currency else figure
