"""Account priority: the score that orders a queue and the reasons behind it, in words.

The score is a sum of points, each rule adding its weight (see :class:`PriorityWeights`):

* promise due today, broken promise (recent), installment missed, cadence step due;
* balance, converted to a base currency, capped and linear;
* days past due of the oldest open invoice, capped, plus a step per aging bucket;
* days since the last contact, capped; never contacted counts as the cap.

Accounts that must not be worked (dispute, cease communication, bankruptcy, deceased,
nothing owed) get :data:`EXCLUDED_SCORE`, below every other account. A callback adds no
points: it must come first exactly at its time, so the queue pins due callbacks above the
scored accounts with a query of its own; here it only shows up as a reason.

Every rule is a function of the facts and ``today`` only (``now`` is used for the
callback reason), so ``collect_tui.storage.scoring`` computes the same score in SQL.
Dates are UTC days: "days since last contact" is whole days between the UTC date of the
last contact and ``today``; a cadence step is due when its UTC date is ``today`` or earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from collect_tui.domain.aging import BUCKETS, aging_bucket, days_past_due
from collect_tui.domain.zones import zone_or_utc

EXCLUDED_SCORE = -1.0

# Exclusion words, in the order they are checked (the first that applies is reported).
DISPUTE = "dispute"
CEASE = "cease communication"
BANKRUPTCY = "bankruptcy"
DECEASED = "deceased"
NOTHING_OWED = "nothing owed"

DEFAULT_FX_TO_BASE: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "BRL": Decimal("0.18"),
    "AUD": Decimal("0.65"),
    "NZD": Decimal("0.60"),
    "CAD": Decimal("0.73"),
    "MXN": Decimal("0.055"),
    "INR": Decimal("0.012"),
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Points to the millionth: no subnormal weights (PostgreSQL refuses float underflow).
Points = Annotated[
    float, Field(ge=0, le=1e6, allow_inf_nan=False), AfterValidator(lambda v: round(v, 6))
]
Rate = Annotated[Decimal, Field(ge=Decimal("1e-9"), le=10**6, allow_inf_nan=False)]


class PriorityWeights(BaseModel):
    """The weights of the score, all configurable; points are comparable across rules.

    Defaults (max points in brackets): promise due today 40, broken promise within the
    last 14 days 35, installment of a plan missed 25, cadence step due 15, balance up to
    30 (linear up to 50,000 in the base currency, USD), days past due 0.05 a day capped
    at 365 days (18.25) plus 3 per aging bucket past "current" (15), no contact 0.5 a day
    capped at 30 days (15). ``fx_to_base`` holds approximate rates to the base currency;
    a currency not in it counts at rate 1. All weights are non-negative, which keeps the
    score monotone non-decreasing in balance and lateness.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    promise_due_today: Points = 40.0
    broken_promise: Points = 35.0
    broken_lookback_days: int = Field(14, ge=0, le=3650)
    installment_missed: Points = 25.0
    cadence_due: Points = 15.0
    balance: Points = 30.0
    balance_cap: Decimal = Field(Decimal("50000"), ge=1, le=10**12, allow_inf_nan=False)
    fx_to_base: dict[str, Rate] = Field(default_factory=lambda: dict(DEFAULT_FX_TO_BASE))
    days_past_due: Points = 0.05
    days_past_due_cap: int = Field(365, ge=0, le=36500)
    aging_bucket_step: Points = 3.0
    no_contact: Points = 0.5
    no_contact_cap: int = Field(30, ge=0, le=36500)

    def rate(self, currency: str) -> float:
        """The approximate rate of ``currency`` to the base currency (1 if unknown)."""
        return float(self.fx_to_base.get(currency, Decimal(1)))

    @property
    def balance_per_unit(self) -> float:
        """Points per unit of base currency below the cap."""
        return self.balance / float(self.balance_cap)


DEFAULT_WEIGHTS = PriorityWeights()


@dataclass(frozen=True)
class AccountFacts:
    """What the score of one account is computed from (the debtor's cached columns)."""

    balance: Decimal
    currency: str
    oldest_due_date: date | None = None
    last_contact_at: datetime | None = None
    promise_due_on: date | None = None
    broken_promise_on: date | None = None
    installment_missed: bool = False
    cadence_due_at: datetime | None = None
    next_action: str | None = None
    next_action_at: datetime | None = None
    time_zone: str = "UTC"
    cease_communication: bool = False
    dispute: bool = False
    bankruptcy: bool = False
    deceased: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AccountFacts:
        """Facts from a mapping keyed like the ``debtors`` columns (``open_balance``...)."""
        balance = row["open_balance"]
        return cls(
            balance=balance if isinstance(balance, Decimal) else Decimal(str(balance or 0)),
            currency=row["currency"],
            oldest_due_date=row.get("oldest_due_date"),
            last_contact_at=_aware(row.get("last_contact_at")),
            promise_due_on=row.get("promise_due_on"),
            broken_promise_on=row.get("broken_promise_on"),
            installment_missed=bool(row.get("installment_missed")),
            cadence_due_at=_aware(row.get("cadence_due_at")),
            next_action=row.get("next_action"),
            next_action_at=_aware(row.get("next_action_at")),
            time_zone=row.get("time_zone") or "UTC",
            cease_communication=bool(row.get("cease_communication")),
            dispute=bool(row.get("dispute")),
            bankruptcy=bool(row.get("bankruptcy")),
            deceased=bool(row.get("deceased")),
        )


