"""The queue table: a window of rows fed page by page from the queue service."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._types import SegmentLines
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from collect_tui import clock
from collect_tui.domain.aging import bucket_of_due_date, days_past_due
from collect_tui.domain.money import format_money
from collect_tui.services.queue import QueueRow, local_time
from collect_tui.widgets.elapsed import ago

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
    contact = row.last_contact_at
    return (
        (">" if row.pinned else " ") + row.name,
        " " + local_now.strftime("%H:%M"),
        f"{row.currency} {amount}" if len(amount) <= 9 else f"{row.currency}{amount}",
        f"{dpd:>5}",
        " " + bucket,
        " " + ("never" if contact is None else ago(contact, now, compact=True)),
        " " + row.top_reason,
    )


class QueueTable(DataTable[Text]):
    """Rows of the agent's queue; dim rows may not be contacted now, ``>`` marks due callbacks.

    Every body cell is one line of :class:`~rich.text.Text` in a fixed-width column, so the
    table renders and measures them directly instead of through Rich's general layout
    (``Padding`` inside ``Styled`` inside ``render_lines``, twice per cell): the same
    segments for a fraction of the cost, which is most of a filter change's repaint.
    """

    def __init__(self, *, opens_accounts: bool = False, id: str | None = None) -> None:
        """``opens_accounts``: enter opens the row's account (the agent's own queue)."""
        super().__init__(id=id)
        self.opens_accounts = opens_accounts

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.cell_padding = 0
        for key, label, width in COLUMNS:
            header = Text(label, justify="right" if key == "balance" else "left")
            self.add_column(header, width=width, key=key)

    def action_select_cursor(self) -> None:
        """Enter: select the row. Where that opens the account, keys typed right after
        belong to it, so the app holds them until the account's screen releases them."""
        hold_keys = getattr(self.app, "hold_keys", None)
        if self.opens_accounts and hold_keys is not None and self.row_count:
            hold_keys()
        super().action_select_cursor()

    def append_rows(self, rows: list[QueueRow], now: datetime | None = None) -> None:
        """Add rows below those already shown."""
        now = now or clock.now()
        for row in rows:
            style = "dim" if row.blocked else ("bold" if row.pinned else "")
            cells = [Text(cell, style=style, no_wrap=True) for cell in format_row(row, now)]
            cells[2].justify = "right"
            self.add_row(*cells, key=str(row.debtor_id))

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        """One body cell as one line of segments (the header goes the general way)."""
        if row_index < 0 or column_index < 0 or self.cell_padding or self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cache_key = (
            row_key, column_key, base_style, cursor, hover, self._show_hover_cursor,
            self._update_count, self._pseudo_class_state,
        )  # fmt: skip
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        cell = self._get_row_renderables(row_index).cells[column_index]
        if not isinstance(cell, Text) or self.rows[row_key].height != 1 or "\n" in cell.plain:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, row_index < self.fixed_rows, hover, cursor, self.show_cursor,
            self._show_hover_cursor, self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )  # fmt: skip
        console = self.app.console
        text = cell
        if cell.cell_len > width:
            text = cell.copy()
            text.truncate(width)
        elif cell.justify == "right" and cell.cell_len < width:
            text = cell.copy()
            text.pad_left(width - cell.cell_len)
        if text.spans:
            segments = list(text.render(console))
        else:  # ``Text.render`` leaves the base style to its caller when there are no spans
            segments = [Segment(text.plain, console.get_style(text.style))]
        room = width - text.cell_len
        if room > 0:
            segments.append(Segment(" " * room, Style.null()))
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index})
        line = list(
            Segment.apply_style(
                segments,
                style=console.get_style(pre_style + component_style),
                post_style=console.get_style(post_style),
            )
        )
        self._cell_render_cache[cache_key] = [line]
        return [line]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Widen columns to fit new rows; one-line Text cells are measured by their length."""
        general: list[RowKey] = []
        columns = self.ordered_columns
        for row_key in new_rows:
            index = self._row_locations.get(row_key)
            row = self.rows.get(row_key)
            if index is None or row is None:
                continue
            cells = self._get_row_renderables(index).cells
            if (
                row.label is not None
                or row.auto_height
                or not all(isinstance(cell, Text) and "\n" not in cell.plain for cell in cells)
            ):
                general.append(row_key)
                continue
            for column, cell in zip(columns, cells, strict=False):
                column.content_width = max(column.content_width, cell.cell_len)  # type: ignore[union-attr]
        super()._update_dimensions(general)
