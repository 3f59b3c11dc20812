"""Automatic rebalance: choose the measure and who is away, preview the plan per agent,
and apply it only on confirmation (in a thread worker, with progress on screen)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Length
from textual.widgets import (
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    Select,
    SelectionList,
)

from collect_tui import clock
from collect_tui.domain.money import format_money
from collect_tui.domain.rebalance import Measure, RebalancePlan
from collect_tui.screens.help import HelpScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.supervisor import (
    BASE_CURRENCY,
    REASON_MAX,
    NotSupervisor,
    SupervisorError,
    apply_rebalance,
)
from collect_tui.widgets.supervisor_form import FieldError

MEASURES: tuple[tuple[str, Measure], ...] = (
    ("Account count", "count"),
    (f"Open balance ({BASE_CURRENCY})", "balance"),
    ("Expected workload", "workload"),
)


@dataclass(frozen=True)
class RebalanceRequest:
    """The rebalance the supervisor asked to preview."""

    measure: Measure
    include_pool: bool
    absent_agent_ids: tuple[int, ...]


class RebalanceSetupScreen(ModalScreen[RebalanceRequest | None]):
    """Pick the measure, whether the pool is handed out, and who is away today."""

    DEFAULT_CSS = """
    RebalanceSetupScreen { align: center middle; }
    #rebalance-setup {
        width: 64; height: auto; max-height: 22;
        border: round $primary; background: $surface; padding: 0 1;
    }
    #rebalance-setup .row { height: 1; }
    #rebalance-setup .row Label { width: 12; }
    #rebalance-setup .row Select { width: 1fr; }
    #rebalance-present { height: auto; max-height: 12; border: none; }
    #setup-heading { text-style: bold; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="rebalance.cancel"),
        Binding("ctrl+s,f10", "preview", "Preview", key_display="^s", id="rebalance.preview"),
        Binding("question_mark", "help", "Help", key_display="?", id="rebalance.help"),
    ]

    def __init__(self, agents: list[tuple[int, str]]) -> None:
        super().__init__()
        self.agents = agents

    def compose(self) -> ComposeResult:
        with Vertical(id="rebalance-setup"):
            yield Label("Rebalance workloads", id="setup-heading")
            with Horizontal(classes="row"):
                yield Label("Even out")
                yield Select(
                    MEASURES, value="count", allow_blank=False, compact=True, id="rebalance-measure"
                )
            yield Checkbox(
                "Hand out the unassigned pool too", False, compact=True, id="rebalance-pool"
            )
            yield Label("Present today (space unticks an absent agent):")
            yield SelectionList[int](
                *[(name, agent_id, True) for agent_id, name in self.agents],
                compact=True,
                id="rebalance-present",
            )
            yield Label("Accounts with a pending promise, plan or callback stay put.")
            yield Label("ctrl+s previews (nothing moves yet); esc cancels")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#rebalance-measure", Select).focus()

    def action_preview(self) -> None:
        select = self.query_one("#rebalance-measure", Select)
        if select.expanded:
            return
        present = set(self.query_one("#rebalance-present", SelectionList).selected)
        measure = select.value
        assert isinstance(measure, str)
        self.dismiss(
            RebalanceRequest(
                measure,  # type: ignore[arg-type]
                self.query_one("#rebalance-pool", Checkbox).value,
                tuple(a for a, _ in self.agents if a not in present),
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        keys = [
            ("tab", "next field"),
            ("enter", "open the measure list / pick a measure"),
            ("space", "tick or untick (the pool, an agent present today)"),
            ("ctrl+s", "preview the plan (nothing moves yet)"),
            ("esc", "cancel"),
        ]
        notes = (
            "Count evens out the number of accounts, balance the open balance in "
            f"{BASE_CURRENCY}, workload the expected effort (invoices and days past due). "
            "Absent agents keep only their pinned accounts; capacities are respected."
        )
        self.app.push_screen(HelpScreen("Rebalance", keys, notes))


def _figure(plan: RebalancePlan, value: float) -> str:
    if plan.measure == "count":
        return f"{value:,.0f}"
    if plan.measure == "balance":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


class RebalancePreviewScreen(ModalScreen[int | None]):
    """The plan per agent (before > after, moved in and out); ``a`` applies it, escape
    cancels. Dismisses with the number of accounts moved, or None."""

    DEFAULT_CSS = """
    RebalancePreviewScreen { align: center middle; }
    #preview-dialog {
        width: 78; height: auto; max-height: 22;
        border: round $primary; background: $surface; padding: 0 1;
    }
    #preview-heading { text-style: bold; }
    #preview-table { height: auto; max-height: 14; }
    #preview-reason-row { height: 1; }
    #preview-reason-row Label { width: 8; }
    #preview-reason { width: 1fr; }
    #preview-error { color: $error; height: auto; }
    #preview-progress-row { height: 1; display: none; }
    #preview-progress-row.busy { display: block; }
    #preview-progress-row Label { width: auto; padding-right: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="preview.cancel"),
        Binding("a", "apply", "Apply", id="preview.apply"),
        Binding("question_mark", "help", "Help", key_display="?", id="preview.help"),
    ]

    def __init__(self, db: Database, caller: AgentInfo, plan: RebalancePlan) -> None:
        super().__init__()
        self.db = db
        self.caller = caller
        self.plan = plan
        self.applying = False

    def compose(self) -> ComposeResult:
        plan = self.plan
        unit = {"count": "accounts", "balance": f"balance {BASE_CURRENCY}", "workload": "workload"}
        spread = f"{_figure(plan, plan.spread_before)} -> {_figure(plan, plan.spread_after)}"
        with Vertical(id="preview-dialog"):
            yield Label(
                f"Rebalance by {unit[plan.measure]}: {plan.moved:,} account(s) move; "
                f"spread {spread}",
                id="preview-heading",
            )
            if plan.unplaced:
                yield Label(f"{plan.unplaced:,} account(s) found no agent with room; they stay.")
            yield DataTable(id="preview-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="preview-reason-row"):
                yield Label("Reason")
                yield Input(
                    f"rebalance by {plan.measure}",
                    validators=[Length(1, REASON_MAX, "Give a reason for the history")],
                    compact=True,
                    id="preview-reason",
                )
            yield FieldError(id="preview-error")
            with Horizontal(id="preview-progress-row"):
                yield Label("", id="preview-progress-label")
                yield ProgressBar(total=None, show_eta=False, id="preview-progress")
            yield Label(
                "Nothing has moved yet. a applies (or enter in Reason); esc cancels."
                if plan.moved
                else "Nothing to move: the workloads are already even. esc closes."
            )
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#preview-table", DataTable)
        third = "Workload" if self.plan.measure == "workload" else f"Bal {BASE_CURRENCY}"
        table.add_column("Agent", width=12, key="agent")
        table.add_column("Accounts", width=15, key="accounts")
        table.add_column(third, width=23, key="figure")
        table.add_column("In", width=6, key="in")
        table.add_column("Out", width=6, key="out")
        names = self.plan.names
        for change in [*self.plan.agents, *([self.plan.pool] if self.plan.pool else [])]:
            if change.agent_id is None:
                name = "(pool)"
            else:
                name = names.get(change.agent_id, f"#{change.agent_id}")
                if not change.present:
                    name = f"{name[:6]} (away)"
            accounts = f"{change.before.count:,} > {change.after.count:,}"
            if self.plan.measure == "workload":
                figure = f"{change.before.workload:,.1f} > {change.after.workload:,.1f}"
            else:
                before = format_money(change.before.balance).split(".")[0]
                after = format_money(change.after.balance).split(".")[0]
                figure = f"{before} > {after}"
            cells = [
                Text(name[:12]),
                Text(accounts, justify="right"),
                Text(figure, justify="right"),
                Text(f"{change.moved_in:,}", justify="right"),
                Text(f"{change.moved_out:,}", justify="right"),
            ]
            table.add_row(*cells)
        table.focus()

    @on(Input.Changed, "#preview-reason")
    def _reason_changed(self, event: Input.Changed) -> None:
        result = event.validation_result
        text = "" if result is None or result.is_valid else "; ".join(result.failure_descriptions)
        self.query_one("#preview-error", FieldError).update(text)

    @on(Input.Submitted, "#preview-reason")
    def _reason_submitted(self) -> None:
        self.action_apply()

    def action_apply(self) -> None:
        if self.applying:
            return
        if not self.plan.moved:
            self.dismiss(0)
            return
        reason_input = self.query_one("#preview-reason", Input)
        result = reason_input.validate(reason_input.value)
        if result is not None and not result.is_valid:
            self.query_one("#preview-error", FieldError).update(
                "; ".join(result.failure_descriptions)
            )
            reason_input.focus()
            return
        self.applying = True
        reason_input.disabled = True
        self.query_one("#preview-progress-label", Label).update(
            f"Applying {self.plan.moved:,} moves in one transaction..."
        )
        self.query_one("#preview-progress-row").add_class("busy")
        self._apply(reason_input.value.strip())

    @work(thread=True, exclusive=True, group="rebalance-apply")
    def _apply(self, reason: str) -> None:
        started = time.perf_counter()
        try:
            moved = apply_rebalance(self.db, self.caller, self.plan, reason=reason, now=clock.now())
        except (NotSupervisor, SupervisorError) as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        except Exception as exc:  # a database failure: shown, never a crash
            self.app.call_from_thread(self._failed, f"The rebalance failed: {exc}")
            return
        seconds = time.perf_counter() - started
        self.app.call_from_thread(self._done, moved, seconds)

    def _failed(self, message: str) -> None:
        self.applying = False
        self.query_one("#preview-progress-row").remove_class("busy")
        self.query_one("#preview-reason", Input).disabled = False
        self.query_one("#preview-error", FieldError).update(message)
        self.notify(message, title="Rebalance", severity="error", timeout=10)

    def _done(self, moved: int, seconds: float) -> None:
        self.notify(f"{moved:,} account(s) moved in {seconds:.1f}s.", title="Rebalance applied")
        self.dismiss(moved)

    def action_help(self) -> None:
        keys = [
            ("up/down", "scroll the agents"),
            ("a", "apply the plan (one transaction, with history and audit)"),
            ("enter", "in Reason: apply"),
            ("esc", "cancel: nothing moves"),
        ]
        notes = (
            "Accounts: before > after. In/Out: accounts each agent receives and gives. "
            "If accounts changed agent since this preview, applying is refused: preview again."
        )
        self.app.push_screen(HelpScreen("Rebalance preview", keys, notes))

    def action_cancel(self) -> None:
        if self.applying:
            self.notify("The rebalance is being applied; wait for it to finish.")
            return
        self.dismiss(None)
