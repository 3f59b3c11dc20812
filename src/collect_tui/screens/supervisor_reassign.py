"""The move dialog of the supervisor console: pick accounts by filter (or take a selection)
and the agent (or the pool) they go to; nothing moves until the whole form is valid."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Function, Length, ValidationResult, Validator
from textual.widgets import Footer, Input, Label, Select

from collect_tui.domain.aging import BUCKETS
from collect_tui.screens.help import HelpScreen
from collect_tui.services.supervisor import REASON_MAX, AccountMatch
from collect_tui.widgets.supervisor_form import FieldError

POOL = -1  # the Select value that stands for the unassigned pool


@dataclass(frozen=True)
class ReassignRequest:
    """What the supervisor asked to move, and where."""

    to_agent_id: int | None
    to_label: str
    reason: str
    match: AccountMatch | None = None
    debtor_ids: tuple[int, ...] | None = None


def _amount(text: str) -> Decimal | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not value.is_finite() or value < 0:
        raise ValueError("must be zero or more")
    return value


class AmountValidator(Validator):
    """Blank, or an amount of zero or more."""

    def validate(self, value: str) -> ValidationResult:
        try:
            _amount(value)
        except ValueError as exc:
            message = str(exc)
            return self.failure(f"{message[:1].upper()}{message[1:]} (leave blank for any)")
        return self.success()


def _zone_ok(value: str) -> bool:
    value = value.strip()
    if not value:
        return True
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class ReassignScreen(ModalScreen[ReassignRequest | None]):
    """Move accounts: by filter from one holder (``debtor_ids`` None) or the given accounts."""

    DEFAULT_CSS = """
    ReassignScreen { align: center middle; }
    #reassign-dialog {
        width: 72; height: auto; max-height: 22;
        border: round $primary; background: $surface; padding: 0 1;
    }
    #reassign-dialog .row { height: 1; }
    #reassign-dialog .row Label { width: 14; }
    #reassign-dialog .row Input, #reassign-dialog .row Select { width: 1fr; }
    #reassign-dialog .field-error { padding-left: 14; }
    #reassign-heading { text-style: bold; }
    #reassign-hint { color: $text-muted; }
    #reassign-error { color: $error; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="reassign.cancel"),
        Binding("ctrl+s,f10", "submit", "Move", key_display="^s", id="reassign.submit"),
        Binding("f1", "help", "Help", id="reassign.help"),
    ]

    def __init__(
        self,
        heading: str,
        targets: list[tuple[str, int | None]],
        *,
        from_agent_id: int | None = None,
        from_pool: bool = False,
        debtor_ids: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.heading = heading
        self.targets = targets
        self.from_agent_id = from_agent_id
        self.from_pool = from_pool
        self.debtor_ids = debtor_ids

    @property
    def by_filter(self) -> bool:
        """True when the accounts are picked by the filter fields."""
        return self.debtor_ids is None

    def compose(self) -> ComposeResult:
        options = [
            (label, POOL if agent_id is None else agent_id) for label, agent_id in self.targets
        ]
        with Vertical(id="reassign-dialog"):
            yield Label(self.heading, id="reassign-heading")
            if self.by_filter:
                yield Label("Accounts matching every field you fill in:", id="reassign-hint")
                with Horizontal(classes="row"):
                    yield Label("Aging bucket")
                    yield Select(
                        [(b, b) for b in BUCKETS], prompt="any", compact=True, id="move-bucket"
                    )
                yield from self._field("Min balance", "move-min", "e.g. 500", [AmountValidator()])
                yield from self._field("Max balance", "move-max", "e.g. 5000", [AmountValidator()])
                zone = Function(_zone_ok, "Not a time zone (e.g. America/Chicago)")
                yield from self._field("Time zone", "move-zone", "e.g. America/Chicago", [zone])
                yield from self._field("Segment", "move-segment", "e.g. consumer", [])
            with Horizontal(classes="row"):
                yield Label("Move to")
                yield Select(options, prompt="choose an agent", compact=True, id="move-target")
            yield FieldError(classes="field-error", id="move-target-error")
            reason = Length(1, REASON_MAX, "Give a reason (it goes into the history)")
            yield from self._field("Reason", "move-reason", "why they move", [reason])
            yield FieldError(id="reassign-error")
            yield Label("tab moves between fields; ctrl+s moves the accounts; esc cancels")
        yield Footer()

    def _field(
        self, label: str, field_id: str, placeholder: str, validators: list[Validator]
    ) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(label)
            yield Input(
                placeholder=placeholder, validators=validators, compact=True, id=field_id,
                valid_empty=field_id != "move-reason",
            )  # fmt: skip
        yield FieldError(classes="field-error", id=f"{field_id}-error")

    def on_mount(self) -> None:
        first = "#move-bucket" if self.by_filter else "#move-target"
        self.query_one(first).focus()

    @on(Input.Changed)
    def _show_validation(self, event: Input.Changed) -> None:
        if event.input.id is None:
            return
        text = ""
        if event.validation_result is not None and not event.validation_result.is_valid:
            text = "; ".join(event.validation_result.failure_descriptions)
        self.query_one(f"#{event.input.id}-error", FieldError).update(text)
        self.query_one("#reassign-error", FieldError).update("")

    @on(Select.Changed, "#move-target")
    def _target_chosen(self) -> None:
        self.query_one("#move-target-error", FieldError).update("")

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_submit()

    def _build(self) -> ReassignRequest | None:
        """The request, or None after showing every problem next to its field."""
        ok = True
        for field in self.query(Input):
            result = field.validate(field.value)
            if result is not None and not result.is_valid:
                self.query_one(f"#{field.id}-error", FieldError).update(
                    "; ".join(result.failure_descriptions)
                )
                ok = False
        target = self.query_one("#move-target", Select).value
        if not isinstance(target, int):
            self.query_one("#move-target-error", FieldError).update("Choose who receives them")
            ok = False
        if not ok:
            return None
        assert isinstance(target, int)
        to_agent_id = None if target == POOL else target
        to_label = next(label for label, a in self.targets if a == to_agent_id)
        reason = self.query_one("#move-reason", Input).value.strip()
        if not self.by_filter:
            return ReassignRequest(to_agent_id, to_label, reason, debtor_ids=self.debtor_ids)
        if to_agent_id is not None and to_agent_id == self.from_agent_id:
            self.query_one("#move-target-error", FieldError).update("They already hold these")
            return None
        bucket = self.query_one("#move-bucket", Select).value
        zone = self.query_one("#move-zone", Input).value.strip()
        segment = self.query_one("#move-segment", Input).value.strip()
        try:
            match = AccountMatch(
                from_agent_id=self.from_agent_id,
                from_pool=self.from_pool,
                bucket=bucket if isinstance(bucket, str) else None,
                min_balance=_amount(self.query_one("#move-min", Input).value),
                max_balance=_amount(self.query_one("#move-max", Input).value),
                time_zone=zone or None,
                segment=segment or None,
            )
        except ValueError as exc:
            message = str(exc)
            if "at least one criterion" in message:
                message = "Fill in at least one field to say which accounts move"
            self.query_one("#reassign-error", FieldError).update(message[:1].upper() + message[1:])
            return None
        return ReassignRequest(to_agent_id, to_label, reason, match=match)

    def action_submit(self) -> None:
        for select in self.query(Select):
            if select.expanded:
                return
        request = self._build()
        if request is not None:
            self.dismiss(request)

    def action_help(self) -> None:
        keys = [
            ("tab/shift+tab", "next / previous field"),
            ("enter", "open a list, pick from it; in a text field: move"),
            ("ctrl+s", "move the accounts"),
            ("esc", "cancel: nothing moves"),
        ]
        notes = (
            "Every field you fill in must match. Balances are in the account's own "
            "currency; the time zone is the debtor's (e.g. America/Chicago). Moving to an "
            "agent over their capacity is refused."
        )
        self.app.push_screen(HelpScreen("Move accounts", keys, notes))

    def action_cancel(self) -> None:
        self.dismiss(None)
