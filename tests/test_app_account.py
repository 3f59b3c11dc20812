"""The account screen (debtor workspace) through Pilot at 80x24, on a seeded SQLite file."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import burst
from sqlalchemy import func, select, update
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, SelectionList, Static
from textual.worker import WorkerCancelled

from collect_tui import clock
from collect_tui.app import CollectApp
from collect_tui.domain.dispositions import DispositionSet
from collect_tui.screens import account as account_module
from collect_tui.screens.account import AccountScreen, account_screen
from collect_tui.screens.account_forms import (
    STALE_MESSAGE,
    CallbackForm,
    ContactForm,
    DisputeForm,
    PlanForm,
    PromiseForm,
    SettlementForm,
)
from collect_tui.screens.queue import QueueScreen
from collect_tui.services.agents import AgentInfo, get_agent
from collect_tui.services.database import Database, open_database
from collect_tui.services.scoring import mark_rescored
from collect_tui.services.seed import seed_portfolio
from collect_tui.services.workspace import AccountView, load_account, load_timeline, log_contact
from collect_tui.storage.models import (
    Contact,
    Debtor,
    Dispute,
    Invoice,
    Payment,
    PaymentPlan,
    Phone,
    Promise,
    Settlement,
    Task,
)
from collect_tui.widgets.account_header import AccountHeader
from collect_tui.widgets.queue_table import QueueTable
from collect_tui.widgets.timeline import Timeline

AS_OF = date(2026, 11, 2)
FIXED_NOW = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)  # 10:00-15:00 in the Americas
SYNCED_AT = FIXED_NOW - timedelta(hours=2)
SIZE = (80, 24)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path: Path = tmp_path_factory.mktemp("account") / "account.db"
    db = open_database(f"sqlite:///{path}")
    seed_portfolio(db.engine, debtors=400, agents=3, seed=9, as_of=AS_OF)
    mark_rescored(db, datetime.now(UTC).date())
    with db.session() as session:  # the seed stamps the real time: pin it for snapshots
        session.execute(update(Invoice).values(synced_at=SYNCED_AT))
        session.execute(update(Debtor).values(last_synced_at=SYNCED_AT))
    return db


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: FIXED_NOW)


def _clean_accounts(db: Database, agent: AgentInfo) -> list[int]:
    """Alice's unflagged, callable accounts preferring calls, with 2+ invoices, by id."""
    callable_phone = (
        select(Phone.id).where(Phone.debtor_id == Debtor.id, Phone.do_not_call.is_(False)).exists()
    )
    recent_contact = (
        select(Contact.id)
        .where(Contact.debtor_id == Debtor.id, Contact.started_at >= FIXED_NOW - timedelta(days=8))
        .exists()
    )
    with db.session() as session:
        return list(
            session.scalars(
                select(Debtor.id)
                .where(
                    Debtor.assigned_agent_id == agent.id,
                    Debtor.preferred_channel == "call",
                    Debtor.open_balance >= Decimal("2000"),
                    Debtor.open_invoices >= 2,
                    Debtor.cease_communication.is_(False),
                    Debtor.dispute.is_(False),
                    Debtor.bankruptcy.is_(False),
                    Debtor.deceased.is_(False),
                    Debtor.time_zone.like("America/%"),
                    callable_phone,
                    ~recent_contact,  # no call cap (Reg F) in the way
                )
                .order_by(Debtor.id)
            )
        )


# Each test works its own account so the module's shared database stays predictable.
(SNAPSHOT, CONTACT, PROMISE, BAD_PROMISE, PLAN, SETTLE, DISPUTE, CALLBACK, STALE, FILTER,
 PAGES, MOVED, CUSTOM, KEPT_A, KEPT_B, BURST) = range(16)  # fmt: skip


@pytest.fixture(scope="module")
def accounts(seeded: Database) -> list[int]:
    found = _clean_accounts(seeded, get_agent(seeded, "alice"))
    assert len(found) >= 16
    return found


def _local_today(db: Database, debtor_id: int) -> date:
    with db.session() as session:
        zone = session.scalar(select(Debtor.time_zone).where(Debtor.id == debtor_id))
    return FIXED_NOW.astimezone(ZoneInfo(zone or "UTC")).date()


