"""The account screen's forms: contact (c), promise (p), plan (l), settlement (s),
dispute (d) and callback (b).

Each form validates its fields on screen (Textual validators running the domain's
rules), sends nothing until every field is valid, then saves in a thread worker through
:mod:`collect_tui.services.workspace`. A refusal of the service (``ValidationFailed``)
is shown next to the field it names; a stale edit or a refused access closes the form
with a :class:`SaveOutcome` the account screen shows and acts on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import Key
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.validation import Validator
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from collect_tui import clock
from collect_tui.domain.dispositions import (
    CHANNELS,
    DEFAULT,
    DIRECTIONS,
    Disposition,
    DispositionSet,
)
from collect_tui.domain.money import format_money
from collect_tui.domain.plans import FREQUENCIES
from collect_tui.domain.promises import FieldError
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.queue import local_time
from collect_tui.services.workspace import (
    PLAN_START_HORIZON_DAYS,
    SETTLEMENT_HORIZON_DAYS,
    AccessDenied,
    AccountNotFound,
    AccountView,
    Callback,
    PromiseInput,
    StaleEdit,
    ValidationFailed,
    create_plan,
    load_account,
    log_contact,
    make_promise,
    open_dispute,
    preview_plan,
    propose_settlement,
    schedule_callback,
)
from collect_tui.widgets.account_fields import (
    DATE_HINT,
    clock_rule,
    count_rule,
    day_rule,
    freshness_text,
    money_rule,
    parse_clock,
    parse_count,
    parse_day,
    parse_money,
    promise_amount_rule,
    promise_date_rule,
)

STALE_MESSAGE = "Someone else changed this account; reloaded. Check it and try again."
CALLBACK_HORIZON_DAYS = 90

Status = Literal["saved", "stale", "denied"]


@dataclass(frozen=True)
class SaveOutcome:
    """What became of a form: saved, refused as stale, or refused access."""

    status: Status
    message: str


FORM_CSS = """
AccountForm {
    align: center middle;
}
AccountForm .form-dialog {
    width: 78;
    height: auto;
    max-height: 23;
    border: round $primary;
    background: $surface;
    padding: 0 1;
}
AccountForm .form-title {
    text-style: bold;
    width: 1fr;
}
AccountForm .form-info {
    color: $text-muted;
    width: 1fr;
}
AccountForm .form-info.-wary {
    color: $warning;
    text-style: bold;
}
AccountForm .field-row {
    height: 1;
    width: 1fr;
}
AccountForm .field-row Label {
    width: 12;
    color: $text-muted;
}
AccountForm .field-row Input {
    width: 1fr;
}
AccountForm .field-row Select {
    width: 1fr;
}
AccountForm .field-row .half {
    width: 1fr;
}
AccountForm .field-row .second-label {
    width: 11;
    padding-left: 1;
}
AccountForm .field-error {
    color: $error;
    padding-left: 12;
    width: 1fr;
}
AccountForm #form-error {
    padding-left: 0;
}
AccountForm .form-keys {
    color: $text-muted;
    width: 1fr;
}
"""


def field_row(
    label: str, *widgets: Widget, second: str | None = None, id: str | None = None
) -> Horizontal:
    """A one-line labelled row; ``second`` labels the second widget on the same line."""
    children: list[Widget] = [Label(label)]
    for index, widget in enumerate(widgets):
        if index == 1 and second is not None:
            children.append(Label(second, classes="second-label"))
        children.append(widget)
    return Horizontal(*children, classes="field-row", id=id)


def error_label(name: str) -> Label:
    """The (hidden until needed) message line under the field ``name``."""
    label = Label("", id=f"err-{name}", classes="field-error")
    label.display = False
    return label


def field_input(
    name: str,
    *,
    placeholder: str = "",
    value: str = "",
    validators: Iterable[Validator] = (),
    optional: bool = False,
) -> Input:
    """A compact input named ``name`` whose validators run only when asked."""
    return Input(
        value=value,
        placeholder=placeholder,
        validators=list(validators),
        validate_on=["submitted"],
        valid_empty=optional,
        compact=True,
        id=f"in-{name}",
    )


class AccountForm(ModalScreen[SaveOutcome | None]):
    """A dialog over the account screen; saves through a service in a thread worker."""

    DEFAULT_CSS = FORM_CSS
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", priority=True, id="form.save"),
    ]
    FORM_TITLE: ClassVar[str] = ""
    # Fields the service may name in ValidationFailed -> the field shown on this form.
    FIELD_MAP: ClassVar[dict[str, str]] = {}

    def __init__(self, db: Database, agent: AgentInfo, account: AccountView) -> None:
        super().__init__()
        self.db = db
        self.agent = agent
        self.account = account
        self.saving = False

    # Layout ---------------------------------------------------------------------------

    @property
    def currency(self) -> str:
        """The account's currency."""
        return self.account.debtor.currency

    @property
    def today(self) -> date:
        """Today on the debtor's calendar."""
        return local_time(self.account.debtor.time_zone, clock.now()).date()

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="form-dialog"):
            yield Label(f"{self.FORM_TITLE}: {self.account.debtor.name}", classes="form-title")
            yield from self.fields()
            yield error_label("form")
            yield Static(
                "enter or ctrl+s saves   tab next field   esc cancels", classes="form-keys"
            )
        yield Footer()

    def fields(self) -> ComposeResult:
        """The form's own widgets (rows with their error labels)."""
        yield from ()

    def freshness(self) -> Label:
        """The balance and how fresh it is, shown before the agent asks for money."""
        words, wary = freshness_text(self.account, clock.now())
        balance = format_money(self.account.balance, self.currency)
        label = Label(f"Balance {balance}. {words}", classes="form-info")
        label.set_class(wary, "-wary")
        return label

    # Errors ---------------------------------------------------------------------------

    def show_error(self, name: str, message: str) -> None:
        """Show ``message`` under the field ``name`` (or at the bottom of the form)."""
        matches = self.query(f"#err-{name}")
        label = matches.first(Label) if matches else self.query_one("#err-form", Label)
        label.update(message)
        label.display = True

    def clear_errors(self) -> None:
        """Hide every error line."""
        for label in self.query(".field-error").results(Label):
            label.update("")
            label.display = False

    def show_field_errors(self, errors: Iterable[FieldError]) -> None:
        """Show the service's or the validators' errors and focus the first field at fault."""
        first: str | None = None
        for error in errors:
            name = self.FIELD_MAP.get(error.field, error.field)
            self.show_error(name, error.message)
            first = first or name
        if first is not None:
            target = self.query(f"#in-{first}")
            if target:
                target.first().focus()

    def check_inputs(self) -> list[FieldError]:
        """Run the validators of every visible input; their failures as field errors."""
        errors = []
        for widget in self.query(Input).results(Input):
            if not widget.id or not widget.id.startswith("in-") or not self._shown(widget):
                continue
            result = widget.validate(widget.value)
            if result is not None and not result.is_valid:
                errors.append(FieldError(widget.id[3:], result.failure_descriptions[0]))
        return errors

    def _shown(self, widget: Widget) -> bool:
        node: Widget | None = widget
        while node is not None and node is not self:
            if not node.display:
                return False
            parent = node.parent
            node = parent if isinstance(parent, Widget) else None
        return True

    def extra_checks(self) -> list[FieldError]:
        """Checks across fields or on non-input widgets (override)."""
        return []

    @on(Input.Changed)
    def _recheck(self, event: Input.Changed) -> None:
        """Once a field shows an error, keep its message current while the agent types."""
        widget = event.input
        if not widget.id or not widget.id.startswith("in-"):
            return
        label = self.query(f"#err-{widget.id[3:]}")
        if not label or not label.first().display:
            return
        result = widget.validate(widget.value)
        if result is None or result.is_valid:
            label.first(Label).display = False
        else:
            label.first(Label).update(result.failure_descriptions[0])

    # Saving ---------------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_cancel(self) -> None:
        """Close without saving."""
        if not self.saving:
            self.dismiss(None)

    def action_save(self) -> None:
        """Validate every field; when all are valid, save in a thread worker."""
        if self.saving:
            return
        self.clear_errors()
        errors = self.check_inputs() + self.extra_checks()
        if errors:
            self.show_field_errors(errors)
            return
        self.saving = True
        self.show_error("form", "Saving...")
        self._save(self.build())

    def build(self) -> Callable[[], str]:
        """A call that saves the form through the service and says what was saved."""
        raise NotImplementedError

    @work(thread=True, exclusive=True, group="form-save")
    def _save(self, call: Callable[[], str]) -> None:
        try:
            message = call()
        except ValidationFailed as exc:
            self.app.call_from_thread(self._refused, exc.errors)
        except StaleEdit:
            self.app.call_from_thread(self.dismiss, SaveOutcome("stale", STALE_MESSAGE))
        except (AccessDenied, AccountNotFound) as exc:
            self.app.call_from_thread(self.dismiss, SaveOutcome("denied", str(exc)))
        except Exception as exc:  # e.g. a compliance refusal: shown, the form stays open
            self.app.call_from_thread(self._refused, [FieldError("form", str(exc))])
        else:
            self.app.call_from_thread(self.dismiss, SaveOutcome("saved", message))

    def _refused(self, errors: list[FieldError]) -> None:
        self.saving = False
        self.clear_errors()
        self.show_field_errors(errors)

    # Helpers for subclasses --------------------------------------------------------------

    def value(self, name: str) -> str:
        """The text of the input ``name``."""
        return self.query_one(f"#in-{name}", Input).value

    def day(self, name: str) -> date:
        """The (validated) date in the input ``name``."""
        parsed = parse_day(self.value(name), self.today)
        assert parsed is not None
        return parsed

    def money(self, name: str) -> Decimal:
        """The (validated) amount in the input ``name``."""
        parsed = parse_money(self.value(name))
        assert parsed is not None
        return parsed


