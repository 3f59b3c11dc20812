"""The supervisor console's use cases: workloads, moving accounts, rebalancing,
settlement approvals and KPIs.

Every function refuses a caller who is not a supervisor or an admin with
:class:`NotSupervisor`. Reads are set-based (GROUP BY in the database, never the
portfolio in Python objects, except the one column query a rebalance needs); writes run
in one transaction with assignment history and an audit row. Money in the base currency
uses the approximate rates of :data:`collect_tui.domain.priority.DEFAULT_FX_TO_BASE`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Float,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    union,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from collect_tui.domain import kpi
from collect_tui.domain.aging import BUCKETS, bucket_due_date_floors
from collect_tui.domain.money import format_money, to_money
from collect_tui.domain.priority import DEFAULT_FX_TO_BASE
from collect_tui.domain.rebalance import (
    DEFAULT_TOLERANCE,
    AccountLoad,
    AgentChange,
    AgentSlot,
    Load,
    Measure,
    RebalancePlan,
    estimate_workload,
    plan_rebalance,
)
from collect_tui.services.agents import AgentInfo, SignInRevoked, is_supervisor_now
from collect_tui.services.audit import record
from collect_tui.services.database import Database
from collect_tui.storage.models import (
    Agent,
    Assignment,
    Claim,
    Contact,
    Debtor,
    Invoice,
    Payment,
    PaymentPlan,
    Promise,
    Settlement,
    Task,
)

BASE_CURRENCY = "USD"
KPI_WINDOW_DAYS = 30
REASON_MAX = 200
_CHUNK = 5_000  # ids per IN (...) list
ZERO = Decimal("0")


class NotSupervisor(Exception):
    """The caller is not a supervisor or an admin."""


class SupervisorError(ValueError):
    """A supervisor action refused, with the reason in words."""


class StalePlanError(SupervisorError):
    """Accounts of a previewed rebalance changed since the preview."""


class StaleSettlementError(SupervisorError):
    """The settlement changed since the supervisor opened it."""


def _require_supervisor(db: Database, caller: AgentInfo, what: str) -> None:
    """Refuse unless ``caller`` is a supervisor or admin now (per the database)."""
    if not caller.is_supervisor:
        raise NotSupervisor(
            f"Only supervisors can {what}; {caller.name} signed in as {caller.role}."
        )
    with db.session() as session:
        try:
            supervisor = is_supervisor_now(session, caller)
        except SignInRevoked as exc:
            raise NotSupervisor(str(exc)) from None
    if not supervisor:
        raise NotSupervisor(f"Only supervisors can {what}; {caller.name} is no longer one.")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now; attach a time zone")
    return now


def _dec(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _rate(currency: str, rates: Mapping[str, Decimal]) -> Decimal:
    return rates.get(currency, Decimal(1))


def _to_base(by_currency: Mapping[str, Decimal], rates: Mapping[str, Decimal]) -> Decimal:
    return to_money(sum((amount * _rate(c, rates) for c, amount in by_currency.items()), ZERO))


def _day_start(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class AgentWorkload:
    """One agent's book and day (``kind`` "agent"), the unassigned pool, or the totals.

    Account figures (accounts, balance, promises due, broken promises, callbacks) count
    the accounts assigned now; activity figures (contacts, right-party contacts, kept
    rate) count what the agent did (contacts made, promises taken).
    """

    kind: Literal["agent", "pool", "total"]
    agent_id: int | None
    name: str
    display_name: str
    role: str
    active: bool
    capacity: int | None
    accounts: int
    balance: dict[str, Decimal]
    balance_base: Decimal
    promises_due_today: int
    broken_promises: int  # broken, due in the last 30 days
    callbacks_due: int  # open callbacks due by now
    contacts_today: int
    right_party_today: int
    kept_30d: int
    partially_kept_30d: int
    broken_30d: int

    @property
    def kept_rate(self) -> float | None:
        """Kept / (kept + partially kept + broken) of promises taken, due in 30 days."""
        return kpi.kept_rate(self.kept_30d, self.partially_kept_30d, self.broken_30d)

    @property
    def over_capacity(self) -> bool:
        """True when the agent holds more accounts than their capacity."""
        return self.capacity is not None and self.accounts > self.capacity


@dataclass
class _Tally:
    accounts: int = 0
    balance: dict[str, Decimal] = field(default_factory=dict)
    promises_due_today: int = 0
    broken_promises: int = 0
    callbacks_due: int = 0
    contacts_today: int = 0
    right_party_today: int = 0
    kept: int = 0
    partial: int = 0
    broken: int = 0

    def add(self, other: _Tally) -> None:
        for f in fields(self):
            if f.name == "balance":
                continue
            name = f.name
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for currency, amount in other.balance.items():
            self.balance[currency] = self.balance.get(currency, ZERO) + amount


def workloads(
    db: Database,
    caller: AgentInfo,
    *,
    now: datetime,
    rates: Mapping[str, Decimal] = DEFAULT_FX_TO_BASE,
) -> list[AgentWorkload]:
    """One row per agent (agents by name, then anyone else holding accounts or active
    today), then the unassigned pool, then the totals. "Today" is ``now``'s date in
    ``now``'s time zone."""
    _require_supervisor(db, caller, "see every agent's workload")
    now = _now(now)
    today = now.date()
    day_start = _day_start(today, now.tzinfo or UTC)
    day_end = _day_start(today + timedelta(days=1), now.tzinfo or UTC)
    window_start = today - timedelta(days=KPI_WINDOW_DAYS - 1)
    tallies: dict[int | None, _Tally] = defaultdict(_Tally)
    with db.session() as session:
        agents = session.execute(
            select(
                Agent.id, Agent.name, Agent.display_name, Agent.role, Agent.active, Agent.capacity
            ).order_by(Agent.name)
        ).all()
        for agent_id, currency, count, total in session.execute(
            select(
                Debtor.assigned_agent_id,
                Debtor.currency,
                func.count(),
                func.sum(Debtor.open_balance),
            ).group_by(Debtor.assigned_agent_id, Debtor.currency)
        ):
            tally = tallies[agent_id]
            tally.accounts += count
            tally.balance[currency] = tally.balance.get(currency, ZERO) + to_money(_dec(total))
        due_today = and_(Promise.status == "pending", Promise.due_date == today)
        broken = and_(Promise.status == "broken", Promise.due_date >= window_start)
        for agent_id, due, broke in session.execute(
            select(
                Debtor.assigned_agent_id,
                func.sum(case((due_today, 1), else_=0)),
                func.sum(case((broken, 1), else_=0)),
            )
            .select_from(Promise)
            .join(Debtor, Debtor.id == Promise.debtor_id)
            .where(
                Promise.status.in_(("pending", "broken")),
                Promise.due_date.between(window_start, today),
            )
            .group_by(Debtor.assigned_agent_id)
        ):
            tallies[agent_id].promises_due_today += int(due or 0)
            tallies[agent_id].broken_promises += int(broke or 0)
        for agent_id, count in session.execute(
            select(Debtor.assigned_agent_id, func.count())
            .select_from(Task)
            .join(Debtor, Debtor.id == Task.debtor_id)
            .where(Task.status == "open", Task.kind == "callback", Task.due_at <= now)
            .group_by(Debtor.assigned_agent_id)
        ):
            tallies[agent_id].callbacks_due += count
        for agent_id, count, rpc in session.execute(
            select(
                Contact.agent_id,
                func.count(),
                func.sum(case((Contact.conversation.is_(True), 1), else_=0)),
            )
            .where(Contact.started_at >= day_start, Contact.started_at < day_end)
            .group_by(Contact.agent_id)
        ):
            tallies[agent_id].contacts_today += count
            tallies[agent_id].right_party_today += int(rpc or 0)
        for agent_id, status, count in session.execute(
            select(Promise.agent_id, Promise.status, func.count())
            .where(
                Promise.status.in_(("kept", "partially_kept", "broken")),
                Promise.due_date.between(window_start, today),
            )
            .group_by(Promise.agent_id, Promise.status)
        ):
            tally = tallies[agent_id]
            if status == "kept":
                tally.kept += count
            elif status == "partially_kept":
                tally.partial += count
            else:
                tally.broken += count

    def row(
        kind: Literal["agent", "pool", "total"],
        agent_id: int | None,
        names: tuple[str, str, str, bool, int | None],
        tally: _Tally,
    ) -> AgentWorkload:
        name, display, role, active, capacity = names
        return AgentWorkload(
            kind, agent_id, name, display, role, active, capacity, tally.accounts,
            dict(sorted(tally.balance.items())), _to_base(tally.balance, rates),
            tally.promises_due_today, tally.broken_promises, tally.callbacks_due,
            tally.contacts_today, tally.right_party_today, tally.kept, tally.partial, tally.broken,
        )  # fmt: skip

    rows: list[AgentWorkload] = []
    total = _Tally()
    for agent_id, name, display, role, active, capacity in agents:
        tally = tallies.pop(agent_id, None)
        if tally is None and not (role == "agent" and active):
            continue
        tally = tally or _Tally()
        total.add(tally)
        rows.append(row("agent", agent_id, (name, display, role, active, capacity), tally))
    pool = tallies.pop(None, _Tally())
    for orphan in tallies.values():  # rows of agents deleted meanwhile: count them in the pool
        pool.add(orphan)
    total.add(pool)
    rows.append(row("pool", None, ("(unassigned)", "Unassigned", "pool", True, None), pool))
    rows.append(row("total", None, ("(total)", "Total", "total", True, None), total))
    return rows


