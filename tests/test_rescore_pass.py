"""The daily pass (``rescore(..., facts=False)``) against the pass that refreshes every fact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.exc import OperationalError

from collect_tui.domain.priority import AccountFacts, PriorityWeights, score_account
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage import scoring
from collect_tui.storage.models import Contact, Debtor, PaymentPlan, Promise
from collect_tui.storage.scoring import FACT_COLUMNS, rescore

TODAY = date(2026, 11, 2)
DEBTORS = 200
# What the daily pass must leave as the full pass would (``scored_at`` aside: the
# PostgreSQL passes do not write rows whose values stay the same).
COMPARED = (*FACT_COLUMNS, "next_action", "priority_score")


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def _rows(conn: Connection) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: dict(row)
        for row in conn.execute(select(Debtor.__table__).order_by(Debtor.id)).mappings()
    }


def _compared(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {
        i: {name: (bool(r[name]) if name == "installment_missed" else r[name]) for name in COMPARED}
        for i, r in rows.items()
    }


def _promise(
    conn: Connection, debtor: int, due: date, status: str, plan: int | None = None
) -> None:
    conn.execute(
        insert(Promise).values(
            debtor_id=debtor,
            amount=Decimal("100"),
            currency="USD",
            due_date=due,
            status=status,
            plan_id=plan,
        )
    )


@pytest.fixture
def portfolio(db: Database) -> Iterator[Database]:
    """A seeded portfolio with promises that fall due, or out of the lookback, day by day."""
    seed_portfolio(db.engine, debtors=DEBTORS, agents=2, seed=5, as_of=TODAY)
    with db.engine.begin() as conn:
        rows = _rows(conn)
        active = [
            i
            for i, r in rows.items()
            if r["open_balance"] > 0
            and not (r["dispute"] or r["cease_communication"] or r["bankruptcy"] or r["deceased"])
        ]
        a, b, c, d, e = active[:5]
        plan = conn.execute(
            insert(PaymentPlan).values(
                debtor_id=a,
                total=Decimal("300"),
                currency="USD",
                frequency="monthly",
                first_date=TODAY - timedelta(days=40),
                installment_count=3,
            )
        ).inserted_primary_key[0]
        _promise(conn, a, TODAY - timedelta(days=13), "broken", plan)  # leaves the lookback
        _promise(conn, b, TODAY + timedelta(days=1), "pending")  # falls due tomorrow
        _promise(conn, b, TODAY + timedelta(days=3), "pending")  # then this one
        _promise(conn, c, TODAY - timedelta(days=1), "pending")  # past, still pending
        _promise(conn, c, TODAY + timedelta(days=2), "pending")
        _promise(conn, d, TODAY, "broken")
        _promise(conn, e, TODAY - timedelta(days=14), "broken")  # on the edge today
        rescore(conn, today=TODAY, now=_noon(TODAY))
    yield db


def test_daily_pass_leaves_what_the_full_pass_would_day_after_day(portfolio: Database) -> None:
    seen: set[tuple[str, Any]] = set()
    for offset in range(1, 5):
        day = TODAY + timedelta(days=offset)
        with portfolio.engine.begin() as conn:
            assert rescore(conn, today=day, now=_noon(day), facts=False) == DEBTORS
        with portfolio.engine.connect() as conn:
            daily = _rows(conn)
            conn.rollback()
            with conn.begin() as full:
                assert rescore(conn, today=day, now=_noon(day)) == DEBTORS
                expected = _rows(conn)
                full.rollback()
            assert "ix_debtors_queue" in {ix["name"] for ix in inspect(conn).get_indexes("debtors")}
        assert _compared(daily) == _compared(expected), day
        for debtor_id, row in daily.items():
            want = score_account(AccountFacts.from_row(row), today=day, now=_noon(day)).score
            assert row["priority_score"] == pytest.approx(want, abs=1e-6), (day, debtor_id)
            seen |= {(name, row[name] - day) for name in ("promise_due_on",) if row[name]}
            seen |= {(name, bool(row[name])) for name in ("installment_missed",)}
    # The promises moved the facts on the way (else this test would prove little): due
    # today and later, an installment missed and then no more.
    assert {("promise_due_on", timedelta(0)), ("promise_due_on", timedelta(1))} <= seen
    assert {("installment_missed", True), ("installment_missed", False)} <= seen


def test_daily_pass_with_a_longer_lookback_finds_older_broken_promises(
    portfolio: Database,
) -> None:
    longer = PriorityWeights(broken_lookback_days=60)
    day = TODAY + timedelta(days=2)
    with portfolio.engine.begin() as conn:
        rescore(conn, today=day, now=_noon(day), weights=longer, facts=False)
        daily = _rows(conn)
        rescore(conn, today=day, now=_noon(day), weights=longer)
        expected = _rows(conn)
    assert _compared(daily) == _compared(expected)
    assert sum(bool(r["installment_missed"]) for r in daily.values()) == 1


def test_daily_pass_trusts_the_facts_events_keep(portfolio: Database) -> None:
    """A write that is not followed by its incremental rescore waits for a full pass."""
    with portfolio.engine.begin() as conn:
        debtor_id, before = conn.execute(
            select(Debtor.id, Debtor.last_contact_at).order_by(Debtor.id).limit(1)
        ).one()
        late = _noon(TODAY + timedelta(days=1))
        conn.execute(
            insert(Contact).values(
                debtor_id=debtor_id, channel="call", started_at=late, disposition="no_answer"
            )
        )
    day = TODAY + timedelta(days=1)
    with portfolio.engine.begin() as conn:
        rescore(conn, today=day, now=_noon(day), facts=False)
        assert _rows(conn)[debtor_id]["last_contact_at"] == before
        rescore(conn, today=day, now=_noon(day))
        assert _rows(conn)[debtor_id]["last_contact_at"] == late


def test_daily_pass_restores_the_connection_and_the_queue_index(sqlite_db: Database) -> None:
    seed_portfolio(sqlite_db.engine, debtors=40, agents=1, seed=6, as_of=TODAY)
    with sqlite_db.engine.connect() as conn:
        cache_before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        rescore(conn, today=TODAY, now=_noon(TODAY), facts=False)
        conn.commit()
        names = {ix["name"] for ix in inspect(conn).get_indexes("debtors")}
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    assert "ix_debtors_queue" in names
    assert cache == cache_before


def test_failed_daily_pass_keeps_the_queue_index(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_portfolio(sqlite_db.engine, debtors=20, agents=1, seed=7, as_of=TODAY)
    broken = text("UPDATE debtors SET no_such_column = 1")
    real = scoring._cached

    def failing(purpose: str, *args: Any) -> Any:
        return broken if purpose == "score_all" else real(purpose, *args)

    monkeypatch.setattr(scoring, "_cached", failing)
    with sqlite_db.engine.connect() as conn:
        with pytest.raises(OperationalError):
            rescore(conn, today=TODAY, now=_noon(TODAY), facts=False)
        conn.commit()  # even a caller that commits after the error keeps the index
    with sqlite_db.engine.connect() as conn:
        assert "ix_debtors_queue" in {ix["name"] for ix in inspect(conn).get_indexes("debtors")}


@pytest.mark.parametrize("facts", [False, True])
def test_a_pass_keeps_the_queue_index_statistics(sqlite_db: Database, facts: bool) -> None:
    """The rebuilt queue index keeps its planner statistics: without them SQLite prefers it
    to the filters' own indexes and a filter's first read walks the whole queue."""
    seed_portfolio(sqlite_db.engine, debtors=40, agents=1, seed=8, as_of=TODAY)
    query = "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_debtors_queue'"
    with sqlite_db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
        before = conn.exec_driver_sql(query).scalar()
        assert before
        rescore(conn, today=TODAY + timedelta(days=1), now=_noon(TODAY), facts=facts)
        conn.commit()
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql(query).scalar() == before


def test_the_daily_pass_leaves_the_table_ready_for_index_only_reads(db: Database) -> None:
    """After the pass rewrote every account, PostgreSQL's pages are marked all-visible
    again (VACUUM): an index-only scan of the queue index reads no table rows, as the
    queue's counts and filters need (they were 2-4x slower right after a pass)."""
    from collect_tui.services.scoring import rescore_portfolio

    seed_portfolio(db.engine, debtors=300, agents=1, seed=10, as_of=TODAY)
    rescore_portfolio(db, now=_noon(TODAY + timedelta(days=1)))
    if db.dialect != "postgresql":
        return  # SQLite has no visibility map; its statistics are refreshed instead
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        plan = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM debtors "
            "WHERE assigned_agent_id IS NOT NULL AND priority_score > -1e9"
        ).scalar_one()

    def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if node.get("Node Type") == "Index Only Scan":
            yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    found = list(scans(plan[0]["Plan"]))
    assert found, plan
    assert all(node["Heap Fetches"] == 0 for node in found), found
