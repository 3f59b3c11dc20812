"""Claims: which app session is working which account right now.

``n`` claims the next best contactable account: the agent's due callbacks first, then the
best-scored account of their own queue or of the pool (unassigned accounts), whichever
scores higher. Two sessions never hold the same account at once:

* on PostgreSQL the candidate row is read ``FOR UPDATE SKIP LOCKED``, so concurrent
  ``n`` presses pass over each other's candidates instead of waiting on them;
* on both engines the claim is an upsert into ``claims`` that only overwrites an expired
  claim or one of the same session, and a pool account is assigned with
  ``UPDATE ... WHERE assigned_agent_id IS NULL``; whoever loses either race retries with
  the next candidate.

A claim lasts :data:`CLAIM_TTL` from its last renewal. The app renews it while the agent
is active on the account and releases it when they leave, so an idle agent's claim lapses
and the account returns to ``n`` for everyone else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Executable,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)

from collect_tui.domain.priority import EXCLUDED_SCORE
from collect_tui.services import audit
from collect_tui.services.agents import AgentInfo
from collect_tui.services.contactability import Jurisdiction, open_jurisdictions
from collect_tui.services.database import Database
from collect_tui.services.queue import (
    QUEUE_COLUMNS,
    QueueRow,
    estimated_as_half,
    excluded_clause,
    queue_row,
)
from collect_tui.storage.driver import read_on_driver, run_on_driver
from collect_tui.storage.engine import insert_for
from collect_tui.storage.models import Assignment, AuditEntry, Claim, Debtor

CLAIM_TTL = timedelta(minutes=10)
POOL_REASON = "taken from the pool with n"
_ATTEMPTS = 10


class ClaimRefused(Exception):
    """Only agents work a queue; supervisors and admins have no ``n``."""


@dataclass(frozen=True)
class ClaimedAccount:
    """The account ``n`` gave this session, until ``expires_at`` unless renewed."""

    row: QueueRow
    version: int
    """The debtor row's version when claimed: what the first save expects."""
    expires_at: datetime
    from_pool: bool


def new_session_id() -> str:
    """An id for one running app (each SSH login or browser tab gets its own)."""
    return uuid.uuid4().hex


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime; attach a time zone")
    return now


def _claimed_elsewhere(session_id: object, now: object) -> ColumnElement[bool]:
    """SQL condition: another session holds a live claim on the debtor (values or bound
    parameters)."""
    return exists().where(
        Claim.debtor_id == Debtor.id, Claim.expires_at > now, Claim.session_id != session_id
    )


def _locked(query: Select[Any]) -> Select[Any]:
    # SQLite ignores FOR UPDATE; it serialises writers, and the upsert below arbitrates.
    return query.limit(1).with_for_update(skip_locked=True, of=Debtor)


_debtors = Debtor.__table__.c


# Joins the fields of a jurisdiction into the one text PostgreSQL matches (a character
# no country, region or zone name holds).
_SEPARATOR = "\x1f"


def _in_window(dialect: str) -> ColumnElement[bool]:
    """SQL condition: the debtor's jurisdiction is one of ``windows`` (the open ones).

    On PostgreSQL ``windows`` is one array of joined texts, so that the statement's text
    stays the same whatever the number of open jurisdictions: the driver then converts
    it once and the server prepares it once, instead of at every claim."""
    c = _debtors
    region = func.coalesce(c.region, "")
    if dialect == "postgresql":
        joined = c.country + _SEPARATOR + region + _SEPARATOR + c.time_zone
        return joined == any_(bindparam("windows", type_=ARRAY(String)))
    return tuple_(c.country, region, c.time_zone).in_(bindparam("windows", expanding=True))


def _window_param(dialect: str, windows: Sequence[tuple[str, str | None, str]]) -> list[Any]:
    """The ``windows`` parameter of :func:`_in_window` for the open jurisdictions."""
    if dialect == "postgresql":
        return [
            _SEPARATOR.join((country, region or "", zone))
            for country, region, zone in windows
            if country is not None and zone is not None  # NULL never matched
        ]
    return [(country, region or "", zone) for country, region, zone in windows]