def _count(db: Database, model: type, debtor_id: int) -> int:
    with db.session() as session:
        return session.scalar(
            select(func.count()).select_from(model).where(model.debtor_id == debtor_id)
        )


async def _settle(pilot: Pilot) -> None:
    """Let the workers finish and the screen repaint."""
    for _ in range(3):
        with contextlib.suppress(WorkerCancelled):  # an exclusive worker replaced by another
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def _open(pilot: Pilot, db: Database, debtor_id: int) -> AccountScreen:
    app = pilot.app
    await _settle(pilot)
    app.clear_notifications()  # e.g. the start-up notices: not part of the snapshots
    screen = AccountScreen(db, app.agent, debtor_id)  # type: ignore[attr-defined]
    await app.push_screen(screen)
    await _settle(pilot)
    assert screen.account is not None
    return screen


async def _type(pilot: Pilot, text: str) -> None:
    await pilot.press(*list(text))


def _notes(app: CollectApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_enter_on_the_queue_opens_the_account_and_escape_returns(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        await pilot.press("down", "down")
        chosen = queue.selected_row()
        assert chosen is not None
        await pilot.press("enter")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, AccountScreen)
        assert screen.debtor_id == chosen.debtor_id
        header = str(screen.query_one(AccountHeader).render())
        assert chosen.name in header
        assert "Balance" in header
        await pilot.press("escape")
        await _settle(pilot)
        assert app.screen is queue
        table = queue.query_one(QueueTable)
        assert table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value == str(
            chosen.debtor_id
        )


async def test_next_opens_the_next_best_account(seeded: Database) -> None:
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("n")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)


async def test_log_a_contact_with_a_quick_key(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[CONTACT]
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        version = screen.account.version  # type: ignore[union-attr]
        await pilot.press("c")
        await _settle(pilot)
        assert isinstance(app.screen, ContactForm)
        await pilot.press("n")  # no answer: focus goes to the notes
        await _type(pilot, "rang twice")
        await pilot.press("enter")
        await _settle(pilot)
        assert app.screen is screen
        assert any("Logged: No answer" in n for n in _notes(app))
        assert screen.account is not None and screen.account.version == version + 1
        first = screen.query_one(Timeline).entries[0]
        assert first.kind == "contact" and "No answer" in first.title
    with seeded.session() as session:
        contact = session.scalars(
            select(Contact).where(Contact.debtor_id == debtor_id).order_by(Contact.id.desc())
        ).first()
        assert contact is not None
        assert (contact.disposition, contact.channel, contact.direction) == (
            "no_answer",
            "call",
            "outbound",
        )
        assert contact.notes == "rang twice"
        assert contact.address  # the first callable number


async def test_keys_typed_before_the_contact_form_opens_reach_it(
    seeded: Database, accounts: list[int]
) -> None:
    """`c`, `n`, `ctrl+s` in one burst: the form opens, takes "no answer" and saves."""
    debtor_id = accounts[BURST]
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        version = screen.account.version  # type: ignore[union-attr]
        burst(app, "c", "n", "ctrl+s")
        await _settle(pilot)
        await _settle(pilot)
        assert app.screen is screen, "the form should have saved and closed"
        assert any("Logged: No answer" in n for n in _notes(app))
        assert screen.account is not None and screen.account.version == version + 1


async def test_call_with_a_promise_in_few_keystrokes(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[PROMISE]
    due = _local_today(seeded, debtor_id) + timedelta(days=7)
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, seeded, debtor_id)
        control = 0

        async def press(*keys: str) -> None:
            nonlocal control
            control += len(keys)
            await pilot.press(*keys)

        await press("c")
        await _settle(pilot)
        await press("p")  # the outcome "promise to pay"; focus moves to the amount
        await _type(pilot, "250.00")
        await press("tab")
        await _type(pilot, due.isoformat())
        await press("tab")
        await _type(pilot, "will pay friday")
        await press("enter")
        await _settle(pilot)
        assert control <= 10, control
        assert isinstance(app.screen, AccountScreen)
        assert any("promise USD 250.00" in n or "promise" in n.lower() for n in _notes(app))
    with seeded.session() as session:
        promise = session.scalars(
            select(Promise).where(Promise.debtor_id == debtor_id).order_by(Promise.id.desc())
        ).first()
        assert promise is not None
        assert (promise.amount, promise.due_date, promise.status) == (
            Decimal("250.00"),
            due,
            "pending",
        )
        contact = session.get(Contact, promise.contact_id)
        assert contact is not None and contact.disposition == "promise"
        assert contact.notes == "will pay friday"


async def test_invalid_promise_shows_errors_and_saves_nothing(
    seeded: Database, accounts: list[int]
) -> None:
    debtor_id = accounts[BAD_PROMISE]
    before = _count(seeded, Promise, debtor_id)
    yesterday = _local_today(seeded, debtor_id) - timedelta(days=1)
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, seeded, debtor_id)
        await pilot.press("p")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, PromiseForm)
        await _type(pilot, "99999999")
        await pilot.press("tab")
        await _type(pilot, yesterday.isoformat())
        await pilot.press("enter")
        await _settle(pilot)
        assert app.screen is form, "an invalid form must stay open"
        amount_error = form.query_one("#err-amount", Label)
        date_error = form.query_one("#err-date", Label)
        assert amount_error.display and "more than the balance" in str(amount_error.render())
        assert date_error.display and "in the past" in str(date_error.render())
        # A horizon too far is refused as well.
        date_input = form.query_one("#in-date", Input)
        date_input.value = "+45"
        await pilot.press("enter")
        await _settle(pilot)
        assert "more than 30 days ahead" in str(date_error.render())
        await pilot.press("escape")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
    assert _count(seeded, Promise, debtor_id) == before


