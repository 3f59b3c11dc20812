"""The supervisor console: every agent's workload, the pool and the totals, with moves,
automatic rebalancing, settlement approvals and KPIs one key away."""

from __future__ import annotations

from decimal import Decimal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from collect_tui import clock
from collect_tui.domain.money import format_money
from collect_tui.screens.help import HelpScreen
from collect_tui.screens.supervisor_kpis import KpiScreen
from collect_tui.screens.supervisor_queue import AgentQueueScreen
from collect_tui.screens.supervisor_reassign import ReassignRequest, ReassignScreen
from collect_tui.screens.supervisor_rebalance import (
    RebalancePreviewScreen,
    RebalanceRequest,
    RebalanceSetupScreen,
)
from collect_tui.screens.supervisor_settlements import SettlementsScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.supervisor import (
    BASE_CURRENCY,
    AgentWorkload,
    NotSupervisor,
    SupervisorError,
    pending_settlements,
    preview_rebalance,
    reassign,
    workloads,
)
from collect_tui.widgets.supervisor_workload import LEGEND, SORT_KEYS, WorkloadTable, sort_rows


def refusal(agent: AgentInfo) -> str:
    """What an agent who is not a supervisor is told."""
    return (
        f"Only supervisors can open the supervisor console; {agent.name} signed in as {agent.role}."
    )


