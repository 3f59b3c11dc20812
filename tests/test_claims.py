"""Claims on both engines: `n` never gives one account to two sessions at once.

The threaded tests are the concurrency tests of the team issue: on PostgreSQL they run
against a real server with many connections at once (parallel claims, lost-update
attempts, a supervisor rebalance while agents work).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import connections_held
from sqlalchemy import func, select, update

from collect_tui.services.agents import AgentInfo, create_agent, get_agent
from collect_tui.services.claims import (
    CLAIM_TTL,
    ClaimRefused,
    claim_holder,
    claim_next,
    new_session_id,
    release_claims,
    renew_claim,
)
from collect_tui.services.contactability import forget_jurisdictions
from collect_tui.services.database import Database
from collect_tui.services.queue import next_account
from collect_tui.services.seed import seed_portfolio
from collect_tui.services.supervisor import preview_rebalance, reassign
from collect_tui.services.workspace import AccessDenied, StaleEdit, log_contact
from collect_tui.storage.models import Assignment, AuditEntry, Claim, Contact, Debtor
from collect_tui.storage.scoring import rescore

AS_OF = date(2026, 11, 2)
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # most contact windows are open


@pytest.fixture
def portfolio(db: Database) -> Database:
    seed_portfolio(db.engine, debtors=300, agents=2, seed=21, as_of=AS_OF)
    with db.session() as session:
        rescore(session.connection(), today=AS_OF, now=NOW)
    return db


def _supervisor(db: Database) -> AgentInfo:
    return create_agent(db, "sam", display_name="Sam Super", role="supervisor")


def _to_pool(db: Database, how_many: int) -> list[int]:
    """Move some of alice's best accounts to the pool; returns their ids."""
    alice = get_agent(db, "alice")
    first = next_account(db, alice, now=NOW)
    assert first is not None
    with db.session() as session:
        ids = list(
            session.scalars(
                select(Debtor.id)
                .where(Debtor.assigned_agent_id == alice.id, Debtor.priority_score > 0)
                .order_by(Debtor.priority_score.desc(), Debtor.id)
                .limit(how_many)
            )
        )
        session.execute(update(Debtor).where(Debtor.id.in_(ids)).values(assigned_agent_id=None))
    return ids


def test_claim_next_gives_what_next_shows_then_skips_it_for_other_sessions(
    portfolio: Database,
) -> None:
    alice = get_agent(portfolio, "alice")
    expected = next_account(portfolio, alice, now=NOW)
    assert expected is not None
    first = claim_next(portfolio, alice, session_id="s1", now=NOW, pool=False)
    assert first is not None and first.row.debtor_id == expected.debtor_id
    assert first.expires_at == NOW + CLAIM_TTL and not first.from_pool
    second = claim_next(portfolio, alice, session_id="s2", now=NOW, pool=False)
    assert second is not None and second.row.debtor_id != first.row.debtor_id
    holder = claim_holder(portfolio, first.row.debtor_id, now=NOW)
    assert holder is not None and holder.session_id == "s1"


