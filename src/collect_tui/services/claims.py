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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, delete, exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collect_tui.domain.priority import EXCLUDED_SCORE
from collect_tui.services.agents import AgentInfo
from collect_tui.services.audit import record
from collect_tui.services.database import Database
from collect_tui.services.queue import QUEUE_COLUMNS, QueueRow, contactable_clause, queue_row
from collect_tui.storage.models import Assignment, Claim, Debtor

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


def _claimed_elsewhere(session_id: str, now: datetime) -> object:
    """SQL condition: another session holds a live claim on the debtor."""
    return exists().where(
        Claim.debtor_id == Debtor.id, Claim.expires_at > now, Claim.session_id != session_id
    )


def _locked(query: Select[Any]) -> Select[Any]:
    # SQLite ignores FOR UPDATE; it serialises writers, and the upsert below arbitrates.
    return query.limit(1).with_for_update(skip_locked=True, of=Debtor)


def _candidate(
    session: Session, db: Database, agent: AgentInfo, session_id: str, now: datetime, pool: bool
) -> tuple[Row[Any], bool] | None:
    """The best free candidate, locked, as a row of ``QUEUE_COLUMNS`` plus the version, and
    whether it is from the pool: a due callback first, else the better of the own queue
    and the pool."""
    free = ~_claimed_elsewhere(session_id, now)
    contactable = contactable_clause(db, now)
    callback = session.execute(
        _locked(
            select(*QUEUE_COLUMNS, Debtor.version)
            .where(
                Debtor.assigned_agent_id == agent.id,
                Debtor.next_action == "callback",
                Debtor.next_action_at <= now,
                contactable,
                free,
            )
            .order_by(Debtor.next_action_at, Debtor.id)
        )
    ).first()
    if callback is not None:
        return callback, False
    owners = [(Debtor.assigned_agent_id == agent.id, False)]
    if pool:
        owners.append((Debtor.assigned_agent_id.is_(None), True))
    best: tuple[Row[Any], bool] | None = None
    for owner, from_pool in owners:
        found = session.execute(
            _locked(
                select(*QUEUE_COLUMNS, Debtor.version)
                .where(owner, Debtor.priority_score > EXCLUDED_SCORE, contactable, free)
                .order_by(Debtor.priority_score.desc(), Debtor.id)
            )
        ).first()
        if found is not None and (
            best is None
            or (-found.priority_score, found.id) < (-best[0].priority_score, best[0].id)
        ):
            best = (found, from_pool)
    return best


def _upsert_claim(
    session: Session, db: Database, agent: AgentInfo, session_id: str, debtor_id: int,
    now: datetime, ttl: timedelta,
) -> bool:  # fmt: skip
    """Take or renew the claim unless another session holds it live; True if ours now."""
    dialect_insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    values = {
        "debtor_id": debtor_id,
        "agent_id": agent.id,
        "session_id": session_id,
        "claimed_at": now,
        "expires_at": now + ttl,
    }
    statement = dialect_insert(Claim).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[Claim.debtor_id],
        set_={k: statement.excluded[k] for k in ("agent_id", "session_id", "claimed_at",
                                                 "expires_at")},
        where=or_(Claim.expires_at <= now, Claim.session_id == session_id),
    ).returning(Claim.debtor_id)  # fmt: skip
    return session.execute(statement).first() is not None


def _take_from_pool(session: Session, agent: AgentInfo, debtor_id: int, now: datetime) -> bool:
    """Assign a pool account to the agent, with its history and audit rows."""
    moved = session.execute(
        update(Debtor)
        .where(Debtor.id == debtor_id, Debtor.assigned_agent_id.is_(None))
        .values(assigned_agent_id=agent.id, version=Debtor.version + 1, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        insert(Assignment).values(
            debtor_id=debtor_id, from_agent_id=None, to_agent_id=agent.id,
            by_agent_id=agent.id, reason=POOL_REASON, at=now,
        )
    )  # fmt: skip
    record(
        session, agent, "claim_from_pool", "debtor", debtor_id, {"agent": None},
        {"agent": agent.name}, debtor_id=debtor_id, at=now,
    )  # fmt: skip
    return True


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
    for _ in range(_ATTEMPTS):
        try:
            with db.session() as session:
                # Writing first also takes SQLite's write lock before anything is read, so
                # two sessions cannot both pick the same account from one snapshot.
                session.execute(delete(Claim).where(Claim.session_id == session_id))
                if db.dialect == "sqlite":
                    session.execute(delete(Claim).where(Claim.expires_at <= now))
                candidate = _candidate(session, db, agent, session_id, now, pool)
                if candidate is None:
                    return None
                row, from_pool = candidate
                debtor_id = row.id
                if from_pool and not _take_from_pool(session, agent, debtor_id, now):
                    raise _LostRace
                if not _upsert_claim(session, db, agent, session_id, debtor_id, now, ttl):
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
        return _upsert_claim(session, db, agent, session_id, debtor_id, now, ttl)


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
