"""The debtor workspace on both engines: reads, writes, permissions, versions, atomicity."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import exists, func, select, update

from collect_tui import clock
from collect_tui.services import workspace
from collect_tui.services.agents import AgentInfo, get_agent
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio
from collect_tui.services.workspace import (
    TIMELINE_KINDS,
    AccessDenied,
    Callback,
    PromiseInput,
    StaleEdit,
    ValidationFailed,
    create_plan,
    decide_settlement,
    evaluate_promises,
    load_account,
    load_timeline,
    log_contact,
    make_promise,
    open_dispute,
    preview_plan,
    propose_settlement,
    resolve_dispute,
    schedule_callback,
)
from collect_tui.storage.models import (
    AuditEntry,
    Contact,
    Debtor,
    Dispute,
    Invoice,
    OutboxMessage,
    Payment,
    PaymentPlan,
    Promise,
    Settlement,
    Task,
)
from collect_tui.storage.scoring import rescore

D = Decimal
TODAY = datetime.now(UTC).date()
# Midday in the Americas and afternoon in Europe: inside every contact window the tests'
# US accounts have, whatever the time of day the suite runs.
NOON_IN_THE_AMERICAS = datetime.combine(TODAY, time(17, 0), UTC)


@pytest.fixture(autouse=True)
def _inside_contact_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()  # a clock that still moves, so events keep their order
    monkeypatch.setattr(
        clock, "now", lambda: NOON_IN_THE_AMERICAS + timedelta(milliseconds=next(ticks))
    )


@pytest.fixture
def portfolio(db: Database) -> Database:
    seed_portfolio(db.engine, debtors=120, agents=2, seed=1, as_of=TODAY)
    with db.session() as session:
        rescore(session.connection(), today=TODAY, now=datetime.now(UTC))
    return db


def _agent(db: Database, name: str) -> AgentInfo:
    return get_agent(db, name)


def _account(db: Database, agent: AgentInfo, *, min_balance: str = "700") -> int:
    """A clean (no flags) account of ``agent`` with at least two open invoices."""
    with db.session() as session:
        found = session.scalar(
            select(Debtor.id)
            .where(
                Debtor.assigned_agent_id == agent.id,
                Debtor.country == "US",
                Debtor.region != "MA",
                Debtor.open_balance >= D(min_balance),
                Debtor.open_invoices >= 2,
                Debtor.cease_communication.is_(False),
                Debtor.dispute.is_(False),
                Debtor.bankruptcy.is_(False),
                Debtor.deceased.is_(False),
            )
            .order_by(Debtor.id)
            .limit(1)
        )
    assert found is not None
    return found


def _version(db: Database, debtor_id: int) -> int:
    with db.session() as session:
        return session.scalar(select(Debtor.version).where(Debtor.id == debtor_id)) or 0


def _counts(db: Database, debtor_id: int) -> dict[str, Any]:
    tables = (Contact, Promise, PaymentPlan, Settlement, Dispute, Task, OutboxMessage)
    with db.session() as session:
        counts: dict[str, Any] = {
            model.__tablename__: session.scalar(
                select(func.count()).select_from(model).where(model.debtor_id == debtor_id)
            )
            for model in tables
        }
        counts["audit"] = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.debtor_id == debtor_id)
        )
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        counts["debtor"] = (debtor.version, debtor.dispute, debtor.next_action_at)
    return counts


def _outbox(db: Database, debtor_id: int) -> list[OutboxMessage]:
    with db.session() as session:
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.debtor_id == debtor_id)
                .order_by(OutboxMessage.id)
            )
        )


def _oldest_invoice(db: Database, debtor_id: int) -> Invoice:
    with db.session() as session:
        invoice = session.scalars(
            select(Invoice)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == "open")
            .order_by(Invoice.due_date, Invoice.id)
        ).first()
    assert invoice is not None
    return invoice


# --- reading ------------------------------------------------------------------------------


def test_load_account_shows_who_what_and_freshness(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    view = load_account(portfolio, alice, debtor_id)
    assert view.debtor.id == debtor_id
    assert view.debtor.assigned_agent == "alice"
    assert view.debtor.local_time.tzinfo is not None
    assert view.version == _version(portfolio, debtor_id)
    assert len(view.invoices) >= 2
    assert [i.due_date for i in view.invoices] == sorted(i.due_date for i in view.invoices)
    assert (
        sum(view.totals_by_bucket.values())
        == view.balance
        == sum(i.amount_due for i in view.invoices)
    )
    assert view.freshness.invoices_synced_at is not None
    assert view.freshness.unapplied_payments == 0
    times = [e.at for e in view.timeline]
    assert times == sorted(times, reverse=True)


def test_freshness_counts_payments_not_applied(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    with portfolio.session() as session:
        session.add(
            Payment(
                debtor_id=debtor_id, amount=D("12.50"), currency="USD", paid_on=TODAY, applied=False
            )
        )
    view = load_account(portfolio, alice, debtor_id)
    assert view.freshness.unapplied_payments == 1
    assert view.freshness.unapplied_amount == D("12.50")
    assert view.timeline[0].kind == "payment" and "not applied" in view.timeline[0].detail


# --- writes: rows, audit, outbox, rescore ---------------------------------------------------


def test_log_contact_writes_contact_audit_outbox_and_rescores(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    version = _version(portfolio, debtor_id)
    contact_id = log_contact(
        portfolio,
        alice,
        debtor_id,
        version,
        channel="call",
        direction="outbound",
        address="+1 555 0100",
        disposition="right_party",
        notes="Talked about the bill",
    )
    assert _version(portfolio, debtor_id) > version
    with portfolio.session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        assert (contact.disposition, contact.conversation, contact.agent_id) == (
            "right_party",
            True,
            alice.id,
        )
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "contact")
            .where(AuditEntry.entity_id == str(contact_id))
        ).one()
        assert entry.actor == "alice" and entry.action == "contact.logged"
        assert entry.debtor_id == debtor_id and entry.after["disposition"] == "right_party"
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        assert debtor.last_contact_at == contact.started_at
        assert debtor.scored_at is not None
    (note,) = _outbox(portfolio, debtor_id)
    assert note.kind == "history_note"
    assert note.invoice_external_id == _oldest_invoice(portfolio, debtor_id).external_id
    assert "Right-party contact" in note.payload["details"]
    assert len(note.payload["details"]) <= 250
    assert re.fullmatch(r"[0-9a-f]{32}", note.idempotency_key)


def test_promise_during_a_contact_is_one_transaction(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    due = TODAY + timedelta(days=7)
    contact_id = log_contact(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        channel="call",
        direction="outbound",
        disposition="promise",
        notes="x" * 400,
        promise=PromiseInput(D("100.00"), due),
    )
    with portfolio.session() as session:
        promise = session.scalars(select(Promise).where(Promise.contact_id == contact_id)).one()
        assert (promise.amount, promise.due_date, promise.status) == (D("100.00"), due, "pending")
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None and debtor.promise_due_on == due
    kinds = {m.kind: m for m in _outbox(portfolio, debtor_id)}
    assert kinds["expected_payment_date"].payload == {"date": due.isoformat()}
    assert len(kinds["history_note"].payload["details"]) <= 250
    assert "promised USD 100.00" in kinds["history_note"].payload["details"]


def test_contact_inputs_are_checked_before_anything_is_written(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    version = _version(portfolio, debtor_id)
    before = _counts(portfolio, debtor_id)
    common = {"channel": "call", "direction": "outbound"}
    with pytest.raises(ValidationFailed) as caught:
        log_contact(portfolio, alice, debtor_id, version, disposition="promise", **common)
    assert caught.value.errors[0].field == "promise"
    with pytest.raises(ValidationFailed, match="callback"):
        log_contact(
            portfolio, alice, debtor_id, version, disposition="callback_requested", **common
        )
    with pytest.raises(ValueError, match="unknown disposition"):
        log_contact(portfolio, alice, debtor_id, version, disposition="shrug", **common)
    with pytest.raises(ValidationFailed, match="balance"):
        log_contact(
            portfolio,
            alice,
            debtor_id,
            version,
            disposition="promise",
            **common,
            promise=PromiseInput(D("99999999"), TODAY + timedelta(days=3)),
        )
    with pytest.raises(ValidationFailed, match="past"):
        make_promise(
            portfolio, alice, debtor_id, version, amount=D("10"), due_date=TODAY - timedelta(days=3)
        )
    assert _counts(portfolio, debtor_id) == before


def test_callback_request_and_cease_request(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    tomorrow = TODAY + timedelta(days=2)
    log_contact(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        channel="call",
        direction="inbound",
        disposition="callback_requested",
        next_action=Callback(tomorrow, time(10, 0)),
    )
    with portfolio.session() as session:
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None and debtor.next_action == "callback"
        task = session.scalars(
            select(Task).where(Task.debtor_id == debtor_id, Task.status == "open")
        ).one()
        assert debtor.next_action_at == task.due_at
    log_contact(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        channel="call",
        direction="inbound",
        disposition="cease_requested",
    )
    view = load_account(portfolio, alice, debtor_id)
    assert "cease_communication" in view.debtor.flags


def test_make_promise_replaces_the_pending_one(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    invoice = _oldest_invoice(portfolio, debtor_id)
    first = make_promise(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        amount=D("50"),
        due_date=TODAY + timedelta(days=5),
    )
    second = make_promise(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        amount=D("60"),
        due_date=TODAY + timedelta(days=9),
    )
    with portfolio.session() as session:
        assert session.get(Promise, first).status == "cancelled"  # type: ignore[union-attr]
        assert session.get(Promise, second).status == "pending"  # type: ignore[union-attr]
    messages = _outbox(portfolio, debtor_id)
    assert [m.kind for m in messages].count("expected_payment_date") == 2
    assert {m.invoice_external_id for m in messages} == {invoice.external_id}
    assert [p.id for p in load_account(portfolio, alice, debtor_id).promises] == [second]


def test_create_plan_saves_installments_as_promises(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    first = TODAY + timedelta(days=3)
    before = _counts(portfolio, debtor_id)
    preview = preview_plan(
        portfolio,
        alice,
        debtor_id,
        first_date=first,
        frequency="monthly",
        count=4,
        total=D("400.01"),
    )
    assert sum(i.amount for i in preview) == D("400.01")
    assert _counts(portfolio, debtor_id) == before  # a preview saves nothing
    plan_id = create_plan(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        first_date=first,
        frequency="monthly",
        count=4,
        total=D("400.01"),
    )
    with portfolio.session() as session:
        rows = session.scalars(
            select(Promise).where(Promise.plan_id == plan_id).order_by(Promise.installment_no)
        ).all()
        assert [(r.installment_no, r.due_date, r.amount) for r in rows] == [
            (i.no, i.due_date, i.amount) for i in preview
        ]
        plan = session.get(PaymentPlan, plan_id)
        assert plan is not None and plan.installment_count == 4 and plan.total == D("400.01")
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "plan.created", AuditEntry.entity_id == str(plan_id))
            )
            == 1
        )
    kinds = {m.kind: m for m in _outbox(portfolio, debtor_id)}
    assert kinds["expected_payment_date"].payload == {"date": first.isoformat()}
    assert "4 monthly installments" in kinds["history_note"].payload["details"]
    view = load_account(portfolio, alice, debtor_id)
    assert view.plan is not None and len(view.plan.installments) == 4
    with pytest.raises(ValidationFailed, match="balance"):
        preview_plan(
            portfolio,
            alice,
            debtor_id,
            first_date=first,
            frequency="weekly",
            count=2,
            total=view.balance + 1,
        )
    with pytest.raises(ValidationFailed, match="1 to 120"):
        preview_plan(portfolio, alice, debtor_id, first_date=first, frequency="weekly", count=500)


def test_settlement_above_the_limit_awaits_approval(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")  # seeded with a 500.00 discount limit
    supervisor = _agent(portfolio, "supervisor")
    debtor_id = _account(portfolio, alice, min_balance="700")
    balance = load_account(portfolio, alice, debtor_id).balance
    due = TODAY + timedelta(days=10)
    within = propose_settlement(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        amount=balance - D("100"),
        due_date=due,
    )
    above = propose_settlement(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        amount=balance - D("600"),
        due_date=due,
    )
    with portfolio.session() as session:
        assert session.get(Settlement, within).status == "cancelled"  # type: ignore[union-attr]
        row = session.get(Settlement, above)
        assert row is not None and row.status == "awaiting_approval"
        assert row.balance_at_offer == balance and row.decided_by_id is None
        invoices = session.scalars(select(Invoice.amount_due).where(Invoice.debtor_id == debtor_id))
        assert sum(invoices) >= balance  # never applied automatically
    with pytest.raises(ValidationFailed, match="less than the balance"):
        propose_settlement(
            portfolio,
            alice,
            debtor_id,
            _version(portfolio, debtor_id),
            amount=balance,
            due_date=due,
        )
    with pytest.raises(AccessDenied):
        decide_settlement(
            portfolio,
            alice,
            debtor_id,
            _version(portfolio, debtor_id),
            settlement_id=above,
            approve=True,
        )
    decide_settlement(
        portfolio,
        supervisor,
        debtor_id,
        _version(portfolio, debtor_id),
        settlement_id=above,
        approve=True,
        note="ok",
    )
    with portfolio.session() as session:
        row = session.get(Settlement, above)
        assert row is not None and (row.status, row.decided_by_id) == ("approved", supervisor.id)


def test_disputes_flag_the_account_and_go_to_the_outbox(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    view = load_account(portfolio, alice, debtor_id)
    invoice_ids = [i.id for i in view.invoices[:2]]
    ids = open_dispute(
        portfolio,
        alice,
        debtor_id,
        view.version,
        invoice_ids=invoice_ids,
        reason="Goods arrived damaged",
    )
    assert len(ids) == 2
    view = load_account(portfolio, alice, debtor_id)
    assert "dispute" in view.debtor.flags
    assert {d.invoice_id for d in view.disputes} == set(invoice_ids)
    assert all(i.disputed for i in view.invoices if i.id in invoice_ids)
    disputes = [m for m in _outbox(portfolio, debtor_id) if m.kind == "dispute"]
    assert {m.invoice_external_id for m in disputes} == {i.external_id for i in view.invoices[:2]}
    assert all("damaged" in m.payload["details"] for m in disputes)
    with pytest.raises(ValidationFailed, match="already disputed"):
        open_dispute(
            portfolio, alice, debtor_id, view.version, invoice_ids=invoice_ids[:1], reason="again"
        )
    for dispute_id in ids:
        resolve_dispute(
            portfolio,
            alice,
            debtor_id,
            _version(portfolio, debtor_id),
            dispute_id=dispute_id,
            resolution="Credit note issued",
        )
    assert "dispute" not in load_account(portfolio, alice, debtor_id).debtor.flags


def test_callback_in_the_debtors_zone_is_stored_in_utc_across_dst(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    with portfolio.session() as session:
        session.execute(
            update(Debtor).where(Debtor.id == debtor_id).values(time_zone="America/New_York")
        )
    now = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)  # Wednesday; DST starts Sunday 14 March
    before_dst = schedule_callback(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        local_date=date(2027, 3, 12),
        local_time=time(14, 0),
        now=now,
    )
    after_dst = schedule_callback(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        local_date=date(2027, 3, 15),
        local_time=time(14, 0),
        now=now,
    )
    with portfolio.session() as session:
        first, second = session.get(Task, before_dst), session.get(Task, after_dst)
        assert first is not None and second is not None
        assert first.due_at == datetime(2027, 3, 12, 19, 0, tzinfo=UTC)  # EST, UTC-5
        assert second.due_at == datetime(2027, 3, 15, 18, 0, tzinfo=UTC)  # EDT, UTC-4
        assert (first.status, second.status, second.kind) == ("cancelled", "open", "callback")
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        assert (debtor.next_action, debtor.next_action_at) == ("callback", second.due_at)
    version = _version(portfolio, debtor_id)
    with pytest.raises(ValidationFailed, match="does not exist"):  # skipped by the clocks
        schedule_callback(
            portfolio,
            alice,
            debtor_id,
            version,
            local_date=date(2027, 3, 14),
            local_time=time(2, 30),
            now=now,
        )
    with pytest.raises(ValidationFailed, match="past"):
        schedule_callback(
            portfolio,
            alice,
            debtor_id,
            version,
            local_date=date(2027, 3, 10),
            local_time=time(9, 0),
            now=now,
        )


# --- atomicity ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["_outbox", "rescore"])
def test_an_error_in_the_middle_leaves_nothing(
    portfolio: Database, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    before = _counts(portfolio, debtor_id)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(workspace, where, boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        log_contact(
            portfolio,
            alice,
            debtor_id,
            before["debtor"][0],
            channel="call",
            direction="outbound",
            disposition="promise",
            notes="will pay",
            promise=PromiseInput(D("20"), TODAY + timedelta(days=4)),
            next_action=Callback(TODAY + timedelta(days=2), time(11, 0)),
        )
    with pytest.raises(RuntimeError, match="disk on fire"):
        open_dispute(
            portfolio,
            alice,
            debtor_id,
            before["debtor"][0],
            invoice_ids=[_oldest_invoice(portfolio, debtor_id).id],
            reason="no",
        )
    assert _counts(portfolio, debtor_id) == before


# --- permissions and versions -------------------------------------------------------------


def test_agents_work_only_their_own_accounts(portfolio: Database) -> None:
    alice, bruno = _agent(portfolio, "alice"), _agent(portfolio, "bruno")
    supervisor = _agent(portfolio, "supervisor")
    brunos = _account(portfolio, bruno)
    version = _version(portfolio, brunos)
    with pytest.raises(AccessDenied):
        load_account(portfolio, alice, brunos)
    with pytest.raises(AccessDenied):
        load_timeline(portfolio, alice, brunos)
    with pytest.raises(AccessDenied):
        log_contact(
            portfolio,
            alice,
            brunos,
            version,
            channel="call",
            direction="outbound",
            disposition="no_answer",
        )
    assert _version(portfolio, brunos) == version
    assert load_account(portfolio, supervisor, brunos).debtor.assigned_agent == "bruno"
    log_contact(
        portfolio,
        supervisor,
        brunos,
        version,
        channel="call",
        direction="outbound",
        disposition="no_answer",
    )
    assert _version(portfolio, brunos) > version


def test_second_save_on_the_same_version_is_stale(portfolio: Database) -> None:
    alice, supervisor = _agent(portfolio, "alice"), _agent(portfolio, "supervisor")
    debtor_id = _account(portfolio, alice)
    version = load_account(portfolio, alice, debtor_id).version
    log_contact(
        portfolio,
        supervisor,
        debtor_id,
        version,
        channel="call",
        direction="outbound",
        disposition="no_answer",
    )
    before = _counts(portfolio, debtor_id)
    with pytest.raises(StaleEdit) as caught:
        make_promise(
            portfolio, alice, debtor_id, version, amount=D("10"), due_date=TODAY + timedelta(days=2)
        )
    message = str(caught.value)
    assert "changed since you opened it (by supervisor at " in message
    assert message.endswith("reload to see the change.")
    assert caught.value.current_version == _version(portfolio, debtor_id)
    assert _counts(portfolio, debtor_id) == before


def test_a_concurrent_save_between_read_and_write_is_stale(
    portfolio: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, other = _agent(portfolio, "alice"), _agent(portfolio, "supervisor")
    debtor_id = _account(portfolio, alice)
    version = _version(portfolio, debtor_id)
    contacts = _counts(portfolio, debtor_id)["contacts"]
    real_check = workspace._access_verdict
    raced = []

    def check_then_race(session: Any, agent: AgentInfo, target: int, *found: Any) -> Debtor:
        debtor = real_check(session, agent, target, *found)  # read at ``version``
        if not raced:  # another person saves before this transaction writes
            raced.append(True)
            log_contact(
                portfolio,
                other,
                target,
                version,
                channel="call",
                direction="outbound",
                disposition="no_answer",
            )
        return debtor

    monkeypatch.setattr(workspace, "_access_verdict", check_then_race)
    with pytest.raises(StaleEdit, match="by supervisor"):
        log_contact(
            portfolio,
            alice,
            debtor_id,
            version,
            channel="call",
            direction="outbound",
            disposition="right_party",
        )
    assert _counts(portfolio, debtor_id)["contacts"] == contacts + 1  # only the winner's


# --- timeline and promise evaluation ------------------------------------------------------


def test_timeline_is_newest_first_filterable_and_pages(portfolio: Database) -> None:
    alice = _agent(portfolio, "alice")
    debtor_id = _account(portfolio, alice)
    for disposition in ("no_answer", "left_message", "right_party"):
        log_contact(
            portfolio,
            alice,
            debtor_id,
            _version(portfolio, debtor_id),
            channel="call",
            direction="outbound",
            disposition=disposition,
        )
    make_promise(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        amount=D("25"),
        due_date=TODAY + timedelta(days=6),
    )
    schedule_callback(
        portfolio,
        alice,
        debtor_id,
        _version(portfolio, debtor_id),
        local_date=TODAY + timedelta(days=3),
        local_time=time(12, 0),
    )
    everything = load_account(portfolio, alice, debtor_id).timeline
    assert [e.at for e in everything] == sorted((e.at for e in everything), reverse=True)
    # The seed's sync stamp is real time, the agent's events the pinned clock's: which is
    # newer depends on when the suite runs, so it is left out of the order checked here.
    timeline = [e for e in everything if e.kind != "sync"]
    worked = set(TIMELINE_KINDS) - {"sync"}
    assert [e.kind for e in timeline[:5]] == [
        "callback",
        "promise",
        "contact",
        "contact",
        "contact",
    ]
    assert timeline[2].title == "Call outbound: Right-party contact"
    assert timeline[1].title.startswith("Promise USD 25.00 by ")
    contacts = load_timeline(portfolio, alice, debtor_id, kinds={"contact"})
    assert {e.kind for e in contacts} == {"contact"}
    page = load_timeline(portfolio, alice, debtor_id, kinds=worked, limit=2)
    rest = load_timeline(portfolio, alice, debtor_id, before=page[-1].at, limit=100)
    assert page == list(timeline[:2])
    assert all(e.at < page[-1].at for e in rest)
    with pytest.raises(ValueError, match="unknown timeline kinds"):
        load_timeline(portfolio, alice, debtor_id, kinds={"gossip"})


def test_evaluate_promises_marks_kept_and_broken_and_raises_priority(
    portfolio: Database,
) -> None:
    alice = _agent(portfolio, "alice")
    paid_lately = exists().where(Payment.debtor_id == Debtor.id, Payment.paid_on >= TODAY)
    with portfolio.session() as session:  # two clean accounts without a payment today
        kept_id, broken_id = session.scalars(
            select(Debtor.id)
            .where(
                Debtor.assigned_agent_id == alice.id,
                Debtor.open_balance >= 200,
                Debtor.cease_communication.is_(False),
                Debtor.dispute.is_(False),
                Debtor.bankruptcy.is_(False),
                Debtor.deceased.is_(False),
                ~paid_lately,
            )
            .order_by(Debtor.id)
            .limit(2)
        ).all()
    due = TODAY + timedelta(days=2)
    kept_promise = make_promise(
        portfolio, alice, kept_id, _version(portfolio, kept_id), amount=D("100"), due_date=due
    )
    broken_promise = make_promise(
        portfolio, alice, broken_id, _version(portfolio, broken_id), amount=D("100"), due_date=due
    )
    with portfolio.session() as session:
        session.add(
            Payment(
                debtor_id=kept_id, amount=D("100"), currency="USD", paid_on=due + timedelta(days=1)
            )
        )
    later = due + timedelta(days=4)  # past the 3-day grace period
    later_now = datetime.combine(later, time(12), UTC)
    with portfolio.session() as session:
        rescore(session.connection(), today=later, now=later_now, debtor_ids=[broken_id])
        score_before = session.scalar(select(Debtor.priority_score).where(Debtor.id == broken_id))
    both = [kept_id, broken_id]
    assert evaluate_promises(portfolio, today=due, debtor_ids=both, now=later_now) == 0
    changed = evaluate_promises(portfolio, today=later, debtor_ids=both, now=later_now)
    assert changed == 2
    with portfolio.session() as session:
        kept = session.get(Promise, kept_promise)
        broken = session.get(Promise, broken_promise)
        assert kept is not None and (kept.status, kept.amount_paid) == ("kept", D("100"))
        assert broken is not None and broken.status == "broken"
        debtor = session.get(Debtor, broken_id)
        assert debtor is not None and debtor.broken_promise_on == due
        assert debtor.priority_score > (score_before or 0)
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.actor == "system", AuditEntry.entity_id == str(broken_promise))
            )
            == 1
        )