async def test_plan_preview_then_save(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[PLAN]
    first = _local_today(seeded, debtor_id) + timedelta(days=3)
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        balance = screen.account.balance  # type: ignore[union-attr]
        await pilot.press("l")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, PlanForm)
        await _type(pilot, first.isoformat())
        await pilot.press("tab")
        await _type(pilot, "4")
        await pilot.pause(0.4)  # the preview waits for typing to pause
        await _settle(pilot)
        preview = form.preview_text
        assert preview.startswith("4 installments, total")
        assert f"{balance:,.2f}" in preview
        assert first.isoformat() in preview
        await pilot.press("ctrl+s")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
    with seeded.session() as session:
        plan = session.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == debtor_id)).one()
        assert (plan.total, plan.installment_count, plan.first_date) == (balance, 4, first)
        amounts = session.scalars(select(Promise.amount).where(Promise.plan_id == plan.id)).all()
        assert sum(amounts) == balance


async def test_settlement_above_the_limit_awaits_approval(
    seeded: Database, accounts: list[int]
) -> None:
    debtor_id = accounts[SETTLE]
    due = _local_today(seeded, debtor_id) + timedelta(days=5)
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        balance = screen.account.balance  # type: ignore[union-attr]
        offer = (balance / 2).quantize(Decimal("0.01"))
        assert balance - offer > agent.settlement_limit
        await pilot.press("s")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, SettlementForm)
        await _type(pilot, str(offer))
        await pilot.pause()
        assert "ABOVE your limit" in str(form.query_one("#discount", Label).render())
        await pilot.press("tab")
        await _type(pilot, due.isoformat())
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
        assert any("AWAITING APPROVAL" in n for n in _notes(app))
        header = str(screen.query_one(AccountHeader).render())
        assert "settlement awaiting approval" in header
    with seeded.session() as session:
        row = session.scalars(select(Settlement).where(Settlement.debtor_id == debtor_id)).one()
        assert (row.status, row.amount) == ("awaiting_approval", offer)


async def test_dispute_on_an_invoice(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[DISPUTE]
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        await pilot.press("d")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, DisputeForm)
        await pilot.press("enter")  # nothing marked, no reason: refused on screen
        await _settle(pilot)
        assert form.query_one("#err-invoices", Label).display
        assert app.screen is form
        await pilot.press("space")  # mark the first invoice
        assert len(form.query_one(SelectionList).selected) == 1
        await pilot.press("tab")
        await _type(pilot, "goods returned")
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
        header = str(screen.query_one(AccountHeader).render())
        assert "DISPUTE" in header
    with seeded.session() as session:
        rows = session.scalars(select(Dispute).where(Dispute.debtor_id == debtor_id)).all()
        assert [(d.reason, d.status) for d in rows] == [("goods returned", "open")]


