"""An agent's work queue: a keyset-paginated window onto the priority-ordered accounts.

The database sorts (``ix_debtors_queue``); a page is read by the position of the last
row seen, so a page costs the same whether the portfolio holds 1k or 200k accounts.
Callbacks that are due are pinned above the scored accounts: a callback promised for
14:00 comes first at 14:00, whatever the score says.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from collect_tui.domain.aging import BUCKETS, bucket_due_date_floors
from collect_tui.domain.money import to_money
from collect_tui.domain.priority import EXCLUDED_SCORE, AccountFacts, day_month, score_account
from collect_tui.domain.zones import zone_or_utc
from collect_tui.services.agents import AgentInfo
from collect_tui.services.contactability import open_jurisdictions
from collect_tui.services.database import Database
from collect_tui.storage.models import PROMISE_FACTS, Debtor, Email, Invoice, Phone

SEARCH_MIN_CHARS = 2


@dataclass(frozen=True)
class QueueKey:
    """Where a page ends: the sort key of its last row."""

    score: float
    debtor_id: int


@dataclass(frozen=True)
class QueueFilter:
    """What the agent narrowed the queue to; the default shows everything."""

    bucket: str | None = None
    promise_due: bool = False
    callbacks: bool = False
    contactable_now: bool = False
    search: str = ""

    def __post_init__(self) -> None:
        if self.bucket is not None and self.bucket not in BUCKETS:
            raise ValueError(f"unknown aging bucket {self.bucket!r}")

    @property
    def active(self) -> list[str]:
        """The active filters in words, for the filter line."""
        words = []
        if self.bucket:
            words.append(f"bucket {self.bucket}")
        if self.promise_due:
            words.append("promise due")
        if self.callbacks:
            words.append("callbacks")
        if self.contactable_now:
            words.append("contactable now")
        if self.search.strip():
            words.append(f'search "{self.search.strip()}"')
        return words


@dataclass(frozen=True)
class QueueRow:
    """One account as the queue shows it, with its reasons and whether it may be called now."""

    debtor_id: int
    name: str
    time_zone: str
    currency: str
    balance: Decimal
    open_invoices: int
    oldest_due_date: date | None
    last_contact_at: datetime | None
    next_action: str | None
    next_action_at: datetime | None
    score: float
    reasons: list[str] = field(default_factory=list)
    blocked: str | None = None
    pinned: bool = False

    @property
    def key(self) -> QueueKey:
        """The keyset position of this row."""
        return QueueKey(self.score, self.debtor_id)

    @property
    def top_reason(self) -> str:
        """The most important reason, or why it cannot be contacted now."""
        if self.blocked:
            return self.blocked
        return self.reasons[0] if self.reasons else ""


@dataclass(frozen=True)
class QueueSummary:
    """The line above the queue: how much work there is."""

    accounts: int
    balance: dict[str, Decimal]
    promises_due_today: int
    callbacks_due: int
    # What :func:`queue_marker` read in the same scan; compare it with a later marker.
    marker: tuple[object, ...] = (0, None, None, None)


_COLUMNS = (
    Debtor.id,
    Debtor.name,
    Debtor.time_zone,
    Debtor.currency,
    Debtor.open_balance,
    Debtor.open_invoices,
    Debtor.oldest_due_date,
    Debtor.last_contact_at,
    Debtor.next_action,
    Debtor.next_action_at,
    Debtor.priority_score,
    Debtor.promise_due_on,
    Debtor.broken_promise_on,
    Debtor.installment_missed,
    Debtor.cadence_due_at,
    Debtor.cease_communication,
    Debtor.dispute,
    Debtor.bankruptcy,
    Debtor.deceased,
    Debtor.contact_blocked_until,
    Debtor.contact_block_reason,
    Debtor.country,
    Debtor.region,
)


def _today_in_utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def excluded_clause() -> ColumnElement[bool]:
    """SQL condition: the account is out of collection (a flag that stops it, or nothing
    owed); such accounts never come out of ``n``."""
    return or_(
        Debtor.cease_communication.is_(True),
        Debtor.dispute.is_(True),
        Debtor.bankruptcy.is_(True),
        Debtor.deceased.is_(True),
        Debtor.open_balance <= 0,
    )


_window_clauses: dict[tuple[tuple[str, str | None, str], ...], object] = {}


def _in_window_clause(jurisdictions: tuple[tuple[str, str | None, str], ...]) -> object:
    """SQL condition: the debtor is in one of ``jurisdictions`` (built once per set)."""
    clause = _window_clauses.get(jurisdictions)
    if clause is not None:
        return clause
    if not jurisdictions:
        clause = false()
    else:
        # One tuple IN with a single expanding parameter: its cache key is cheap to make,
        # where an OR of a hundred ANDs cost a millisecond per query just for that.
        clause = tuple_(Debtor.country, func.coalesce(Debtor.region, ""), Debtor.time_zone).in_(
            [(country, region or "", zone) for country, region, zone in jurisdictions]
        )
    if len(_window_clauses) > 64:
        _window_clauses.clear()
    _window_clauses[jurisdictions] = clause
    return clause


def estimated_as_half(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` wrapped in a CASE, which PostgreSQL estimates as true for half the
    rows. An OR of jurisdictions is otherwise estimated by multiplying each one's odds
    down to about one row, and PostgreSQL then fetches and sorts every matching account
    instead of walking the queue index to the first page (11-25 ms against under 1 ms at
    9k accounts; 7-15 ms a claim on 20k debtors)."""
    return case((condition, true()), else_=false())