@dataclass(frozen=True)
class Priority:
    """A score with its reasons (most important first) or why the account is excluded."""

    score: float
    reasons: list[str] = field(default_factory=list)
    excluded: str | None = None

    @property
    def top_reason(self) -> str | None:
        """The most important reason, if any."""
        return self.reasons[0] if self.reasons else None


def _aware(value: datetime | None) -> datetime | None:
    """A stored timestamp as aware UTC (naive values are UTC by the storage convention)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def utc_day(value: datetime) -> date:
    """The UTC calendar day of an aware timestamp."""
    if value.tzinfo is None:
        raise ValueError("naive datetime; attach a time zone")
    return value.astimezone(UTC).date()


def day_month(day: date) -> str:
    """``01 Nov`` (English month abbreviations whatever the locale)."""
    return f"{day.day:02d} {_MONTHS[day.month - 1]}"


def whole_units(amount: Decimal) -> str:
    """``12,400`` for 12,399.50 (rounded half up, thousands separated)."""
    return f"{int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)):,}"


def exclusion(facts: AccountFacts) -> str | None:
    """Why the account must not be worked at all, or None."""
    if facts.dispute:
        return DISPUTE
    if facts.cease_communication:
        return CEASE
    if facts.bankruptcy:
        return BANKRUPTCY
    if facts.deceased:
        return DECEASED
    if facts.balance <= 0:
        return NOTHING_OWED
    return None


def broken_is_recent(broken_on: date | None, today: date, lookback_days: int) -> bool:
    """True when a promise broken on ``broken_on`` is within the lookback of ``today``."""
    return broken_on is not None and today - timedelta(days=lookback_days) <= broken_on <= today


def contact_days(last_contact_at: datetime | None, today: date) -> int | None:
    """Whole days from the UTC day of the last contact to ``today`` (None: never)."""
    if last_contact_at is None:
        return None
    return max(0, (today - utc_day(last_contact_at)).days)


def balance_points(balance: Decimal, currency: str, weights: PriorityWeights) -> float:
    """Points for the balance: linear in the base-currency amount up to the cap."""
    base = float(balance) * weights.rate(currency)
    return min(base, float(weights.balance_cap)) * weights.balance_per_unit


def lateness_points(oldest_due_date: date | None, today: date, weights: PriorityWeights) -> float:
    """Points for days past due (capped) plus a step per aging bucket past current."""
    days = 0 if oldest_due_date is None else days_past_due(oldest_due_date, today)
    bucket = BUCKETS.index(aging_bucket(days))
    return (
        min(days, weights.days_past_due_cap) * weights.days_past_due
        + bucket * weights.aging_bucket_step
    )


def contact_points(days: int | None, weights: PriorityWeights) -> float:
    """Points for the time since the last contact; never contacted counts as the cap."""
    capped = weights.no_contact_cap if days is None else min(days, weights.no_contact_cap)
    return capped * weights.no_contact


def callback_reason(facts: AccountFacts, now: datetime) -> str | None:
    """``callback 14:00`` (debtor's local time) for a callback due today or overdue."""
    if facts.next_action != "callback" or facts.next_action_at is None:
        return None
    zone = zone_or_utc(facts.time_zone)
    at = facts.next_action_at.astimezone(zone)
    local_today = now.astimezone(zone).date()
    if at.date() > local_today:
        return None
    if at.date() == local_today:
        return f"callback {at:%H:%M}"
    return f"callback {day_month(at.date())} {at:%H:%M}"


def score_account(
    facts: AccountFacts,
    *,
    today: date,
    now: datetime,
    weights: PriorityWeights | None = None,
) -> Priority:
    """The score of one account on ``today`` and its reasons, most important first.

    Reasons come in a fixed order of urgency: a due callback, the promise events
    (due today, broken, installment missed), a due cadence step, then the standing
    facts (balance with its aging bucket, time since the last contact).
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime; attach a time zone")
    w = weights or DEFAULT_WEIGHTS
    excluded = exclusion(facts)
    if excluded is not None:
        return Priority(EXCLUDED_SCORE, [excluded], excluded)

    reasons: list[str] = []
    callback = callback_reason(facts, now)
    if callback:
        reasons.append(callback)
    score = 0.0
    if facts.promise_due_on == today:
        score += w.promise_due_today
        reasons.append("promise due today")
    if broken_is_recent(facts.broken_promise_on, today, w.broken_lookback_days):
        assert facts.broken_promise_on is not None
        score += w.broken_promise
        reasons.append(f"broken promise {day_month(facts.broken_promise_on)}")
    if facts.installment_missed:
        score += w.installment_missed
        reasons.append("installment missed")
    if facts.cadence_due_at is not None and utc_day(facts.cadence_due_at) <= today:
        score += w.cadence_due
        reasons.append("cadence step due")

    score += balance_points(facts.balance, facts.currency, w)
    score += lateness_points(facts.oldest_due_date, today, w)
    days = 0 if facts.oldest_due_date is None else days_past_due(facts.oldest_due_date, today)
    bucket = aging_bucket(days)
    where = "current" if bucket == BUCKETS[0] else f"in {bucket}"
    reasons.append(f"{facts.currency} {whole_units(facts.balance)} {where}")

    since = contact_days(facts.last_contact_at, today)
    score += contact_points(since, w)
    if since is None:
        reasons.append("never contacted")
    elif since > 0:
        reasons.append(f"no contact for {since} day{'s' if since != 1 else ''}")
    return Priority(score, reasons, None)
