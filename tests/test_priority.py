"""The priority score: its rules and reasons, its properties, and SQL == Python on both engines."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, insert, inspect, select, text, update
from sqlalchemy.exc import OperationalError

from collect_tui.domain.priority import (
    DEFAULT_WEIGHTS,
    EXCLUDED_SCORE,
    AccountFacts,
    Priority,
    PriorityWeights,
    score_account,
)
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage import scoring
from collect_tui.storage.models import (
    Contact,
    Debtor,
    Invoice,
    PaymentPlan,
    Promise,
    Task,
)
from collect_tui.storage.scoring import (
    FACT_COLUMNS,
    day_params,
    refresh_facts,
    rescore,
    score_expression,
)

TODAY = date(2026, 11, 2)
NOW = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)
W = DEFAULT_WEIGHTS


def facts(**changes: Any) -> AccountFacts:
    """A plain account: USD 1,000 not yet due, contacted today, nothing else going on."""
    base = AccountFacts(
        balance=Decimal("1000.00"),
        currency="USD",
        oldest_due_date=TODAY,
        last_contact_at=NOW - timedelta(hours=1),
    )
    return replace(base, **changes)


def score(f: AccountFacts, weights: PriorityWeights | None = None) -> Priority:
    return score_account(f, today=TODAY, now=NOW, weights=weights)


PLAIN = score(facts()).score  # balance points only: 1000 * 30 / 50000


# --- rules and reasons --------------------------------------------------------------------


def test_plain_account_scores_its_balance_and_says_so() -> None:
    p = score(facts())
    assert p.score == pytest.approx(0.6)
    assert p.reasons == ["USD 1,000 current"]
    assert p.top_reason == "USD 1,000 current"
    assert p.excluded is None


def test_promise_due_today() -> None:
    p = score(facts(promise_due_on=TODAY))
    assert p.score == pytest.approx(PLAIN + W.promise_due_today)
    assert p.top_reason == "promise due today"
    assert score(facts(promise_due_on=TODAY + timedelta(days=1))).score == pytest.approx(PLAIN)


def test_broken_promise_counts_within_the_lookback_only() -> None:
    p = score(facts(broken_promise_on=date(2026, 11, 1)))
    assert p.score == pytest.approx(PLAIN + W.broken_promise)
    assert p.top_reason == "broken promise 01 Nov"
    edge = TODAY - timedelta(days=W.broken_lookback_days)
    assert score(facts(broken_promise_on=edge)).score == pytest.approx(PLAIN + W.broken_promise)
    stale = score(facts(broken_promise_on=edge - timedelta(days=1)))
    assert stale.score == pytest.approx(PLAIN)
    assert not any("broken" in r for r in stale.reasons)
    short = PriorityWeights(broken_lookback_days=0)
    assert score(facts(broken_promise_on=date(2026, 11, 1)), short).score == pytest.approx(PLAIN)


def test_installment_missed() -> None:
    p = score(facts(installment_missed=True))
    assert p.score == pytest.approx(PLAIN + W.installment_missed)
    assert p.reasons[0] == "installment missed"


def test_cadence_step_due_today_or_earlier() -> None:
    late_today = datetime(2026, 11, 2, 23, 59, tzinfo=UTC)
    p = score(facts(cadence_due_at=late_today))
    assert p.score == pytest.approx(PLAIN + W.cadence_due)
    assert p.reasons[0] == "cadence step due"
    overdue = score(facts(cadence_due_at=datetime(2026, 10, 1, tzinfo=UTC)))
    assert overdue.score == pytest.approx(PLAIN + W.cadence_due)
    tomorrow = score(facts(cadence_due_at=datetime(2026, 11, 3, tzinfo=UTC)))
    assert tomorrow.score == pytest.approx(PLAIN)


def test_balance_is_converted_to_the_base_currency_and_capped() -> None:
    eur = score(facts(balance=Decimal("1000"), currency="EUR"))
    assert eur.score == pytest.approx(1000 * 1.08 * 30 / 50000)
    assert eur.reasons == ["EUR 1,000 current"]
    inr = score(facts(balance=Decimal("100000"), currency="INR"))
    assert inr.score == pytest.approx(100000 * 0.012 * 30 / 50000)
    unknown = score(facts(balance=Decimal("1000"), currency="XXX"))
    assert unknown.score == pytest.approx(PLAIN)
    huge = score(facts(balance=Decimal("12345678.50")))
    assert huge.score == pytest.approx(W.balance)
    assert huge.reasons == ["USD 12,345,679 current"]
    custom = PriorityWeights(fx_to_base={"XXX": Decimal("2")})
    assert score(facts(currency="XXX"), custom).score == pytest.approx(2 * PLAIN)
    assert score(facts(currency="EUR"), custom).score == pytest.approx(PLAIN)


def test_days_past_due_and_aging_bucket() -> None:
    p = score(facts(balance=Decimal("12400"), oldest_due_date=TODAY - timedelta(days=61)))
    assert p.score == pytest.approx(12400 * 0.0006 + 61 * 0.05 + 3 * 3)
    assert p.reasons == ["USD 12,400 in 61-90"]
    for days, bucket, steps in [
        (1, "1-30", 1),
        (30, "1-30", 1),
        (31, "31-60", 2),
        (121, "120+", 5),
    ]:
        q = score(facts(oldest_due_date=TODAY - timedelta(days=days)))
        assert q.score == pytest.approx(PLAIN + days * 0.05 + steps * 3)
        assert q.reasons == [f"USD 1,000 in {bucket}"]
    capped = score(facts(oldest_due_date=TODAY - timedelta(days=1000)))
    assert capped.score == pytest.approx(PLAIN + 365 * 0.05 + 5 * 3)
    future = score(facts(oldest_due_date=TODAY + timedelta(days=20)))
    assert future.score == pytest.approx(PLAIN)


def test_time_since_last_contact_in_utc_days_capped() -> None:
    yesterday_late = datetime(2026, 11, 1, 23, 59, tzinfo=UTC)
    p = score(facts(last_contact_at=yesterday_late))
    assert p.score == pytest.approx(PLAIN + 0.5)
    assert p.reasons[-1] == "no contact for 1 day"
    twelve = score(facts(last_contact_at=datetime(2026, 10, 21, 8, tzinfo=UTC)))
    assert twelve.score == pytest.approx(PLAIN + 12 * 0.5)
    assert twelve.reasons[-1] == "no contact for 12 days"
    long_ago = score(facts(last_contact_at=datetime(2025, 1, 1, tzinfo=UTC)))
    assert long_ago.score == pytest.approx(PLAIN + 30 * 0.5)
    never = score(facts(last_contact_at=None))
    assert never.score == pytest.approx(PLAIN + 30 * 0.5)
    assert never.reasons[-1] == "never contacted"
    # A contact on another continent's evening is still judged by its UTC day.
    local = datetime(2026, 11, 1, 20, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    assert score(facts(last_contact_at=local)).score == pytest.approx(PLAIN + 0.5)


def test_due_callback_is_a_reason_in_local_time_but_adds_nothing() -> None:
    at = datetime(2026, 11, 2, 19, 0, tzinfo=UTC)  # 14:00 in New York
    f = facts(next_action="callback", next_action_at=at, time_zone="America/New_York")
    p = score(f)
    assert p.reasons[0] == "callback 14:00"
    assert p.score == pytest.approx(PLAIN)
    overdue = score(replace(f, next_action_at=datetime(2026, 11, 1, 14, 5, tzinfo=UTC)))
    assert overdue.reasons[0] == "callback 01 Nov 09:05"  # EST since that morning
    later = score(replace(f, next_action_at=datetime(2026, 11, 4, 14, 0, tzinfo=UTC)))
    assert later.reasons == ["USD 1,000 current"]
    bad_zone = score(replace(f, time_zone="Not/AZone"))
    assert bad_zone.reasons[0] == "callback 19:00"


def test_reasons_come_most_important_first() -> None:
    p = score(
        AccountFacts(
            balance=Decimal("12400"),
            currency="USD",
            oldest_due_date=TODAY - timedelta(days=70),
            last_contact_at=datetime(2026, 10, 21, tzinfo=UTC),
            promise_due_on=TODAY,
            broken_promise_on=date(2026, 11, 1),
            installment_missed=True,
            cadence_due_at=NOW,
            next_action="callback",
            next_action_at=NOW,
        )
    )
    assert p.reasons == [
        "callback 15:30",
        "promise due today",
        "broken promise 01 Nov",
        "installment missed",
        "cadence step due",
        "USD 12,400 in 61-90",
        "no contact for 12 days",
    ]
    assert p.score == pytest.approx(
        40 + 35 + 25 + 15 + 12400 * 0.0006 + 70 * 0.05 + 9 + 6, rel=1e-12
    )


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"dispute": True}, "dispute"),
        ({"cease_communication": True}, "cease communication"),
        ({"bankruptcy": True}, "bankruptcy"),
        ({"deceased": True}, "deceased"),
        ({"balance": Decimal("0")}, "nothing owed"),
        ({"balance": Decimal("-5.00")}, "nothing owed"),
        ({"dispute": True, "deceased": True, "balance": Decimal(0)}, "dispute"),
    ],
)
def test_exclusions(changes: dict[str, Any], word: str) -> None:
    p = score(facts(promise_due_on=TODAY, installment_missed=True, **changes))
    assert p.score == EXCLUDED_SCORE
    assert p.excluded == word
    assert p.reasons == [word]


def test_weights_are_validated_and_naive_now_refused() -> None:
    with pytest.raises(ValueError):
        PriorityWeights(balance=-1)
    with pytest.raises(ValueError):
        PriorityWeights(fx_to_base={"USD": Decimal(0)})
    with pytest.raises(ValueError):
        PriorityWeights(balance_cap=Decimal(0))
    with pytest.raises(ValueError):
        score_account(facts(), today=TODAY, now=datetime(2026, 11, 2))


def test_facts_from_a_row_mapping() -> None:
    row = {
        "open_balance": 12.5,
        "currency": "EUR",
        "oldest_due_date": TODAY,
        "last_contact_at": datetime(2026, 11, 1, 10),
        "installment_missed": 1,
        "time_zone": None,
        "dispute": 0,
    }
    f = AccountFacts.from_row(row)
    assert f.balance == Decimal("12.5")
    assert f.last_contact_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert f.installment_missed is True
    assert f.time_zone == "UTC"
    assert f.dispute is False


# --- properties ----------------------------------------------------------------------------

days = st.dates(min_value=date(2023, 1, 1), max_value=date(2027, 12, 31))
instants = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
rarely = st.sampled_from([False, False, False, False, True])
money = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("10000000"), places=2)
points = st.floats(min_value=0, max_value=100, allow_nan=False)

account_facts = st.builds(
    AccountFacts,
    balance=money,
    currency=st.sampled_from(["USD", "EUR", "GBP", "BRL", "INR", "MXN", "XXX"]),
    oldest_due_date=st.none() | days,
    last_contact_at=st.none() | instants,
    promise_due_on=st.none() | st.just(TODAY) | days,
    broken_promise_on=st.none() | days,
    installment_missed=st.booleans(),
    cadence_due_at=st.none() | instants,
    next_action=st.none() | st.just("callback"),
    next_action_at=st.none() | instants,
    time_zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]),
    cease_communication=rarely,
    dispute=rarely,
    bankruptcy=rarely,
    deceased=rarely,
)
weights = st.builds(
    PriorityWeights,
    promise_due_today=points,
    broken_promise=points,
    broken_lookback_days=st.integers(0, 60),
    installment_missed=points,
    cadence_due=points,
    balance=points,
    balance_cap=st.decimals(min_value=Decimal(1), max_value=Decimal(10**7), places=0),
    days_past_due=points,
    days_past_due_cap=st.integers(0, 1000),
    aging_bucket_step=points,
    no_contact=points,
    no_contact_cap=st.integers(0, 400),
)


@given(account_facts, money, money, st.none() | weights)
def test_score_is_monotone_in_balance(
    f: AccountFacts, a: Decimal, b: Decimal, w: PriorityWeights | None
) -> None:
    low, high = sorted((a, b))
    s_low = score(replace(f, balance=low), w).score
    s_high = score(replace(f, balance=high), w).score
    assert s_low <= s_high


@given(account_facts, days, days, st.none() | weights)
def test_score_is_monotone_in_lateness(
    f: AccountFacts, a: date, b: date, w: PriorityWeights | None
) -> None:
    earlier, later = sorted((a, b))
    assert score(replace(f, oldest_due_date=earlier), w).score >= (
        score(replace(f, oldest_due_date=later), w).score
    )


@given(account_facts, account_facts, st.none() | weights)
def test_excluded_accounts_rank_below_every_other(
    a: AccountFacts, b: AccountFacts, w: PriorityWeights | None
) -> None:
    for f in (a, b):
        p = score(f, w)
        assert (p.excluded is not None) == (p.score == EXCLUDED_SCORE)
        if p.excluded is None:
            assert p.score >= 0
            assert p.reasons
    pa, pb = score(a, w), score(b, w)
    if pa.excluded and not pb.excluded:
        assert pa.score < pb.score


# --- SQL == Python -------------------------------------------------------------------------

SEED_DEBTORS = 300


def _debtor_rows(conn: Connection) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: dict(row)
        for row in conn.execute(select(Debtor.__table__).order_by(Debtor.id)).mappings()
    }


def _expected(row: dict[str, Any], weights: PriorityWeights | None = None) -> float:
    return score_account(AccountFacts.from_row(row), today=TODAY, now=NOW, weights=weights).score


def _naive_facts(conn: Connection, debtor_id: int, lookback: int = 14) -> dict[str, Any]:
    """The facts of one debtor computed the obvious way, in Python."""
    inv = conn.execute(
        select(Invoice.amount_due, Invoice.due_date).where(
            Invoice.debtor_id == debtor_id, Invoice.status == "open"
        )
    ).all()
    contacts = conn.execute(
        select(Contact.started_at).where(Contact.debtor_id == debtor_id)
    ).scalars()
    proms = conn.execute(
        select(Promise.status, Promise.due_date, Promise.plan_id).where(
            Promise.debtor_id == debtor_id
        )
    ).all()
    open_tasks = conn.execute(
        select(Task.kind, Task.due_at).where(Task.debtor_id == debtor_id, Task.status == "open")
    ).all()
    floor = TODAY - timedelta(days=lookback)
    recent_broken = [p for p in proms if p.status == "broken" and floor <= p.due_date <= TODAY]
    pending = [p.due_date for p in proms if p.status == "pending" and p.due_date >= TODAY]
    cadence = [t.due_at for t in open_tasks if t.kind == "cadence"]
    callbacks = [t.due_at for t in open_tasks if t.kind == "callback"]
    last = max(contacts, default=None)
    return {
        "open_balance": sum((Decimal(a) for a, _ in inv), Decimal("0.00")),
        "open_invoices": len(inv),
        "oldest_due_date": min((d for _, d in inv), default=None),
        "last_contact_at": last,
        "promise_due_on": min(pending, default=None),
        "broken_promise_on": max((p.due_date for p in recent_broken), default=None),
        "installment_missed": any(p.plan_id is not None for p in recent_broken),
        "cadence_due_at": min(cadence, default=None),
        "next_action_at": min(callbacks, default=None),
        "next_action": "callback" if callbacks else None,
    }


def _stored_facts(row: dict[str, Any]) -> dict[str, Any]:
    picked = {name: row[name] for name in (*FACT_COLUMNS, "next_action")}
    picked["installment_missed"] = bool(picked["installment_missed"])
    return picked


def _add_events(conn: Connection, ids: list[int]) -> None:
    """Give a few seeded debtors every kind of fact the seed does not produce."""
    a, b, c, d, e, f, g, h = ids[:8]
    plan = conn.execute(
        insert(PaymentPlan).values(
            debtor_id=a,
            total=Decimal("900"),
            currency="USD",
            frequency="monthly",
            first_date=date(2026, 10, 1),
            installment_count=3,
        )
    ).inserted_primary_key[0]

    def promise(debtor: int, due: date, status: str, plan_id: int | None = None) -> None:
        conn.execute(
            insert(Promise).values(
                debtor_id=debtor,
                amount=Decimal("300"),
                currency="USD",
                due_date=due,
                status=status,
                plan_id=plan_id,
            )
        )

    def task(debtor: int, kind: str, due: datetime, status: str = "open") -> None:
        conn.execute(insert(Task).values(debtor_id=debtor, kind=kind, due_at=due, status=status))

    promise(a, date(2026, 10, 28), "broken", plan)  # installment missed, broken 28 Oct
    promise(a, date(2026, 10, 1), "broken")  # too old to count
    promise(b, TODAY, "pending")
    promise(b, date(2026, 11, 1), "pending")  # stale pending: ignored
    promise(b, date(2026, 11, 9), "pending")
    promise(c, date(2026, 9, 1), "broken", plan)  # too old: no installment missed
    promise(c, TODAY - timedelta(days=14), "broken")  # on the edge of the lookback
    task(d, "cadence", datetime(2026, 11, 2, 23, 59, tzinfo=UTC))
    task(d, "cadence", datetime(2026, 11, 20, tzinfo=UTC))
    task(e, "cadence", datetime(2026, 11, 3, 0, 0, tzinfo=UTC))  # tomorrow: not due
    task(e, "cadence", datetime(2026, 10, 3, tzinfo=UTC), status="done")
    task(f, "callback", datetime(2026, 11, 2, 19, 0, tzinfo=UTC))
    task(f, "callback", datetime(2026, 11, 5, 19, 0, tzinfo=UTC))
    task(f, "review", datetime(2026, 11, 1, tzinfo=UTC))
    for debtor, started in [
        (g, datetime(2026, 11, 2, 0, 0, tzinfo=UTC)),  # today, just after midnight
        (h, datetime(2026, 10, 3, 23, 59, tzinfo=UTC)),  # 30 UTC days ago
        (c, datetime(2026, 10, 4, 0, 0, tzinfo=UTC)),  # 29 UTC days ago
    ]:
        conn.execute(
            insert(Contact).values(
                debtor_id=debtor, channel="call", started_at=started, disposition="no_answer"
            )
        )
    conn.execute(update(Debtor).where(Debtor.id == g).values(currency="XXX"))
    conn.execute(  # everything paid: nothing owed
        update(Invoice).where(Invoice.debtor_id == h).values(status="paid", amount_due=0)
    )


@pytest.fixture
def portfolio(db: Database) -> Iterator[Database]:
    """A seeded portfolio on each engine, with extra promises, plans, tasks and contacts."""
    seed_portfolio(db.engine, debtors=SEED_DEBTORS, agents=2, seed=1, as_of=TODAY)
    with db.engine.begin() as conn:
        rows = _debtor_rows(conn)
        active = [
            i
            for i, r in rows.items()
            if r["open_balance"] > 0
            and not (r["dispute"] or r["cease_communication"] or r["bankruptcy"] or r["deceased"])
        ]
        _add_events(conn, active[:8])
    yield db


def test_rescore_stores_the_python_score_for_every_debtor(portfolio: Database) -> None:
    with portfolio.engine.begin() as conn:
        assert rescore(conn, today=TODAY, now=NOW) == SEED_DEBTORS
    with portfolio.engine.connect() as conn:
        rows = _debtor_rows(conn)
        for debtor_id, row in rows.items():
            assert row["priority_score"] == pytest.approx(_expected(row), abs=1e-6), debtor_id
            assert row["scored_at"] is not None  # the PostgreSQL pass skips unchanged rows
            assert _stored_facts(row) == _naive_facts(conn, debtor_id), debtor_id
        # Every rule and every exclusion shows up in this portfolio.
        reasons = {
            r
            for row in rows.values()
            for r in score_account(AccountFacts.from_row(row), today=TODAY, now=NOW).reasons
        }
        for expected in ("promise due today", "installment missed", "cadence step due"):
            assert expected in reasons
        assert {"broken promise 28 Oct", "never contacted", "nothing owed"} <= reasons
        assert any(r.startswith("callback ") for r in reasons)
        assert any(r.startswith("no contact for ") for r in reasons)
        # The queue index was rebuilt, not lost.
        names = {ix["name"] for ix in inspect(conn).get_indexes("debtors")}
        assert "ix_debtors_queue" in names


def test_score_expression_with_other_weights_matches_python(portfolio: Database) -> None:
    custom = PriorityWeights(
        promise_due_today=7,
        broken_promise=3.5,
        broken_lookback_days=40,
        balance=50,
        balance_cap=Decimal("2000"),
        fx_to_base={"USD": Decimal("1"), "BRL": Decimal("0.5")},
        days_past_due=0.3,
        days_past_due_cap=45,
        aging_bucket_step=1.25,
        no_contact=2,
        no_contact_cap=7,
    )
    dialect = portfolio.dialect
    with portfolio.engine.begin() as conn:
        refresh_facts(conn, today=TODAY, now=NOW, weights=custom)
        expr = score_expression(dialect, today=TODAY, weights=custom).label("s")
        computed = dict(conn.execute(select(Debtor.id, expr)).all())
        rows = _debtor_rows(conn)
        for debtor_id, row in rows.items():
            assert _stored_facts(row) == _naive_facts(conn, debtor_id, lookback=40)
            assert computed[debtor_id] == pytest.approx(_expected(row, custom), abs=1e-6)
        # The full pass with these weights stores the same numbers.
        rescore(conn, today=TODAY, now=NOW, weights=custom)
        stored = dict(conn.execute(select(Debtor.id, Debtor.priority_score)).all())
        assert stored == pytest.approx(computed, abs=1e-9)


def test_refresh_facts_leaves_the_score_alone(portfolio: Database) -> None:
    with portfolio.engine.begin() as conn:
        before = {i: r["priority_score"] for i, r in _debtor_rows(conn).items()}
        assert refresh_facts(conn, today=TODAY, now=NOW) == SEED_DEBTORS
        rows = _debtor_rows(conn)
        assert {i: r["priority_score"] for i, r in rows.items()} == before
        sample = random.Random(3).sample(sorted(rows), 60)
        for debtor_id in sample:
            assert _stored_facts(rows[debtor_id]) == _naive_facts(conn, debtor_id)


def test_incremental_rescore_changes_only_that_debtor(portfolio: Database) -> None:
    with portfolio.engine.begin() as conn:
        rescore(conn, today=TODAY, now=NOW)
    with portfolio.engine.begin() as conn:
        rows = _debtor_rows(conn)
    candidates = [
        i
        for i, r in rows.items()
        if r["open_balance"] > 100 and _expected(r) != EXCLUDED_SCORE and not r["broken_promise_on"]
    ]
    broke, paid, called = candidates[10], candidates[11], candidates[12]
    later = NOW + timedelta(minutes=5)

    def rescore_one(debtor_id: int) -> dict[int, dict[str, Any]]:
        with portfolio.engine.begin() as conn:
            assert rescore(conn, today=TODAY, now=later, debtor_ids=[debtor_id]) == 1
            after = _debtor_rows(conn)
            assert _stored_facts(after[debtor_id]) == _naive_facts(conn, debtor_id)
        assert {i: r for i, r in after.items() if i != debtor_id} == {
            i: r for i, r in rows.items() if i != debtor_id
        }
        mine = after[debtor_id]
        assert mine["priority_score"] == pytest.approx(_expected(mine), abs=1e-6)
        assert mine["scored_at"] == later
        assert mine["updated_at"] == rows[debtor_id]["updated_at"]
        rows[debtor_id] = mine
        return after

    # A broken promise yesterday.
    old_score = rows[broke]["priority_score"]
    with portfolio.engine.begin() as conn:
        conn.execute(
            insert(Promise).values(
                debtor_id=broke,
                amount=Decimal("50"),
                currency="USD",
                due_date=date(2026, 11, 1),
                status="broken",
            )
        )
    after = rescore_one(broke)
    assert after[broke]["broken_promise_on"] == date(2026, 11, 1)
    assert after[broke]["priority_score"] == pytest.approx(old_score + W.broken_promise)

    # A payment reduces the balance of one invoice.
    rows_before_payment = rows[paid]["priority_score"]
    with portfolio.engine.begin() as conn:
        invoice_id, due = conn.execute(
            select(Invoice.id, Invoice.amount_due)
            .where(Invoice.debtor_id == paid, Invoice.status == "open")
            .order_by(Invoice.amount_due.desc())
            .limit(1)
        ).one()
        cut = (due / 2).quantize(Decimal("0.01"))
        conn.execute(update(Invoice).where(Invoice.id == invoice_id).values(amount_due=due - cut))
    old_balance = rows[paid]["open_balance"]
    after = rescore_one(paid)
    assert after[paid]["open_balance"] == old_balance - cut
    assert after[paid]["priority_score"] <= rows_before_payment

    # A contact this afternoon.
    with portfolio.engine.begin() as conn:
        conn.execute(
            insert(Contact).values(
                debtor_id=called, channel="call", started_at=NOW, disposition="right_party"
            )
        )
    after = rescore_one(called)
    assert after[called]["last_contact_at"] == NOW


def test_incremental_rescore_of_many_and_of_none(db: Database) -> None:
    """Rescoring every id in chunks leaves what the full pass leaves, facts and score."""
    seed_portfolio(db.engine, debtors=1200, agents=2, seed=2, as_of=TODAY)
    facts = ("open_balance", "open_invoices", "oldest_due_date", "last_contact_at",
             "promise_due_on", "next_action_at", "next_action")  # fmt: skip
    with db.engine.begin() as conn:
        rescore(conn, today=TODAY, now=NOW)
        full = _debtor_rows(conn)
        conn.execute(
            update(Debtor).values(
                priority_score=0.0, open_balance=Decimal("1.00"), open_invoices=0,
                oldest_due_date=None, last_contact_at=None, promise_due_on=None,
                next_action_at=None, next_action=None,
            )
        )  # fmt: skip
        assert rescore(conn, today=TODAY, now=NOW, debtor_ids=[]) == 0
        ids = sorted(full)
        assert rescore(conn, today=TODAY, now=NOW, debtor_ids=ids + ids[:5]) == len(ids)
        again = _debtor_rows(conn)
    assert {i: r["priority_score"] for i, r in again.items()} == pytest.approx(
        {i: r["priority_score"] for i, r in full.items()}, abs=1e-9
    )
    assert [{n: again[i][n] for n in facts} for i in ids] == [
        {n: full[i][n] for n in facts} for i in ids
    ]


def test_full_pass_restores_the_connection_and_the_queue_index(sqlite_db: Database) -> None:
    seed_portfolio(sqlite_db.engine, debtors=50, agents=1, seed=3, as_of=TODAY)
    with sqlite_db.engine.connect() as conn:
        cache_before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        rescore(conn, today=TODAY, now=NOW)
        conn.commit()
        names = {ix["name"] for ix in inspect(conn).get_indexes("debtors")}
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        temp = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_temp_master WHERE name = 'prio_facts'"
        ).scalar()
    assert "ix_debtors_queue" in names
    assert cache == cache_before and temp == 0


def test_failed_full_pass_keeps_the_queue_index(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_portfolio(sqlite_db.engine, debtors=20, agents=1, seed=4, as_of=TODAY)
    broken = text("UPDATE debtors SET no_such_column = 1")
    real = scoring._cached

    def failing(purpose: str, *args: Any) -> Any:
        return [broken, broken] if purpose == "apply" else real(purpose, *args)

    monkeypatch.setattr(scoring, "_cached", failing)
    with sqlite_db.engine.connect() as conn:
        with pytest.raises(OperationalError):
            rescore(conn, today=TODAY, now=NOW)
        names = {ix["name"] for ix in inspect(conn).get_indexes("debtors")}
        conn.commit()  # even a caller that commits after the error keeps the index
    assert "ix_debtors_queue" in names
    with sqlite_db.engine.connect() as conn:
        assert "ix_debtors_queue" in {ix["name"] for ix in inspect(conn).get_indexes("debtors")}


SQL_FACT_CASES = st.fixed_dictionaries(
    {
        "open_balance": money,
        "currency": st.sampled_from(["USD", "EUR", "BRL", "XXX"]),
        "oldest_due_date": st.none() | days,
        "last_contact_at": st.none() | instants,
        "promise_due_on": st.none() | st.just(TODAY) | days,
        "broken_promise_on": st.none() | days,
        "installment_missed": st.booleans(),
        "cadence_due_at": st.none() | instants,
        "dispute": rarely,
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=SQL_FACT_CASES, w=st.none() | weights)
def test_score_expression_equals_python_on_any_facts(
    db: Database, case: dict[str, Any], w: PriorityWeights | None
) -> None:
    with db.engine.begin() as conn:
        debtor_id = conn.execute(select(Debtor.id).limit(1)).scalar()
        if debtor_id is None:
            debtor_id = conn.execute(
                insert(Debtor).values(name="Probe", currency="USD")
            ).inserted_primary_key[0]
        conn.execute(update(Debtor).where(Debtor.id == debtor_id).values(**case))
        expr = score_expression(db.dialect, today=TODAY, weights=w)
        got = conn.execute(select(expr).where(Debtor.id == debtor_id)).scalar_one()
        row = conn.execute(select(Debtor.__table__).where(Debtor.id == debtor_id)).mappings().one()
    assert got == pytest.approx(_expected(dict(row), w), abs=1e-6)


def test_day_params_cover_the_aging_buckets() -> None:
    params = day_params(TODAY)
    assert params["prio_bucket_0"] == TODAY
    assert params["prio_bucket_4"] == TODAY - timedelta(days=120)
    assert params["prio_contact_cap_start"] == datetime(2026, 10, 4, tzinfo=UTC)