def _candidate_statements(dialect: str) -> tuple[Select[Any], ...]:
    """The due-callback, own-queue and pool candidate queries, built once with bound
    parameters (``agent_id``, ``now``, ``session_id``, ``windows``: the open jurisdictions)
    so that a claim pays neither for building them nor for their cache keys. Each selects
    and locks the id and version of its candidate only; :func:`_one_read` adds the rest.

    The same conditions and order as before: :func:`collect_tui.services.queue.
    contactable_clause` and :func:`_claimed_elsewhere`."""
    now = bindparam("now", type_=Claim.expires_at.type)
    agent_id = bindparam("agent_id", type_=Debtor.assigned_agent_id.type)
    free = ~_claimed_elsewhere(bindparam("session_id", type_=Claim.session_id.type), now)

    # queue.contactable_clause, with the window test given as one array on PostgreSQL.
    c = _debtors
    contactable = and_(
        ~excluded_clause(),
        or_(c.contact_blocked_until.is_(None), c.contact_blocked_until <= now),
        estimated_as_half(_in_window(dialect)),
    )
    callback = _locked(
        select(c.id, c.version)
        .where(
            c.assigned_agent_id == agent_id,
            c.next_action == "callback",
            c.next_action_at <= now,
            contactable,
            free,
        )
        .order_by(c.next_action_at, c.id)
    )
    scored = [
        _locked(
            select(c.id, c.version)
            .where(owner, c.priority_score > EXCLUDED_SCORE, contactable, free)
            # The owner column first (one value throughout, so the same order): PostgreSQL
            # then reads the order off the queue index and stops at the first free
            # account, even for the pool, whose ``IS NULL`` does not otherwise let it.
            .order_by(c.assigned_agent_id, c.priority_score.desc(), c.id)
        )
        for owner in (c.assigned_agent_id == agent_id, c.assigned_agent_id.is_(None))
    ]
    return callback, scored[0], scored[1]


_CALLBACK_BRANCH, _OWN_BRANCH, _POOL_BRANCH = 0, 1, 2


def _one_read(*branches: tuple[int, Select[Any]]) -> Select[Any]:
    """The candidate queries as one statement (one round trip, one rendering of the
    jurisdiction list): each locked query's candidate, if any, as ``QUEUE_COLUMNS`` and
    the version, tagged with its branch number in a last column. Each query locks its
    own candidate, as it did when run alone. The version is the locked row's (the newest,
    should a write have committed since the statement began), as the first save expects;
    the other columns are for showing the row."""
    found = union_all(
        *(select(sub.c.id, sub.c.version, literal(number).label("branch"))
          for number, statement in branches
          for sub in [statement.subquery(f"b{number}")])
    ).subquery("found")  # fmt: skip
    return select(*QUEUE_COLUMNS, found.c.version, found.c.branch).join_from(
        Debtor, found, Debtor.id == found.c.id
    )


# For the rest of the claim's transaction (its other statements are planned generically
# by then anyway).
_GENERIC_PLANS = text("SET LOCAL plan_cache_mode = force_generic_plan")


@cache
def _candidates_for(dialect: str, pool: bool) -> Select[Any]:
    """The candidate read on ``dialect``, with or without the pool, built at first use."""
    callback, own, from_pool = _candidate_statements(dialect)
    branches = [(_CALLBACK_BRANCH, callback), (_OWN_BRANCH, own)]
    if pool:
        branches.append((_POOL_BRANCH, from_pool))
    return _one_read(*branches)


