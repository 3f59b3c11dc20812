"""The queue table: a window of rows fed page by page from the queue service."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from collect_tui import clock
from collect_tui.domain.aging import bucket_of_due_date, days_past_due
from collect_tui.domain.money import format_money
from collect_tui.services.queue import QueueRow, local_time

# Widths fit 80 columns with the scrollbar; cells carry their own one-space gaps (the
# table's cell padding is 0) so that the reason column gets the room that padding would take.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", " Debtor", 18),
    ("local", " Local", 6),
    ("balance", "Balance", 14),
    ("dpd", "  DPD", 5),
    ("bucket", " Age", 7),
    ("last", " Last", 6),
    ("why", " Why / next", 22),
)


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
    local_now = local_time(row.time_zone, now)
    today = local_now.date()
    if row.oldest_due_date is not None:
        dpd = str(days_past_due(row.oldest_due_date, today))
        bucket = bucket_of_due_date(row.oldest_due_date, today)
    else:
        dpd, bucket = "-", "-"
    amount = format_money(row.balance)
    return (
        (">" if row.pinned else " ") + row.name,
        " " + local_now.strftime("%H:%M"),
        f"{row.currency} {amount}" if len(amount) <= 9 else f"{row.currency}{amount}",
        f"{dpd:>5}",
        " " + bucket,
        " " + _ago(row.last_contact_at, now),
        " " + row.top_reason,
    )


class QueueTable(DataTable[Text]):
    """Rows of the agent's queue; dim rows may not be contacted now, ``>`` marks due callbacks."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.cell_padding = 0
        for key, label, width in COLUMNS:
            header = Text(label, justify="right" if key == "balance" else "left")
            self.add_column(header, width=width, key=key)

    def append_rows(self, rows: list[QueueRow], now: datetime | None = None) -> None:
        """Add rows below those already shown."""
        now = now or clock.now()
        for row in rows:
            style = "dim" if row.blocked else ("bold" if row.pinned else "")
            cells = [Text(cell, style=style, no_wrap=True) for cell in format_row(row, now)]
            cells[2].justify = "right"
            self.add_row(*cells, key=str(row.debtor_id))
