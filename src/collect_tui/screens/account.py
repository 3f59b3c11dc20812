"""The account screen (debtor workspace): who, what is owed, what happened, and the forms.

Everything is read through :mod:`collect_tui.services.workspace` in thread workers; the
forms (``c`` ``p`` ``l`` ``s`` ``d`` ``b``) save through the same service and the screen
reloads the account after each save.

The app keeps one account screen (:func:`account_screen`) and points it at each account
opened, instead of composing, styling and laying out a new one every time: that is most
of what opening an account costs. An account already read (``n`` reads it with the claim)
is shown in the screen's first frame.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from collect_tui import clock
from collect_tui.domain.aging import BUCKETS
from collect_tui.domain.money import format_money
from collect_tui.screens.account_forms import (
    AccountForm,
    CallbackForm,
    ContactForm,
    DisputeForm,
    PlanForm,
    PromiseForm,
    SaveOutcome,
    SettlementForm,
)
from collect_tui.screens.help import HelpScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.workspace import (
    AccessDenied,
    AccountNotFound,
    AccountView,
    TimelineEntry,
    load_account,
    load_timeline,
)
from collect_tui.widgets.account_fields import freshness_text
from collect_tui.widgets.account_header import FLAG_LABELS, AccountHeader
from collect_tui.widgets.timeline import PAGE_SIZE, Timeline

TABS = ("timeline", "owed", "payments", "deals", "details")
KEPT_SCREEN = "collect-tui-account"  # the name the app's kept account screen is installed as
INVOICE_COLUMNS = (("Invoice", 12), ("Due", 10), ("DPD", 4), ("Bucket", 7), ("Amount due", 12),
                   ("Cur", 3), ("Note", 13))  # fmt: skip
PAYMENT_COLUMNS = (("Paid on", 10), ("Amount", 12), ("Cur", 3), ("Invoice", 12), ("Applied", 7),
                   ("Received", 16))  # fmt: skip


def _money(amount: object, currency: str) -> str:
    return format_money(amount, currency)  # type: ignore[arg-type]


def owed_totals(account: AccountView) -> Text:
    """The balance split by aging bucket: a row of bucket names over a row of amounts."""
    currency = account.debtor.currency
    text = Text()
    text.append(f"{'Aging':<8}", style="bold")
    for bucket in BUCKETS:
        text.append(f"{bucket:>11}", style="bold")
    text.append(f"\n{currency:<8}")
    for bucket in BUCKETS:
        amount = account.totals_by_bucket.get(bucket) or 0
        style = "dim" if not amount else ("bold red" if bucket in ("91-120", "120+") else "")
        text.append(f"{amount:>11,.2f}", style=style)
    return text


def deals_text(account: AccountView) -> Text:
    """Pending promises, the active plan, live settlements, open disputes and callbacks."""
    currency = account.debtor.currency
    text = Text()

    def head(title: str) -> None:
        if text:
            text.append("\n")
        text.append(title + "\n", style="bold underline")

    standalone = [p for p in account.promises if p.plan_id is None]
    head("Promises to pay")
    if not standalone:
        text.append("  none pending\n", style="dim")
    for p in standalone:
        text.append(f"  {_money(p.amount, currency)} by {p.due_date}  {p.status}")
        text.append(f"  paid {_money(p.amount_paid, currency)}\n", style="dim")
    head("Payment plan")
    if account.plan is None:
        text.append("  no active plan\n", style="dim")
    else:
        plan = account.plan
        text.append(
            f"  {_money(plan.total, currency)} {plan.frequency} from {plan.first_date}, "
            f"{len(plan.installments)} installments ({plan.status})\n"
        )
        for item in plan.installments:
            text.append(
                f"  {item.installment_no or 0:>3}  {item.due_date}  {_money(item.amount, currency)}"
                f"  {item.status.replace('_', ' ')}\n",
                style="" if item.status == "pending" else "dim",
            )
    head("Settlements")
    if not account.settlements:
        text.append("  none\n", style="dim")
    for s in account.settlements:
        style = "bold yellow" if s.status == "awaiting_approval" else ""
        text.append(
            f"  {_money(s.amount, currency)} by {s.due_date} (balance then "
            f"{_money(s.balance_at_offer, currency)}): {s.status.replace('_', ' ').upper()}\n",
            style=style,
        )
    head("Disputes")
    if not account.disputes:
        text.append("  none open\n", style="dim")
    for d in account.disputes:
        text.append(
            f"  {d.invoice_number or 'account'} since {d.received_on}: {d.reason} ({d.status})\n"
        )
    head("Callbacks")
    if not account.callbacks:
        text.append("  none scheduled\n", style="dim")
    for c in account.callbacks:
        text.append(f"  {c.local_due_at:%a %Y-%m-%d %H:%M} {account.debtor.time_zone}")
        text.append(f"  {c.note or ''}\n", style="dim")
    return text


def details_text(account: AccountView) -> Text:
    """Everything about how to reach the debtor and who works the account."""
    debtor = account.debtor
    text = Text()
    text.append("Phones\n", style="bold underline")
    if not debtor.phones:
        text.append("  none on file\n", style="dim")
    for phone in debtor.phones:
        marks = []
        if phone.do_not_call:
            marks.append("DO NOT CALL")
        marks.append("SMS ok" if phone.sms_consent else "no SMS consent")
        text.append(f"  {phone.number:<18} {phone.kind:<7} ")
        text.append(", ".join(marks) + "\n", style="bold red" if phone.do_not_call else "dim")
    text.append("Emails\n", style="bold underline")
    if not debtor.emails:
        text.append("  none on file\n", style="dim")
    for email in debtor.emails:
        text.append(f"  {email.address}")
        text.append("  DO NOT EMAIL\n" if email.do_not_email else "\n", style="bold red")
    text.append("Account\n", style="bold underline")
    rows = [
        ("Address", debtor.address or "-"),
        ("Country", f"{debtor.country}{' / ' + debtor.region if debtor.region else ''}"),
        ("Language", debtor.language),
        ("Preferred", debtor.preferred_channel),
        ("Segment", debtor.segment),
        ("Currency", debtor.currency),
        ("Agent", debtor.assigned_agent or "unassigned"),
        ("External id", debtor.external_id or "-"),
        ("Priority", f"{debtor.priority_score:.1f}  {debtor.priority_reason or ''}".rstrip()),
    ]
    if debtor.next_action:
        when = (
            f" at {debtor.next_action_at.astimezone(debtor.local_time.tzinfo):%Y-%m-%d %H:%M}"
            if debtor.next_action_at
            else ""
        )
        rows.append(("Next action", f"{debtor.next_action}{when}"))
    flags = ", ".join(FLAG_LABELS.get(f, f) for f in debtor.flags) or "none"
    rows.append(("Flags", flags))
    for label, value in rows:
        text.append(f"  {label:<12}", style="dim")
        text.append(f"{value}\n")
    return text


def read_account(db: Database, agent: AgentInfo, debtor_id: int) -> AccountView | None:
    """The account read now, in the caller's (worker) thread; None if it cannot be.

    ``n`` reads the account it claimed this way before opening it, so the account screen's
    first frame shows it. On None the screen reads it itself and says what went wrong.
    """
    try:
        return load_account(db, agent, debtor_id, now=clock.now())
    except Exception:  # the screen's own read reports it
        return None


def account_screen(
    app: App[object],
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    account: AccountView | None = None,
) -> AccountScreen:
    """The screen to push to open ``debtor_id``: the app's kept account screen, pointed at it.

    The first call builds it and installs it in ``app`` (kept when popped); later calls
    reuse it. While it is on the screen stack, or if it was built for another agent or
    database, a new screen (not kept) is returned instead. ``account`` is the account
    already read, if it was (shown at once; otherwise the screen reads it).
    """
    if app.is_screen_installed(KEPT_SCREEN):
        kept = app.get_screen(KEPT_SCREEN)
        if kept in app.screen_stack or not kept.is_mounted:
            return AccountScreen(db, agent, debtor_id, account)
        if isinstance(kept, AccountScreen) and kept.db is db and kept.agent == agent:
            kept.show_debtor(debtor_id, account)
            return kept
        app.uninstall_screen(KEPT_SCREEN)
    screen = AccountScreen(db, agent, debtor_id, account)
    app.install_screen(screen, KEPT_SCREEN)
    return screen


class CoalescedFooter(Footer):
    """A Footer that rebuilds its keys once per burst of binding changes, and only if the
    keys it would show differ from those it shows.

    Textual's Footer schedules one full recompose per change, and opening the account
    screen makes about six (focus, screen stack, idle); they all show the same keys, and
    so does the kept screen each time it opens another account: new keys are laid out and
    drawn afresh, which costs more than the rest of the frame.
    """

    _recompose_pending = False
    _shown: tuple[object, ...] | None = None  # what the keys shown were built from

    def _keys(self) -> tuple[object, ...]:
        """What :meth:`compose` builds the keys from (see Textual's Footer.compose)."""
        shown = [
            (binding, enabled, tooltip)
            for _, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        ]
        display = self.app.get_key_display
        keys = tuple(
            (b.key, display(b), b.description, b.action, b.group, enabled, tooltip)
            for b, enabled, tooltip in shown
        )
        return (self.compact, keys)

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Schedule one recompose for any number of changes before the next refresh."""
        self._bindings_ready = True
        if not screen.app.app_focus or self._recompose_pending:
            return
        if self.is_attached and screen is self.screen:
            self._recompose_pending = True
            self.call_after_refresh(self._recompose_once)

    async def _recompose_once(self) -> None:
        self._recompose_pending = False
        keys = self._keys()
        if keys == self._shown:
            return
        self._shown = keys
        await self.recompose()


class AccountScreen(Screen[None]):
    """One debtor's workspace; escape returns to the queue."""

    DEFAULT_CSS = """
    AccountScreen TabbedContent {
        height: 1fr;
    }
    AccountScreen TabPane {
        padding: 0;
    }
    AccountScreen #timeline-filter {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    AccountScreen #owed-totals, AccountScreen #payments-info {
        height: auto;
        padding: 0 1;
    }
    AccountScreen DataTable {
        height: 1fr;
    }
    AccountScreen .pane-scroll {
        height: 1fr;
        padding: 0 1;
    }
    AccountScreen #account-message {
        padding: 1 2;
        color: $error;
        text-style: bold;
    }
    """

    BINDINGS = [
        Binding("c", "contact", "Contact", id="account.contact"),
        Binding("p", "promise", "PTP", id="account.promise"),
        Binding("l", "plan", "Plan", id="account.plan"),
        Binding("s", "settlement", "Settle", id="account.settlement"),
        Binding("d", "dispute", "Dispute", id="account.dispute"),
        Binding("b", "callback", "Callback", id="account.callback"),
        Binding("f", "filter", "Filter", id="account.filter"),
        Binding("question_mark", "help", "Help", key_display="?", id="account.help"),
        Binding("escape", "back", "Back", key_display="esc", id="account.back"),
        Binding("r", "reload", "Reload", show=False, id="account.reload"),
        Binding("shift+f", "filter_back", "Filter back", show=False, id="account.filter_back"),
        Binding("1", "tab('timeline')", "Timeline", show=False, id="account.tab1"),
        Binding("2", "tab('owed')", "Owed", show=False, id="account.tab2"),
        Binding("3", "tab('payments')", "Payments", show=False, id="account.tab3"),
        Binding("4", "tab('deals')", "Promises", show=False, id="account.tab4"),
        Binding("5", "tab('details')", "Details", show=False, id="account.tab5"),
    ]

    def __init__(
        self,
        db: Database,
        agent: AgentInfo,
        debtor_id: int,
        account: AccountView | None = None,
    ) -> None:
        """``account``, if given, is ``debtor_id`` already read: shown without reading it again."""
        super().__init__()
        self.db = db
        self.agent = agent
        self.debtor_id = debtor_id
        self.account: AccountView | None = None
        self.load_error: str | None = None
        self._given = account if account is not None and account.debtor.id == debtor_id else None
        self._opened = 0  # bumps on each account shown: a late read of another is dropped
        self._holding_keys = False  # keys typed wait for the account being read
        self._pane_ready: dict[str, asyncio.Event] = {}  # panes built (set) or being built

    def compose(self) -> ComposeResult:
        # Only the visible pane is composed now; the others are built when first shown
        # (see ``_build_pane``), which keeps ``n`` to the first painted account fast.
        yield AccountHeader("Loading account...", id="account-header")
        with TabbedContent(id="account-tabs", initial="timeline"):
            with TabPane("1 Timeline", id="timeline"):
                yield Static("", id="timeline-filter")
                yield Timeline(id="account-timeline")
            yield TabPane("2 Owed", id="owed")
            yield TabPane("3 Payments", id="payments")
            yield TabPane("4 Promises & plans", id="deals")
            yield TabPane("5 Details", id="details")
        yield CoalescedFooter(compact=True, show_command_palette=False)

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # The first resume follows the mount, which has just styled every node; a kept
        # screen coming back was restyled with the app's while it waited (a theme change
        # updates every node of the app, as popping back to a screen relies on).
        # Restyling every node costs a third of the first paint and changes nothing.
        event.refresh_styles = False
        super()._on_screen_resume(event)

    def on_mount(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.loader = self._timeline_page
        self._show_filter()
        timeline.focus()
        given, self._given = self._given, None
        if given is not None:
            self._show(given)
        else:
            self._hold_keys_until_shown()
            self.reload()

    def show_debtor(self, debtor_id: int, account: AccountView | None = None) -> None:
        """Point this (kept, off-screen) screen at ``debtor_id``, as a new screen would be.

        Nothing of the previous account stays: its rows, tab, timeline filter and focus go,
        and a read of it still under way is dropped. ``account``, if given, is shown now;
        otherwise the screen shows its loading state and reads the account.
        """
        if account is not None and account.debtor.id != debtor_id:
            account = None
        self.debtor_id = debtor_id
        self.account = None
        self.load_error = None
        self._opened += 1
        self.workers.cancel_group(self, "account-load")
        timeline = self.query_one(Timeline)
        timeline.reset()
        self.query_one(TabbedContent).active = "timeline"
        self._clear_panes()
        self._show_filter()
        self.set_focus(timeline, scroll_visible=False)
        if account is not None:
            self._show(account)
        else:
            self.query_one(AccountHeader).update("Loading account...", layout=False)
            self._hold_keys_until_shown()
            self.reload()

    # Panes -----------------------------------------------------------------------------

    def _pane_built(self, pane: str) -> bool:
        ready = self._pane_ready.get(pane)
        return pane == "timeline" or (ready is not None and ready.is_set())

    async def _build_pane(self, pane: str) -> None:
        """Mount the content of ``pane`` the first time it is shown, filled if loaded."""
        if pane == "timeline":
            return
        ready = self._pane_ready.get(pane)
        if ready is not None:  # built, or being built by another handler: wait for it
            await ready.wait()
            return
        ready = self._pane_ready[pane] = asyncio.Event()
        widgets: list[Widget]
        if pane == "owed":
            invoices = DataTable[object](id="invoices", cursor_type="row", zebra_stripes=True)
            for label, width in INVOICE_COLUMNS:
                invoices.add_column(label, width=width)
            widgets = [Static("", id="owed-totals"), invoices]
        elif pane == "payments":
            table = DataTable[object](id="payments-table", cursor_type="row", zebra_stripes=True)
            for label, width in PAYMENT_COLUMNS:
                table.add_column(label, width=width)
            widgets = [Static("", id="payments-info"), table]
        else:
            text = Static("", id=f"{pane}-text")
            widgets = [VerticalScroll(text, classes="pane-scroll", id=f"{pane}-scroll")]
        try:
            await self.query_one(f"TabPane#{pane}").mount_all(widgets)
        finally:
            ready.set()
        if self.account is not None:
            self._fill_pane(pane, self.account, clock.now())

    def _clear_panes(self) -> None:
        """Empty the tabs already built (they are filled again when the account arrives)."""
        for pane in TABS[1:]:
            if not self._pane_built(pane):
                continue
            if pane == "owed":
                self.query_one("#owed-totals", Static).update("")
                self.query_one("#invoices", DataTable).clear()
            elif pane == "payments":
                self.query_one("#payments-info", Static).update("")
                self.query_one("#payments-table", DataTable).clear()
            else:
                self.query_one(f"#{pane}-text", Static).update("")
                self.query_one(f"#{pane}-scroll", VerticalScroll).scroll_home(animate=False)

    def _fill_pane(self, pane: str, account: AccountView, now: datetime) -> None:
        if pane == "owed":
            self._show_owed(account)
        elif pane == "payments":
            self._show_payments(account, now)
        elif pane == "deals":
            self.query_one("#deals-text", Static).update(deals_text(account))
        elif pane == "details":
            self.query_one("#details-text", Static).update(details_text(account))

    @on(TabbedContent.TabActivated)
    async def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id is not None:
            await self._build_pane(event.pane.id)

    # Loading -------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the account again (in a thread worker)."""
        self._load(self._opened, self.debtor_id)

    @work(thread=True, exclusive=True, group="account-load")
    def _load(self, opened: int, debtor_id: int) -> None:
        try:
            account = load_account(self.db, self.agent, debtor_id, now=clock.now())
        except (AccessDenied, AccountNotFound) as exc:
            self.app.call_from_thread(self._arrived, opened, None, str(exc))
            return
        except Exception as exc:  # shown, never a crash
            message = f"Could not load the account: {exc}"
            self.app.call_from_thread(self._arrived, opened, None, message)
            return
        self.app.call_from_thread(self._arrived, opened, account, None)

    def _arrived(self, opened: int, account: AccountView | None, error: str | None) -> None:
        if opened != self._opened:  # read for an account no longer shown here
            return
        if account is not None:
            self._show(account)
        else:
            self._refused(error or "Could not load the account")
        if self._holding_keys:
            self._holding_keys = False
            self.app.release_keys()  # type: ignore[attr-defined]

    def _hold_keys_until_shown(self) -> None:
        """Keys typed before the account is read (``c`` right after enter) wait for it,
        as its forms need it; the app lets them go after a few seconds at most."""
        hold_keys = getattr(self.app, "hold_keys", None)
        if hold_keys is not None:
            hold_keys()
            self._holding_keys = True

    def _timeline_page(
        self, kinds: frozenset[str] | None, before: datetime | None, limit: int
    ) -> list[TimelineEntry]:
        # A page read for a previous account is dropped by the timeline (its generation).
        return load_timeline(
            self.db,
            self.agent,
            self.debtor_id,
            kinds=set(kinds) if kinds is not None else None,
            before=before,
            limit=limit,
        )

    def _refused(self, message: str) -> None:
        self.load_error = message
        self.account = None
        self.query_one(AccountHeader).update(Text(message, style="bold red"))
        self.notify(message, title="Account", severity="error", timeout=8)

    def _show(self, account: AccountView) -> None:
        self.account = account
        self.load_error = None
        now = clock.now()
        self.query_one(AccountHeader).show_account(account, now)
        timeline = self.query_one(Timeline)
        timeline.zone = account.debtor.local_time.tzinfo  # type: ignore[assignment]
        if timeline.kinds is None:
            timeline.show(account.timeline, more=len(account.timeline) >= PAGE_SIZE)
        else:
            timeline.reload()
        self._show_filter()
        for pane in TABS[1:]:
            if self._pane_built(pane):
                self._fill_pane(pane, account, now)

    def _show_owed(self, account: AccountView) -> None:
        self.query_one("#owed-totals", Static).update(owed_totals(account))
        table = self.query_one("#invoices", DataTable)
        table.clear()
        for inv in account.invoices:
            note = "DISPUTED" if inv.disputed else ""
            if not note and inv.expected_payment_date:
                note = f"exp {inv.expected_payment_date:%m-%d}"
            style = "red" if inv.disputed else ""
            table.add_row(
                Text(inv.number, style=style),
                str(inv.due_date),
                Text(str(inv.days_past_due), justify="right"),
                inv.bucket,
                Text(f"{inv.amount_due:,.2f}", justify="right"),
                inv.currency,
                Text(note, style=style),
                key=str(inv.id),
            )

    def _show_payments(self, account: AccountView, now: datetime) -> None:
        words, wary = freshness_text(account, now)
        self.query_one("#payments-info", Static).update(
            Text(words, style="bold yellow" if wary else "dim")
        )
        table = self.query_one("#payments-table", DataTable)
        table.clear()
        zone = account.debtor.local_time.tzinfo
        for p in account.payments:
            table.add_row(
                str(p.paid_on),
                Text(f"{p.amount:,.2f}", justify="right"),
                p.currency,
                p.invoice_number or "-",
                "yes" if p.applied else Text("NO", style="bold yellow"),
                f"{p.received_at.astimezone(zone):%Y-%m-%d %H:%M}",
                key=str(p.id),
            )

    def _show_filter(self) -> None:
        timeline = self.query_one(Timeline)
        self.query_one("#timeline-filter", Static).update(
            f"Showing {timeline.filter_label}, newest first  (f/F change kind)",
            layout=False,  # one line high whatever it says
        )

    @on(Timeline.Failed)
    def _timeline_failed(self, event: Timeline.Failed) -> None:
        self.notify(event.error, title="Timeline", severity="error")

    # Actions -------------------------------------------------------------------------

    def action_back(self) -> None:
        """Back to the queue."""
        self.dismiss(None)

    def action_reload(self) -> None:
        """Read the account again."""
        self.reload()

    async def action_tab(self, pane: str) -> None:
        """Show the tab ``pane`` and focus what it holds."""
        self.query_one(TabbedContent).active = pane
        await self._build_pane(pane)
        focus = {
            "timeline": "#account-timeline",
            "owed": "#invoices",
            "payments": "#payments-table",
            "deals": "#deals-scroll",
            "details": "#details-scroll",
        }[pane]
        self.query_one(focus).focus()

    def action_filter(self) -> None:
        """Show the next kind of timeline entries."""
        self._cycle(1)

    def action_filter_back(self) -> None:
        """Show the previous kind of timeline entries."""
        self._cycle(-1)

    def _cycle(self, step: int) -> None:
        self.query_one(TabbedContent).active = "timeline"
        self.query_one("#account-timeline").focus()
        self.query_one(Timeline).cycle_filter(step)
        self._show_filter()

    def _open(self, form: type[AccountForm]) -> None:
        if self.account is None:
            message = self.load_error or "The account is still loading."
            self.notify(message, title="Account", severity="warning")
            return
        self.app.push_screen(form(self.db, self.agent, self.account), self._form_closed)

    def _form_closed(self, outcome: SaveOutcome | None) -> None:
        if outcome is None:
            return
        if outcome.status == "saved":
            self.notify(outcome.message, title="Saved", timeout=6)
        elif outcome.status == "stale":
            self.notify(outcome.message, title="Not saved", severity="warning", timeout=10)
        else:
            self.notify(outcome.message, title="Not allowed", severity="error", timeout=10)
        self.reload()

    def action_contact(self) -> None:
        """Log a contact."""
        self._open(ContactForm)

    def action_promise(self) -> None:
        """Record a promise to pay."""
        self._open(PromiseForm)

    def action_plan(self) -> None:
        """Set up a payment plan."""
        self._open(PlanForm)

    def action_settlement(self) -> None:
        """Offer a settlement."""
        self._open(SettlementForm)

    def action_dispute(self) -> None:
        """Open a dispute on invoices."""
        self._open(DisputeForm)

    def action_callback(self) -> None:
        """Schedule a callback."""
        self._open(CallbackForm)

    def action_help(self) -> None:
        """List every key of this screen."""
        keys = [
            ("c", "log a contact (then the outcome's key: p promise, n no answer, ...)"),
            ("p", "promise to pay: amount and date"),
            ("l", "payment plan with a preview of the installments"),
            ("s", "settlement offer (above your authority it awaits a supervisor)"),
            ("d", "dispute invoices (pauses collection on them)"),
            ("b", "schedule a callback on the debtor's clock"),
            ("f / F", "timeline: next / previous kind (contacts, promises, ...)"),
            ("1 .. 5", "tabs: timeline, owed, payments, promises & plans, details"),
            ("left/right", "previous / next tab when the tab bar has focus"),
            ("up/down pgup/pgdn", "scroll; older history loads as you scroll"),
            ("r", "reload the account"),
            ("esc", "back to the queue"),
            ("In a form", "tab next field, enter or ctrl+s saves, esc cancels"),
        ]
        notes = (
            "Red marks: flags (cease, dispute, bankruptcy, deceased) and do-not-contact "
            "numbers ([DNC]) or addresses ([DNE]). Check the balance freshness line before "
            "asking for money."
        )
        self.app.push_screen(HelpScreen("Account", keys, notes))
