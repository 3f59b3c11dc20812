"""Permissions of every service that takes a caller, on both engines.

An agent may read and change only the accounts assigned to them: never another agent's,
never the unassigned pool's, whatever the entry point (account reads and writes, queue
pages, search, callbacks, the next-account pick, summaries). Supervisor-only services
refuse agents. Roles are checked against the database at each call, so a demotion or a
deactivation takes effect at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from collect_tui import clock
from collect_tui.domain.aging import BUCKETS
from collect_tui.services import supervisor as sup
from collect_tui.services import workspace as ws
from collect_tui.services.agents import AgentInfo, get_agent
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
from collect_tui.services.sync import SyncNotPermitted, retry_failed, run_sync
from collect_tui.storage.models import (
    Agent,
    AuditEntry,
    Contact,
    Debtor,
    Dispute,
    Email,
    Invoice,
    Phone,
    Settlement,
)
from collect_tui.storage.scoring import rescore

D = Decimal
TODAY = datetime.now(UTC).date()
NOON_IN_THE_AMERICAS = datetime.combine(TODAY, time(17, 0), UTC)


@pytest.fixture(autouse=True)
def _inside_contact_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(
        clock, "now", lambda: NOON_IN_THE_AMERICAS + timedelta(milliseconds=next(ticks))
    )


@pytest.fixture
def portfolio(db: Database) -> Database:
    """Alice, Bruno, a supervisor and an admin; one of Bruno's accounts moved to the pool."""
    seed_portfolio(db.engine, debtors=60, agents=2, seed=7, as_of=TODAY)
    with db.session() as session:
        rescore(session.connection(), today=TODAY, now=NOON_IN_THE_AMERICAS)
    bruno = get_agent(db, "bruno")
    pooled = _accounts(db, bruno)[-1]
    with db.session() as session:
        session.execute(update(Debtor).where(Debtor.id == pooled).values(assigned_agent_id=None))
    return db


def _accounts(db: Database, agent: AgentInfo | None) -> list[int]:
    holder = (
        Debtor.assigned_agent_id.is_(None)
        if agent is None
        else (Debtor.assigned_agent_id == agent.id)
    )
    with db.session() as session:
        return list(session.scalars(select(Debtor.id).where(holder).order_by(Debtor.id)))


