"""Settlement approvals: offers above an agent's authority, with the account context;
approve or reject each with a note."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.validation import Function, Length
from textual.widgets import DataTable, Footer, Input, Label, Static

from collect_tui import clock
from collect_tui.domain.money import format_money
from collect_tui.screens.help import HelpScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.supervisor import (
    NotSupervisor,
    SettlementView,
    StaleSettlementError,
    SupervisorError,
    decide_settlement,
    pending_settlements,
)
from collect_tui.widgets.supervisor_form import FieldError

NOTE_MAX = 500


def describe(view: SettlementView) -> str:
    """The account context of one settlement, in words."""
    cur = view.currency
    limit = "-" if view.agent_limit is None else format_money(view.agent_limit, cur)
    return (
        f"{view.debtor_name} (account {view.debtor_id}): balance now "
        f"{format_money(view.balance, cur)}. Offer {format_money(view.amount, cur)}, "
        f"{format_money(view.discount, cur)} off ({view.discount_pct}% of "
        f"{format_money(view.balance_at_offer, cur)} at the offer), pay by "
        f"{view.due_date.isoformat()}. Offered by {view.agent_name or '-'} "
        f"(limit {limit}) {view.age_days} day(s) ago."
    )


class DecisionScreen(ModalScreen[str | None]):
    """The note of an approval (optional) or a rejection (required)."""

    DEFAULT_CSS = """
    DecisionScreen { align: center middle; }
    #decision-dialog {
        width: 70; height: auto; border: round $primary; background: $surface; padding: 0 1;
    }
    #decision-heading { text-style: bold; }
    #decision-error { color: $error; height: auto; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="decision.cancel")]

    def __init__(self, view: SettlementView, approve: bool) -> None:
        super().__init__()
        self.view = view
        self.approve = approve

    def compose(self) -> ComposeResult:
        verb = "Approve" if self.approve else "Reject"
        if self.approve:
            rule = Length(0, NOTE_MAX, f"At most {NOTE_MAX} characters")
        else:
            rule = Function(
                lambda v: 0 < len(v.strip()) <= NOTE_MAX,
                "Say why it is rejected (the agent will see it)",
            )
        with Vertical(id="decision-dialog"):
            yield Label(f"{verb} the settlement for {self.view.debtor_name}", id="decision-heading")
            yield Static(describe(self.view))
            yield Label("Note" + (" (optional)" if self.approve else " (required)"))
            yield Input(validators=[rule], compact=True, id="decision-note")
            yield FieldError(id="decision-error")
            yield Label(f"enter {verb.lower()}s; esc cancels")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#decision-note", Input).focus()

    @on(Input.Changed, "#decision-note")
    def _changed(self, event: Input.Changed) -> None:
        result = event.validation_result
        text = "" if result is None or result.is_valid else "; ".join(result.failure_descriptions)
        self.query_one("#decision-error", FieldError).update(text)

    @on(Input.Submitted, "#decision-note")
    def _submitted(self, event: Input.Submitted) -> None:
        result = event.input.validate(event.value)
        if result is not None and not result.is_valid:
            self.query_one("#decision-error", FieldError).update(
                "; ".join(result.failure_descriptions)
            )
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class SettlementsScreen(Screen[None]):
    """Settlements awaiting approval, oldest first."""

    DEFAULT_CSS = """
    #settlements-title {
        height: 1; background: $primary; color: $text; text-style: bold; padding: 0 1;
    }
    #settlements-table { height: 1fr; }
    #settlements-detail {
        height: 4; padding: 0 1; border-top: solid $primary; color: $text;
    }
    """

    BINDINGS = [
        Binding("a", "approve", "Approve", id="settlements.approve"),
        Binding("x", "reject", "Reject", id="settlements.reject"),
        Binding("r", "reload", "Refresh", id="settlements.refresh"),
        Binding("question_mark", "help", "Help", key_display="?", id="settlements.help"),
        Binding("escape", "back", "Back", id="settlements.back"),
    ]

    def __init__(self, db: Database, caller: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.caller = caller
        self.views: list[SettlementView] = []

    def compose(self) -> ComposeResult:
        yield Static("Settlements awaiting approval", id="settlements-title")
        yield DataTable(id="settlements-table", cursor_type="row", zebra_stripes=True)
        yield Static("Loading...", id="settlements-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#settlements-table", DataTable)
        for key, label, width in (
            ("debtor", "Debtor", 18),
            ("offer", "Offer", 15),
            ("off", "Off %", 5),
            ("agent", "Agent", 9),
            ("limit", "Limit", 10),
            ("age", "Days", 4),
        ):
            table.add_column(label, width=width, key=key)
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="settlements-load")
    def _load(self) -> None:
        try:
            views = pending_settlements(self.db, self.caller, now=clock.now())
        except NotSupervisor as exc:
            self.app.call_from_thread(self._refused, str(exc))
            return
        except Exception as exc:
            self.app.call_from_thread(self._refused, f"Could not load settlements: {exc}")
            return
        self.app.call_from_thread(self._show, views)

    def _refused(self, message: str) -> None:
        self.query_one("#settlements-detail", Static).update(message)
        self.notify(message, title="Settlements", severity="error", timeout=10)

    def _show(self, views: list[SettlementView]) -> None:
        table = self.query_one("#settlements-table", DataTable)
        keep = table.cursor_row
        table.clear()
        self.views = views
        for view in views:
            limit = "-" if view.agent_limit is None else format_money(view.agent_limit)
            table.add_row(
                Text(view.debtor_name, no_wrap=True),
                Text(format_money(view.amount, view.currency), justify="right"),
                Text(f"{view.discount_pct}", justify="right"),
                Text(view.agent_name or "-", no_wrap=True),
                Text(limit, justify="right"),
                Text(str(view.age_days), justify="right"),
                key=str(view.settlement_id),
            )
        title = f"Settlements awaiting approval: {len(views)}"
        self.query_one("#settlements-title", Static).update(title)
        if views:
            table.move_cursor(row=min(keep, len(views) - 1), animate=False)
        self._show_detail()

    def selected(self) -> SettlementView | None:
        """The settlement under the cursor."""
        table = self.query_one("#settlements-table", DataTable)
        if not self.views or table.cursor_row >= len(self.views):
            return None
        return self.views[table.cursor_row]

    @on(DataTable.RowHighlighted, "#settlements-table")
    def _show_detail(self) -> None:
        view = self.selected()
        text = describe(view) if view else "No settlement is waiting for approval."
        self.query_one("#settlements-detail", Static).update(text)

    def action_approve(self) -> None:
        self._decide(True)

    def action_reject(self) -> None:
        self._decide(False)

    def _decide(self, approve: bool) -> None:
        view = self.selected()
        if view is None:
            self.notify("No settlement selected.", severity="warning")
            return

        def noted(note: str | None) -> None:
            if note is not None:
                self._write_decision(view, approve, note)

        self.app.push_screen(DecisionScreen(view, approve), noted)

    @work(thread=True, group="settlements-decide")
    def _write_decision(self, view: SettlementView, approve: bool, note: str) -> None:
        try:
            decided = decide_settlement(
                self.db, self.caller, view.settlement_id, approve=approve, note=note,
                expected_version=view.version, now=clock.now(),
            )  # fmt: skip
        except StaleSettlementError as exc:
            self.app.call_from_thread(self._decision_failed, str(exc), "warning")
            self.app.call_from_thread(self.action_reload)
            return
        except (NotSupervisor, SupervisorError) as exc:
            self.app.call_from_thread(self._decision_failed, str(exc), "error")
            return
        except Exception as exc:
            self.app.call_from_thread(self._decision_failed, f"Not saved: {exc}", "error")
            return
        word = "approved" if approve else "rejected"
        self.app.call_from_thread(
            self.notify, f"{decided.debtor_name}: settlement {word}.", title="Settlement"
        )
        self.app.call_from_thread(self.action_reload)

    def _decision_failed(self, message: str, severity: str) -> None:
        self.notify(message, title="Settlement", severity=severity, timeout=10)  # type: ignore[arg-type]

    def action_back(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        keys = [
            ("up/down", "choose a settlement; its account context shows below"),
            ("a", "approve (with an optional note)"),
            ("x", "reject (a note saying why is required)"),
            ("r", "refresh"),
            ("esc", "back to the console"),
        ]
        notes = (
            "Offers whose discount is above the offering agent's limit wait here. "
            "If someone else decided one meanwhile, you are told and the list reloads."
        )
        self.app.push_screen(HelpScreen("Settlement approvals", keys, notes))