async def test_callback_on_the_debtors_clock(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[CALLBACK]
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        zone = ZoneInfo(screen.account.debtor.time_zone)  # type: ignore[union-attr]
        tomorrow = FIXED_NOW.astimezone(zone).date() + timedelta(days=1)
        await pilot.press("b")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, CallbackForm)
        form.query_one("#in-date", Input).value = tomorrow.isoformat()
        await _type(pilot, "10:30")
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
    with seeded.session() as session:
        task = session.scalars(
            select(Task).where(
                Task.debtor_id == debtor_id, Task.kind == "callback", Task.status == "open"
            )
        ).one()
        local = task.due_at.replace(tzinfo=UTC).astimezone(zone)
        assert (local.date(), local.hour, local.minute) == (tomorrow, 10, 30)


async def test_stale_edit_is_refused_and_the_account_reloaded(
    seeded: Database, accounts: list[int]
) -> None:
    debtor_id = accounts[STALE]
    agent = get_agent(seeded, "alice")
    app = CollectApp(seeded, agent)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        opened = screen.account.version  # type: ignore[union-attr]
        # A supervisor logs a contact on the same account meanwhile.
        boss = get_agent(seeded, "supervisor")
        log_contact(seeded, boss, debtor_id, opened, channel="email", disposition="no_answer",
                    now=FIXED_NOW)  # fmt: skip
        before = _count(seeded, Contact, debtor_id)
        await pilot.press("c")
        await _settle(pilot)
        await pilot.press("r")  # refused to pay
        await pilot.press("enter")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
        assert STALE_MESSAGE in _notes(app)
        assert STALE_MESSAGE.startswith("Someone else changed this account; reloaded")
        assert screen.account is not None and screen.account.version == opened + 1
    assert _count(seeded, Contact, debtor_id) == before


def _log_emails(db: Database, debtor_id: int, count: int) -> None:
    """``count`` email attempts by a supervisor, a minute apart, before FIXED_NOW."""
    boss = get_agent(db, "supervisor")
    for minute in range(count):
        version = load_account(db, boss, debtor_id, now=FIXED_NOW).version
        started = FIXED_NOW - timedelta(minutes=minute + 1)
        log_contact(db, boss, debtor_id, version, channel="email", disposition="no_answer",
                    direction="inbound", notes=f"try {minute}", started_at=started,
                    now=FIXED_NOW)  # fmt: skip


