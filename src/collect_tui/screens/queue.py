"""The queue screen: the signed-in agent's accounts, best first."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from collect_tui.domain.money import format_money
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.queue import QueueKey, QueueRow, queue_page, queue_summary
from collect_tui.widgets.queue_table import QueueTable

PAGE_SIZE = 100
PREFETCH_MARGIN = 20  # rows before the end at which the next page is fetched


class QueueScreen(Screen[None]):
    """A window onto the agent's queue, fed page by page from a thread worker."""

    BINDINGS = [
        Binding("r", "refresh_queue", "Refresh", id="queue.refresh"),
        Binding("question_mark", "help", "Help", key_display="?", id="queue.help"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(self, db: Database, agent: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.agent = agent
        self._last_key: QueueKey | None = None
        self._exhausted = False
        self._loading = False

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="queue-title")
        yield Static("Loading queue...", id="queue-summary")
        yield QueueTable(id="queue-table")
        yield Footer()

    def _title(self) -> str:
        return f"collect-tui  {self.agent.display_name} ({self.agent.role})  queue"

    def on_mount(self) -> None:
        self.query_one(QueueTable).focus()
        self.action_refresh_queue()

    def action_refresh_queue(self) -> None:
        """Reload the queue from the top."""
        table = self.query_one(QueueTable)
        table.clear()
        self._last_key = None
        self._exhausted = False
        self._load_page(first=True)

    def action_help(self) -> None:
        self.notify(
            "Arrows/PgUp/PgDn move  r refresh  q quit. Accounts are ordered by priority.",
            title="Queue help",
            timeout=8,
        )

    @work(thread=True, exclusive=True, group="queue-page")
    def _load_page(self, first: bool = False) -> None:
        self._loading = True
        try:
            rows = queue_page(self.db, self.agent, after=self._last_key, limit=PAGE_SIZE)
            summary = queue_summary(self.db, self.agent) if first else None
        except Exception as exc:  # shown, never a crash
            self.app.call_from_thread(self.notify, str(exc), title="Queue", severity="error")
            self._loading = False
            return
        self.app.call_from_thread(self._show_page, rows, summary)

    def _show_page(self, rows: list[QueueRow], summary: object | None) -> None:
        table = self.query_one(QueueTable)
        table.append_rows(rows)
        if rows:
            self._last_key = rows[-1].key
        self._exhausted = len(rows) < PAGE_SIZE
        self._loading = False
        if summary is not None:
            accounts = getattr(summary, "accounts", 0)
            balance = getattr(summary, "balance", {})
            money = "  ".join(format_money(v, c) for c, v in sorted(balance.items())) or "-"
            text = f"{accounts:,} accounts  {money}"
            if not accounts:
                text = "No accounts assigned to you yet. Ask a supervisor to assign some."
            self.query_one("#queue-summary", Static).update(text)

    def on_data_table_row_highlighted(self, event: QueueTable.RowHighlighted) -> None:
        table = self.query_one(QueueTable)
        near_end = event.cursor_row >= table.row_count - PREFETCH_MARGIN
        if near_end and not self._exhausted and not self._loading:
            self._load_page()