# --- contact ---------------------------------------------------------------------------


def _addresses(account: AccountView, channel: str) -> list[tuple[str, str]]:
    """(label, address) choices for ``channel``, with the do-not-contact marks."""
    debtor = account.debtor
    if channel in ("call", "sms"):
        return [
            (
                f"{p.number} ({p.kind})"
                + (" DO NOT CALL" if p.do_not_call else "")
                + (" no SMS consent" if channel == "sms" and not p.sms_consent else ""),
                p.number,
            )
            for p in debtor.phones
        ]
    if channel == "email":
        return [
            (e.address + (" DO NOT EMAIL" if e.do_not_email else ""), e.address)
            for e in debtor.emails
        ]
    return [(debtor.address, debtor.address)] if debtor.address else []


def _default_address(account: AccountView, channel: str) -> str | None:
    """The first address on ``channel`` without a do-not-contact mark."""
    if channel in ("call", "sms"):
        return next((p.number for p in account.debtor.phones if not p.do_not_call), None)
    if channel == "email":
        return next((e.address for e in account.debtor.emails if not e.do_not_email), None)
    return account.debtor.address


class ContactForm(AccountForm):
    """Log a contact: channel, direction, address, outcome (quick keys), notes, next action.

    The outcomes come from ``dispositions`` (the configurable list, the default one
    unless given); each has a one-key shortcut active while the outcome list has focus.
    """

    FORM_TITLE = "Log contact"
    FIELD_MAP = {
        "promise": "amount",
        "due_date": "date",
        "next_action": "cb-date",
        "local_time": "cb-time",
        "started_at": "form",
    }
    DEFAULT_CSS = (
        FORM_CSS
        + """
    ContactForm #outcomes {
        height: 7;
        border: none;
        padding: 0;
        margin-left: 12;
        width: 1fr;
    }
    ContactForm #outcome-chosen {
        width: 1fr;
        color: $text;
    }
    """
    )

    def __init__(
        self,
        db: Database,
        agent: AgentInfo,
        account: AccountView,
        dispositions: DispositionSet = DEFAULT,
    ) -> None:
        super().__init__(db, agent, account)
        self.dispositions = dispositions
        preferred = account.debtor.preferred_channel
        self.channel = preferred if preferred in CHANNELS else "call"
        self.disposition: Disposition | None = None

    def fields(self) -> ComposeResult:
        zone = self.account.debtor.time_zone
        yield field_row(
            "Channel",
            Select([(c.capitalize() if c != "sms" else "SMS", c) for c in CHANNELS],
                   value=self.channel, allow_blank=False, compact=True, id="in-channel"),
            Select([(d.capitalize(), d) for d in DIRECTIONS], value="outbound",
                   allow_blank=False, compact=True, id="in-direction"),
            second="Direction",
        )  # fmt: skip
        yield error_label("channel")
        yield field_row("To", self._address_select(self.channel))
        yield error_label("address")
        yield Horizontal(
            Label("Outcome", classes="outcome-label"),
            Label("press a key below (or arrows + enter)", id="outcome-chosen"),
            classes="field-row",
            id="outcome-row",
        )
        yield OptionList(*self._outcome_options(), id="outcomes")
        yield error_label("disposition")
        balance = self.account.balance
        yield field_row(
            "Amount",
            field_input("amount", placeholder=f"up to {balance:,.2f}",
                        validators=[promise_amount_rule(balance, self.today)]),
            field_input("date", placeholder=DATE_HINT, validators=[promise_date_rule(self.today)]),
            second="by date",
            id="promise-row",
        )  # fmt: skip
        yield error_label("amount")
        yield error_label("date")
        yield field_row("Notes", field_input("notes", placeholder="what was said", optional=True))
        yield field_row(
            "Call back",
            field_input("cb-date", placeholder=DATE_HINT, optional=True,
                        validators=[day_rule(self.today, CALLBACK_HORIZON_DAYS, "callback date")]),
            field_input("cb-time", placeholder=f"HH:MM {zone}", optional=True,
                        validators=[clock_rule()]),
            second="at",
        )  # fmt: skip
        yield error_label("cb-date")
        yield error_label("cb-time")
        yield self.freshness()

    def _address_select(self, channel: str) -> Select[str]:
        choices = _addresses(self.account, channel)
        default = _default_address(self.account, channel)
        return Select(
            choices,
            value=default if default is not None else Select.NULL,
            prompt="(none on file)" if not choices else "(not recorded)",
            compact=True,
            id="in-address",
        )

    def _outcome_options(self) -> list[Option]:
        options = []
        for item in self.dispositions.for_channel(self.channel):
            prompt = Text()
            prompt.append(f" {item.key} ", style="bold reverse")
            prompt.append(f" {item.label}")
            options.append(Option(prompt, id=item.code))
        return options

    def on_mount(self) -> None:
        self.query_one("#promise-row").display = False
        self.query_one("#outcomes", OptionList).focus()

    # The outcome ----------------------------------------------------------------------

    def choose(self, item: Disposition) -> None:
        """Take ``item`` as the outcome and move to the field it needs next."""
        self.disposition = item
        self.query_one("#outcome-chosen", Label).update(
            Text.assemble((item.label, "bold"), "  (other key to change)")
        )
        self.query_one("#err-disposition", Label).display = False
        self.query_one("#promise-row").display = item.needs_promise
        outcomes = self.query_one("#outcomes", OptionList)
        index = next((i for i, o in enumerate(outcomes.options) if o.id == item.code), None)
        if index is not None:
            outcomes.highlighted = index
        if item.needs_promise:
            self.query_one("#in-amount", Input).focus()
        elif item.needs_callback:
            self.query_one("#in-cb-date", Input).focus()
        else:
            self.query_one("#in-notes", Input).focus()

    def on_key(self, event: Key) -> None:
        if self.focused is not self.query_one("#outcomes", OptionList) or not event.character:
            return
        item = self.dispositions.by_key(event.character)
        if item is not None and item.allowed_on(self.channel):
            event.stop()
            event.prevent_default()
            self.choose(item)

    @on(OptionList.OptionSelected, "#outcomes")
    def _outcome_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.choose(self.dispositions.get(event.option.id))

    @on(Select.Changed, "#in-channel")
    def _channel_changed(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str) or event.value == self.channel:
            return
        self.channel = event.value
        outcomes = self.query_one("#outcomes", OptionList)
        outcomes.clear_options()
        outcomes.add_options(self._outcome_options())
        if self.disposition is not None and not self.disposition.allowed_on(self.channel):
            self.disposition = None
            self.query_one("#promise-row").display = False
            self.query_one("#outcome-chosen", Label).update("press a key below (or arrows + enter)")
        address = self.query_one("#in-address", Select)
        choices = _addresses(self.account, self.channel)
        address.set_options(choices)
        default = _default_address(self.account, self.channel)
        address.value = default if default is not None else Select.NULL

    # Saving ---------------------------------------------------------------------------

    def _address(self) -> str | None:
        value = self.query_one("#in-address", Select).value
        return value if isinstance(value, str) else None

    def _direction(self) -> str:
        value = self.query_one("#in-direction", Select).value
        return value if isinstance(value, str) else "outbound"

    def extra_checks(self) -> list[FieldError]:
        errors = []
        if self.disposition is None:
            errors.append(FieldError("disposition", "pick the outcome: press its key"))
        has_date, has_time = (
            bool(self.value("cb-date").strip()),
            bool(self.value("cb-time").strip()),
        )
        if has_date != has_time:
            missing = "cb-time" if has_date else "cb-date"
            errors.append(FieldError(missing, "give both the callback date and time"))
        elif self.disposition is not None and self.disposition.needs_callback and not has_date:
            errors.append(FieldError("cb-date", "a callback request needs the date and time"))
        return errors

    def build(self) -> Callable[[], str]:
        item = self.disposition
        assert item is not None
        promise = (
            PromiseInput(self.money("amount"), self.day("date")) if item.needs_promise else None
        )
        callback = None
        if self.value("cb-date").strip():
            at = parse_clock(self.value("cb-time"))
            assert at is not None
            callback = Callback(self.day("cb-date"), at)
        kwargs = {
            "channel": self.channel,
            "direction": self._direction(),
            "address": self._address(),
            "disposition": item.code,
            "notes": self.value("notes"),
            "next_action": callback,
            "promise": promise,
            "dispositions": self.dispositions,
        }
        account, db, agent = self.account, self.db, self.agent

        def call() -> str:
            log_contact(db, agent, account.debtor.id, account.version, now=clock.now(), **kwargs)  # type: ignore[arg-type]
            message = f"Logged: {item.label}"
            if promise is not None:
                message += (
                    f"; promise {format_money(promise.amount, account.debtor.currency)} "
                    f"by {promise.due_date.isoformat()}"
                )
            if callback is not None:
                message += f"; callback {callback.local_date} {callback.local_time:%H:%M}"
            return message

        return call