async def test_timeline_filters_by_kind(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[FILTER]
    _log_emails(seeded, debtor_id, 2)
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        timeline = screen.query_one(Timeline)
        kinds = {e.kind for e in timeline.entries}
        assert {"contact", "sync"} <= kinds
        await pilot.press("f")
        await _settle(pilot)
        assert timeline.filter_label == "contacts"
        assert timeline.entries and {e.kind for e in timeline.entries} == {"contact"}
        assert "contacts" in str(screen.query_one("#timeline-filter", Static).render())
        await pilot.press("shift+f")
        await _settle(pilot)
        assert timeline.filter_label == "everything"


async def test_timeline_pages_through_a_long_history(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[PAGES]
    boss = get_agent(seeded, "supervisor")
    _log_emails(seeded, debtor_id, 110)  # more than one page of history
    total = len(load_timeline(seeded, boss, debtor_id, limit=1000))
    assert total > 110
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        timeline = screen.query_one(Timeline)
        assert len(timeline.entries) == 100 and timeline.has_more
        await pilot.press("end")
        await _settle(pilot)
        assert len(timeline.entries) == total
        assert len({e.ref for e in timeline.entries}) == total


async def test_access_denied_is_refused_clearly(seeded: Database) -> None:
    alice, bruno = get_agent(seeded, "alice"), get_agent(seeded, "bruno")
    others = _clean_accounts(seeded, bruno)
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        screen = AccountScreen(seeded, alice, others[0])
        await app.push_screen(screen)
        await _settle(pilot)
        assert screen.account is None
        assert "not assigned to you" in str(screen.query_one(AccountHeader).render())
        await pilot.press("c")
        await _settle(pilot)
        assert app.screen is screen, "no form on an account the agent may not work"


async def test_help_lists_the_keys(seeded: Database, accounts: list[int]) -> None:
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, accounts[SNAPSHOT])
        await pilot.press("question_mark")
        await _settle(pilot)
        text = str(app.screen.query_one(Static).render())
        for key in ("c ", "p ", "l ", "s ", "d ", "b ", "f / F", "esc"):
            assert key in text
        await pilot.press("escape")
        await _settle(pilot)
        assert app.screen is screen


def _unapplied_payment(db: Database, debtor_id: int) -> None:
    """A payment received but not applied yet, and a do-not-call number, for the snapshots."""
    with db.session() as session:
        if not session.scalar(
            select(func.count()).where(Phone.debtor_id == debtor_id, Phone.do_not_call.is_(True))
        ):
            session.add(
                Phone(debtor_id=debtor_id, number="+1 555 010 0199", kind="home", do_not_call=True)
            )
        invoice = session.scalars(select(Invoice).where(Invoice.debtor_id == debtor_id)).first()
        assert invoice is not None
        exists = session.scalar(
            select(func.count()).where(Payment.debtor_id == debtor_id, Payment.applied.is_(False))
        )
        if exists:
            return
        session.add(
            Payment(
                external_id=f"snap-{debtor_id}",
                debtor_id=debtor_id,
                invoice_id=invoice.id,
                amount=Decimal("120.00"),
                currency=invoice.currency,
                paid_on=AS_OF,
                received_at=FIXED_NOW - timedelta(hours=1),
                applied=False,
                status="active",
            )
        )


def test_account_screen_snapshot(seeded: Database, accounts: list[int], snap_compare) -> None:
    debtor_id = accounts[SNAPSHOT]
    _unapplied_payment(seeded, debtor_id)
    app = CollectApp(seeded, get_agent(seeded, "alice"))

    async def open_account(pilot: Pilot) -> None:
        await _open(pilot, seeded, debtor_id)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_account)


def test_owed_tab_snapshot(seeded: Database, accounts: list[int], snap_compare) -> None:
    debtor_id = accounts[SNAPSHOT]
    _unapplied_payment(seeded, debtor_id)
    app = CollectApp(seeded, get_agent(seeded, "alice"))

    async def open_owed(pilot: Pilot) -> None:
        await _open(pilot, seeded, debtor_id)
        await pilot.press("2")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_owed)


def test_contact_form_snapshot(seeded: Database, accounts: list[int], snap_compare) -> None:
    debtor_id = accounts[SNAPSHOT]
    app = CollectApp(seeded, get_agent(seeded, "alice"))

    async def open_form(pilot: Pilot) -> None:
        await _open(pilot, seeded, debtor_id)
        await pilot.press("c")
        await _settle(pilot)
        await pilot.press("p")
        await _type(pilot, "300")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_form)


async def test_a_blocked_outbound_contact_is_refused_on_the_form(seeded: Database) -> None:
    alice = get_agent(seeded, "alice")
    with seeded.session() as session:  # 18:00 UTC is before 08:00 in Australia: no calls
        debtor_id = session.scalar(
            select(Debtor.id)
            .where(Debtor.assigned_agent_id == alice.id, Debtor.time_zone.like("Australia/%"))
            .order_by(Debtor.id)
            .limit(1)
        )
    assert debtor_id is not None
    before = _count(seeded, Contact, debtor_id)
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, seeded, debtor_id)
        await pilot.press("c")
        await _settle(pilot)
        form = app.screen
        assert isinstance(form, ContactForm)
        await pilot.press("n")
        await pilot.press("enter")
        await _settle(pilot)
        assert app.screen is form
        error = form.query_one("#err-channel", Label)
        assert error.display and "not allowed" in str(error.render())
    assert _count(seeded, Contact, debtor_id) == before


async def test_a_save_on_an_account_moved_away_is_refused(
    seeded: Database, accounts: list[int]
) -> None:
    debtor_id = accounts[MOVED]
    alice, bruno = get_agent(seeded, "alice"), get_agent(seeded, "bruno")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        with seeded.session() as session:  # a supervisor moves it to bruno meanwhile
            session.execute(
                update(Debtor).where(Debtor.id == debtor_id).values(assigned_agent_id=bruno.id)
            )
        await pilot.press("c")
        await _settle(pilot)
        await pilot.press("n", "enter")
        await _settle(pilot)
        assert app.screen is screen
        assert any("not assigned to you" in n for n in _notes(app))
        assert screen.account is None  # reloaded: the account is no longer shown


