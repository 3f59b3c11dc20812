"""Days past due and aging buckets, always derived from the due date and today."""

from __future__ import annotations

from datetime import date, timedelta

BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "91-120", "120+")
# The last day past due of each bucket but the open-ended last one.
_BUCKET_LIMITS: tuple[int, ...] = (0, 30, 60, 90, 120)


def days_past_due(due: date, today: date) -> int:
    """Whole days since the due date; 0 while the invoice is not yet due."""
    return max(0, (today - due).days)


def aging_bucket(days: int) -> str:
    """The aging bucket of a number of days past due."""
    for bucket, limit in zip(BUCKETS, _BUCKET_LIMITS, strict=False):
        if days <= limit:
            return bucket
    return BUCKETS[-1]


def bucket_of_due_date(due: date, today: date) -> str:
    """The aging bucket of an invoice due on ``due``, seen on ``today``."""
    return aging_bucket(days_past_due(due, today))


def bucket_due_date_floors(today: date) -> list[tuple[str, date | None]]:
    """Each bucket with the earliest due date that falls into it (None: no floor).

    Lets a query bucket invoices with plain date comparisons (``due_date >= floor``),
    which works the same on every database and can use an index.
    """
    floors: list[tuple[str, date | None]] = [
        (bucket, today - timedelta(days=limit))
        for bucket, limit in zip(BUCKETS, _BUCKET_LIMITS, strict=False)
    ]
    floors.append((BUCKETS[-1], None))
    return floors