def test_a_session_holds_one_account_and_release_frees_it(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    first = claim_next(portfolio, alice, session_id="s1", now=NOW, pool=False)
    assert first is not None
    again = claim_next(portfolio, alice, session_id="s1", now=NOW, pool=False)
    assert again is not None
    with portfolio.session() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1
    assert release_claims(portfolio, session_id="s1") == 1
    assert claim_holder(portfolio, again.row.debtor_id, now=NOW) is None


def test_an_idle_claim_expires_and_renewing_keeps_it(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    taken = claim_next(portfolio, alice, session_id="idle", now=NOW, pool=False)
    assert taken is not None
    debtor_id = taken.row.debtor_id
    # Renewed within the TTL: still held ten minutes later.
    assert renew_claim(portfolio, alice, session_id="idle", debtor_id=debtor_id,
                       now=NOW + timedelta(minutes=9))  # fmt: skip
    later = NOW + timedelta(minutes=15)
    other = claim_next(portfolio, alice, session_id="busy", now=later, pool=False)
    assert other is not None and other.row.debtor_id != debtor_id
    # Idle past the TTL: the account goes back to `n` for everyone else.
    lapsed = NOW + timedelta(minutes=9) + CLAIM_TTL + timedelta(seconds=1)
    third = claim_next(portfolio, alice, session_id="third", now=lapsed, pool=False)
    assert third is not None and third.row.debtor_id == debtor_id
    holder = claim_holder(portfolio, debtor_id, now=lapsed)
    assert holder is not None and holder.session_id == "third"
    assert not renew_claim(portfolio, alice, session_id="idle", debtor_id=debtor_id, now=lapsed)


def test_pool_accounts_are_taken_with_history_and_audit(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    pooled = _to_pool(portfolio, 3)
    taken = claim_next(portfolio, alice, session_id="s1", now=NOW)
    # The pool holds alice's best accounts, so the best contactable one comes from there.
    assert taken is not None and taken.from_pool and taken.row.debtor_id in pooled
    taken_id = taken.row.debtor_id
    with portfolio.session() as session:
        debtor = session.get(Debtor, taken_id)
        assert debtor is not None and debtor.assigned_agent_id == alice.id
        history = session.scalars(select(Assignment).where(Assignment.debtor_id == taken_id)).all()
        assert [(h.from_agent_id, h.to_agent_id) for h in history][-1] == (None, alice.id)
        assert session.scalar(
            select(func.count()).where(
                AuditEntry.debtor_id == taken_id, AuditEntry.action == "claim_from_pool"
            )
        )


def test_a_claim_and_its_save_hold_one_connection_at_a_time(portfolio: Database) -> None:
    """The first `n` of a process reads the jurisdictions in use: it does so before its
    transaction, so a team sharing a small pool cannot all hold a connection while
    waiting for a second one."""
    alice = get_agent(portfolio, "alice")
    forget_jurisdictions(portfolio)
    with connections_held(portfolio) as most:
        claimed = claim_next(portfolio, alice, session_id="s1", now=NOW)
        assert claimed is not None
        log_contact(
            portfolio, alice, claimed.row.debtor_id, claimed.version, channel="call",
            direction="outbound", disposition="no_answer", now=NOW,
        )  # fmt: skip
    assert most == [1]


def test_supervisors_have_no_next(portfolio: Database) -> None:
    with pytest.raises(ClaimRefused):
        claim_next(portfolio, _supervisor(portfolio), session_id="s", now=NOW)


def test_renew_refuses_an_account_moved_to_another_agent(portfolio: Database) -> None:
    alice, bruno = get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")
    taken = claim_next(portfolio, alice, session_id="s1", now=NOW, pool=False)
    assert taken is not None
    reassign(portfolio, _supervisor(portfolio), debtor_ids=[taken.row.debtor_id],
             to_agent_id=bruno.id, reason="cover", now=NOW)  # fmt: skip
    assert not renew_claim(portfolio, alice, session_id="s1", debtor_id=taken.row.debtor_id,
                           now=NOW)  # fmt: skip


# --- concurrency ---------------------------------------------------------------------------


def test_parallel_claims_never_give_one_account_twice(portfolio: Database) -> None:
    """Parallel presses of `n` (twelve sessions on PostgreSQL, four on SQLite, where writers
    queue for one lock) by two agents sharing a pool: no account twice."""
    _to_pool(portfolio, 40)
    agents = [get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")]
    sessions = 12 if portfolio.dialect == "postgresql" else 4
    start = threading.Barrier(sessions)

    def worker(index: int) -> list[tuple[int, bool]]:
        agent = agents[index % 2]
        start.wait()
        got = []
        for _ in range(8):
            # A new session per press: nothing is released, so every claim stays live.
            taken = claim_next(portfolio, agent, session_id=new_session_id(), now=NOW)
            if taken is not None:
                got.append((taken.row.debtor_id, taken.from_pool))
        return got

    with ThreadPoolExecutor(sessions) as pool:
        results = [r for batch in pool.map(worker, range(sessions)) for r in batch]
    counts = Counter(debtor_id for debtor_id, _ in results)
    assert len(results) == sessions * 8
    assert max(counts.values()) == 1, "an account was claimed by two sessions"
    assert sum(from_pool for _, from_pool in results) > 0, "the pool was worked"
    with portfolio.session() as session:
        live = session.scalar(select(func.count()).where(Claim.expires_at > NOW))
        pool_history = session.scalar(
            select(func.count()).where(Assignment.from_agent_id.is_(None))
        )
    assert live == sessions * 8
    assert pool_history == sum(from_pool for _, from_pool in results)


def test_lost_update_attempts_save_exactly_once(portfolio: Database) -> None:
    """Eight sessions save on the same version of one account at once: one wins."""
    alice = get_agent(portfolio, "alice")
    taken = claim_next(portfolio, alice, session_id="s", now=NOW, pool=False)
    assert taken is not None
    debtor_id = taken.row.debtor_id
    with portfolio.session() as session:
        version = session.scalar(select(Debtor.version).where(Debtor.id == debtor_id))
        before = session.scalar(select(func.count()).where(Contact.debtor_id == debtor_id))
    start = threading.Barrier(8)

    def save(index: int) -> str:
        start.wait()
        try:
            log_contact(portfolio, alice, debtor_id, version, channel="call",
                        direction="inbound", disposition="right_party",
                        notes=f"save {index}", now=NOW)  # fmt: skip
        except StaleEdit:
            return "stale"
        return "saved"

    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(save, range(8)))
    assert outcomes == {"saved": 1, "stale": 7}
    with portfolio.session() as session:
        after = session.scalar(select(func.count()).where(Contact.debtor_id == debtor_id))
    assert after == before + 1


def test_supervisor_moves_during_agents_work_lose_nothing(portfolio: Database) -> None:
    """Agents claim and save while a supervisor moves accounts back and forth.

    Every save either lands (and its contact exists) or is refused cleanly (stale version
    or the account moved away); nothing deadlocks, nothing is half-written.
    """
    alice, bruno = get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")
    sam = _supervisor(portfolio)
    stop = threading.Event()
    saved: list[int] = []
    refused: Counter[str] = Counter()
    lock = threading.Lock()

    def agent_loop(agent: AgentInfo) -> None:
        session_id = new_session_id()
        for _ in range(8):
            taken = claim_next(portfolio, agent, session_id=session_id, now=NOW, pool=False)
            if taken is None:
                continue
            with portfolio.session() as session:
                version = session.scalar(
                    select(Debtor.version).where(Debtor.id == taken.row.debtor_id)
                )
            try:
                contact_id = log_contact(portfolio, agent, taken.row.debtor_id, version,
                                         channel="call", direction="inbound",
                                         disposition="right_party", now=NOW)  # fmt: skip
            except (StaleEdit, AccessDenied) as exc:
                with lock:
                    refused[type(exc).__name__] += 1
                continue
            with lock:
                saved.append(contact_id)

    def supervisor_loop() -> None:
        moves = 0
        while not stop.is_set() and moves < 15:
            with portfolio.session() as session:
                ids = list(
                    session.scalars(
                        select(Debtor.id)
                        .where(Debtor.assigned_agent_id == alice.id, Debtor.priority_score > 0)
                        .order_by(Debtor.priority_score.desc())
                        .limit(5)
                    )
                )
            reassign(portfolio, sam, debtor_ids=ids, to_agent_id=bruno.id,
                     reason="rebalance during work", now=NOW)  # fmt: skip
            moves += 1

    workers = [threading.Thread(target=agent_loop, args=(a,)) for a in (alice, bruno) * 3]
    mover = threading.Thread(target=supervisor_loop)
    for thread in [*workers, mover]:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    stop.set()
    mover.join(timeout=60)
    assert not any(t.is_alive() for t in [*workers, mover]), "a thread hung (deadlock?)"
    assert saved, "agents saved while the supervisor moved accounts"
    with portfolio.session() as session:
        stored = set(session.scalars(select(Contact.id).where(Contact.id.in_(saved))))
    assert stored == set(saved), "a save that reported success is missing"


def test_rebalance_leaves_accounts_being_worked(portfolio: Database) -> None:
    """An absent agent's accounts are handed out, except the one someone is on right now."""
    alice = get_agent(portfolio, "alice")
    taken = claim_next(portfolio, alice, session_id="on-a-call", now=NOW, pool=False)
    assert taken is not None
    plan = preview_rebalance(portfolio, _supervisor(portfolio), measure="count",
                             absent_agent_ids=[alice.id], now=NOW)  # fmt: skip
    moved = {m.debtor_id for m in plan.moves}
    assert moved, "an absent agent's accounts are handed out"
    assert taken.row.debtor_id not in moved