def _state(db: Database, debtor_id: int) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was."""
    with db.session() as session:
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        audit_rows = session.scalar(select(func.count()).select_from(AuditEntry))
        contacts = session.scalar(select(func.count()).select_from(Contact))
        return (debtor.version, debtor.assigned_agent_id, debtor.next_action, audit_rows, contacts)


def _version(db: Database, debtor_id: int) -> int:
    with db.session() as session:
        return int(session.scalar(select(Debtor.version).where(Debtor.id == debtor_id)) or 0)


def _open_invoice(db: Database, debtor_id: int) -> int:
    with db.session() as session:
        found = session.scalar(
            select(Invoice.id)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == "open")
            .order_by(Invoice.id)
        )
    assert found is not None
    return found


def _with_open_invoice(db: Database, agent: AgentInfo | None) -> int:
    for debtor_id in _accounts(db, agent):
        with db.session() as session:
            if session.scalar(
                select(func.count()).where(Invoice.debtor_id == debtor_id, Invoice.status == "open")
            ):
                return debtor_id
    raise AssertionError("no account with an open invoice")


# --- every account-level service -------------------------------------------------------


def _account_calls(db: Database, debtor_id: int) -> dict[str, Callable[[AgentInfo], Any]]:
    """Each public workspace service, called on ``debtor_id`` with valid arguments."""
    version = _version(db, debtor_id)
    invoice = _open_invoice(db, debtor_id)
    later = TODAY + timedelta(days=7)
    return {
        "load_account": lambda a: ws.load_account(db, a, debtor_id),
        "load_timeline": lambda a: ws.load_timeline(db, a, debtor_id),
        "log_contact": lambda a: ws.log_contact(
            db, a, debtor_id, version, channel="call", direction="inbound", disposition="no_answer"
        ),
        "make_promise": lambda a: ws.make_promise(
            db, a, debtor_id, version, amount=D("10.00"), due_date=later
        ),
        "preview_plan": lambda a: ws.preview_plan(
            db, a, debtor_id, first_date=later, frequency="monthly", count=2
        ),
        "create_plan": lambda a: ws.create_plan(
            db, a, debtor_id, version, first_date=later, frequency="monthly", count=2
        ),
        "propose_settlement": lambda a: ws.propose_settlement(
            db, a, debtor_id, version, amount=D("1.00"), due_date=later
        ),
        "open_dispute": lambda a: ws.open_dispute(
            db, a, debtor_id, version, invoice_ids=[invoice], reason="not mine"
        ),
        "resolve_dispute": lambda a: ws.resolve_dispute(
            db, a, debtor_id, version, dispute_id=1, resolution="ok"
        ),
        "schedule_callback": lambda a: ws.schedule_callback(
            db, a, debtor_id, version, local_date=later, local_time=time(11, 0)
        ),
        "decide_settlement": lambda a: ws.decide_settlement(
            db, a, debtor_id, version, settlement_id=1, approve=True
        ),
    }


ACCOUNT_SERVICES = [
    "load_account",
    "load_timeline",
    "log_contact",
    "make_promise",
    "preview_plan",
    "create_plan",
    "propose_settlement",
    "open_dispute",
    "resolve_dispute",
    "schedule_callback",
    "decide_settlement",
]


def test_every_public_workspace_service_is_covered() -> None:
    """A new public workspace function taking a debtor id must be added here."""
    import inspect

    public = {
        name
        for name, fn in inspect.getmembers(ws, inspect.isfunction)
        if fn.__module__ == ws.__name__
        and not name.startswith("_")
        and {"db", "agent", "debtor_id"} <= set(inspect.signature(fn).parameters)
    }
    assert public == set(ACCOUNT_SERVICES)


def test_agent_is_refused_an_account_not_theirs(portfolio: Database) -> None:
    """Every account service, on another agent's account and on a pooled one."""
    alice = get_agent(portfolio, "alice")
    for owner in (get_agent(portfolio, "bruno"), None):
        debtor_id = _with_open_invoice(portfolio, owner)
        calls = _account_calls(portfolio, debtor_id)
        assert set(calls) == set(ACCOUNT_SERVICES)
        for service in ACCOUNT_SERVICES:
            before = _state(portfolio, debtor_id)
            with pytest.raises(ws.AccessDenied):
                calls[service](alice)
            assert _state(portfolio, debtor_id) == before, service


def test_the_owner_and_a_supervisor_may(portfolio: Database) -> None:
    """The refusals above are about the holder, not a broken call."""
    bruno, boss = get_agent(portfolio, "bruno"), get_agent(portfolio, "supervisor")
    for service in ("load_account", "load_timeline", "log_contact", "schedule_callback"):
        _account_calls(portfolio, _with_open_invoice(portfolio, bruno))[service](bruno)
        _account_calls(portfolio, _with_open_invoice(portfolio, None))[service](boss)


