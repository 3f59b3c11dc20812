"""The queue service on both engines: order, pages, filters, search, callbacks, next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import connections_held
from sqlalchemy import select, update

from collect_tui.domain.aging import BUCKETS, bucket_of_due_date
from collect_tui.services.agents import get_agent
from collect_tui.services.contactability import forget_jurisdictions
from collect_tui.services.database import Database
from collect_tui.services.queue import (
    QueueFilter,
    due_callbacks,
    next_account,
    queue_marker,
    queue_page,
    queue_summary,
)
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Debtor, Invoice, Phone
from collect_tui.storage.scoring import rescore

AS_OF = date(2026, 11, 2)
# 15:00 UTC: 10:00 in New York, 12:00 in Sao Paulo, 15:00 in London: most windows open.
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def portfolio(db: Database) -> Database:
    seed_portfolio(db.engine, debtors=400, agents=2, seed=21, as_of=AS_OF)
    with db.session() as session:
        rescore(session.connection(), today=AS_OF, now=NOW)
    return db


def _all(db: Database, agent, queue_filter: QueueFilter | None = None, limit: int = 37):
    rows, after = [], None
    while True:
        page = queue_page(db, agent, queue_filter=queue_filter, after=after, limit=limit, now=NOW)
        rows += page
        if len(page) < limit:
            return rows
        after = page[-1].key


def test_pages_walk_the_whole_queue_in_score_order_without_gaps(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    rows = _all(portfolio, alice)
    with portfolio.session() as session:
        expected = len(
            session.scalars(select(Debtor.id).where(Debtor.assigned_agent_id == alice.id)).all()
        )
    assert len(rows) == expected
    assert len({r.debtor_id for r in rows}) == expected
    keys = [(-r.score, r.debtor_id) for r in rows]
    assert keys == sorted(keys)
    assert all(r.reasons or r.blocked for r in rows if r.balance > 0)


def test_excluded_accounts_sink_and_say_why(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    rows = _all(portfolio, alice)
    excluded = [r for r in rows if r.blocked and r.blocked.startswith("excluded")]
    assert excluded, "the seed flags some accounts (cease, dispute, bankruptcy...)"
    first_excluded = rows.index(excluded[0])
    assert all(r.blocked and r.blocked.startswith("excluded") for r in rows[first_excluded:])


def test_bucket_filter_matches_the_oldest_invoice(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    for bucket in BUCKETS:
        rows = _all(portfolio, alice, QueueFilter(bucket=bucket))
        for row in rows:
            assert row.oldest_due_date is not None
            assert bucket_of_due_date(row.oldest_due_date, NOW.date()) == bucket
    total = sum(len(_all(portfolio, alice, QueueFilter(bucket=b))) for b in BUCKETS)
    with_invoices = [r for r in _all(portfolio, alice) if r.open_invoices]
    assert total == len(with_invoices)


@pytest.mark.parametrize("limit", [3, 37])  # small pages walk the queue more often
def test_filters_give_exactly_the_matching_accounts_in_queue_order(
    portfolio: Database, limit: int
) -> None:
    """Whether a filter's page walks the queue or sorts what an index found, the rows
    are those of the whole queue that match, in the same order."""
    alice = get_agent(portfolio, "alice")
    today = NOW.date()
    end_of_day = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
    with portfolio.session() as session:  # a few callbacks and promises to find
        ids = session.scalars(
            select(Debtor.id).where(Debtor.assigned_agent_id == alice.id).limit(12)
        ).all()
        session.execute(update(Debtor).where(Debtor.id.in_(ids[:4])).values(promise_due_on=today))
        session.execute(
            update(Debtor).where(Debtor.id.in_(ids[4:6])).values(installment_missed=True)
        )
        session.execute(
            update(Debtor)
            .where(Debtor.id.in_(ids[6:12]))
            .values(next_action="callback", next_action_at=NOW + timedelta(hours=1))
        )
        facts = {
            d.id: d
            for d in session.scalars(select(Debtor).where(Debtor.assigned_agent_id == alice.id))
        }
    queue = [r.debtor_id for r in _all(portfolio, alice)]

    def promised(d: Debtor) -> bool:
        due = d.promise_due_on is not None and d.promise_due_on <= today
        return due or d.broken_promise_on is not None or bool(d.installment_missed)

    def called_back(d: Debtor) -> bool:
        return d.next_action == "callback" and d.next_action_at < end_of_day

    def in_bucket(bucket: str):
        return lambda d: (
            bool(d.open_invoices) and (bucket_of_due_date(d.oldest_due_date, today) == bucket)
        )

    cases = [(QueueFilter(bucket=b), in_bucket(b)) for b in BUCKETS]
    cases += [
        (QueueFilter(promise_due=True), promised),
        (QueueFilter(callbacks=True), called_back),
        (
            QueueFilter(promise_due=True, bucket=BUCKETS[-1]),
            lambda d: promised(d) and in_bucket(BUCKETS[-1])(d),
        ),
    ]
    for queue_filter, matches in cases:
        expected = [i for i in queue if matches(facts[i])]
        got = [r.debtor_id for r in _all(portfolio, alice, queue_filter, limit=limit)]
        assert got == expected, queue_filter
    assert any(len([i for i in queue if m(facts[i])]) > 30 for _, m in cases)  # walked
    assert any(0 < len([i for i in queue if m(facts[i])]) <= 6 for _, m in cases)  # sorted


def test_search_by_name_invoice_number_phone_and_email(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    with portfolio.session() as session:
        debtor = session.scalars(
            select(Debtor).where(Debtor.assigned_agent_id == alice.id).limit(1)
        ).one()
        invoice = session.scalars(select(Invoice).where(Invoice.debtor_id == debtor.id)).first()
        phone = session.scalars(select(Phone).where(Phone.debtor_id == debtor.id)).first()
    by_name = _all(portfolio, alice, QueueFilter(search=debtor.name.split()[0].lower()))
    assert debtor.id in {r.debtor_id for r in by_name}
    assert invoice is not None
    by_invoice = _all(portfolio, alice, QueueFilter(search=invoice.number))
    assert [r.debtor_id for r in by_invoice] == [debtor.id]
    assert phone is not None
    digits = "".join(c for c in phone.number if c.isdigit())[-7:]
    assert debtor.id in {r.debtor_id for r in _all(portfolio, alice, QueueFilter(search=digits))}
    bruno = get_agent(portfolio, "bruno")
    assert all(
        r.debtor_id != debtor.id for r in _all(portfolio, bruno, QueueFilter(search=invoice.number))
    ), "search never reaches another agent's accounts"


def test_due_callback_is_pinned_first_and_taken_by_next(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    rows = _all(portfolio, alice)
    low = next(
        r
        for r in reversed(rows)
        if not r.blocked and r.balance > 0 and r.time_zone.startswith("America/New_York")
    )
    with portfolio.session() as session:
        session.execute(
            update(Debtor)
            .where(Debtor.id == low.debtor_id)
            .values(next_action="callback", next_action_at=NOW - timedelta(minutes=1))
        )
    pinned = due_callbacks(portfolio, alice, now=NOW)
    assert [r.debtor_id for r in pinned][:1] == [low.debtor_id]
    assert pinned[0].pinned
    chosen = next_account(portfolio, alice, now=NOW)
    assert chosen is not None and chosen.debtor_id == low.debtor_id


def test_next_never_returns_an_account_that_may_not_be_contacted(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    with portfolio.session() as session:
        session.execute(
            update(Debtor)
            .where(Debtor.assigned_agent_id == alice.id)
            .values(contact_blocked_until=NOW + timedelta(days=1), contact_block_reason="cap")
        )
    assert next_account(portfolio, alice, now=NOW) is None
    contactable = _all(portfolio, alice, QueueFilter(contactable_now=True))
    assert contactable == []


def test_the_first_queue_read_of_a_process_holds_one_connection_at_a_time(
    portfolio: Database,
) -> None:
    """Its contact-hours filter reads the jurisdictions in use first, on their own
    connection, not while the page's read holds one."""
    alice = get_agent(portfolio, "alice")
    for read in (
        lambda: queue_page(portfolio, alice, queue_filter=QueueFilter(contactable_now=True),
                           now=NOW),
        lambda: queue_page(portfolio, alice, now=NOW),
        lambda: next_account(portfolio, alice, now=NOW),
    ):  # fmt: skip
        forget_jurisdictions(portfolio)
        with connections_held(portfolio) as most:
            assert read()
        assert most == [1]