# --- promise ---------------------------------------------------------------------------


class PromiseForm(AccountForm):
    """A promise to pay: amount and date (the oldest open invoice unless one is chosen)."""

    FORM_TITLE = "Promise to pay"
    FIELD_MAP = {"due_date": "date", "invoice_id": "invoice"}

    def fields(self) -> ComposeResult:
        yield self.freshness()
        balance = self.account.balance
        yield field_row(
            "Amount",
            field_input("amount", placeholder=f"up to {balance:,.2f}",
                        validators=[promise_amount_rule(balance, self.today)]),
        )  # fmt: skip
        yield error_label("amount")
        yield field_row(
            "By date",
            field_input("date", placeholder=DATE_HINT, validators=[promise_date_rule(self.today)]),
        )
        yield error_label("date")
        choices = [
            (f"{inv.number}  due {inv.due_date}  {inv.amount_due:,.2f}", inv.id)
            for inv in self.account.invoices
        ]
        yield field_row(
            "Invoice",
            Select(choices, prompt="oldest open invoice", compact=True, id="in-invoice"),
        )
        yield error_label("invoice")

    def on_mount(self) -> None:
        self.query_one("#in-amount", Input).focus()

    def build(self) -> Callable[[], str]:
        amount, due = self.money("amount"), self.day("date")
        invoice = self.query_one("#in-invoice", Select).value
        invoice_id = invoice if isinstance(invoice, int) else None
        account, db, agent = self.account, self.db, self.agent

        def call() -> str:
            make_promise(db, agent, account.debtor.id, account.version, amount=amount,
                         due_date=due, invoice_id=invoice_id, now=clock.now())  # fmt: skip
            return f"Promise saved: {format_money(amount, account.debtor.currency)} by {due}"

        return call