def _candidate(
    conn: Connection,
    db: Database,
    agent: AgentInfo,
    session_id: str,
    now: datetime,
    pool: bool,
    windows: tuple[Jurisdiction, ...],
) -> tuple[Any, bool] | None:
    """The best free candidate, locked, as a row of ``QUEUE_COLUMNS`` plus the version, and
    whether it is from the pool: a due callback first, else the better of the own queue
    and the pool. One read: the three queries run as one statement. ``windows`` are the
    jurisdictions whose contact window is open."""
    if not windows:  # no contact window is open anywhere: nothing is contactable
        return None
    params = {
        "agent_id": agent.id,
        "now": now,
        "session_id": session_id,
        "windows": _window_param(db.dialect, windows),
    }
    statement = _candidates_for(db.dialect, pool)
    if db.dialect == "postgresql":
        # Its text is the same at every claim, so the driver prepares it; planned afresh
        # each time, PostgreSQL spent longer planning the three queries than running
        # them. The generic plan walks the same indexes whatever the parameters.
        run_on_driver(conn, _GENERIC_PLANS, {})
    found_by_branch = {row[-1]: row for row in read_on_driver(conn, statement, params)}
    callback = found_by_branch.get(_CALLBACK_BRANCH)
    if callback is not None:
        return callback, False
    best: tuple[Any, bool] | None = None
    for branch, from_pool in ((_OWN_BRANCH, False), (_POOL_BRANCH, True)):
        found = found_by_branch.get(branch)
        if found is not None and (
            best is None
            or (-found.priority_score, found.id) < (-best[0].priority_score, best[0].id)
        ):
            best = (found, from_pool)
    return best


_RELEASE_SESSION = delete(Claim.__table__).where(
    Claim.__table__.c.session_id == bindparam("session_id", type_=Claim.session_id.type)
)


@cache
def _postgresql_claim_write(from_pool: bool) -> Executable:
    """PostgreSQL: a claim's writes as one statement, returning the debtor id if the
    account is the session's now, else no row (and nothing written once rolled back).

    It releases the session's other claims and takes or renews this one (the upsert's
    parameters); ``from_pool`` also assigns the account to the agent, as
    :func:`_take_from_pool` does, with its history and audit rows (parameters ``now``,
    ``reason`` and ``a_`` plus the audit column names). One statement instead of two to
    five: on a busy team server each costs the client more CPU than the server."""
    claims = Claim.__table__
    released = (
        delete(claims)
        .where(
            claims.c.session_id == bindparam("session_id", type_=claims.c.session_id.type),
            claims.c.debtor_id != bindparam("debtor_id", type_=claims.c.debtor_id.type),
        )
        .cte("released")
    )
    if not from_pool:
        return _upsert_for("postgresql").add_cte(released)  # type: ignore[attr-defined,no-any-return]
    taken = _TAKE.returning(_debtors.id).cte("taken")
    history, log = Assignment.__table__, AuditEntry.__table__
    agent_id = bindparam("agent_id", type_=history.c.to_agent_id.type)
    assigned = insert(history).from_select(
        ["debtor_id", "from_agent_id", "to_agent_id", "by_agent_id", "reason", "at"],
        select(
            taken.c.id, cast(null(), history.c.from_agent_id.type), agent_id, agent_id,
            bindparam("reason", type_=history.c.reason.type),
            bindparam("now", type_=history.c.at.type),
        ),
        include_defaults=False,
    )  # fmt: skip
    audited = insert(log).from_select(
        list(audit.COLUMNS),
        select(*(bindparam(f"a_{name}", type_=log.c[name].type) for name in audit.COLUMNS)
               ).select_from(taken),
        include_defaults=False,
    )  # fmt: skip
    # The claim row only for an account taken now: no row taken, no claim, no id back.
    return _upsert_statement(insert_for("postgresql"), taken).add_cte(  # type: ignore[attr-defined,no-any-return]
        assigned.cte("assigned"), audited.cte("audited"), released
    )


def _claim_on_postgresql(
    conn: Connection, agent: AgentInfo, session_id: str, debtor_id: int, now: datetime,
    ttl: timedelta, from_pool: bool,
) -> bool:  # fmt: skip
    """Run :func:`_postgresql_claim_write`; True if the account is the session's now."""
    params = _claim_params(agent, session_id, debtor_id, now, ttl)
    if from_pool:
        params |= {"now": now, "reason": POOL_REASON}
        audited = audit.row_values(
            agent, "claim_from_pool", "debtor", debtor_id, {"agent": None},
            {"agent": agent.name}, debtor_id, now,
        )  # fmt: skip
        params |= {f"a_{name}": value for name, value in audited.items()}
    return bool(run_on_driver(conn, _postgresql_claim_write(from_pool), params))


