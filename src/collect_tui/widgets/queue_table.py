"""The queue table: a window of rows fed page by page from the queue service."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from textual.widgets import DataTable

from collect_tui.domain.aging import bucket_of_due_date, days_past_due
from collect_tui.domain.money import format_money
from collect_tui.services.queue import QueueRow

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "Debtor", 18),
    ("local", "Local", 5),
    ("balance", "Balance", 13),
    ("dpd", "DPD", 4),
    ("bucket", "Bucket", 6),
    ("last", "Last", 5),
    ("next", "Next / why", 13),
)


def current_time() -> datetime:
    """Now, in UTC (one place for tests to pin the clock)."""
    return datetime.now(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if seconds < 3600:
        return f"{max(0, int(seconds // 60))}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def format_row(row: QueueRow, now: datetime) -> tuple[str, ...]:
    """The cells of one queue row, seen at ``now``, in the debtor's own zone."""
    zone = _zone(row.time_zone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    if row.oldest_due_date is not None:
        dpd = days_past_due(row.oldest_due_date, today)
        bucket = bucket_of_due_date(row.oldest_due_date, today)
    else:
        dpd, bucket = 0, "-"
    if row.next_action and row.next_action_at is not None:
        when = row.next_action_at.astimezone(zone)
        label = when.strftime("%H:%M") if when.date() == today else when.strftime("%d %b")
        upcoming = f"{row.next_action} {label}"
    else:
        upcoming = row.reason or ""
    amount = format_money(row.balance)
    return (
        row.name,
        local_now.strftime("%H:%M"),
        f"{row.currency} {amount}" if len(amount) <= 9 else f"{row.currency}{amount}",
        str(dpd),
        bucket,
        _ago(row.last_contact_at, now),
        upcoming,
    )


class QueueTable(DataTable[str]):
    """Rows of the agent's queue; the screen appends pages as the cursor nears the end."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def append_rows(self, rows: list[QueueRow], now: datetime | None = None) -> None:
        """Add a page of rows below those already shown."""
        now = now or current_time()
        for row in rows:
            self.add_row(*format_row(row, now), key=str(row.debtor_id))