class SupervisorScreen(Screen[None]):
    """Workloads per agent; the data loads in thread workers."""

    DEFAULT_CSS = """
    #sup-title {
        height: 1; background: $primary; color: $text; text-style: bold; padding: 0 1;
    }
    #sup-summary { height: 1; padding: 0 1; color: $text-muted; }
    #sup-table { height: 1fr; }
    #sup-legend { height: auto; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("s", "sort", "Sort", id="supervisor.sort"),
        Binding("m", "move", "Move", id="supervisor.move"),
        Binding("b", "rebalance", "Rebalance", id="supervisor.rebalance"),
        Binding("a", "approvals", "Approvals", id="supervisor.approvals"),
        Binding("k", "kpis", "KPIs", id="supervisor.kpis"),
        Binding("w", "my_queue", "Queue", id="supervisor.my_queue"),
        Binding("r", "refresh", "Refresh", show=False, id="supervisor.refresh"),
        Binding("question_mark", "help", "Help", key_display="?", id="supervisor.help"),
        Binding("escape", "back", "Back", show=False, id="supervisor.back"),
        Binding("q", "app.quit", "Quit", show=False, id="app.quit"),
    ]

    def __init__(self, db: Database, caller: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.caller = caller
        self.rows: list[AgentWorkload] = []
        self.sort_index = 0
        self.waiting = 0  # settlements awaiting approval
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Static(
            f"collect-tui  {self.caller.display_name} ({self.caller.role})  supervisor console",
            id="sup-title",
        )
        yield Static("Loading workloads...", id="sup-summary")
        yield WorkloadTable(id="sup-table")
        yield Static(LEGEND, id="sup-legend")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(WorkloadTable).focus()
        self.action_refresh()

    # Loading ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        """Reload the workloads (and the count of settlements awaiting approval)."""
        self._generation += 1
        self._load(self._generation)

    @work(thread=True, exclusive=True, group="supervisor-load")
    def _load(self, generation: int) -> None:
        try:
            rows = workloads(self.db, self.caller, now=clock.now())
            waiting = len(pending_settlements(self.db, self.caller, now=clock.now()))
        except NotSupervisor as exc:
            self.app.call_from_thread(self._error, str(exc))
            return
        except Exception as exc:
            self.app.call_from_thread(self._error, f"Could not load workloads: {exc}")
            return
        self.app.call_from_thread(self._show, generation, rows, waiting)

    def _error(self, message: str) -> None:
        self.query_one("#sup-summary", Static).update(message)
        self.notify(message, title="Supervisor", severity="error", timeout=10)

    def _show(self, generation: int, rows: list[AgentWorkload], waiting: int) -> None:
        if generation != self._generation:
            return
        self.rows = rows
        self.waiting = waiting
        self._render_rows()

    def _render_rows(self) -> None:
        table = self.query_one(WorkloadTable)
        keep = None
        if table.row_count and table.cursor_row < table.row_count:
            keep = str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        table.show(sort_rows(self.rows, SORT_KEYS[self.sort_index]), keep)
        agents = [r for r in self.rows if r.kind == "agent"]
        total = next((r for r in self.rows if r.kind == "total"), None)
        parts = [f"{len(agents)} agents"]
        if total is not None:
            parts.append(f"{total.accounts:,} accounts")
            parts.append(f"{BASE_CURRENCY} {format_money(total.balance_base)}")
        if self.waiting:
            parts.append(f"{self.waiting} to approve")
        parts.append(f"by {SORT_KEYS[self.sort_index].label}")
        self.query_one("#sup-summary", Static).update("  ".join(parts))

    # Helpers ---------------------------------------------------------------------------

    def selected_row(self) -> AgentWorkload | None:
        """The workload row under the cursor."""
        table = self.query_one(WorkloadTable)
        if not self.rows or table.cursor_row >= table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        for row in self.rows:
            if (str(row.agent_id) if row.kind == "agent" else row.kind) == key:
                return row
        return None

    def targets(self) -> list[tuple[str, int | None]]:
        """Who can receive accounts: active agents, then the pool."""
        agents = [
            (f"{r.name} ({r.accounts:,})", r.agent_id)
            for r in sorted(self.rows, key=lambda r: r.name)
            if r.kind == "agent" and r.active and r.role == "agent"
        ]
        return [*agents, ("Unassigned pool", None)]

    def _not_ready(self) -> bool:
        if not self.caller.is_supervisor:
            self.notify(refusal(self.caller), title="Supervisor", severity="error", timeout=10)
            return True
        if not self.rows:
            self.notify("The workloads are still loading.", severity="warning")
            return True
        return False

    # Actions ---------------------------------------------------------------------------

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORT_KEYS)
        if self.rows:
            self._render_rows()
        self.notify(f"Sorted by {SORT_KEYS[self.sort_index].label}.", timeout=2)

    def on_data_table_row_selected(self) -> None:
        row = self.selected_row()
        if row is None or self._not_ready():
            return
        if row.kind != "agent" or row.agent_id is None:
            self.notify("Choose an agent's row to see their queue.", severity="warning")
            return
        agent = AgentInfo(row.agent_id, row.name, row.display_name, row.role, Decimal(0))
        self.app.push_screen(
            AgentQueueScreen(self.db, self.caller, agent, self.targets(), self.action_refresh)
        )

    def action_move(self) -> None:
        row = self.selected_row()
        if row is None or self._not_ready():
            return
        if row.kind == "agent":
            source, heading = {"from_agent_id": row.agent_id}, f"Move accounts from {row.name}"
        elif row.kind == "pool":
            source, heading = {"from_pool": True}, "Move accounts from the unassigned pool"
        else:
            source, heading = {}, "Move accounts from anyone"
        holder = row.agent_id if row.kind == "agent" else None
        targets = [
            (label, a)
            for label, a in self.targets()
            if (a != holder if row.kind != "total" else True)
        ]

        def chosen(request: ReassignRequest | None) -> None:
            if request is not None:
                self._reassign(request)

        self.app.push_screen(ReassignScreen(heading, targets, **source), chosen)  # type: ignore[arg-type]

    @work(thread=True, group="supervisor-move")
    def _reassign(self, request: ReassignRequest) -> None:
        try:
            moved = reassign(
                self.db, self.caller, match=request.match, debtor_ids=request.debtor_ids,
                to_agent_id=request.to_agent_id, reason=request.reason, now=clock.now(),
                today=clock.now().date(),
            )  # fmt: skip
        except (NotSupervisor, SupervisorError) as exc:
            self.app.call_from_thread(self._error, str(exc))
            return
        except Exception as exc:
            self.app.call_from_thread(self._error, f"Nothing moved: {exc}")
            return
        word = "No account matched" if moved == 0 else f"{moved:,} account(s) moved"
        self.app.call_from_thread(self.notify, f"{word} to {request.to_label}.", title="Move")
        self.app.call_from_thread(self.action_refresh)

    def action_rebalance(self) -> None:
        if self._not_ready():
            return
        agents = [
            (r.agent_id, r.name)
            for r in sorted(self.rows, key=lambda r: r.name)
            if r.kind == "agent" and r.role == "agent" and r.agent_id is not None and r.active
        ]

        def chosen(request: RebalanceRequest | None) -> None:
            if request is not None:
                self.notify("Planning the rebalance...", timeout=3)
                self._preview(request)

        self.app.push_screen(RebalanceSetupScreen(agents), chosen)

    @work(thread=True, exclusive=True, group="supervisor-preview")
    def _preview(self, request: RebalanceRequest) -> None:
        try:
            plan = preview_rebalance(
                self.db, self.caller, measure=request.measure, include_pool=request.include_pool,
                absent_agent_ids=request.absent_agent_ids, today=clock.now().date(),
            )  # fmt: skip
        except (NotSupervisor, SupervisorError) as exc:
            self.app.call_from_thread(self._error, str(exc))
            return
        except Exception as exc:
            self.app.call_from_thread(self._error, f"Could not plan the rebalance: {exc}")
            return

        def applied(moved: int | None) -> None:
            if moved:
                self.action_refresh()

        self.app.call_from_thread(
            self.app.push_screen, RebalancePreviewScreen(self.db, self.caller, plan), applied
        )

    def action_approvals(self) -> None:
        if not self.caller.is_supervisor:
            self.notify(refusal(self.caller), title="Supervisor", severity="error", timeout=10)
            return
        self.app.push_screen(
            SettlementsScreen(self.db, self.caller), lambda _: self.action_refresh()
        )

    def action_kpis(self) -> None:
        if not self.caller.is_supervisor:
            self.notify(refusal(self.caller), title="Supervisor", severity="error", timeout=10)
            return
        self.app.push_screen(KpiScreen(self.db, self.caller))

    def action_my_queue(self) -> None:
        from collect_tui.screens.queue import QueueScreen

        self.app.push_screen(QueueScreen(self.db, self.caller))
        self.notify("Your own queue. F2 returns to the supervisor console.", timeout=5)

    def action_back(self) -> None:
        # The console is the supervisor's home screen; below it is only the app's blank one.
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_help(self) -> None:
        keys = [
            ("up/down", "choose an agent, the pool or the totals"),
            ("enter", "the agent's queue, read-only (select and move accounts there)"),
            ("s", "sort by the next column (name, accounts, balance, ...)"),
            ("m", "move accounts matching a filter from the selected row"),
            ("b", "rebalance automatically: preview first, apply on confirmation"),
            ("a", "settlements awaiting approval"),
            ("k", "KPIs with charts"),
            ("w", "your own queue (F2 comes back here)"),
            ("r", "refresh"),
            ("q", "quit"),
        ]
        notes = LEGEND + ". Yellow rows: over capacity (!) or inactive (off)."
        self.app.push_screen(HelpScreen("Supervisor console", keys, notes))