def test_an_unknown_account_is_not_found(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    with pytest.raises(ws.AccountNotFound):
        ws.load_account(portfolio, alice, 999_999)


def test_agent_may_not_decide_a_settlement_even_on_their_own_account(
    portfolio: Database,
) -> None:
    alice = get_agent(portfolio, "alice")
    mine = _with_open_invoice(portfolio, alice)
    before = _state(portfolio, mine)
    with pytest.raises(ws.AccessDenied):
        _account_calls(portfolio, mine)["decide_settlement"](alice)
    assert _state(portfolio, mine) == before


def test_ids_of_another_account_are_refused_on_ones_own(portfolio: Database) -> None:
    """Invoice, dispute, settlement and contact ids must belong to the account named."""
    alice, bruno = get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")
    boss = get_agent(portfolio, "supervisor")
    mine = _with_open_invoice(portfolio, alice)
    brunos = _with_open_invoice(portfolio, bruno)
    theirs_invoice = _open_invoice(portfolio, brunos)
    ws.log_contact(
        portfolio,
        bruno,
        brunos,
        _version(portfolio, brunos),
        channel="call",
        direction="inbound",
        disposition="no_answer",
    )
    dispute_ids = ws.open_dispute(
        portfolio,
        bruno,
        brunos,
        _version(portfolio, brunos),
        invoice_ids=[theirs_invoice],
        reason="wrong amount",
    )
    settlement_id = ws.propose_settlement(
        portfolio,
        bruno,
        _with_open_invoice(portfolio, bruno),
        _version(portfolio, _with_open_invoice(portfolio, bruno)),
        amount=D("1.00"),
        due_date=TODAY + timedelta(days=3),
    )
    with portfolio.session() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.debtor_id == brunos))
    later = TODAY + timedelta(days=7)
    before = _state(portfolio, brunos)
    attempts: list[Callable[[], Any]] = [
        lambda: ws.make_promise(
            portfolio,
            alice,
            mine,
            _version(portfolio, mine),
            amount=D("5.00"),
            due_date=later,
            invoice_id=theirs_invoice,
        ),
        lambda: ws.make_promise(
            portfolio,
            alice,
            mine,
            _version(portfolio, mine),
            amount=D("5.00"),
            due_date=later,
            contact_id=contact_id,
        ),
        lambda: ws.create_plan(
            portfolio,
            alice,
            mine,
            _version(portfolio, mine),
            first_date=later,
            frequency="monthly",
            count=2,
            contact_id=contact_id,
        ),
        lambda: ws.open_dispute(
            portfolio,
            alice,
            mine,
            _version(portfolio, mine),
            invoice_ids=[theirs_invoice],
            reason="x",
        ),
        lambda: ws.resolve_dispute(
            portfolio,
            alice,
            mine,
            _version(portfolio, mine),
            dispute_id=dispute_ids[0],
            resolution="x",
        ),
        lambda: ws.decide_settlement(
            portfolio,
            boss,
            mine,
            _version(portfolio, mine),
            settlement_id=settlement_id,
            approve=True,
        ),
    ]
    for attempt in attempts:
        mine_before = _state(portfolio, mine)
        with pytest.raises(ws.ValidationFailed):
            attempt()
        assert _state(portfolio, mine) == mine_before
    assert _state(portfolio, brunos) == before
    with portfolio.session() as session:
        dispute = session.get(Dispute, dispute_ids[0])
        settlement = session.get(Settlement, settlement_id)
        assert dispute is not None and dispute.status == "open"
        assert settlement is not None and settlement.status == "awaiting_approval"


# --- the queue and its search ---------------------------------------------------------


def _search_terms(db: Database, debtor_id: int) -> list[str]:
    """A name, an invoice number, an e-mail address and a phone number of the account."""
    with db.session() as session:
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        terms = [debtor.name]
        number = session.scalar(select(Invoice.number).where(Invoice.debtor_id == debtor_id))
        email = session.scalar(select(Email.address).where(Email.debtor_id == debtor_id))
        phone = session.scalar(select(Phone.number).where(Phone.debtor_id == debtor_id))
    terms += [t for t in (number, email, phone) if t]
    return terms


def test_queue_search_never_finds_another_agents_account(portfolio: Database) -> None:
    """By name, invoice number, e-mail or phone: only the agent's own accounts match."""
    alice, bruno = get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")
    alices = set(_accounts(portfolio, alice))
    for owner in (bruno, None):
        theirs = _accounts(portfolio, owner)[0]
        terms = _search_terms(portfolio, theirs)
        assert len(terms) >= 3
        for term in terms:
            rows = queue_page(portfolio, alice, queue_filter=QueueFilter(search=term), limit=500)
            assert theirs not in {row.debtor_id for row in rows}, term
            assert {row.debtor_id for row in rows} <= alices
    theirs = _accounts(portfolio, bruno)[0]
    for term in _search_terms(portfolio, theirs):  # the search works: the holder finds it
        rows = queue_page(portfolio, bruno, queue_filter=QueueFilter(search=term), limit=500)
        assert theirs in {row.debtor_id for row in rows}, term


def test_every_queue_read_shows_only_the_agents_own_accounts(portfolio: Database) -> None:
    alice, bruno = get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")
    alices = set(_accounts(portfolio, alice))
    # Give everyone a due callback, so the pinned part of the queue is not empty.
    due = NOON_IN_THE_AMERICAS - timedelta(minutes=5)
    with portfolio.session() as session:
        session.execute(update(Debtor).values(next_action="callback", next_action_at=due))
    filters = [
        QueueFilter(),
        QueueFilter(callbacks=True),
        QueueFilter(promise_due=True),
        QueueFilter(contactable_now=True),
        *[QueueFilter(bucket=b) for b in BUCKETS],
    ]
    for queue_filter in filters:
        rows = queue_page(
            portfolio, alice, queue_filter=queue_filter, limit=500, now=NOON_IN_THE_AMERICAS
        )
        assert {row.debtor_id for row in rows} <= alices
    callbacks = due_callbacks(portfolio, alice, now=NOON_IN_THE_AMERICAS, limit=500)
    assert callbacks and {row.debtor_id for row in callbacks} <= alices
    picked = next_account(portfolio, alice, now=NOON_IN_THE_AMERICAS)
    assert picked is None or picked.debtor_id in alices
    assert queue_summary(portfolio, alice, now=NOON_IN_THE_AMERICAS).accounts == len(alices)
    # Another agent's change does not show in the agent's change marker.
    marker = queue_marker(portfolio, alice)
    brunos = _accounts(portfolio, bruno)[0]
    with portfolio.session() as session:
        session.execute(
            update(Debtor).where(Debtor.id == brunos).values(version=Debtor.version + 1)
        )
    assert queue_marker(portfolio, alice) == marker