async def test_the_outcome_list_is_configurable(seeded: Database, accounts: list[int]) -> None:
    debtor_id = accounts[CUSTOM]
    custom = DispositionSet.from_config(
        [
            {"code": "busy", "label": "Line busy", "key": "y", "channels": ["call"]},
            {"code": "promise", "label": "Promise to pay", "key": "p", "needs_promise": True},
        ]
    )
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, debtor_id)
        assert screen.account is not None
        await app.push_screen(ContactForm(seeded, alice, screen.account, custom))
        await _settle(pilot)
        await pilot.press("y", "enter")
        await _settle(pilot)
        assert isinstance(app.screen, AccountScreen)
    with seeded.session() as session:
        codes = session.scalars(select(Contact.disposition).where(Contact.debtor_id == debtor_id))
        assert "busy" in list(codes)


async def test_hidden_tabs_are_built_when_shown(seeded: Database, accounts: list[int]) -> None:
    """Only the timeline is composed with the screen; each other tab on its first visit."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, seeded, accounts[SNAPSHOT])
        assert screen.account is not None
        assert not screen.query("#invoices") and not screen.query("#details-text")
        await pilot.press("3")
        await _settle(pilot)
        payments = screen.query_one("#payments-table", DataTable)
        assert payments.row_count == len(screen.account.payments) > 0
        assert app.focused is payments
        await pilot.press("5")
        await _settle(pilot)
        assert "Phones" in str(screen.query_one("#details-text", Static).render())
        await pilot.press("4")
        await _settle(pilot)
        assert "Promises to pay" in str(screen.query_one("#deals-text", Static).render())
        await pilot.press("2")
        await _settle(pilot)
        invoices = screen.query_one("#invoices", DataTable)
        assert invoices.row_count == len(screen.account.invoices)
        # A reload refills the tabs already built.
        await pilot.press("r")
        await _settle(pilot)
        assert invoices.row_count == len(screen.account.invoices)
        assert payments.row_count == len(screen.account.payments)


async def test_the_account_screen_paints_before_the_account_is_read(
    seeded: Database, accounts: list[int]
) -> None:
    """The header says it is loading until the worker's account arrives."""
    app = CollectApp(seeded, get_agent(seeded, "alice"))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        screen = AccountScreen(seeded, app.agent, accounts[SNAPSHOT])
        shown = screen._show
        arrived: list[AccountView] = []
        screen._show = arrived.append  # type: ignore[method-assign]  # hold the account back
        await app.push_screen(screen)
        await _settle(pilot)
        assert "Loading account" in str(screen.query_one(AccountHeader).render())
        assert screen.account is None and len(arrived) == 1
        shown(arrived[0])
        await pilot.pause()
        assert "Balance" in str(screen.query_one(AccountHeader).render())
        assert screen.query_one(Timeline).entries


async def _open_kept(
    pilot: Pilot, db: Database, debtor_id: int, account: AccountView | None = None
) -> AccountScreen:
    """Open ``debtor_id`` as the queue does: on the app's kept account screen."""
    app = pilot.app
    screen = account_screen(app, db, app.agent, debtor_id, account)  # type: ignore[attr-defined]
    await app.push_screen(screen)
    await _settle(pilot)
    return screen


