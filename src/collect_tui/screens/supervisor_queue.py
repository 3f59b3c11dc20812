"""An agent's queue as the supervisor sees it: read-only (no account is worked from here),
with a selection of accounts to move to another agent or the pool."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from collect_tui import clock
from collect_tui.screens.help import HelpScreen
from collect_tui.screens.supervisor_reassign import ReassignRequest, ReassignScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.queue import QueueRow, queue_page, queue_summary
from collect_tui.services.supervisor import NotSupervisor, SupervisorError, reassign
from collect_tui.widgets.queue_table import QueueTable

PAGE_SIZE = 100
PREFETCH_MARGIN = 20


class AgentQueueScreen(Screen[None]):
    """``agent``'s accounts, best first, paged; space selects, m moves."""

    DEFAULT_CSS = """
    #agent-queue-title {
        height: 1; background: $primary; color: $text; text-style: bold; padding: 0 1;
    }
    #agent-queue-summary { height: 1; padding: 0 1; color: $text-muted; }
    #agent-queue-table { height: 1fr; }
    """

    BINDINGS = [
        Binding("space", "toggle", "Select", id="agent_queue.select"),
        Binding("m", "move", "Move", id="agent_queue.move"),
        Binding("c", "clear_selection", "Clear sel.", id="agent_queue.clear"),
        Binding("r", "reload", "Refresh", id="agent_queue.refresh"),
        Binding("question_mark", "help", "Help", key_display="?", id="agent_queue.help"),
        Binding("escape", "back", "Back", id="agent_queue.back"),
    ]

    def __init__(
        self,
        db: Database,
        caller: AgentInfo,
        agent: AgentInfo,
        targets: list[tuple[str, int | None]],
        on_moved: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.caller = caller
        self.agent = agent
        self.targets = targets
        self.on_moved = on_moved
        self.rows: list[QueueRow] = []
        self.selected: set[int] = set()
        self._exhausted = False
        self._loading = False
        self._generation = 0
        self._summary = ""

    def compose(self) -> ComposeResult:
        yield Static(
            f"{self.agent.display_name}'s queue (read-only)  space selects, m moves",
            id="agent-queue-title",
        )
        yield Static("Loading...", id="agent-queue-summary")
        yield QueueTable(id="agent-queue-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(QueueTable).focus()
        self.action_reload()

    def action_reload(self) -> None:
        self._generation += 1
        self._loading = True
        self._load(self._generation, max(PAGE_SIZE, len(self.rows)))

    @work(thread=True, exclusive=True, group="agent-queue-load")
    def _load(self, generation: int, limit: int) -> None:
        now = clock.now()
        try:
            if not self.caller.is_supervisor:
                raise NotSupervisor(
                    f"Only supervisors can see another agent's queue; {self.caller.name} "
                    f"signed in as {self.caller.role}."
                )
            rows = queue_page(self.db, self.agent, limit=limit, now=now)
            summary = queue_summary(self.db, self.agent, now=now)
        except Exception as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        text = (
            f"{summary.accounts:,} accounts  {summary.promises_due_today} promises due today  "
            f"{summary.callbacks_due} callbacks due"
        )
        self.app.call_from_thread(self._show, generation, rows, len(rows) >= limit, text)

    def _failed(self, message: str) -> None:
        self._loading = False
        self.query_one("#agent-queue-summary", Static).update(message)
        self.notify(message, title="Queue", severity="error", timeout=10)

    def _show(self, generation: int, rows: list[QueueRow], more: bool, summary: str) -> None:
        if generation != self._generation:
            return
        table = self.query_one(QueueTable)
        cursor = table.cursor_row
        table.clear()
        self.rows = rows
        present = {r.debtor_id for r in rows}
        self.selected &= present
        table.append_rows(rows)
        for debtor_id in self.selected:
            self._mark(debtor_id)
        self._exhausted = not more
        self._loading = False
        self._summary = summary
        self._show_summary()
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)

    def _show_summary(self) -> None:
        text = self._summary
        if self.selected:
            text += f"  {len(self.selected)} selected"
        self.query_one("#agent-queue-summary", Static).update(text)

    @on(QueueTable.RowHighlighted)
    def _maybe_more(self, event: QueueTable.RowHighlighted) -> None:
        table = self.query_one(QueueTable)
        if (
            event.cursor_row >= table.row_count - PREFETCH_MARGIN
            and not self._exhausted
            and not self._loading
            and self.rows
        ):
            self._loading = True
            self._more(self._generation, self.rows[-1])

    @work(thread=True, group="agent-queue-page")
    def _more(self, generation: int, last: QueueRow) -> None:
        try:
            rows = queue_page(self.db, self.agent, after=last.key, limit=PAGE_SIZE, now=clock.now())
        except Exception as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._append, generation, rows)

    def _append(self, generation: int, rows: list[QueueRow]) -> None:
        if generation != self._generation:
            return
        shown = {r.debtor_id for r in self.rows}
        fresh = [r for r in rows if r.debtor_id not in shown]
        self.rows.extend(fresh)
        self.query_one(QueueTable).append_rows(fresh)
        self._exhausted = len(rows) < PAGE_SIZE
        self._loading = False

    def _current(self) -> QueueRow | None:
        table = self.query_one(QueueTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def _mark(self, debtor_id: int) -> None:
        row = next((r for r in self.rows if r.debtor_id == debtor_id), None)
        if row is None:
            return
        chosen = debtor_id in self.selected
        name = ("* " if chosen else "") + row.name
        self.query_one(QueueTable).update_cell(
            str(debtor_id), "name", Text(name, style="bold reverse" if chosen else "")
        )

    def action_toggle(self) -> None:
        row = self._current()
        if row is None:
            return
        self.selected.symmetric_difference_update({row.debtor_id})
        self._mark(row.debtor_id)
        self._show_summary()
        table = self.query_one(QueueTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)

    def action_clear_selection(self) -> None:
        chosen, self.selected = self.selected, set()
        for debtor_id in chosen:
            self._mark(debtor_id)
        self._show_summary()

    def on_data_table_row_selected(self) -> None:
        self.notify(
            "Read-only: accounts are worked from the agent's own queue. Space selects, m moves.",
            title="Queue",
        )

    def action_move(self) -> None:
        ids = sorted(self.selected)
        if not ids:
            row = self._current()
            if row is None:
                return
            ids = [row.debtor_id]
        targets = [(label, a) for label, a in self.targets if a != self.agent.id]
        what = f"{len(ids)} account(s)" if len(ids) > 1 else "1 account"
        heading = f"Move {what} from {self.agent.display_name}"

        def chosen(request: ReassignRequest | None) -> None:
            if request is not None:
                self._reassign(request)

        self.app.push_screen(ReassignScreen(heading, targets, debtor_ids=tuple(ids)), chosen)

    @work(thread=True, group="agent-queue-move")
    def _reassign(self, request: ReassignRequest) -> None:
        try:
            moved = reassign(
                self.db, self.caller, debtor_ids=request.debtor_ids,
                to_agent_id=request.to_agent_id, reason=request.reason, now=clock.now(),
            )  # fmt: skip
        except (NotSupervisor, SupervisorError) as exc:
            self.app.call_from_thread(
                self.notify, str(exc), title="Move", severity="error", timeout=10
            )
            return
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, f"Nothing moved: {exc}", title="Move", severity="error", timeout=10
            )
            return
        self.app.call_from_thread(self._moved, moved, request.to_label)

    def _moved(self, moved: int, to_label: str) -> None:
        self.notify(f"{moved:,} account(s) moved to {to_label}.", title="Move")
        self.selected.clear()
        if self.on_moved is not None:
            self.on_moved()
        self.action_reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        keys = [
            ("up/down pgup/pgdn", "move; more rows load as you scroll"),
            ("space", "select or unselect the account (and go down)"),
            ("m", "move the selected accounts (or the one under the cursor)"),
            ("c", "clear the selection"),
            ("r", "refresh"),
            ("esc", "back to the console"),
        ]
        notes = "Read-only: the agent works these accounts from their own queue."
        self.app.push_screen(HelpScreen(f"{self.agent.display_name}'s queue", keys, notes))
