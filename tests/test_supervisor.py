"""The supervisor console's services on both engines, and the KPI formulas."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from collect_tui.domain import kpi
from collect_tui.domain.aging import bucket_of_due_date, days_past_due
from collect_tui.domain.priority import DEFAULT_FX_TO_BASE
from collect_tui.domain.rebalance import estimate_workload
from collect_tui.services.agents import AgentInfo, get_agent
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio
from collect_tui.services.supervisor import (
    AccountMatch,
    NotSupervisor,
    StalePlanError,
    StaleSettlementError,
    SupervisorError,
    apply_rebalance,
    decide_settlement,
    kpis,
    kpis_json,
    pending_settlements,
    plan_to_json,
    preview_rebalance,
    reassign,
    rebalance_plan_text,
    workloads,
)
from collect_tui.storage.models import (
    Agent,
    Assignment,
    AuditEntry,
    Contact,
    Debtor,
    Invoice,
    Payment,
    PaymentPlan,
    Promise,
    Settlement,
    Task,
)

NOW = datetime.now(UTC)


@pytest.fixture
def portfolio(db: Database) -> Database:
    """300 seeded accounts over alice, bruno and chen (plus supervisor and admin)."""
    seed_portfolio(db.engine, debtors=300, agents=3, seed=1, as_of=NOW.date())
    return db


def _owners(db: Database) -> dict[int, int | None]:
    with db.session() as session:
        return dict(session.execute(select(Debtor.id, Debtor.assigned_agent_id)).all())


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _add_settlement(db: Database, debtor_id: int, agent_id: int) -> int:
    with db.session() as session:
        settlement = Settlement(
            debtor_id=debtor_id,
            agent_id=agent_id,
            balance_at_offer=Decimal("1000.00"),
            amount=Decimal("600.00"),
            currency="USD",
            due_date=NOW.date() + timedelta(days=7),
            status="awaiting_approval",
            created_at=NOW - timedelta(days=2, hours=1),
        )
        session.add(settlement)
        session.flush()
        return settlement.id


# ------------------------------------------------------------------ permissions


def test_every_supervisor_function_refuses_an_agent(portfolio: Database) -> None:
    db = portfolio
    agent = get_agent(db, "alice")
    boss = get_agent(db, "supervisor")
    plan = preview_rebalance(db, boss, measure="count")
    settlement_id = _add_settlement(db, 1, agent.id)
    calls: list[Callable[[AgentInfo], object]] = [
        lambda who: workloads(db, who, now=NOW),
        lambda who: reassign(db, who, debtor_ids=[1], to_agent_id=None, reason="x"),
        lambda who: preview_rebalance(db, who, measure="count"),
        lambda who: apply_rebalance(db, who, plan, reason="x"),
        lambda who: pending_settlements(db, who),
        lambda who: decide_settlement(
            db, who, settlement_id, approve=True, note="", expected_version=1
        ),
        lambda who: kpis(db, who, today=NOW.date()),
    ]
    before = _owners(db)
    for call in calls:
        with pytest.raises(NotSupervisor, match="^Only supervisors can"):
            call(agent)
    assert _owners(db) == before
    # An admin may do what a supervisor does.
    admin = get_agent(db, "admin")
    assert workloads(db, admin, now=NOW)[-1].kind == "total"
    assert len(pending_settlements(db, admin)) == 1


# ------------------------------------------------------------------ workloads


def test_workloads_add_up_to_the_portfolio(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    rows = workloads(db, boss, now=NOW)
    agents = [r for r in rows if r.kind == "agent"]
    pool, total = rows[-2], rows[-1]
    assert [r.name for r in agents] == ["alice", "bruno", "chen"]  # no supervisor/admin rows
    assert (pool.kind, total.kind) == ("pool", "total")
    parts = [*agents, pool]
    with db.session() as session:
        debtors = session.scalar(select(func.count()).select_from(Debtor))
        by_currency = dict(
            session.execute(
                select(Debtor.currency, func.sum(Debtor.open_balance)).group_by(Debtor.currency)
            ).all()
        )
        pool_count = session.scalar(select(func.count()).where(Debtor.assigned_agent_id.is_(None)))
        callbacks = session.scalar(
            select(func.count()).where(
                Task.status == "open", Task.kind == "callback", Task.due_at <= NOW
            )
        )
    assert total.accounts == sum(r.accounts for r in parts) == debtors == 300
    assert pool.accounts == pool_count
    for currency, amount in by_currency.items():
        assert total.balance[currency] == Decimal(str(amount)).quantize(Decimal("0.01"))
        assert sum(r.balance.get(currency, Decimal(0)) for r in parts) == total.balance[currency]
    assert total.balance_base > 0
    assert abs(sum(r.balance_base for r in parts) - total.balance_base) <= Decimal("0.05")
    assert total.callbacks_due == sum(r.callbacks_due for r in parts) == callbacks
    for name in ("promises_due_today", "broken_promises", "contacts_today", "kept_30d"):
        assert getattr(total, name) == sum(getattr(r, name) for r in parts)


# ------------------------------------------------------------------ reassign


def test_reassign_by_filter_moves_exactly_the_matching_accounts(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    alice, chen = get_agent(db, "alice"), get_agent(db, "chen")
    today = NOW.date()
    with db.session() as session:
        rows = session.execute(
            select(
                Debtor.id, Debtor.assigned_agent_id, Debtor.oldest_due_date, Debtor.version
            ).where(Debtor.open_invoices > 0)
        ).all()
    expected = sorted(
        d
        for d, agent, due, _ in rows
        if agent == alice.id and due is not None and bucket_of_due_date(due, today) == "31-60"
    )
    assert expected, "the seed should give alice accounts in 31-60"
    versions = {d: v for d, _, _, v in rows}
    before = _owners(db)

    moved = reassign(
        db,
        boss,
        match=AccountMatch(from_agent_id=alice.id, bucket="31-60"),
        to_agent_id=chen.id,
        reason="alice on leave",
        today=today,
    )
    assert moved == len(expected)
    after = _owners(db)
    changed = sorted(d for d in after if after[d] != before[d])
    assert changed == expected
    assert all(after[d] == chen.id for d in expected)
    with db.session() as session:
        history = session.execute(
            select(
                Assignment.debtor_id,
                Assignment.from_agent_id,
                Assignment.to_agent_id,
                Assignment.by_agent_id,
                Assignment.reason,
            )
        ).all()
        assert sorted(h[0] for h in history) == expected
        assert {h[1:] for h in history} == {(alice.id, chen.id, boss.id, "alice on leave")}
        new_versions = dict(
            session.execute(select(Debtor.id, Debtor.version).where(Debtor.id.in_(expected))).all()
        )
        assert all(new_versions[d] == versions[d] + 1 for d in expected)
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "reassign")).all()
        assert len(audit) == 1
        assert audit[0].actor == "supervisor"
        assert audit[0].after is not None and audit[0].after["accounts"] == len(expected)

    # Running it again moves nothing (nothing matches any more).
    again = AccountMatch(from_agent_id=alice.id, bucket="31-60")
    assert reassign(db, boss, match=again, to_agent_id=chen.id, reason="again") == 0


def test_reassign_one_account_to_the_pool_and_refusals(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    bruno = get_agent(db, "bruno")
    owners = _owners(db)
    mine = sorted(d for d, a in owners.items() if a == bruno.id)
    assert reassign(db, boss, debtor_ids=[mine[0]], to_agent_id=None, reason="review") == 1
    assert _owners(db)[mine[0]] is None
    with db.session() as session:
        entry = session.scalars(select(AuditEntry)).one()
        assert entry.debtor_id == mine[0] and entry.before == {"from": {"bruno": 1}}

    history = _count(db, Assignment)
    with pytest.raises(SupervisorError, match="no account with id 999999"):
        reassign(db, boss, debtor_ids=[999_999], to_agent_id=bruno.id, reason="x")
    with pytest.raises(SupervisorError, match="reason"):
        reassign(db, boss, debtor_ids=[mine[1]], to_agent_id=None, reason="  ")
    with pytest.raises(SupervisorError, match="either"):
        reassign(db, boss, to_agent_id=None, reason="x")
    with pytest.raises(ValueError, match="at least one criterion"):
        AccountMatch()
    with db.session() as session:
        session.execute(update(Agent).where(Agent.name == "chen").values(active=False))
        session.execute(update(Agent).where(Agent.name == "alice").values(capacity=1))
    chen_id = get_agent(db, "bruno").id + 1  # seeded in order: alice, bruno, chen
    with pytest.raises(SupervisorError, match="inactive"):
        reassign(db, boss, debtor_ids=mine[1:3], to_agent_id=chen_id, reason="x")
    alice = get_agent(db, "alice")
    with pytest.raises(SupervisorError, match="capacity of 1"):
        reassign(db, boss, debtor_ids=mine[1:3], to_agent_id=alice.id, reason="x")
    # A filter on segment and time zone, to the pool.
    with db.session() as session:
        segment, zone = session.execute(
            select(Debtor.segment, Debtor.time_zone).where(Debtor.id == mine[1])
        ).one()
        expected = session.scalar(
            select(func.count()).where(
                Debtor.segment == segment,
                Debtor.time_zone == zone,
                Debtor.assigned_agent_id.is_not(None),
            )
        )
    match = AccountMatch(segment=segment, time_zone=zone)
    assert reassign(db, boss, match=match, to_agent_id=None, reason="x") == expected
    assert _count(db, Assignment) == history + expected


# ------------------------------------------------------------------ rebalance


def _pinned(db: Database) -> set[int]:
    with db.session() as session:
        promised = session.scalars(select(Promise.debtor_id).where(Promise.status == "pending"))
        called = session.scalars(
            select(Task.debtor_id).where(Task.status == "open", Task.kind == "callback")
        )
        return set(promised) | set(called)


def test_preview_then_apply_moves_exactly_the_plan(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    alice = get_agent(db, "alice")
    pinned = _pinned(db)
    before = _owners(db)
    alice_pinned = {d for d, a in before.items() if a == alice.id and d in pinned}
    assert pinned and alice_pinned, "the seed should have pinned accounts"

    plan = preview_rebalance(
        db, boss, measure="balance", include_pool=True, absent_agent_ids=[alice.id]
    )
    assert plan.moves and _owners(db) == before  # a preview writes nothing
    assert not any(m.debtor_id in pinned for m in plan.moves)
    assert {c.agent_id: c.present for c in plan.agents}[alice.id] is False
    text = rebalance_plan_text(plan)
    assert "alice (away)" in text and "(pool)" in text
    data = json.loads(json.dumps(plan_to_json(plan)))
    assert data["moved"] == len(plan.moves) and data["agents"][0]["agent"] == "alice"

    assert apply_rebalance(db, boss, plan, reason="alice away today") == len(plan.moves)
    after = _owners(db)
    planned = {m.debtor_id: m.to_agent for m in plan.moves}
    for debtor_id, owner in after.items():
        assert owner == planned.get(debtor_id, before[debtor_id])
    # Alice keeps exactly her pinned accounts; the pool keeps only pinned ones.
    assert {d for d, a in after.items() if a == alice.id} == alice_pinned
    assert all(d in pinned for d, a in after.items() if a is None)
    assert _count(db, Assignment) == len(plan.moves)
    assert _count(db, AuditEntry, AuditEntry.action == "rebalance") == 1


def test_a_stale_preview_is_refused(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    plan = preview_rebalance(db, boss, measure="count", include_pool=True)
    assert plan.moves
    first = plan.moves[0]
    other = next(c.agent_id for c in plan.agents if c.agent_id not in (first.to_agent, None))
    reassign(db, boss, debtor_ids=[first.debtor_id], to_agent_id=other, reason="by hand")
    before = _owners(db)
    with pytest.raises(StalePlanError, match="changed agent since the preview"):
        apply_rebalance(db, boss, plan, reason="too late")
    assert _owners(db) == before
    assert _count(db, Assignment) == 1  # only the manual move
    # Preview again, and it applies.
    fresh = preview_rebalance(db, boss, measure="count", include_pool=True)
    assert apply_rebalance(db, boss, fresh, reason="now") == fresh.moved


def test_rebalance_by_count_with_selected_agents(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    alice, bruno = get_agent(db, "alice"), get_agent(db, "bruno")
    today = NOW.date()
    plan = preview_rebalance(db, boss, measure="count", agent_ids=[alice.id, bruno.id], today=today)
    assert {c.agent_id for c in plan.agents} == {alice.id, bruno.id}
    assert plan.pool is None
    assert plan.spread_after <= 1
    # The loads read in SQL match the domain's formulas.
    work: dict[int, float] = defaultdict(float)
    balance: dict[int, Decimal] = defaultdict(Decimal)
    with db.session() as session:
        for agent_id, invoices, oldest, amount, currency in session.execute(
            select(
                Debtor.assigned_agent_id,
                Debtor.open_invoices,
                Debtor.oldest_due_date,
                Debtor.open_balance,
                Debtor.currency,
            ).where(Debtor.assigned_agent_id.in_([alice.id, bruno.id]))
        ):
            late = days_past_due(oldest, today) if oldest else 0
            work[agent_id] += estimate_workload(invoices, late)
            balance[agent_id] += amount * DEFAULT_FX_TO_BASE.get(currency, Decimal(1))
    for change in plan.agents:
        assert change.before.workload == pytest.approx(work[change.agent_id])
        assert abs(change.before.balance - balance[change.agent_id]) < Decimal("0.05")
    with pytest.raises(SupervisorError, match="no agent with id 9999"):
        preview_rebalance(db, boss, measure="count", agent_ids=[9999])


# ------------------------------------------------------------------ settlements


def test_settlement_approve_and_reject_check_the_version(portfolio: Database) -> None:
    db = portfolio
    boss = get_agent(db, "supervisor")
    alice = get_agent(db, "alice")
    first = _add_settlement(db, 1, alice.id)
    second = _add_settlement(db, 2, alice.id)
    views = pending_settlements(db, boss, now=NOW)
    assert [v.settlement_id for v in views] == [first, second]
    view = views[0]
    assert (view.agent_name, view.discount, view.discount_pct) == (
        "alice",
        Decimal("400.00"),
        Decimal("40.0"),
    )
    assert view.age_days == 2 and view.version == 1 and view.debtor_name

    with pytest.raises(StaleSettlementError, match="changed since you opened it"):
        decide_settlement(db, boss, first, approve=True, note="", expected_version=7)
    decided = decide_settlement(db, boss, first, approve=True, note="ok", expected_version=1)
    assert (decided.status, decided.decided_by, decided.version) == ("approved", "supervisor", 2)
    with pytest.raises(StaleSettlementError):  # the version the supervisor saw is gone
        decide_settlement(db, boss, first, approve=False, note="no", expected_version=1)
    with pytest.raises(SupervisorError, match="not awaiting approval"):
        decide_settlement(db, boss, first, approve=False, note="no", expected_version=2)
    with pytest.raises(SupervisorError, match="why"):
        decide_settlement(db, boss, second, approve=False, note=" ", expected_version=1)
    rejected = decide_settlement(
        db, boss, second, approve=False, note="discount too deep", expected_version=1
    )
    assert (rejected.status, rejected.decision_note) == ("rejected", "discount too deep")
    assert pending_settlements(db, boss) == []
    with db.session() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["settlement.approve", "settlement.reject"]


# ------------------------------------------------------------------ KPIs


def test_kpi_formulas_on_hand_made_numbers() -> None:
    assert kpi.dso(Decimal("2708"), Decimal("2108"), 28) == Decimal("36.0")
    assert kpi.dso(Decimal("100"), Decimal("0"), 30) is None
    assert kpi.cei(Decimal("1000"), Decimal("2108"), Decimal("2708"), Decimal("2108")) == Decimal(
        "40.0"
    )
    assert kpi.cei(Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0")) is None
    assert kpi.right_party_contact_rate(25, 100) == 0.25
    assert kpi.right_party_contact_rate(0, 0) is None
    assert kpi.promise_rate(10, 25) == 0.4
    assert kpi.kept_rate(6, 2, 2) == 0.6
    assert kpi.kept_rate(0, 0, 0) is None
    assert kpi.contacts_per_hour(45, 3) == 15.0
    assert kpi.collected_per_day(Decimal("100"), 3) == Decimal("33.33")
    with pytest.raises(TypeError):
        kpi.dso(1.5, Decimal(1), 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kpi.kept_rate(-1, 0, 0)


TODAY = date(2026, 3, 15)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _hand_made(db: Database) -> dict[str, int]:
    """A tiny ledger whose KPIs are worked out by hand in the test below."""
    with db.session() as session:
        boss = Agent(name="boss", display_name="Boss", role="supervisor")
        alice = Agent(name="alice", display_name="Alice", role="agent")
        bruno = Agent(name="bruno", display_name="Bruno", role="agent")
        session.add_all([boss, alice, bruno])
        session.flush()
        usd = Debtor(
            name="Ann",
            currency="USD",
            assigned_agent_id=alice.id,
            open_balance=Decimal("1100"),
            open_invoices=2,
        )
        eur = Debtor(
            name="Eva",
            currency="EUR",
            assigned_agent_id=bruno.id,
            open_balance=Decimal("100"),
            open_invoices=1,
        )
        session.add_all([usd, eur])
        session.flush()

        def invoice(
            debtor: Debtor,
            number: str,
            issued: date,
            due: date,
            total: str,
            amount_due: str,
            status: str = "open",
        ) -> Invoice:
            row = Invoice(
                debtor_id=debtor.id,
                number=number,
                issue_date=issued,
                due_date=due,
                currency=debtor.currency,
                total=Decimal(total),
                amount_due=Decimal(amount_due),
                status=status,
            )
            session.add(row)
            return row

        a = invoice(usd, "A", date(2026, 1, 10), date(2026, 2, 9), "1000", "600")
        b = invoice(usd, "B", date(2026, 2, 5), date(2026, 3, 7), "2000", "0", "paid")
        invoice(usd, "C", date(2026, 3, 2), date(2026, 4, 1), "500", "500")
        invoice(usd, "D", date(2026, 2, 10), date(2026, 3, 1), "9999", "0", "voided")
        invoice(eur, "E", date(2026, 2, 15), date(2026, 3, 20), "100", "100")
        session.flush()
        session.add_all(
            [
                Payment(
                    debtor_id=usd.id,
                    invoice_id=a.id,
                    amount=Decimal("400"),
                    currency="USD",
                    paid_on=date(2026, 2, 20),
                ),
                Payment(
                    debtor_id=usd.id,
                    invoice_id=b.id,
                    amount=Decimal("2000"),
                    currency="USD",
                    paid_on=date(2026, 3, 1),
                ),
            ]
        )

        def contact(
            agent: Agent,
            at: datetime,
            conversation: bool,
            direction: str = "outbound",
            channel: str = "call",
        ) -> None:
            session.add(
                Contact(
                    debtor_id=usd.id,
                    agent_id=agent.id,
                    channel=channel,
                    direction=direction,
                    started_at=at,
                    disposition="x",
                    conversation=conversation,
                )
            )

        contact(alice, _at(date(2026, 3, 10), 10), False)
        contact(alice, _at(date(2026, 3, 10), 10, 5), True)
        contact(alice, _at(TODAY, 9, 10), True)
        contact(alice, _at(TODAY, 9, 40), False)
        contact(alice, _at(TODAY, 11, 5), True, direction="inbound")
        contact(alice, _at(date(2026, 1, 1), 10), True)  # outside the window
        contact(alice, _at(date(2026, 3, 11), 10), False, channel="email")
        contact(bruno, _at(date(2026, 3, 14), 15), True)

        old = _at(date(2026, 1, 1), 12)

        def promise(
            agent: Agent,
            due: date,
            status: str,
            created: datetime = old,
            plan_id: int | None = None,
        ) -> None:
            session.add(
                Promise(
                    debtor_id=usd.id,
                    agent_id=agent.id,
                    amount=Decimal("100"),
                    currency="USD",
                    due_date=due,
                    status=status,
                    created_at=created,
                    plan_id=plan_id,
                )
            )

        promise(alice, date(2026, 3, 16), "pending", created=_at(TODAY, 9, 12))
        plan = PaymentPlan(
            debtor_id=usd.id,
            agent_id=alice.id,
            total=Decimal("200"),
            currency="USD",
            frequency="monthly",
            first_date=date(2026, 4, 1),
            installment_count=2,
            created_at=_at(date(2026, 3, 12), 10),
        )
        session.add(plan)
        session.flush()
        promise(alice, date(2026, 4, 1), "pending", _at(date(2026, 3, 12), 10), plan.id)
        promise(alice, date(2026, 5, 1), "pending", _at(date(2026, 3, 12), 10), plan.id)
        promise(alice, date(2026, 3, 1), "kept")
        promise(alice, date(2026, 2, 20), "broken")
        promise(alice, date(2026, 3, 5), "partially_kept")
        promise(alice, date(2026, 1, 5), "kept")  # due outside the window
        promise(bruno, date(2026, 3, 10), "broken")
        return {"boss": boss.id, "alice": alice.id, "bruno": bruno.id}


def test_kpis_on_a_hand_made_ledger(db: Database) -> None:
    ids = _hand_made(db)
    boss = get_agent(db, "boss")
    report = kpis(db, boss, today=TODAY, months=2)

    aging = {line.bucket: line for line in report.aging}
    assert aging["current"].balance_base == Decimal("608.00")  # C 500 + E 100 EUR at 1.08
    assert (aging["31-60"].invoices, aging["31-60"].balance_base) == (1, Decimal("600.00"))
    assert report.open_balance_base == Decimal("1208.00")

    assert report.collected_total == Decimal("2400.00")
    assert report.collected_per_day == Decimal("80.00")
    by_day = {d.day: d.amount_base for d in report.collected_by_day}
    assert len(by_day) == 30 and by_day[date(2026, 3, 1)] == Decimal("2000.00")

    feb, mar = report.months
    assert (feb.month, feb.days, mar.month, mar.days) == ("2026-02", 28, "2026-03", 15)
    assert feb.beginning_receivables == Decimal("1000.00")
    assert feb.credit_sales == Decimal("2108.00")
    assert feb.ending_receivables == Decimal("2708.00")
    assert feb.ending_current_receivables == Decimal("2108.00")
    assert (feb.dso, feb.cei) == (Decimal("36.0"), Decimal("40.0"))
    assert (mar.ending_receivables, mar.ending_current_receivables) == (
        Decimal("1208.00"),
        Decimal("608.00"),
    )
    assert (mar.dso, mar.cei) == (Decimal("36.2"), Decimal("76.9"))

    agents = {a.name: a for a in report.agents}
    alice, bruno = agents["alice"], agents["bruno"]
    assert (alice.call_attempts, alice.right_party_contacts, alice.promises) == (4, 2, 2)
    assert (alice.right_party_contact_rate, alice.promise_rate) == (0.5, 1.0)
    assert (alice.kept, alice.partially_kept, alice.broken) == (1, 1, 1)
    assert alice.kept_rate == pytest.approx(1 / 3)
    assert (alice.contacts_today, alice.active_hours_today, alice.contacts_per_hour) == (3, 2, 1.5)
    assert (bruno.right_party_contact_rate, bruno.promise_rate, bruno.kept_rate) == (1.0, 0.0, 0.0)
    assert report.team.call_attempts == 5 and report.team.promise_rate == pytest.approx(2 / 3)
    hours = {h.hour: (h.contacts, h.right_party_contacts) for h in report.contacts_by_hour}
    assert hours[9] == (2, 1) and hours[11] == (1, 1) and sum(c for c, _ in hours.values()) == 3

    data = json.loads(json.dumps(kpis_json(report)))
    assert data["months"][0]["dso"] == "36.0" and data["collected_total"] == "2400.00"
    assert data["agents"][0]["right_party_contact_rate"] == 0.5

    # Workloads over the same ledger, seen at 12:00 on the day.
    rows = {r.name: r for r in workloads(db, boss, now=_at(TODAY, 12))}
    assert rows["alice"].accounts == 1 and rows["alice"].contacts_today == 3
    assert rows["alice"].right_party_today == 2
    assert rows["bruno"].balance == {"EUR": Decimal("100.00")}
    assert rows["bruno"].balance_base == Decimal("108.00")
    assert (rows["alice"].kept_30d, rows["alice"].broken_30d) == (1, 1)
    assert rows["alice"].broken_promises == 2  # broken, due in 30 days, on her account
    assert rows["(total)"].accounts == 2
    assert Counter(r.kind for r in rows.values()) == {"agent": 2, "pool": 1, "total": 1}
    assert ids["boss"] not in {r.agent_id for r in rows.values()}