def _upsert_statement(dialect_insert: Any, taken: Any = None) -> Executable:
    """Insert the claim, or take over an expired one or one of the same session (given
    ``taken``, a CTE of debtor ids, for the account it holds, if any)."""
    claims = Claim.__table__.c
    now = bindparam("claimed_at", type_=claims.claimed_at.type)
    session_id = bindparam("session_id", type_=claims.session_id.type)
    values = {
        "debtor_id": bindparam("debtor_id", type_=claims.debtor_id.type),
        "agent_id": bindparam("agent_id", type_=claims.agent_id.type),
        "session_id": session_id,
        "claimed_at": now,
        "expires_at": bindparam("expires_at", type_=claims.expires_at.type),
    }
    if taken is None:
        statement = dialect_insert(Claim.__table__).values(**values)
    else:
        values["debtor_id"] = taken.c.id
        statement = dialect_insert(Claim.__table__).from_select(
            list(values), select(*values.values()), include_defaults=False
        )
    return statement.on_conflict_do_update(
        index_elements=[claims.debtor_id],
        set_={k: statement.excluded[k] for k in ("agent_id", "session_id", "claimed_at",
                                                 "expires_at")},
        where=or_(claims.expires_at <= now, claims.session_id == session_id),
    ).returning(claims.debtor_id)  # fmt: skip


@cache
def _upsert_for(dialect: str) -> Executable:
    """The claim upsert on ``dialect``, built at first use (see ``insert_for``)."""
    return _upsert_statement(insert_for(dialect))


def _upsert_claim(
    conn: Connection, db: Database, agent: AgentInfo, session_id: str, debtor_id: int,
    now: datetime, ttl: timedelta,
) -> bool:  # fmt: skip
    """Take or renew the claim unless another session holds it live; True if ours now."""
    params = _claim_params(agent, session_id, debtor_id, now, ttl)
    return conn.execute(_upsert_for(db.dialect), params).first() is not None


def _claim_params(
    agent: AgentInfo, session_id: str, debtor_id: int, now: datetime, ttl: timedelta
) -> dict[str, Any]:
    """The parameters of the claim upsert (:func:`_upsert_statement`)."""
    return {
        "debtor_id": debtor_id,
        "agent_id": agent.id,
        "session_id": session_id,
        "claimed_at": now,
        "expires_at": now + ttl,
    }


_TAKE = (
    update(Debtor.__table__)
    .where(
        _debtors.id == bindparam("debtor_id", type_=_debtors.id.type),
        _debtors.assigned_agent_id.is_(None),
    )
    .values(
        assigned_agent_id=bindparam("agent_id", type_=_debtors.assigned_agent_id.type),
        version=_debtors.version + 1,
        updated_at=bindparam("now", type_=_debtors.updated_at.type),
    )
)
_ASSIGNMENT = insert(Assignment.__table__)


def _take_from_pool(conn: Connection, agent: AgentInfo, debtor_id: int, now: datetime) -> bool:
    """Assign a pool account to the agent, with its history and audit rows."""
    moved = conn.execute(_TAKE, {"debtor_id": debtor_id, "agent_id": agent.id, "now": now})
    if moved.rowcount != 1:
        return False
    conn.execute(
        _ASSIGNMENT,
        {
            "debtor_id": debtor_id, "from_agent_id": None, "to_agent_id": agent.id,
            "by_agent_id": agent.id, "reason": POOL_REASON, "at": now,
        },
    )  # fmt: skip
    audit.write(
        conn, agent, "claim_from_pool", "debtor", debtor_id, {"agent": None},
        {"agent": agent.name}, debtor_id=debtor_id, at=now,
    )  # fmt: skip
    return True


_EXPIRED = delete(Claim.__table__).where(
    Claim.__table__.c.expires_at <= bindparam("now", type_=Claim.expires_at.type)
)


class _LostRace(Exception):
    pass