async def test_the_kept_screen_shows_the_next_account_and_nothing_of_the_last(
    seeded: Database, accounts: list[int]
) -> None:
    """Opening another account on the kept screen leaves no rows, tab, filter or focus behind."""
    first, second = accounts[KEPT_A], accounts[KEPT_B]
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        screen = await _open_kept(pilot, seeded, first)
        assert screen.debtor_id == first and screen.account is not None
        old_name = screen.account.debtor.name
        old_refs = {e.ref for e in screen.query_one(Timeline).entries}
        await pilot.press("2")  # build and fill the other tabs, then leave it on one
        await _settle(pilot)
        await pilot.press("5")
        await _settle(pilot)
        await pilot.press("f")  # the timeline narrowed to contacts
        await _settle(pilot)
        await pilot.press("2")
        await _settle(pilot)
        assert screen.query_one("#invoices", DataTable).row_count
        await pilot.press("escape")
        await _settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert screen.is_mounted, "the kept screen stays mounted, ready for the next account"

        expected = load_account(seeded, alice, second, now=FIXED_NOW)
        again = await _open_kept(pilot, seeded, second)
        assert again is screen
        assert screen.debtor_id == second and screen.account is not None
        assert screen.account.debtor.id == second
        header = str(screen.query_one(AccountHeader).render())
        assert expected.debtor.name in header and old_name not in header
        timeline = screen.query_one(Timeline)
        assert timeline.filter_label == "everything"
        assert [e.ref for e in timeline.entries] == [e.ref for e in expected.timeline]
        assert not old_refs & {e.ref for e in timeline.entries if not e.ref.startswith("sync")}
        assert "everything" in str(screen.query_one("#timeline-filter", Static).render())
        assert screen.query_one("#account-tabs").active == "timeline"  # type: ignore[attr-defined]
        assert app.focused is timeline
        invoices = screen.query_one("#invoices", DataTable)
        keys = {row.value for row in invoices.rows}
        assert keys == {str(inv.id) for inv in expected.invoices}
        details = str(screen.query_one("#details-text", Static).render())
        assert expected.debtor.phones[0].number in details
        await pilot.press("escape")
        await _settle(pilot)
        assert isinstance(app.screen, QueueScreen)


async def test_the_kept_screen_drops_a_late_read_of_the_previous_account(
    seeded: Database, accounts: list[int]
) -> None:
    first, second = accounts[KEPT_A], accounts[KEPT_B]
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        screen = await _open_kept(pilot, seeded, first)
        opened_first = screen._opened
        stale = screen.account
        assert stale is not None
        await pilot.press("escape")
        await _settle(pilot)
        # Opened without the account read: it shows its loading state, then the read.
        shown = screen._show
        arrived: list[AccountView] = []
        screen._show = arrived.append  # type: ignore[method-assign]  # hold the read back
        await _open_kept(pilot, seeded, second)
        header = str(screen.query_one(AccountHeader).render())
        assert "Loading account" in header and stale.debtor.name not in header
        assert not screen.query_one(Timeline).entries
        assert len(arrived) == 1 and arrived[0].debtor.id == second
        screen._show = shown  # type: ignore[method-assign]
        screen._arrived(opened_first, stale, None)  # the first account's read, late
        await pilot.pause()
        assert screen.account is None
        shown(arrived[0])
        await pilot.pause()
        assert screen.account is not None and screen.account.debtor.id == second
        screen._arrived(opened_first, stale, None)
        await pilot.pause()
        assert screen.account.debtor.id == second


async def test_an_account_already_read_is_in_the_first_frame(
    seeded: Database, accounts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`n` reads the account with its claim: the screen shows it without reading it again."""
    debtor_id = accounts[KEPT_B]
    alice = get_agent(seeded, "alice")
    account = load_account(seeded, alice, debtor_id, now=FIXED_NOW)
    reads: list[int] = []

    def counted(*args: object, **kwargs: object) -> AccountView:
        reads.append(1)
        return load_account(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(account_module, "load_account", counted)
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        for _ in range(2):  # a new screen, then the kept one again
            screen = account_screen(app, seeded, alice, debtor_id, account)
            await app.push_screen(screen)
            assert screen.account is account
            assert "Balance" in str(screen.query_one(AccountHeader).render())
            assert screen.query_one(Timeline).entries == list(account.timeline)
            await _settle(pilot)
            assert reads == []
            await pilot.press("escape")
            await _settle(pilot)


async def test_a_kept_screen_in_use_is_not_taken(seeded: Database, accounts: list[int]) -> None:
    first, second = accounts[KEPT_A], accounts[KEPT_B]
    alice = get_agent(seeded, "alice")
    app = CollectApp(seeded, alice)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        kept = await _open_kept(pilot, seeded, first)
        other = account_screen(app, seeded, alice, second)
        assert other is not kept and kept.debtor_id == first
        bruno = get_agent(seeded, "bruno")
        await pilot.press("escape")
        await _settle(pilot)
        assert account_screen(app, seeded, bruno, second) is not kept  # another agent
