"""The synthetic portfolio and the report over it."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from collect_tui.domain.aging import BUCKETS
from collect_tui.services import seed as seed_module
from collect_tui.services.database import Database, open_database
from collect_tui.services.report import portfolio_report
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Agent, Debtor, Invoice

AS_OF = date(2026, 11, 2)


def _fingerprint(db: Database) -> list[tuple]:
    """A few aggregates that change if any generated value changes."""
    with db.engine.connect() as conn:
        return [
            tuple(conn.execute(text(sql)).one())
            for sql in (
                "SELECT COUNT(*), SUM(open_balance), MIN(name), MAX(name) FROM debtors",
                "SELECT COUNT(*), SUM(amount_due), SUM(total), MAX(number) FROM invoices",
                "SELECT COUNT(*), SUM(amount) FROM payments",
                "SELECT COUNT(*), MAX(started_at) FROM contacts",
                "SELECT COUNT(*), SUM(amount) FROM promises",
                "SELECT COUNT(*) FROM phones WHERE do_not_call",
            )
        ]


def test_seed_writes_a_realistic_consistent_portfolio(db: Database) -> None:
    stats = seed_portfolio(db.engine, debtors=600, agents=3, seed=7, as_of=AS_OF)
    assert stats.rows["debtors"] == 600
    assert 600 <= stats.rows["invoices"] <= 600 * 8
    with db.session() as session:
        roles = dict(session.execute(select(Agent.role, func.count()).group_by(Agent.role)).all())
        assert roles == {"agent": 3, "supervisor": 1, "admin": 1}
        countries = session.scalar(select(func.count(func.distinct(Debtor.country))))
        assert countries >= 5
        zones = session.scalar(select(func.count(func.distinct(Debtor.time_zone))))
        assert zones >= 6
        assert session.scalar(select(func.count()).where(Debtor.is_company)) > 0
        assert session.scalar(select(func.count()).where(Debtor.cease_communication)) >= 0
        unassigned = session.scalar(select(func.count()).where(Debtor.assigned_agent_id.is_(None)))
        assert 0 < unassigned < 600
        # The cached balance equals the sum of open invoices, for every debtor.
        mismatched = session.scalar(
            select(func.count()).select_from(
                select(Debtor.id)
                .outerjoin(Invoice, (Invoice.debtor_id == Debtor.id) & (Invoice.status == "open"))
                .group_by(Debtor.id, Debtor.open_balance)
                .having(
                    func.abs(func.coalesce(func.sum(Invoice.amount_due), 0) - Debtor.open_balance)
                    > Decimal("0.001")
                )
                .subquery()
            )
        )
        assert mismatched == 0
        statuses = set(session.scalars(select(Invoice.status).distinct()))
        assert {"open", "paid"} <= statuses
    report = portfolio_report(db, today=AS_OF)
    assert report.debtors == 600
    assert all(report.aging[bucket]["invoices"] > 0 for bucket in BUCKETS)
    assert {"kept", "broken"} & set(report.promises)


def test_seed_is_deterministic_for_a_seed(tmp_path) -> None:
    prints = []
    for run, seed in enumerate((5, 5, 6)):
        database = open_database(f"sqlite:///{tmp_path}/run{run}.db")
        seed_portfolio(database.engine, debtors=300, agents=2, seed=seed, as_of=AS_OF)
        prints.append(_fingerprint(database))
        database.close()
    assert prints[0] == prints[1]
    assert prints[0] != prints[2]


def test_parallel_seed_equals_in_process_seed(tmp_path, monkeypatch) -> None:
    """Parts generated in worker processes and merged give the very same rows."""
    monkeypatch.setattr(seed_module, "PART_MIN", 400)
    prints = []
    for workers in (1, 2):
        database = open_database(f"sqlite:///{tmp_path}/w{workers}.db")
        seed_portfolio(
            database.engine, debtors=1500, agents=3, seed=11, as_of=AS_OF, workers=workers
        )
        with database.engine.connect() as conn:
            orphans = conn.execute(
                text(
                    "SELECT COUNT(*) FROM invoices i LEFT JOIN debtors d ON d.id = i.debtor_id "
                    "WHERE d.id IS NULL"
                )
            ).scalar()
            assert orphans == 0
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
        prints.append(_fingerprint(database))
        database.close()
    assert prints[0] == prints[1]


def test_seed_twice_appends_without_conflicts(db: Database) -> None:
    seed_portfolio(db.engine, debtors=100, agents=2, seed=1, as_of=AS_OF)
    seed_portfolio(db.engine, debtors=100, agents=2, seed=2, as_of=AS_OF)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Debtor)) == 200
        assert session.scalar(select(func.count()).select_from(Agent)) == 4
        # New rows after a bulk load get fresh ids (sequences moved past explicit ids).
        session.add(Agent(name="newcomer", display_name="New"))
        session.flush()


def test_report_matches_the_data_and_serialises_money_as_strings(db: Database) -> None:
    seed_portfolio(db.engine, debtors=200, agents=2, seed=3, as_of=AS_OF)
    report = portfolio_report(db, today=AS_OF)
    with db.engine.connect() as conn:
        open_count = conn.execute(
            text("SELECT COUNT(*) FROM invoices WHERE status='open'")
        ).scalar()
        usd = conn.execute(
            text("SELECT SUM(amount_due) FROM invoices WHERE status='open' AND currency='USD'")
        ).scalar()
    assert report.open_invoices == open_count
    assert report.open_balance["USD"] == Decimal(str(usd)).quantize(Decimal("0.01"))
    assert sum(row["invoices"] for row in report.aging.values()) == open_count
    assert sum(a.accounts for a in report.agents) + report.unassigned.accounts == 200
    data = json.loads(report.to_json())
    assert data["open_balance"]["USD"] == str(report.open_balance["USD"])
    assert "Aging" in report.to_text()


def test_failed_seed_leaves_nothing_half_written(db: Database, monkeypatch) -> None:
    calls = {"n": 0}
    original = seed_module.bulk_insert

    def failing(conn, table, columns, rows):
        calls["n"] += 1
        if table == "contacts":
            raise RuntimeError("disk full (simulated)")
        return original(conn, table, columns, rows)

    monkeypatch.setattr(seed_module, "bulk_insert", failing)
    with pytest.raises(RuntimeError):
        seed_portfolio(db.engine, debtors=200, agents=2, seed=1, as_of=AS_OF)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Debtor)) == 0
        assert session.scalar(select(func.count()).select_from(Agent)) == 0


def test_no_payment_is_received_later_than_now(db: Database) -> None:
    """Payments received today are stamped no later than the seed's time (the demo's
    timeline showed one due in the afternoon, received hours before it was made)."""
    from datetime import UTC, datetime, timedelta

    from collect_tui.storage.models import Payment

    seed_portfolio(db.engine, debtors=1500, agents=2, seed=12)
    ran = datetime.now(UTC)
    with db.session() as session:
        latest = session.scalar(select(func.max(Payment.received_at)))
        today = session.scalar(select(func.count()).where(Payment.paid_on == ran.date()))
    assert today, "the portfolio has payments received today"
    assert latest <= ran + timedelta(minutes=1)