def claim_next(
    db: Database,
    agent: AgentInfo,
    *,
    session_id: str,
    now: datetime | None = None,
    ttl: timedelta = CLAIM_TTL,
    pool: bool = True,
) -> ClaimedAccount | None:
    """Claim the next best account ``agent`` may contact now, or None if there is none.

    The session's previous claims are released in the same transaction: one session
    works one account.
    """
    if agent.is_supervisor:
        raise ClaimRefused("supervisors and admins have no queue; n is for agents")
    now = _now(now)
    # Before the transaction: the first call of a process reads the jurisdictions on a
    # connection of its own, and a claim holding one while waiting for another could
    # starve a small pool.
    windows = open_jurisdictions(db, now)
    for _ in range(_ATTEMPTS):
        try:
            with db.transaction() as conn:
                postgresql = db.dialect == "postgresql"
                if not postgresql:
                    # Writing first also takes SQLite's write lock before anything is
                    # read, so two sessions cannot both pick one account from a snapshot.
                    conn.execute(_RELEASE_SESSION, {"session_id": session_id})
                    conn.execute(_EXPIRED, {"now": now})
                candidate = _candidate(conn, db, agent, session_id, now, pool, windows)
                if candidate is None:
                    if postgresql:
                        conn.execute(_RELEASE_SESSION, {"session_id": session_id})
                    return None
                row, from_pool = candidate
                debtor_id = row.id
                if postgresql:
                    if not _claim_on_postgresql(conn, agent, session_id, debtor_id, now, ttl,
                                                from_pool):  # fmt: skip
                        raise _LostRace
                else:
                    if from_pool and not _take_from_pool(conn, agent, debtor_id, now):
                        raise _LostRace
                    if not _upsert_claim(conn, db, agent, session_id, debtor_id, now, ttl):
                        raise _LostRace
        except _LostRace:
            continue
        version = row.version + 1 if from_pool else row.version  # taking it bumped it
        return ClaimedAccount(
            row=queue_row(row, now, contactable=True),
            version=version,
            expires_at=now + ttl,
            from_pool=from_pool,
        )
    return None


def renew_claim(
    db: Database,
    agent: AgentInfo,
    *,
    session_id: str,
    debtor_id: int,
    now: datetime | None = None,
    ttl: timedelta = CLAIM_TTL,
) -> bool:
    """Extend this session's claim (or take it again if it lapsed and nobody took it).

    False when another session holds the account now, or it is no longer the agent's.
    """
    now = _now(now)
    with db.session() as session:
        owner = session.scalar(select(Debtor.assigned_agent_id).where(Debtor.id == debtor_id))
        if owner != agent.id and not agent.is_supervisor:
            return False
        return _upsert_claim(session.connection(), db, agent, session_id, debtor_id, now, ttl)


def renew_claims(
    db: Database,
    agent: AgentInfo,
    *,
    session_id: str,
    now: datetime | None = None,
    ttl: timedelta = CLAIM_TTL,
) -> int:
    """Extend every claim this session still holds (the app calls it while the agent works).

    A claim that lapsed and was taken by another session is not this session's any more
    and stays with its new holder. Returns how many claims were extended.
    """
    now = _now(now)
    with db.session() as session:
        result = session.execute(
            update(Claim)
            .where(Claim.session_id == session_id, Claim.agent_id == agent.id)
            .values(expires_at=now + ttl)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]


def release_claims(db: Database, *, session_id: str, debtor_id: int | None = None) -> int:
    """Drop this session's claims (on one account, or all); returns how many."""
    with db.session() as session:
        statement = delete(Claim).where(Claim.session_id == session_id)
        if debtor_id is not None:
            statement = statement.where(Claim.debtor_id == debtor_id)
        return session.execute(statement).rowcount  # type: ignore[attr-defined, no-any-return]


def claim_holder(db: Database, debtor_id: int, *, now: datetime | None = None) -> Claim | None:
    """The live claim on an account, if any (expired claims count as none)."""
    now = _now(now)
    with db.session() as session:
        claim = session.scalar(
            select(Claim).where(Claim.debtor_id == debtor_id, Claim.expires_at > now)
        )
        if claim is not None:
            session.expunge(claim)
        return claim


def live_claims_clause(now: datetime) -> object:
    """SQL condition on ``Debtor``: some session holds a live claim (rebalance leaves these)."""
    return exists().where(Claim.debtor_id == Debtor.id, Claim.expires_at > now)


__all__ = [
    "CLAIM_TTL",
    "ClaimRefused",
    "ClaimedAccount",
    "claim_holder",
    "claim_next",
    "live_claims_clause",
    "new_session_id",
    "release_claims",
    "renew_claim",
    "renew_claims",
]