# --- supervisor-only services ----------------------------------------------------------


def _supervisor_calls(db: Database) -> dict[str, Callable[[AgentInfo], Any]]:
    boss = get_agent(db, "supervisor")
    bruno = get_agent(db, "bruno")
    brunos = _accounts(db, bruno)[0]
    plan = sup.preview_rebalance(db, boss, measure="count", include_pool=True, today=TODAY)
    return {
        "workloads": lambda a: sup.workloads(db, a, now=NOON_IN_THE_AMERICAS),
        "reassign": lambda a: sup.reassign(
            db, a, debtor_ids=[brunos], to_agent_id=a.id, reason="mine now"
        ),
        "reassign_match": lambda a: sup.reassign(
            db, a, match=sup.AccountMatch(from_pool=True), to_agent_id=a.id, reason="mine"
        ),
        "preview_rebalance": lambda a: sup.preview_rebalance(db, a, measure="count", today=TODAY),
        "apply_rebalance": lambda a: sup.apply_rebalance(db, a, plan, reason="balance"),
        "pending_settlements": lambda a: sup.pending_settlements(db, a),
        "decide_settlement": lambda a: sup.decide_settlement(
            db, a, 1, approve=True, note="ok", expected_version=1
        ),
        "kpis": lambda a: sup.kpis(db, a, today=TODAY),
    }


SUPERVISOR_SERVICES = [
    "workloads",
    "reassign",
    "reassign_match",
    "preview_rebalance",
    "apply_rebalance",
    "pending_settlements",
    "decide_settlement",
    "kpis",
]


def _snapshot(db: Database) -> tuple[Any, ...]:
    with db.session() as session:
        holders = tuple(session.execute(select(Debtor.id, Debtor.assigned_agent_id)).all())
        audit_rows = session.scalar(select(func.count()).select_from(AuditEntry))
        settlements = tuple(session.execute(select(Settlement.id, Settlement.status)).all())
    return holders, audit_rows, settlements


def test_every_public_supervisor_service_is_covered() -> None:
    import inspect

    public = {
        name
        for name, fn in inspect.getmembers(sup, inspect.isfunction)
        if fn.__module__ == sup.__name__
        and not name.startswith("_")
        and "caller" in inspect.signature(fn).parameters
    }
    assert public == {name for name in SUPERVISOR_SERVICES if name != "reassign_match"}


def test_supervisor_services_refuse_agents(portfolio: Database) -> None:
    calls = _supervisor_calls(portfolio)
    alice = get_agent(portfolio, "alice")
    for service in SUPERVISOR_SERVICES:
        before = _snapshot(portfolio)
        with pytest.raises(sup.NotSupervisor):
            calls[service](alice)
        assert _snapshot(portfolio) == before, service


def _demote(db: Database, name: str, **values: Any) -> None:
    with db.session() as session:
        session.execute(update(Agent).where(Agent.name == name).values(**values))


def test_a_demoted_supervisor_is_refused_at_once(portfolio: Database) -> None:
    """The role signed in with is not trusted: the database's role at each call is."""
    calls = _supervisor_calls(portfolio)
    boss = get_agent(portfolio, "supervisor")
    _demote(portfolio, "supervisor", role="agent")
    for service in SUPERVISOR_SERVICES:
        before = _snapshot(portfolio)
        with pytest.raises(sup.NotSupervisor):
            calls[service](boss)
        assert _snapshot(portfolio) == before, service