def contactable_clause(db: Database, now: datetime) -> object:
    """SQL condition: the account may be called now (flags, call cap, contact window)."""
    in_window = _in_window_clause(open_jurisdictions(db, now))
    if db.dialect == "postgresql":
        in_window = estimated_as_half(in_window)
    return and_(
        ~excluded_clause(),
        or_(Debtor.contact_blocked_until.is_(None), Debtor.contact_blocked_until <= now),
        in_window,
    )


def _search_clause(text: str, dialect: str) -> object:
    term = text.strip()
    pattern = f"%{term.lower()}%"
    digits = "".join(ch for ch in term if ch.isdigit())

    def any_of(table: Any, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        """The debtor has a row in ``table`` that meets ``conditions``."""
        found = select(literal(1)).where(table.debtor_id == Debtor.id, *conditions)
        if dialect == "postgresql":
            # Checked row by row through the table's debtor index, for the accounts the
            # queue walks until the page is full. Without the fence, PostgreSQL first
            # scanned the whole table to hash every match (1M invoices: 115 ms a
            # keystroke, whatever the page needed).
            found = found.offset(0)
        return exists(found)

    clauses = [
        func.lower(Debtor.name).like(pattern),
        any_of(Invoice, func.lower(Invoice.number).like(pattern)),
        any_of(Email, func.lower(Email.address).like(pattern)),
    ]
    if len(digits) >= 3:
        # Phone numbers are stored formatted; compare on digits typed in any format.
        stripped = func.replace(func.replace(func.replace(Phone.number, " ", ""), "-", ""), "+", "")
        clauses.append(any_of(Phone, stripped.like(f"%{digits}%")))
    return or_(*clauses)


def _narrowing(queue_filter: QueueFilter, today: date) -> list[ColumnElement[bool]]:
    """The conditions of ``queue_filter`` that an index finds on its own: the bucket's
    range of oldest due dates, a promise fact, a callback before tomorrow."""
    conditions: list[ColumnElement[bool]] = []
    if queue_filter.bucket:
        floors = dict(bucket_due_date_floors(today))
        index = BUCKETS.index(queue_filter.bucket)
        floor = floors[queue_filter.bucket]
        if floor is not None:
            conditions.append(Debtor.oldest_due_date >= floor)
        if index > 0:
            conditions.append(Debtor.oldest_due_date < floors[BUCKETS[index - 1]])
    if queue_filter.promise_due:
        conditions.append(text(f"({PROMISE_FACTS})"))  # the promises index's condition
    if queue_filter.callbacks:
        end_of_day = datetime.combine(today + timedelta(days=1), time(0), UTC)
        conditions.append(Debtor.next_action_at < end_of_day)
    return conditions


def _filtered(
    db: Database, agent: AgentInfo, queue_filter: QueueFilter, now: datetime, contactable: object
) -> Select[tuple[object, ...]]:
    """The agent's accounts that ``queue_filter`` lets through; ``contactable`` is
    :func:`contactable_clause` at the time of the read."""
    today = _today_in_utc_day(now)
    query = select(*_COLUMNS).where(
        Debtor.assigned_agent_id == agent.id, *_narrowing(queue_filter, today)
    )
    if queue_filter.bucket:
        query = query.where(Debtor.open_invoices > 0)
    if queue_filter.promise_due:
        query = query.where(
            or_(
                Debtor.promise_due_on <= today,
                Debtor.broken_promise_on.is_not(None),
                Debtor.installment_missed.is_(True),
            )
        )
    if queue_filter.callbacks:
        query = query.where(Debtor.next_action == "callback")
    if queue_filter.contactable_now:
        query = query.where(contactable)
    if len(queue_filter.search.strip()) >= SEARCH_MIN_CHARS:
        query = query.where(_search_clause(queue_filter.search, db.dialect))
    return query


def _call_block(until: datetime, zone: str, reason: str | None) -> str:
    """The queue's short word on a call block (the account screen shows the full reason)."""
    if until.year >= 9999:  # a hold without an end
        return f"no calls: {reason}" if reason else "no calls for now"
    return f"no calls until {day_month(until.astimezone(zone_or_utc(zone)).date())}"


def _to_row(db_row: object, now: datetime, contactable_ids: set[int] | None) -> QueueRow:
    r = tuple(db_row)  # type: ignore[arg-type]
    facts = AccountFacts(
        balance=to_money(r[4]),
        currency=r[3],
        oldest_due_date=r[6],
        last_contact_at=r[7],
        promise_due_on=r[11],
        broken_promise_on=r[12],
        installment_missed=bool(r[13]),
        cadence_due_at=r[14],
        next_action=r[8],
        next_action_at=r[9],
        time_zone=r[2],
        cease_communication=bool(r[15]),
        dispute=bool(r[16]),
        bankruptcy=bool(r[17]),
        deceased=bool(r[18]),
    )
    priority = score_account(facts, today=_today_in_utc_day(now), now=now)
    blocked = None
    if priority.excluded:
        blocked = f"excluded: {priority.excluded}"
    elif r[19] is not None and r[19] > now:
        blocked = _call_block(r[19], r[2], r[20])
    elif contactable_ids is not None and r[0] not in contactable_ids:
        blocked = "outside contact hours"
    return QueueRow(
        debtor_id=r[0],
        name=r[1],
        time_zone=r[2],
        currency=r[3],
        balance=facts.balance,
        open_invoices=r[5],
        oldest_due_date=r[6],
        last_contact_at=r[7],
        next_action=r[8],
        next_action_at=r[9],
        score=r[10],
        reasons=priority.reasons,
        blocked=blocked,
    )


QUEUE_COLUMNS = _COLUMNS
"""The debtor columns a :class:`QueueRow` is made of, in the order :func:`queue_row` reads."""


def queue_row(db_row: object, now: datetime, *, contactable: bool) -> QueueRow:
    """A queue row from a row of :data:`QUEUE_COLUMNS` whose contactability is known."""
    return _to_row(db_row, now, {tuple(db_row)[0]} if contactable else set())  # type: ignore[arg-type]


def _rows(
    db: Database,
    query: Select[tuple[object, ...]],
    now: datetime,
    session: Session | None = None,
    contactable: object | None = None,
) -> list[QueueRow]:
    """The rows of ``query`` with their contactability, read in ``session`` (or a new one).

    ``contactable`` (:func:`contactable_clause`) is built before anything is read: its
    first build in a process reads the jurisdictions in use on a connection of its own,
    and a read holding one while waiting for another could starve a small pool.
    """
    if contactable is None:
        contactable = contactable_clause(db, now)
    if session is None:
        with db.session() as session:
            return _rows(db, query, now, session, contactable)
    raw = session.execute(query).all()
    ids = [r[0] for r in raw]
    reachable = (
        set(session.scalars(select(Debtor.id).where(Debtor.id.in_(ids), contactable)))
        if ids
        else set()
    )
    return [_to_row(r, now, reachable) for r in raw]


def due_callbacks(
    db: Database, agent: AgentInfo, *, now: datetime | None = None, limit: int = 20
) -> list[QueueRow]:
    """Callbacks due now or overdue, earliest first: these come before any score."""
    now = now or datetime.now(UTC)
    query = (
        select(*_COLUMNS)
        .where(
            Debtor.assigned_agent_id == agent.id,
            Debtor.next_action == "callback",
            Debtor.next_action_at <= now,
        )
        .order_by(Debtor.next_action_at, Debtor.id)
        .limit(limit)
    )
    return [replace(row, pinned=True) for row in _rows(db, query, now)]


def _few_match(
    session: Session, agent: AgentInfo, narrowing: list[ColumnElement[bool]], limit: int
) -> bool:
    """Whether sorting the accounts that meet ``narrowing`` costs less than walking the
    queue in order until ``limit`` of them turn up (both counted from indexes alone)."""
    if not narrowing:
        return False
    mine = Debtor.assigned_agent_id == agent.id
    matching, total = session.execute(
        select(
            select(func.count()).where(mine, *narrowing).scalar_subquery(),
            select(func.count()).where(mine).scalar_subquery(),
        )
    ).one()
    # Walking reads about limit * total / matching rows; sorting reads the matching ones.
    return matching * matching <= limit * total


def queue_page(
    db: Database,
    agent: AgentInfo,
    *,
    queue_filter: QueueFilter | None = None,
    after: QueueKey | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> list[QueueRow]:
    """The next ``limit`` accounts of ``agent``'s queue after ``after``, best first (its
    reads share one connection and transaction)."""
    now = now or datetime.now(UTC)
    queue_filter = queue_filter or QueueFilter()
    score: ColumnElement[Any] = Debtor.priority_score
    contactable = contactable_clause(db, now)  # before the session: see _rows
    with db.session() as session:
        if _few_match(session, agent, _narrowing(queue_filter, _today_in_utc_day(now)), limit):
            # Ordered by the bare score, the database walks the queue index until it has
            # ``limit`` matches: about 100 ms at 10k accounts when few match. Ordered by
            # an expression, it takes the matches from the filter's index and sorts them.
            score = Debtor.priority_score + 0
        query = (
            _filtered(db, agent, queue_filter, now, contactable)
            .order_by(score.desc(), Debtor.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                or_(
                    Debtor.priority_score < after.score,
                    and_(Debtor.priority_score == after.score, Debtor.id > after.debtor_id),
                )
            )
        return _rows(db, query, now, session, contactable)


def next_account(db: Database, agent: AgentInfo, *, now: datetime | None = None) -> QueueRow | None:
    """The next best account the agent may contact now: a due callback first, then by score."""
    now = now or datetime.now(UTC)
    for callback in due_callbacks(db, agent, now=now, limit=20):
        if callback.blocked is None:
            return callback
    contactable = contactable_clause(db, now)
    query = (
        select(*_COLUMNS)
        .where(
            Debtor.assigned_agent_id == agent.id,
            Debtor.priority_score > EXCLUDED_SCORE,
            contactable,
        )
        .order_by(Debtor.priority_score.desc(), Debtor.id)
        .limit(1)
    )
    rows = _rows(db, query, now, contactable=contactable)
    return rows[0] if rows else None


def _marker_columns() -> tuple[ColumnElement[Any], ...]:
    """The aggregates of :func:`queue_marker`: edits bump ``updated_at`` and ``version``,
    rescoring sets ``scored_at``, moves between agents change the count."""
    return (
        func.count(),
        func.max(Debtor.updated_at),
        func.max(Debtor.scored_at),
        func.sum(Debtor.version),
    )


def _latest(values: list[Any]) -> Any:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def queue_summary(db: Database, agent: AgentInfo, *, now: datetime | None = None) -> QueueSummary:
    """Accounts, balance by currency, promises due today and callbacks due today, and the
    change marker, in one pass over the agent's accounts."""
    now = now or datetime.now(UTC)
    today = _today_in_utc_day(now)
    end_of_day = datetime.combine(today + timedelta(days=1), time(0), UTC)
    callback_due = and_(Debtor.next_action == "callback", Debtor.next_action_at < end_of_day)
    with db.session() as session:
        rows = session.execute(
            select(
                Debtor.currency,
                func.sum(Debtor.open_balance),
                func.count(case((Debtor.promise_due_on == today, 1))),
                func.count(case((callback_due, 1))),
                *_marker_columns(),
            )
            .where(Debtor.assigned_agent_id == agent.id)
            .group_by(Debtor.currency)
        ).all()
    accounts = sum(row[4] for row in rows)
    marker = (
        (accounts, _latest([row[5] for row in rows]), _latest([row[6] for row in rows]),
         sum(row[7] for row in rows))
        if rows
        else (0, None, None, None)
    )  # fmt: skip
    return QueueSummary(
        accounts=accounts,
        balance={row[0]: to_money(Decimal(str(row[1]))) for row in rows if row[1]},
        promises_due_today=sum(row[2] for row in rows),
        callbacks_due=sum(row[3] for row in rows),
        marker=marker,
    )


def local_time(zone: str, now: datetime) -> datetime:
    """``now`` in a debtor's zone (UTC when the zone is unknown)."""
    return now.astimezone(zone_or_utc(zone))


__all__ = [
    "QUEUE_COLUMNS",
    "QueueFilter",
    "QueueKey",
    "QueueRow",
    "QueueSummary",
    "contactable_clause",
    "due_callbacks",
    "estimated_as_half",
    "local_time",
    "next_account",
    "queue_marker",
    "queue_page",
    "queue_row",
    "queue_summary",
]


def queue_marker(db: Database, agent: AgentInfo) -> tuple[object, ...]:
    """A cheap fingerprint of the agent's accounts that changes when any of them changes
    (see :func:`_marker_columns`). The queue polls this to refresh in place."""
    with db.session() as session:
        return tuple(
            session.execute(
                select(*_marker_columns()).where(Debtor.assigned_agent_id == agent.id)
            ).one()
        )