# --------------------------------------------------------------------------- reassign


@dataclass(frozen=True)
class AccountMatch:
    """Which accounts to move: every given criterion must hold (at least one is needed).

    ``from_agent_id`` or ``from_pool`` picks the current holder; ``bucket`` the aging
    bucket of the oldest open invoice (as the queue computes it); the balance range is
    on the open balance in the account's own currency (narrow it with ``currency``).
    """

    from_agent_id: int | None = None
    from_pool: bool = False
    bucket: str | None = None
    min_balance: Decimal | None = None
    max_balance: Decimal | None = None
    time_zone: str | None = None
    segment: str | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.from_agent_id is not None and self.from_pool:
            raise ValueError("match either one agent's accounts or the pool, not both")
        if self.bucket is not None and self.bucket not in BUCKETS:
            raise ValueError(f"unknown aging bucket {self.bucket!r}")
        for value in (self.min_balance, self.max_balance):
            if isinstance(value, float):
                raise TypeError("balances must be Decimal, not float")
        if (
            self.min_balance is not None
            and self.max_balance is not None
            and self.min_balance > self.max_balance
        ):
            raise ValueError("the minimum balance is above the maximum")
        if self.describe() == {}:
            raise ValueError("give at least one criterion to match accounts")

    def describe(self) -> dict[str, Any]:
        """The criteria that are set, for the audit log."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) not in (None, False)
        }

    def clause(self, today: date) -> ColumnElement[bool]:
        """The SQL condition on ``debtors``."""
        conditions: list[ColumnElement[bool]] = []
        if self.from_agent_id is not None:
            conditions.append(Debtor.assigned_agent_id == self.from_agent_id)
        if self.from_pool:
            conditions.append(Debtor.assigned_agent_id.is_(None))
        if self.bucket is not None:
            floors = dict(bucket_due_date_floors(today))
            index = BUCKETS.index(self.bucket)
            floor = floors[self.bucket]
            if floor is not None:
                conditions.append(Debtor.oldest_due_date >= floor)
            if index > 0:
                conditions.append(Debtor.oldest_due_date < floors[BUCKETS[index - 1]])
            conditions.append(Debtor.open_invoices > 0)
        if self.min_balance is not None:
            conditions.append(Debtor.open_balance >= self.min_balance)
        if self.max_balance is not None:
            conditions.append(Debtor.open_balance <= self.max_balance)
        if self.time_zone is not None:
            conditions.append(Debtor.time_zone == self.time_zone)
        if self.segment is not None:
            conditions.append(Debtor.segment == self.segment)
        if self.currency is not None:
            conditions.append(Debtor.currency == self.currency)
        return and_(*conditions)


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise SupervisorError("give a reason for the move (it goes into the history)")
    if len(reason) > REASON_MAX:
        raise SupervisorError(f"the reason is longer than {REASON_MAX} characters")
    return reason


def _agent_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(wanted))).all())


def _holder(names: Mapping[int, str], agent_id: int | None) -> str:
    return "(pool)" if agent_id is None else names.get(agent_id, f"#{agent_id}")


def _write_moves(
    session: Session,
    caller: AgentInfo,
    moves: Sequence[tuple[int, int | None, int | None]],
    reason: str,
    at: datetime,
) -> None:
    """Move accounts (debtor id, from, to): set-based UPDATEs per target, one history row each.

    The version bump makes an edit of the same account loaded before the move fail
    instead of silently overwriting it.
    """
    by_target: dict[int | None, list[int]] = defaultdict(list)
    for debtor_id, _, to_agent in moves:
        by_target[to_agent].append(debtor_id)
    for to_agent, ids in by_target.items():
        for chunk in _chunks(sorted(ids)):
            session.execute(
                update(Debtor)
                .where(Debtor.id.in_(chunk))
                .values(assigned_agent_id=to_agent, version=Debtor.version + 1, updated_at=at),
                execution_options={"synchronize_session": False},
            )
    history = [
        {"debtor_id": d, "from_agent_id": f, "to_agent_id": t, "by_agent_id": caller.id,
         "reason": reason, "at": at}
        for d, f, t in moves
    ]  # fmt: skip
    for chunk in _chunks(history, 20_000):
        session.execute(insert(Assignment), list(chunk))


def _counts_by_agent(session: Session, agent_ids: Iterable[int]) -> dict[int, int]:
    wanted = sorted(set(agent_ids))
    if not wanted:
        return {}
    return dict(
        session.execute(
            select(Debtor.assigned_agent_id, func.count())
            .where(Debtor.assigned_agent_id.in_(wanted))
            .group_by(Debtor.assigned_agent_id)
        ).all()
    )


def reassign(
    db: Database,
    caller: AgentInfo,
    *,
    debtor_ids: Sequence[int] | None = None,
    match: AccountMatch | None = None,
    to_agent_id: int | None,
    reason: str,
    today: date | None = None,
    now: datetime | None = None,
) -> int:
    """Move the accounts ``debtor_ids`` or every account matching ``match`` to an agent
    (or to the pool with None); returns how many moved (those already there do not).

    One transaction: set-based UPDATE (version bumped), one assignment row per moved
    account, one audit row. Refuses an unknown or inactive agent, a move over the agent's
    capacity, and unknown account ids. ``today`` (default: UTC today) dates the aging
    bucket of ``match``.
    """
    _require_supervisor(db, caller, "move accounts between agents")
    if (debtor_ids is None) == (match is None):
        raise SupervisorError("give either the accounts to move or a filter, not both")
    reason = _check_reason(reason)
    at = _now(now)
    today = today or at.astimezone(UTC).date()
    with db.session() as session:
        target_name = None
        target: Agent | None = None
        if to_agent_id is not None:
            target = session.get(Agent, to_agent_id)
            if target is None:
                raise SupervisorError(f"there is no agent with id {to_agent_id}")
            if not target.active:
                raise SupervisorError(f"{target.name} is inactive and cannot receive accounts")
            target_name = target.name
        not_there = (
            Debtor.assigned_agent_id.is_not(None)
            if to_agent_id is None
            else or_(Debtor.assigned_agent_id.is_(None), Debtor.assigned_agent_id != to_agent_id)
        )
        rows: list[tuple[int, int | None]] = []
        if debtor_ids is not None:
            wanted = sorted(set(debtor_ids))
            found: set[int] = set()
            for chunk in _chunks(wanted):
                for debtor_id, agent_id in session.execute(
                    select(Debtor.id, Debtor.assigned_agent_id)
                    .where(Debtor.id.in_(chunk))
                    .with_for_update()
                ):
                    found.add(debtor_id)
                    if agent_id != to_agent_id:
                        rows.append((debtor_id, agent_id))
            missing = [d for d in wanted if d not in found]
            if missing:
                raise SupervisorError(
                    f"no account with id {', '.join(map(str, missing[:5]))}"
                    + (" ..." if len(missing) > 5 else "")
                )
        else:
            assert match is not None
            rows = [
                (debtor_id, agent_id)
                for debtor_id, agent_id in session.execute(
                    select(Debtor.id, Debtor.assigned_agent_id)
                    .where(match.clause(today), not_there)
                    .order_by(Debtor.id)
                    .with_for_update()
                )
            ]
        if not rows:
            return 0
        if target is not None and target.capacity is not None:
            holds = _counts_by_agent(session, [target.id]).get(target.id, 0)
            if holds + len(rows) > target.capacity:
                raise SupervisorError(
                    f"{target.name} holds {holds} accounts of a capacity of {target.capacity}; "
                    f"{len(rows)} more would exceed it"
                )
        moves = [(debtor_id, agent_id, to_agent_id) for debtor_id, agent_id in rows]
        _write_moves(session, caller, moves, reason, at)
        names = _agent_names(session, [a for _, a in rows])
        sources: dict[str, int] = defaultdict(int)
        for _, agent_id in rows:
            sources[_holder(names, agent_id)] += 1
        single = rows[0][0] if len(rows) == 1 else None
        after: dict[str, Any] = {"agent": target_name, "accounts": len(rows), "reason": reason}
        if match is not None:
            after["match"] = match.describe()
        else:
            after["debtor_ids"] = [d for d, _ in rows[:100]]
        record(
            session, caller, "reassign", "debtor", single, {"from": dict(sources)}, after,
            debtor_id=single, at=at,
        )  # fmt: skip
        return len(rows)


# --------------------------------------------------------------------------- rebalance


def _pinned_ids(now: datetime) -> Any:
    """Debtors that keep their agent: a pending promise or installment, an open callback,
    or an agent working the account right now (a live claim)."""
    return union(
        select(Promise.debtor_id).where(Promise.status == "pending"),
        select(Task.debtor_id).where(Task.status == "open", Task.kind == "callback"),
        select(Claim.debtor_id).where(Claim.expires_at > now),
    )


def _days_late(dialect: str, today: date) -> ColumnElement[Any]:
    """Days from the oldest open due date to ``today`` (negative: not yet due; NULL: none)."""
    if dialect == "sqlite":
        return func.julianday(today.isoformat()) - func.julianday(Debtor.oldest_due_date)
    return literal(today, Date) - Debtor.oldest_due_date


def preview_rebalance(
    db: Database,
    caller: AgentInfo,
    *,
    measure: Measure,
    agent_ids: Sequence[int] | None = None,
    include_pool: bool = False,
    absent_agent_ids: Sequence[int] = (),
    tolerance: float = DEFAULT_TOLERANCE,
    today: date | None = None,
    rates: Mapping[str, Decimal] = DEFAULT_FX_TO_BASE,
    now: datetime | None = None,
) -> RebalancePlan:
    """Plan a rebalance of ``measure`` (count, balance in the base currency, workload).

    ``agent_ids`` (default: every agent with the role "agent") take part; inactive ones
    and ``absent_agent_ids`` are absent: they keep only their pinned accounts.
    ``include_pool`` hands out the unassigned pool too. Nothing is written: show the plan,
    then :func:`apply_rebalance` it. The accounts are read with one query. Accounts an
    agent is working at ``now`` (a live claim) stay where they are.
    """
    _require_supervisor(db, caller, "rebalance workloads")
    now = _now(now)
    today = today or now.astimezone(UTC).date()
    absent = set(absent_agent_ids)
    with db.session() as session:
        query = select(Agent.id, Agent.name, Agent.capacity, Agent.active).order_by(Agent.name)
        if agent_ids is None:
            query = query.where(Agent.role == "agent")
        else:
            query = query.where(Agent.id.in_(sorted(set(agent_ids))))
        agents = session.execute(query).all()
        if agent_ids is not None:
            unknown = set(agent_ids) - {a.id for a in agents}
            if unknown:
                raise SupervisorError(f"no agent with id {', '.join(map(str, sorted(unknown)))}")
        names = {a.id: a.name for a in agents}
        holder = Debtor.assigned_agent_id.in_(list(names)) if names else literal(False)
        if include_pool:
            holder = or_(holder, Debtor.assigned_agent_id.is_(None))
        to_base = case(
            {currency: float(rate) for currency, rate in rates.items()},
            value=Debtor.currency,
            else_=1.0,
        )
        # Core execution (no ORM rows) and floats: this reads the whole selection.
        rows = (
            session.connection()
            .execute(
                select(
                    Debtor.id,
                    Debtor.assigned_agent_id,
                    cast(Debtor.open_balance * to_base, Float),
                    Debtor.open_invoices,
                    _days_late(db.dialect, today),
                    type_coerce(Debtor.id.in_(_pinned_ids(now)), Boolean),
                ).where(holder)
            )
            .all()
        )
    accounts = [
        AccountLoad(
            debtor_id, agent_id, balance or 0.0, estimate_workload(invoices or 0, late or 0), pinned
        )
        for debtor_id, agent_id, balance, invoices, late, pinned in rows
    ]
    holding = {row[1] for row in rows}
    slots = [
        AgentSlot(a.id, a.capacity, bool(a.active) and a.id not in absent)
        for a in agents
        # An inactive agent with nothing to hand over is left out of the plan.
        if a.active or a.id in holding
    ]
    plan = plan_rebalance(accounts, slots, measure, tolerance=tolerance)
    return replace(plan, names=names)


def apply_rebalance(
    db: Database,
    caller: AgentInfo,
    plan: RebalancePlan,
    *,
    reason: str,
    now: datetime | None = None,
) -> int:
    """Apply a previewed plan in one transaction; returns the number of accounts moved.

    Refuses (:class:`StalePlanError`, nothing written) when any planned account is no
    longer with the agent it was planned to leave, a receiving agent became inactive, or
    a receiving agent would end above its capacity.
    """
    _require_supervisor(db, caller, "rebalance workloads")
    reason = _check_reason(reason)
    at = _now(now)
    if not plan.moves:
        return 0
    with db.session() as session:
        planned = {move.debtor_id: move.from_agent for move in plan.moves}
        current: dict[int, int | None] = {}
        for chunk in _chunks(sorted(planned)):
            current.update(
                session.execute(
                    select(Debtor.id, Debtor.assigned_agent_id)
                    .where(Debtor.id.in_(chunk))
                    .with_for_update()
                ).all()
            )
        stale = [d for d, agent in planned.items() if d not in current or current[d] != agent]
        if stale:
            raise StalePlanError(
                f"{len(stale)} of the {len(planned)} planned accounts changed agent since the "
                f"preview (e.g. account {min(stale)}); preview the rebalance again"
            )
        receivers = {move.to_agent for move in plan.moves if move.to_agent is not None}
        agents = {
            a.id: a
            for a in session.execute(
                select(Agent.id, Agent.name, Agent.active, Agent.capacity).where(
                    Agent.id.in_(sorted(receivers))
                )
            )
        }
        for agent_id in sorted(receivers):
            agent = agents.get(agent_id)
            if agent is None or not agent.active:
                name = agent.name if agent else f"#{agent_id}"
                raise StalePlanError(f"{name} can no longer receive accounts; preview again")
        holds = _counts_by_agent(session, receivers)
        delta: dict[int | None, int] = defaultdict(int)
        for move in plan.moves:
            delta[move.to_agent] += 1
            delta[move.from_agent] -= 1
        for agent_id in sorted(receivers):
            agent = agents[agent_id]
            after = holds.get(agent_id, 0) + delta[agent_id]
            if agent.capacity is not None and delta[agent_id] > 0 and after > agent.capacity:
                raise StalePlanError(
                    f"{agent.name} would hold {after} accounts, above the capacity of "
                    f"{agent.capacity}; preview the rebalance again"
                )
        moves = [(m.debtor_id, m.from_agent, m.to_agent) for m in plan.moves]
        _write_moves(session, caller, moves, reason, at)
        names = dict(plan.names) or _agent_names(session, [c.agent_id for c in plan.agents])
        record(
            session, caller, "rebalance", "assignment", None,
            {"measure": plan.measure, "spread": plan.spread_before,
             "accounts": {_holder(names, c.agent_id): c.before.count for c in plan.agents}},
            {"moved": len(moves), "spread": plan.spread_after, "reason": reason,
             "accounts": {_holder(names, c.agent_id): c.after.count for c in plan.agents}},
            at=at,
        )  # fmt: skip
        return len(moves)


def _figure(measure: str, value: float) -> str:
    if measure == "count":
        return f"{value:,.0f}"
    if measure == "balance":
        return format_money(to_money(Decimal(repr(value))))
    return f"{value:,.1f}"


def rebalance_plan_text(plan: RebalancePlan) -> str:
    """The plan as a plain-text table within 80 columns: per agent (away agents marked)
    the accounts and the balance in the base currency (the workload when that is the
    measure) before > after, accounts moved in and out; the spread and what stays put."""
    unit = {"count": "accounts", "balance": f"balance ({BASE_CURRENCY})", "workload": "workload"}
    lines = [
        f"Rebalance by {unit[plan.measure]}: {plan.moved:,} account(s) move",
        f"Spread {_figure(plan.measure, plan.spread_before)} -> "
        f"{_figure(plan.measure, plan.spread_after)}",
    ]
    if plan.unplaced:
        lines.append(f"{plan.unplaced:,} account(s) found no agent with room and stay put")
    third = "workload" if plan.measure == "workload" else f"balance {BASE_CURRENCY}"
    lines += ["", f"{'agent':<16} {'accounts':>15} {third:>29} {'in':>7} {'out':>7}"]
    rows = [*plan.agents, *([plan.pool] if plan.pool else [])]
    for change in rows:
        name = _holder(plan.names, change.agent_id)
        if change.agent_id is not None and not change.present:
            name = f"{name[:9]} (away)"
        counts = f"{change.before.count:,} > {change.after.count:,}"
        if plan.measure == "workload":
            figure = f"{change.before.workload:,.1f} > {change.after.workload:,.1f}"
        else:
            figure = f"{_money_short(change.before.balance)} > {_money_short(change.after.balance)}"
        moved = f"{change.moved_in:>7,} {change.moved_out:>7,}"
        lines.append(f"{name[:16]:<16} {counts:>15} {figure:>29} {moved}")
    return "\n".join(lines)


def _money_short(amount: Decimal) -> str:
    return format_money(to_money(amount))


def _load_json(load: Load) -> dict[str, Any]:
    return {
        "count": load.count,
        "balance": str(to_money(load.balance)),
        "workload": round(load.workload, 3),
    }


def _change_json(change: AgentChange, names: Mapping[int, str]) -> dict[str, Any]:
    return {
        "agent_id": change.agent_id,
        "agent": _holder(names, change.agent_id),
        "present": change.present,
        "capacity": change.capacity,
        "before": _load_json(change.before),
        "after": _load_json(change.after),
        "moved_in": change.moved_in,
        "moved_out": change.moved_out,
    }


def plan_to_json(plan: RebalancePlan) -> dict[str, Any]:
    """The plan as JSON-ready data: money as decimal strings, agents by id and name."""
    return {
        "measure": plan.measure,
        "base_currency": BASE_CURRENCY,
        "moved": plan.moved,
        "unplaced": plan.unplaced,
        "spread_before": plan.spread_before,
        "spread_after": plan.spread_after,
        "agents": [_change_json(c, plan.names) for c in plan.agents],
        "pool": _change_json(plan.pool, plan.names) if plan.pool else None,
        "moves": [
            {"debtor_id": m.debtor_id, "from_agent_id": m.from_agent, "to_agent_id": m.to_agent}
            for m in plan.moves
        ],
    }


# --------------------------------------------------------------------------- settlements


@dataclass(frozen=True)
class SettlementView:
    """A settlement with the account context a supervisor decides on."""

    settlement_id: int
    version: int
    status: str
    debtor_id: int
    debtor_name: str
    currency: str
    balance: Decimal  # open balance now
    balance_at_offer: Decimal
    amount: Decimal  # the offer
    discount: Decimal
    discount_pct: Decimal  # of the balance at the offer, to 0.1
    due_date: date
    agent_id: int | None
    agent_name: str | None
    agent_limit: Decimal | None
    created_at: datetime
    age_days: int
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


def _settlement_query() -> Any:
    offered_by = aliased(Agent)
    decided_by = aliased(Agent)
    return (
        select(
            Settlement,
            Debtor.name,
            Debtor.open_balance,
            offered_by.name,
            offered_by.settlement_limit,
            decided_by.name,
        )
        .join(Debtor, Debtor.id == Settlement.debtor_id)
        .outerjoin(offered_by, offered_by.id == Settlement.agent_id)
        .outerjoin(decided_by, decided_by.id == Settlement.decided_by_id)
    )


def _settlement_view(row: Any, now: datetime) -> SettlementView:
    s, debtor_name, balance, agent_name, agent_limit, decided_by = row
    discount = s.balance_at_offer - s.amount
    pct = (
        (discount / s.balance_at_offer * 100).quantize(Decimal("0.1"))
        if s.balance_at_offer
        else ZERO
    )
    return SettlementView(
        s.id, s.version, s.status, s.debtor_id, debtor_name, s.currency, to_money(_dec(balance)),
        s.balance_at_offer, s.amount, discount, pct, s.due_date, s.agent_id, agent_name,
        agent_limit, s.created_at, max(0, (now - s.created_at).days), decided_by, s.decided_at,
        s.decision_note,
    )  # fmt: skip


def pending_settlements(
    db: Database, caller: AgentInfo, *, now: datetime | None = None
) -> list[SettlementView]:
    """Settlements awaiting approval, oldest first, with their account context."""
    _require_supervisor(db, caller, "see settlements awaiting approval")
    now = _now(now)
    with db.session() as session:
        rows = session.execute(
            _settlement_query()
            .where(Settlement.status == "awaiting_approval")
            .order_by(Settlement.created_at, Settlement.id)
        ).all()
        return [_settlement_view(row, now) for row in rows]


def _changed(settlement_id: int) -> str:
    return f"settlement {settlement_id} changed since you opened it; reload it and decide again"


def decide_settlement(
    db: Database,
    caller: AgentInfo,
    settlement_id: int,
    *,
    approve: bool,
    note: str,
    expected_version: int,
    now: datetime | None = None,
) -> SettlementView:
    """Approve or reject a settlement awaiting approval; returns it as decided.

    ``expected_version`` is the version the supervisor saw: if the settlement changed
    since, :class:`StaleSettlementError` is raised and nothing is written. A rejection
    needs a note. Writes an audit row.
    """
    _require_supervisor(db, caller, "approve or reject settlements")
    note = note.strip()
    if not approve and not note:
        raise SupervisorError("say why the settlement is rejected (the agent will see it)")
    at = _now(now)
    with db.session() as session:
        settlement = session.get(Settlement, settlement_id, with_for_update=True)
        if settlement is None:
            raise SupervisorError(f"there is no settlement with id {settlement_id}")
        if settlement.version != expected_version:
            raise StaleSettlementError(_changed(settlement_id))
        if settlement.status != "awaiting_approval":
            raise SupervisorError(
                f"settlement {settlement_id} is {settlement.status.replace('_', ' ')}, "
                "not awaiting approval"
            )
        before = {"status": settlement.status, "version": settlement.version}
        settlement.status = "approved" if approve else "rejected"
        settlement.decided_by_id = caller.id
        settlement.decided_at = at
        settlement.decision_note = note or None
        try:
            session.flush()
        except StaleDataError:
            raise StaleSettlementError(_changed(settlement_id)) from None
        record(
            session, caller, "settlement.approve" if approve else "settlement.reject",
            "settlement", settlement.id, before,
            {"status": settlement.status, "version": settlement.version, "note": note,
             "amount": settlement.amount, "currency": settlement.currency},
            debtor_id=settlement.debtor_id, at=at,
        )  # fmt: skip
        row = session.execute(_settlement_query().where(Settlement.id == settlement_id)).one()
        return _settlement_view(row, at)


# --------------------------------------------------------------------------- KPIs


@dataclass(frozen=True)
class AgingLine:
    """Open invoices in one aging bucket; balance in the base currency."""

    bucket: str
    invoices: int
    balance_base: Decimal


@dataclass(frozen=True)
class DayAmount:
    """Payments dated one day, in the base currency."""

    day: date
    amount_base: Decimal


@dataclass(frozen=True)
class MonthKpi:
    """DSO and CEI of one calendar month (the current one up to today), base currency."""

    month: str  # YYYY-MM
    start: date
    end: date
    days: int
    beginning_receivables: Decimal
    credit_sales: Decimal
    ending_receivables: Decimal
    ending_current_receivables: Decimal
    dso: Decimal | None
    cei: Decimal | None


@dataclass(frozen=True)
class AgentKpi:
    """One agent's contact and promise figures over the KPI window, and today's pace."""

    agent_id: int | None
    name: str
    call_attempts: int
    right_party_contacts: int
    promises: int
    kept: int
    partially_kept: int
    broken: int
    contacts_today: int
    active_hours_today: int
    right_party_contact_rate: float | None
    promise_rate: float | None
    kept_rate: float | None
    contacts_per_hour: float | None


@dataclass(frozen=True)
class HourCount:
    """Contacts started in one clock hour of the day (in the report's zone)."""

    hour: int
    contacts: int
    right_party_contacts: int


@dataclass(frozen=True)
class KpiReport:
    """The supervisor's KPIs as of a day; money in the base currency."""

    as_of: date
    base_currency: str
    window_days: int
    aging: list[AgingLine]
    open_balance_base: Decimal
    collected_by_day: list[DayAmount]
    collected_total: Decimal
    collected_per_day: Decimal | None
    months: list[MonthKpi]
    agents: list[AgentKpi]
    team: AgentKpi
    contacts_by_hour: list[HourCount]


def _month_periods(today: date, months: int) -> list[tuple[date, date]]:
    """The last ``months`` calendar months as (first day, last day), the current one
    ending today, oldest first."""
    periods: list[tuple[date, date]] = []
    first = today.replace(day=1)
    end = today
    for _ in range(months):
        periods.append((first, end))
        end = first - timedelta(days=1)
        first = end.replace(day=1)
    return periods[::-1]


def _sum_case(condition: ColumnElement[bool], value: Any) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _agent_kpi(
    agent_id: int | None,
    name: str,
    figures: Mapping[str, int],
) -> AgentKpi:
    attempts, rpc = figures.get("attempts", 0), figures.get("rpc", 0)
    promises = figures.get("promises", 0)
    kept, partial, broken = (
        figures.get("kept", 0),
        figures.get("partial", 0),
        figures.get("broken", 0),
    )
    contacts, hours = figures.get("today", 0), figures.get("hours", 0)
    return AgentKpi(
        agent_id, name, attempts, rpc, promises, kept, partial, broken, contacts, hours,
        kpi.right_party_contact_rate(rpc, attempts), kpi.promise_rate(promises, rpc),
        kpi.kept_rate(kept, partial, broken), kpi.contacts_per_hour(contacts, hours),
    )  # fmt: skip


def kpis(
    db: Database,
    caller: AgentInfo,
    *,
    today: date,
    months: int = 6,
    zone: tzinfo = UTC,
    rates: Mapping[str, Decimal] = DEFAULT_FX_TO_BASE,
) -> KpiReport:
    """Aging, collections, DSO and CEI by month, and per-agent contact KPIs.

    * aging: open invoices by bucket of their own due date (as the report does);
    * collected per day: active payments dated in the last 30 days;
    * DSO/CEI per month: receivables at a day = invoice totals issued by then (open or
      paid, not voided/deleted) minus payments dated by then; current receivables = the
      part of those not yet past due; credit sales = totals issued in the month;
    * per agent over the last 30 days: outbound call attempts, right-party contacts (of
      those, the ones that were a conversation), promises taken (promises outside plans,
      plus plans), kept/partially kept/broken promises due in the window;
    * today in ``zone``: contacts by hour, and per agent contacts per active hour.
    """
    _require_supervisor(db, caller, "see the KPIs")
    return kpi_report(db, today=today, months=months, zone=zone, rates=rates)


def kpi_report(
    db: Database,
    *,
    today: date,
    months: int = 6,
    zone: tzinfo = UTC,
    rates: Mapping[str, Decimal] = DEFAULT_FX_TO_BASE,
) -> KpiReport:
    """The figures of :func:`kpis` without a signed-in caller: for ``collect-tui report``,
    which reads the whole database on the command line. The UI calls :func:`kpis`."""
    if months < 1:
        raise ValueError("months must be at least 1")
    window_start = today - timedelta(days=KPI_WINDOW_DAYS - 1)
    window_from = _day_start(window_start, zone)
    window_to = _day_start(today + timedelta(days=1), zone)
    day_from = _day_start(today, zone)
    periods = _month_periods(today, months)
    ends = [periods[0][0] - timedelta(days=1)] + [end for _, end in periods]
    counted = Invoice.status.in_(("open", "paid"))

    with db.session() as session:
        names = dict(
            session.execute(
                select(Agent.id, Agent.name).where(Agent.role == "agent", Agent.active.is_(True))
            ).all()
        )
        # Aging of open invoices.
        floors = bucket_due_date_floors(today)
        bucket_expr = case(
            *[(Invoice.due_date >= floor, b) for b, floor in floors if floor is not None],
            else_=BUCKETS[-1],
        ).label("bucket")
        aging_count: dict[str, int] = dict.fromkeys(BUCKETS, 0)
        aging_money: dict[str, dict[str, Decimal]] = {b: {} for b in BUCKETS}
        for bucket, currency, count, total in session.execute(
            select(bucket_expr, Invoice.currency, func.count(), func.sum(Invoice.amount_due))
            .where(Invoice.status == "open")
            .group_by(bucket_expr, Invoice.currency)
        ):
            aging_count[bucket] += count
            aging_money[bucket][currency] = _dec(total)

        # Collections per day.
        collected: dict[date, dict[str, Decimal]] = defaultdict(dict)
        for day, currency, total in session.execute(
            select(Payment.paid_on, Payment.currency, func.sum(Payment.amount))
            .where(Payment.status == "active", Payment.paid_on.between(window_start, today))
            .group_by(Payment.paid_on, Payment.currency)
        ):
            collected[day][currency] = _dec(total)

        # Receivables at each month end: totals issued minus payments, and the current part.
        current_at = [and_(Invoice.issue_date <= t, Invoice.due_date >= t) for t in ends]
        invoiced = session.execute(
            select(
                Invoice.currency,
                *[_sum_case(Invoice.issue_date <= t, Invoice.total) for t in ends],
                *[_sum_case(cond, Invoice.total) for cond in current_at],
            )
            .where(counted, Invoice.issue_date <= today)
            .group_by(Invoice.currency)
        ).all()
        paid = session.execute(
            select(
                Payment.currency,
                *[_sum_case(Payment.paid_on <= t, Payment.amount) for t in ends],
                *[
                    _sum_case(and_(Payment.paid_on <= t, cond), Payment.amount)
                    for t, cond in zip(ends, current_at, strict=True)
                ],
            )
            .select_from(Payment)
            .outerjoin(Invoice, Invoice.id == Payment.invoice_id)
            .where(
                Payment.status == "active",
                Payment.paid_on <= today,
                or_(Payment.invoice_id.is_(None), counted),
            )
            .group_by(Payment.currency)
        ).all()

        # Per agent over the window.
        figures: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        outbound_call = and_(Contact.channel == "call", Contact.direction == "outbound")
        for agent_id, attempts, rpc in session.execute(
            select(
                Contact.agent_id,
                func.count(),
                _sum_case(Contact.conversation.is_(True), 1),
            )
            .where(outbound_call, Contact.started_at >= window_from, Contact.started_at < window_to)
            .group_by(Contact.agent_id)
        ):
            figures[agent_id]["attempts"] += attempts
            figures[agent_id]["rpc"] += int(rpc)
        for agent_id, count in session.execute(
            select(Promise.agent_id, func.count())
            .where(
                Promise.plan_id.is_(None),
                Promise.created_at >= window_from,
                Promise.created_at < window_to,
            )
            .group_by(Promise.agent_id)
        ):
            figures[agent_id]["promises"] += count
        for agent_id, count in session.execute(
            select(PaymentPlan.agent_id, func.count())
            .where(PaymentPlan.created_at >= window_from, PaymentPlan.created_at < window_to)
            .group_by(PaymentPlan.agent_id)
        ):
            figures[agent_id]["promises"] += count
        outcome_key = {"kept": "kept", "partially_kept": "partial", "broken": "broken"}
        for agent_id, status, count in session.execute(
            select(Promise.agent_id, Promise.status, func.count())
            .where(
                Promise.status.in_(tuple(outcome_key)),
                Promise.due_date.between(window_start, today),
            )
            .group_by(Promise.agent_id, Promise.status)
        ):
            figures[agent_id][outcome_key[status]] += count

        # Today by local clock hour: the bounds are computed here (zone and DST exact) and
        # compared in SQL, the same on both engines.
        hour_starts = [_day_start(today, zone)] + [
            datetime.combine(today, time(h), zone).astimezone(UTC) for h in range(1, 24)
        ]
        day_to = window_to
        hour_expr = case(
            *[(Contact.started_at < start, h - 1) for h, start in enumerate(hour_starts) if h],
            else_=23,
        ).label("hour")
        by_hour: dict[int, list[int]] = {h: [0, 0] for h in range(24)}
        agent_hours: dict[int | None, set[int]] = defaultdict(set)
        for agent_id, hour, count, rpc in session.execute(
            select(Contact.agent_id, hour_expr, func.count(), _sum_case(Contact.conversation, 1))
            .where(Contact.started_at >= day_from, Contact.started_at < day_to)
            .group_by(Contact.agent_id, hour_expr)
        ):
            hour = min(int(hour), 23)
            by_hour[hour][0] += count
            by_hour[hour][1] += int(rpc)
            figures[agent_id]["today"] += count
            agent_hours[agent_id].add(hour)
    for agent_id, hours in agent_hours.items():
        figures[agent_id]["hours"] = len(hours)

    def base(by_currency: Mapping[str, Decimal]) -> Decimal:
        return _to_base(by_currency, rates)

    aging = [AgingLine(b, aging_count[b], base(aging_money[b])) for b in BUCKETS]
    # The total is converted from the unrounded sums, like the workload screen's total,
    # so both show the same cents (the bucket lines may add up to a cent apart).
    open_by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for bucket in BUCKETS:
        for currency, amount in aging_money[bucket].items():
            open_by_currency[currency] += amount
    days = [window_start + timedelta(days=i) for i in range(KPI_WINDOW_DAYS)]
    by_day = [DayAmount(day, base(collected.get(day, {}))) for day in days]
    collected_total = sum((d.amount_base for d in by_day), ZERO)

    points = len(ends)
    issued = [ZERO] * points  # invoice totals issued by each end
    current = [ZERO] * points
    for row in invoiced:
        rate = _rate(row[0], rates)
        for k in range(points):
            issued[k] += _dec(row[1 + k]) * rate
            current[k] += _dec(row[1 + points + k]) * rate
    receivable = list(issued)
    for row in paid:
        rate = _rate(row[0], rates)
        for k in range(points):
            receivable[k] -= _dec(row[1 + k]) * rate
            current[k] -= _dec(row[1 + points + k]) * rate
    month_rows = []
    for k, (start, end) in enumerate(periods, start=1):
        begin, end_total, end_current = receivable[k - 1], receivable[k], current[k]
        sales = issued[k] - issued[k - 1]
        days = (end - start).days + 1
        month_rows.append(
            MonthKpi(
                start.strftime("%Y-%m"),
                start,
                end,
                days,
                to_money(begin),
                to_money(sales),
                to_money(end_total),
                to_money(end_current),
                kpi.dso(end_total, sales, days),
                kpi.cei(begin, sales, end_total, end_current),
            )  # fmt: skip
        )

    agent_rows = []
    listed = set(names) | {a for a in figures if a is not None}
    all_names = dict(names)
    if listed - set(names):
        with db.session() as session:
            all_names.update(_agent_names(session, listed - set(names)))
    for agent_id in sorted(listed, key=lambda a: all_names.get(a, "")):
        agent_rows.append(
            _agent_kpi(agent_id, all_names.get(agent_id, f"#{agent_id}"), figures[agent_id])
        )
    team: dict[str, int] = defaultdict(int)
    for agent_figures in figures.values():
        for key, value in agent_figures.items():
            if key != "hours":
                team[key] += value
    team["hours"] = len(set().union(*agent_hours.values())) if agent_hours else 0
    return KpiReport(
        as_of=today,
        base_currency=BASE_CURRENCY,
        window_days=KPI_WINDOW_DAYS,
        aging=aging,
        open_balance_base=base(open_by_currency),
        collected_by_day=by_day,
        collected_total=collected_total,
        collected_per_day=kpi.collected_per_day(collected_total, KPI_WINDOW_DAYS),
        months=month_rows,
        agents=agent_rows,
        team=_agent_kpi(None, "(team)", team),
        contacts_by_hour=[HourCount(h, c, r) for h, (c, r) in sorted(by_hour.items())],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    return value


def kpis_json(report: KpiReport) -> dict[str, Any]:
    """The KPI report as JSON-ready data: Decimal as strings, dates ISO, rates as floats."""
    result: dict[str, Any] = _jsonable(report)
    return result
