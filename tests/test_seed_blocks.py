"""The seed leaves the call-cap cache as logging those calls would have: `n` never offers an
account whose call the compliance gate would then refuse."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select, update

from collect_tui.services.compliance import block_recently_called, contact_block
from collect_tui.services.database import Database
from collect_tui.services.seed import seed_portfolio
from collect_tui.storage.models import Contact, Debtor

AS_OF = date(2026, 11, 2)
AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_the_set_based_block_agrees_with_the_per_account_rules(db: Database) -> None:
    seed_portfolio(db.engine, debtors=400, agents=2, seed=5, as_of=AS_OF)
    with db.session() as session:
        assert session.scalar(
            select(func.count()).where(Debtor.contact_blocked_until.is_not(None))
        ), "a seed with recent conversations blocks some accounts"
        session.execute(
            update(Debtor).values(contact_blocked_until=None, contact_block_reason=None)
        )
        blocked = block_recently_called(session.connection(), AT)
        session.expire_all()
        called = set(session.scalars(select(Contact.debtor_id).distinct()))
        debtors = session.scalars(select(Debtor).where(Debtor.id.in_(called))).all()
        mismatches = []
        for debtor in debtors:
            until, reason = contact_block(session, debtor, AT)
            stored = (debtor.contact_blocked_until, debtor.contact_block_reason or "")
            if stored != (until, reason):
                mismatches.append((debtor.id, stored, (until, reason)))
        assert not mismatches[:3]
        assert blocked == sum(1 for d in debtors if d.contact_blocked_until is not None) > 0


def test_the_queue_says_until_when_a_blocked_account_may_be_called(db: Database) -> None:
    from collect_tui.services.agents import get_agent
    from collect_tui.services.queue import queue_page

    seed_portfolio(db.engine, debtors=400, agents=2, seed=5, as_of=AS_OF)
    alice = get_agent(db, "alice")
    rows = queue_page(db, alice, limit=400, now=AT)
    with db.session() as session:
        blocked_ids = set(
            session.scalars(
                select(Debtor.id).where(
                    Debtor.contact_blocked_until > AT, Debtor.assigned_agent_id == alice.id
                )
            )
        )
    shown = [r for r in rows if r.debtor_id in blocked_ids]
    assert shown
    for row in shown:
        if row.blocked and not row.blocked.startswith("excluded"):
            assert row.blocked.startswith("no calls"), row.blocked
            assert len(row.blocked) <= 22, "fits the queue's reason column"