def test_contactable_filter_respects_local_contact_hours(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    # 05:00 UTC is evening-to-night in the Americas and night in Europe: only Asia-Pacific is open.
    night = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
    rows = queue_page(
        portfolio, alice, queue_filter=QueueFilter(contactable_now=True), limit=500, now=night
    )
    assert rows
    assert not any(r.time_zone.startswith(("America/", "Europe/")) for r in rows)
    chosen = next_account(portfolio, alice, now=night)
    assert chosen is not None and not chosen.time_zone.startswith(("America/", "Europe/"))


def test_summary_and_marker(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    with portfolio.session() as session:  # something due today to be counted
        ids = session.scalars(
            select(Debtor.id).where(Debtor.assigned_agent_id == alice.id).limit(3)
        ).all()
        session.execute(update(Debtor).where(Debtor.id == ids[0]).values(promise_due_on=NOW.date()))
        session.execute(
            update(Debtor)
            .where(Debtor.id.in_(ids[1:]))
            .values(next_action="callback", next_action_at=NOW + timedelta(hours=2))
        )
    summary = queue_summary(portfolio, alice, now=NOW)
    assert summary.promises_due_today >= 1 and summary.callbacks_due >= 2
    assert summary.accounts == len(_all(portfolio, alice))
    marker = queue_marker(portfolio, alice)
    assert summary.marker == marker  # read in the summary's own pass
    with portfolio.session() as session:
        mine = session.scalars(select(Debtor).where(Debtor.assigned_agent_id == alice.id)).all()
    end_of_day = datetime.combine(NOW.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert summary.promises_due_today == sum(d.promise_due_on == NOW.date() for d in mine)
    assert summary.callbacks_due == sum(
        d.next_action == "callback" and d.next_action_at < end_of_day for d in mine
    )
    balances: dict[str, object] = {}
    for d in mine:
        balances[d.currency] = balances.get(d.currency, 0) + d.open_balance
    assert summary.balance == {c: v for c, v in balances.items() if v}
    with portfolio.session() as session:
        debtor = session.scalars(
            select(Debtor).where(Debtor.assigned_agent_id == alice.id).limit(1)
        ).one()
        debtor.preferred_channel = "sms"
    assert queue_marker(portfolio, alice) != marker