# --- plan ------------------------------------------------------------------------------


class PlanForm(AccountForm):
    """A payment plan with a live preview of its installments."""

    FORM_TITLE = "Payment plan"
    FIELD_MAP = {"first_date": "first", "plan": "form"}
    PREVIEW_DELAY = 0.2
    DEFAULT_CSS = (
        FORM_CSS
        + """
    PlanForm #preview {
        height: auto;
        max-height: 8;
        width: 1fr;
        border-top: solid $primary-darken-2;
    }
    """
    )

    def __init__(self, db: Database, agent: AgentInfo, account: AccountView) -> None:
        super().__init__(db, agent, account)
        self._preview_timer: Timer | None = None
        self.preview_text = ""

    def fields(self) -> ComposeResult:
        yield self.freshness()
        balance = self.account.balance
        yield field_row(
            "Total",
            field_input("total", value=f"{balance:.2f}",
                        validators=[money_rule("plan total", at_most=balance)]),
            Select([(f.capitalize(), f) for f in FREQUENCIES], value="monthly",
                   allow_blank=False, compact=True, id="in-frequency"),
            second="Every",
        )  # fmt: skip
        yield error_label("total")
        yield field_row(
            "First date",
            field_input("first", placeholder=DATE_HINT,
                        validators=[day_rule(self.today, PLAN_START_HORIZON_DAYS,
                                             "first installment date")]),
        )  # fmt: skip
        yield error_label("first")
        yield field_row(
            "Count",
            field_input("count", placeholder="e.g. 6", optional=True, validators=[count_rule()]),
            field_input("each", placeholder="or amount each", optional=True,
                        validators=[money_rule("installment amount")]),
            second="or each",
        )  # fmt: skip
        yield error_label("count")
        yield error_label("each")
        yield Static("Fill in the first date and the count or the amount to see the plan.",
                     id="preview")  # fmt: skip

    def on_mount(self) -> None:
        self.query_one("#in-first", Input).focus()

    def _inputs(self) -> dict[str, object] | None:
        """The preview/save arguments, or None while a field cannot be read yet."""
        total = parse_money(self.value("total"))
        first = parse_day(self.value("first"), self.today)
        count = parse_count(self.value("count")) if self.value("count").strip() else None
        each = parse_money(self.value("each")) if self.value("each").strip() else None
        frequency = self.query_one("#in-frequency", Select).value
        if total is None or first is None or (count is None) == (each is None):
            return None
        return {
            "total": total,
            "first_date": first,
            "frequency": frequency,
            "count": count,
            "amount": each,
        }

    @on(Input.Changed)
    @on(Select.Changed)
    def _inputs_changed(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(self.PREVIEW_DELAY, self.refresh_preview)

    def refresh_preview(self) -> None:
        """Ask the service for the installments these inputs give (in a thread worker)."""
        inputs = self._inputs()
        if inputs is None:
            self._show_preview(
                "Fill in the first date and the count or the amount to see the plan."
            )
            return
        self._preview(inputs)

    @work(thread=True, exclusive=True, group="plan-preview")
    def _preview(self, inputs: dict[str, object]) -> None:
        account = self.account
        try:
            items = preview_plan(self.db, self.agent, account.debtor.id, now=clock.now(), **inputs)  # type: ignore[arg-type]
        except ValidationFailed as exc:
            text = "Cannot make this plan: " + "; ".join(e.message for e in exc.errors)
        except Exception as exc:
            text = f"Cannot preview: {exc}"
        else:
            currency = account.debtor.currency
            lines = [
                f"{len(items)} installments, total "
                f"{format_money(sum((i.amount for i in items), Decimal('0')), currency)}:"
            ]
            shown = items if len(items) <= 6 else [*items[:4], None, items[-1]]
            for item in shown:
                if item is None:
                    lines.append(f"  ... {len(items) - 5} more ...")
                else:
                    lines.append(
                        f"  {item.no:>3}  {item.due_date}  {format_money(item.amount, currency)}"
                    )
            text = "\n".join(lines)
        self.app.call_from_thread(self._show_preview, text)

    def _show_preview(self, text: str) -> None:
        self.preview_text = text
        self.query_one("#preview", Static).update(text)

    def extra_checks(self) -> list[FieldError]:
        has_count, has_each = bool(self.value("count").strip()), bool(self.value("each").strip())
        if has_count == has_each:
            return [
                FieldError("count", "give the number of installments or the amount each, not both")
            ]
        return []

    def build(self) -> Callable[[], str]:
        inputs = self._inputs()
        assert inputs is not None
        account, db, agent = self.account, self.db, self.agent

        def call() -> str:
            create_plan(db, agent, account.debtor.id, account.version, now=clock.now(), **inputs)  # type: ignore[arg-type]
            total = format_money(inputs["total"], account.debtor.currency)  # type: ignore[arg-type]
            return f"Payment plan saved: {total} {inputs['frequency']} from {inputs['first_date']}"

        return call


# --- settlement ------------------------------------------------------------------------


class SettlementForm(AccountForm):
    """A discounted payoff; beyond the agent's authority it awaits a supervisor."""

    FORM_TITLE = "Settlement offer"
    FIELD_MAP = {"due_date": "date"}

    def fields(self) -> ComposeResult:
        balance = self.account.balance
        limit = format_money(self.agent.settlement_limit, self.currency)
        yield self.freshness()
        yield Label(
            f"Your authority: discounts up to {limit}; a larger one waits for a supervisor.",
            classes="form-info",
        )
        yield field_row(
            "Pays",
            field_input("amount", placeholder=f"less than {balance:,.2f}",
                        validators=[money_rule("settlement amount", below=balance)]),
        )  # fmt: skip
        yield error_label("amount")
        yield Label("", id="discount", classes="form-info")
        yield field_row(
            "By date",
            field_input(
                "date",
                placeholder=DATE_HINT,
                validators=[day_rule(self.today, SETTLEMENT_HORIZON_DAYS, "settlement date")],
            ),
        )
        yield error_label("date")
        yield field_row("Note", field_input("note", placeholder="why this discount", optional=True))

    def on_mount(self) -> None:
        self.query_one("#in-amount", Input).focus()

    @on(Input.Changed, "#in-amount")
    def _amount_changed(self, event: Input.Changed) -> None:
        amount = parse_money(event.value)
        label = self.query_one("#discount", Label)
        balance = self.account.balance
        if amount is None or amount <= 0 or amount >= balance:
            label.update("")
            return
        discount = balance - amount
        share = discount / balance * 100
        verdict = (
            "within your authority"
            if discount <= self.agent.settlement_limit
            else "ABOVE your limit: needs a supervisor"
        )
        label.update(f"Discount {format_money(discount, self.currency)} ({share:.1f}%): {verdict}")

    def build(self) -> Callable[[], str]:
        amount, due = self.money("amount"), self.day("date")
        note = self.value("note").strip() or None
        account, db, agent = self.account, self.db, self.agent

        def call() -> str:
            settlement_id = propose_settlement(db, agent, account.debtor.id, account.version,
                                               amount=amount, due_date=due, note=note,
                                               now=clock.now())  # fmt: skip
            fresh = load_account(db, agent, account.debtor.id, now=clock.now())
            status = next((s.status for s in fresh.settlements if s.id == settlement_id), "saved")
            money = format_money(amount, account.debtor.currency)
            if status == "awaiting_approval":
                return (
                    f"Settlement {money} by {due} is above your authority: "
                    "saved as AWAITING APPROVAL by a supervisor"
                )
            return f"Settlement {money} by {due} approved (within your authority)"

        return call


# --- dispute ---------------------------------------------------------------------------


class DisputeForm(AccountForm):
    """A dispute on one or more open invoices, with its reason."""

    FORM_TITLE = "Dispute"
    FIELD_MAP = {"invoice_ids": "invoices"}
    BINDINGS = [  # enter saves here too (the list marks with space, not enter)
        Binding("enter", "save", "Save", priority=True, show=False, id="dispute.save"),
    ]
    DEFAULT_CSS = (
        FORM_CSS
        + """
    DisputeForm #in-invoices {
        height: auto;
        max-height: 10;
        border: none;
        padding: 0;
        width: 1fr;
    }
    """
    )

    def fields(self) -> ComposeResult:
        yield Label("Invoices in dispute (space marks, arrows move):", classes="form-info")
        choices = [
            (
                f"{inv.number}  due {inv.due_date}  "
                f"{format_money(inv.amount_due, inv.currency)}"
                + ("  (already disputed)" if inv.disputed else ""),
                inv.id,
            )
            for inv in self.account.invoices
            if not inv.disputed
        ]
        yield SelectionList[int](*choices, id="in-invoices")
        yield error_label("invoices")
        yield field_row("Reason", field_input("reason", placeholder="what the debtor disputes"))
        yield error_label("reason")

    def on_mount(self) -> None:
        self.query_one("#in-invoices", SelectionList).focus()

    def extra_checks(self) -> list[FieldError]:
        errors = []
        if not self.query_one("#in-invoices", SelectionList).selected:
            errors.append(FieldError("invoices", "mark at least one invoice with space"))
        if not self.value("reason").strip():
            errors.append(FieldError("reason", "say what the debtor disputes"))
        return errors

    def build(self) -> Callable[[], str]:
        ids = list(self.query_one("#in-invoices", SelectionList).selected)
        reason = self.value("reason").strip()
        account, db, agent = self.account, self.db, self.agent

        def call() -> str:
            open_dispute(db, agent, account.debtor.id, account.version, invoice_ids=ids,
                         reason=reason, now=clock.now())  # fmt: skip
            count = len(ids)
            return f"Dispute opened on {count} invoice{'s' if count > 1 else ''}: collection paused"

        return call


# --- callback --------------------------------------------------------------------------


class CallbackForm(AccountForm):
    """A callback at a date and time on the debtor's clock."""

    FORM_TITLE = "Schedule callback"
    FIELD_MAP = {"local_time": "time", "local_date": "date"}

    def fields(self) -> ComposeResult:
        debtor = self.account.debtor
        local: datetime = local_time(debtor.time_zone, clock.now())
        yield Label(
            f"Debtor's time now: {local:%a %Y-%m-%d %H:%M} ({debtor.time_zone})",
            classes="form-info",
        )
        yield field_row(
            "Date",
            field_input("date", value=local.date().isoformat(), placeholder=DATE_HINT,
                        validators=[day_rule(self.today, CALLBACK_HORIZON_DAYS, "callback date")]),
            field_input("time", placeholder="HH:MM", validators=[clock_rule()]),
            second="at",
        )  # fmt: skip
        yield error_label("date")
        yield error_label("time")
        yield field_row(
            "Note", field_input("note", placeholder="what to call about", optional=True)
        )

    def on_mount(self) -> None:
        self.query_one("#in-time", Input).focus()

    def build(self) -> Callable[[], str]:
        day = self.day("date")
        at = parse_clock(self.value("time"))
        assert at is not None
        note = self.value("note").strip() or None
        account, db, agent = self.account, self.db, self.agent

        def call() -> str:
            schedule_callback(db, agent, account.debtor.id, account.version, local_date=day,
                              local_time=at, note=note, now=clock.now())  # fmt: skip
            return f"Callback set for {day} {at:%H:%M} ({account.debtor.time_zone})"

        return call


__all__ = [
    "STALE_MESSAGE",
    "AccountForm",
    "CallbackForm",
    "ContactForm",
    "DisputeForm",
    "PlanForm",
    "PromiseForm",
    "SaveOutcome",
    "SettlementForm",
]