def test_a_demoted_or_deactivated_person_loses_account_access(portfolio: Database) -> None:
    boss = get_agent(portfolio, "supervisor")
    alice = get_agent(portfolio, "alice")
    brunos = _with_open_invoice(portfolio, get_agent(portfolio, "bruno"))
    alices = _with_open_invoice(portfolio, alice)
    ws.load_account(portfolio, boss, brunos)
    _demote(portfolio, "supervisor", role="agent")
    with pytest.raises(ws.AccessDenied):
        ws.load_account(portfolio, boss, brunos)
    for service in ("load_account", "log_contact", "decide_settlement"):
        with pytest.raises(ws.AccessDenied):
            _account_calls(portfolio, brunos)[service](boss)
    ws.load_account(portfolio, alice, alices)
    _demote(portfolio, "alice", active=False)
    before = _state(portfolio, alices)
    for service in ("load_account", "log_contact", "schedule_callback"):
        with pytest.raises(ws.AccessDenied, match="no longer an active agent"):
            _account_calls(portfolio, alices)[service](alice)
    assert _state(portfolio, alices) == before


def test_a_forged_role_is_not_trusted(portfolio: Database) -> None:
    """An AgentInfo claiming a role the database does not give is refused."""
    alice = get_agent(portfolio, "alice")
    forged = AgentInfo(alice.id, alice.name, alice.display_name, "admin", D("0"))
    brunos = _with_open_invoice(portfolio, get_agent(portfolio, "bruno"))
    with pytest.raises(ws.AccessDenied):
        ws.load_account(portfolio, forged, brunos)
    with pytest.raises(sup.NotSupervisor):
        sup.workloads(portfolio, forged, now=NOON_IN_THE_AMERICAS)
    impostor = AgentInfo(alice.id, "supervisor", "Boss", "supervisor", D("0"))
    with pytest.raises(ws.AccessDenied):
        ws.load_account(portfolio, impostor, brunos)


# --- sync -------------------------------------------------------------------------------


def test_sync_services_refuse_agents(portfolio: Database) -> None:
    alice = get_agent(portfolio, "alice")
    with pytest.raises(SyncNotPermitted):
        run_sync(portfolio, caller=alice)
    with pytest.raises(SyncNotPermitted):
        retry_failed(portfolio, NOON_IN_THE_AMERICAS, caller=alice)
    # A supervisor passes the check (and then meets the missing set-up, not a refusal).
    assert retry_failed(portfolio, NOON_IN_THE_AMERICAS, caller=get_agent(portfolio, "admin")) == 0
    with pytest.raises(Exception) as info:
        run_sync(portfolio, caller=get_agent(portfolio, "supervisor"))
    assert not isinstance(info.value, SyncNotPermitted)


# --- claims (``n``) ----------------------------------------------------------------------


def test_claims_never_hand_an_agent_another_agents_account(portfolio: Database) -> None:
    from collect_tui.services import claims

    alice, bruno = get_agent(portfolio, "alice"), get_agent(portfolio, "bruno")
    boss = get_agent(portfolio, "supervisor")
    brunos = set(_accounts(portfolio, bruno))
    pooled = set(_accounts(portfolio, None))
    taken: list[int] = []
    for _ in range(8):
        claimed = claims.claim_next(
            portfolio, alice, session_id=claims.new_session_id(), now=NOON_IN_THE_AMERICAS
        )
        if claimed is None:
            break
        taken.append(claimed.row.debtor_id)
        assert claimed.row.debtor_id not in brunos
        assert claimed.from_pool == (claimed.row.debtor_id in pooled)
    assert taken and set(taken) <= set(_accounts(portfolio, alice))  # pool ones are hers now
    # Renewing a claim on Bruno's account is refused and leaves no claim behind.
    theirs = min(brunos)
    session_id = claims.new_session_id()
    assert not claims.renew_claim(
        portfolio, alice, session_id=session_id, debtor_id=theirs, now=NOON_IN_THE_AMERICAS
    )
    assert claims.claim_holder(portfolio, theirs, now=NOON_IN_THE_AMERICAS) is None
    # Bruno's session cannot be renewed by Alice.
    brunos_session = claims.new_session_id()
    assert claims.claim_next(portfolio, bruno, session_id=brunos_session, now=NOON_IN_THE_AMERICAS)
    assert (
        claims.renew_claims(portfolio, alice, session_id=brunos_session, now=NOON_IN_THE_AMERICAS)
        == 0
    )
    with pytest.raises(claims.ClaimRefused):
        claims.claim_next(
            portfolio, boss, session_id=claims.new_session_id(), now=NOON_IN_THE_AMERICAS
        )
