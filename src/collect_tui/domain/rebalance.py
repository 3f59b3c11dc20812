"""Workload rebalancing: which accounts to move so present agents carry an even load.

Pure logic over plain figures; the supervisor service reads the loads from the database
and applies the plan. The rules:

* the chosen measure (number of accounts, open balance in the base currency, or
  estimated workload) is evened out across the *present* agents;
* pinned accounts (an active promise, plan installment or callback) never move;
* absent agents receive nothing, and their unpinned accounts go to present agents;
* accounts in the unassigned pool (``agent_id`` None) that the caller passes in are
  handed out too (pinned pool accounts stay in the pool);
* no present agent ends above its capacity (maximum accounts) when the portfolio fits;
* as few accounts as reasonable move, and an account moves at most once.

By count the target is exact (water-filling between each agent's pinned floor and its
capacity, so the spread ends at most 1 when capacities allow) and the number of moves is
the minimum for that target. By balance or workload the accounts that must move are placed
largest-first on the least-loaded agent with room, then the most loaded agent gives the
least loaded one the account that best fits their gap (best-fit), until the spread is
within ``tolerance`` of the mean load or no move helps. Every such move keeps the loads
inside the current [min, max] envelope, so the spread never grows.
"""

from __future__ import annotations

import heapq
import sys
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, NamedTuple, get_args

Measure = Literal["count", "balance", "workload"]
MEASURES: tuple[str, ...] = get_args(Measure)
DEFAULT_TOLERANCE = 0.01
_NO_LIMIT = sys.maxsize
ZERO = Decimal("0")


class AccountLoad(NamedTuple):
    """One account as the rebalancer sees it (a NamedTuple: 200k of them are cheap)."""

    debtor_id: int
    agent_id: int | None
    balance_base: Decimal | float = ZERO
    workload: float = 1.0
    pinned: bool = False


@dataclass(frozen=True)
class AgentSlot:
    """An agent taking part: its capacity (max accounts, None = no limit) and presence."""

    agent_id: int
    capacity: int | None = None
    present: bool = True


class Move(NamedTuple):
    """One account moving from an agent (or the pool, None) to an agent."""

    debtor_id: int
    from_agent: int | None
    to_agent: int | None


@dataclass(frozen=True)
class Load:
    """What an agent (or the pool) carries: accounts, balance (base currency), workload."""

    count: int = 0
    balance: Decimal = ZERO
    workload: float = 0.0

    def value(self, measure: Measure) -> float:
        """The figure of ``measure`` as a float (for spreads)."""
        if measure == "count":
            return float(self.count)
        if measure == "balance":
            return float(self.balance)
        return self.workload


@dataclass(frozen=True)
class AgentChange:
    """One agent's (or the pool's, ``agent_id`` None) load before and after a plan."""

    agent_id: int | None
    present: bool
    capacity: int | None
    before: Load
    after: Load
    moved_in: int
    moved_out: int


@dataclass(frozen=True)
class RebalancePlan:
    """The moves of a rebalance and what they do to each agent's load.

    ``spread`` is max - min of the measure over the present agents. ``unplaced`` counts
    accounts that should have left an absent agent or the pool but found no agent with
    room. ``names`` maps agent ids to names for display (filled by the service).
    """

    measure: Measure
    moves: tuple[Move, ...]
    agents: tuple[AgentChange, ...]
    pool: AgentChange | None
    spread_before: float
    spread_after: float
    unplaced: int = 0
    names: Mapping[int, str] = field(default_factory=dict)

    @property
    def moved(self) -> int:
        """How many accounts the plan moves."""
        return len(self.moves)


def estimate_workload(open_invoices: int, days_past_due: int) -> float:
    """Rough effort to work an account: 1, plus 0.25 per open invoice beyond the first,
    plus up to 1 more as the oldest invoice ages towards 120 days past due."""
    # Plain comparisons, not min()/max(): this runs once per account of a portfolio.
    work = 1.0
    if open_invoices > 1:
        work += (open_invoices - 1) * 0.25
    if days_past_due > 0:
        work += 1.0 if days_past_due >= 120 else days_past_due / 120
    return work


def _spread(values: Iterable[float]) -> float:
    values = list(values)
    return max(values) - min(values) if values else 0.0


@dataclass
class _State:
    """Working state shared by both algorithms (indexes into ``accounts``)."""

    accounts: Sequence[AccountLoad]
    present: list[int]
    limit: dict[int, int]  # max accounts per present agent
    count: dict[int, int]  # accounts per present agent (pinned + movable)
    movable: dict[int, list[int]]  # unpinned account indexes per present agent
    must_place: list[int]  # absent agents' and pool's unpinned accounts, in priority order
    destination: dict[int, int | None] = field(default_factory=dict)  # index -> new agent
    unplaced: int = 0


def _prepare(accounts: Sequence[AccountLoad], agents: Sequence[AgentSlot]) -> _State:
    slots: dict[int, AgentSlot] = {}
    for slot in agents:
        if slot.agent_id in slots:
            raise ValueError(f"agent {slot.agent_id} is listed twice")
        if slot.capacity is not None and slot.capacity < 0:
            raise ValueError(f"agent {slot.agent_id} has a negative capacity")
        slots[slot.agent_id] = slot
    present = [slot.agent_id for slot in agents if slot.present]
    count = dict.fromkeys(present, 0)
    pinned = dict.fromkeys(present, 0)
    movable: dict[int, list[int]] = {agent: [] for agent in present}
    from_absent: list[int] = []
    from_pool: list[int] = []
    seen: set[int] = set()
    for index, account in enumerate(accounts):
        debtor_id, agent_id = account.debtor_id, account.agent_id
        if debtor_id in seen:
            raise ValueError(f"account {debtor_id} is listed twice")
        seen.add(debtor_id)
        if agent_id is None:
            if not account.pinned:
                from_pool.append(index)
            continue
        slot = slots.get(agent_id)
        if slot is None:
            raise ValueError(f"account {debtor_id} belongs to agent {agent_id}, who is not listed")
        if slot.present:
            count[agent_id] += 1
            if account.pinned:
                pinned[agent_id] += 1
            else:
                movable[agent_id].append(index)
        elif not account.pinned:
            from_absent.append(index)
    limit = {}
    for agent in present:
        capacity = slots[agent].capacity
        limit[agent] = _NO_LIMIT if capacity is None else max(capacity, pinned[agent])
    if sum(count.values()) > sum(limit.values()):
        # The present agents' own accounts do not fit: nobody is forced above what they
        # hold now, and nothing more comes in.
        limit = {agent: max(limit[agent], count[agent]) for agent in present}
        from_absent, from_pool = [], []
    return _State(accounts, present, limit, count, movable, from_absent + from_pool)


def _plan_by_count(state: _State) -> None:
    present, count, limit = state.present, state.count, state.limit
    floor = {agent: count[agent] - len(state.movable[agent]) for agent in present}
    own = sum(count.values())
    room = sum(min(limit[a], own + len(state.must_place)) for a in present)
    total = min(own + len(state.must_place), room)

    def filled(level: int) -> int:
        return sum(min(max(level, floor[a]), limit[a]) for a in present)

    low, high = 0, total
    while low < high:  # the highest level whose fill does not exceed the total
        middle = (low + high + 1) // 2
        if filled(middle) <= total:
            low = middle
        else:
            high = middle - 1
    final = {a: min(max(low, floor[a]), limit[a]) for a in present}
    extra = total - sum(final.values())
    # One more for some agents that can take it; those holding more now first (fewer moves).
    for agent in sorted(present, key=lambda a: (count[a] <= low, a)):
        if extra <= 0:
            break
        if floor[agent] <= low < limit[agent]:
            final[agent] += 1
            extra -= 1

    give: list[int] = []
    accounts = state.accounts
    for agent in present:
        surplus = count[agent] - final[agent]
        if surplus > 0:
            candidates = sorted(state.movable[agent], key=lambda i: accounts[i].debtor_id)
            give.extend(candidates[-surplus:])
    placeable = total - own
    give.extend(state.must_place[:placeable])
    state.unplaced = len(state.must_place) - max(placeable, 0)
    cursor = 0
    for agent in present:
        for _ in range(final[agent] - count[agent]):
            state.destination[give[cursor]] = agent
            cursor += 1


def _plan_by_weight(state: _State, measure: Measure, tolerance: float) -> None:
    accounts, present, count, limit = state.accounts, state.present, state.count, state.limit
    if measure == "balance":
        weight = [float(account.balance_base) for account in accounts]
    else:
        weight = [float(account.workload) for account in accounts]
    load = dict.fromkeys(present, 0.0)
    for index, account in enumerate(accounts):
        if account.agent_id in load:
            load[account.agent_id] += weight[index]  # type: ignore[index]

    # Each present agent's unpinned accounts, lightest first.
    sorted_movable: dict[int, list[int]] = {}
    for agent in present:
        # Stable sort: equal weights keep the input order, so plans are deterministic.
        sorted_movable[agent] = sorted(state.movable[agent], key=weight.__getitem__)

    # 1. Agents over capacity give up their lightest unpinned accounts.
    to_place: list[int] = []
    for agent in present:
        surplus = count[agent] - limit[agent]
        if surplus > 0:
            taken, sorted_movable[agent] = (
                sorted_movable[agent][:surplus],
                sorted_movable[agent][surplus:],
            )
            for index in taken:
                load[agent] -= weight[index]
            count[agent] -= surplus
            to_place.extend(taken)
    room = sum(min(limit[a] - count[a], len(accounts)) for a in present)
    placeable = max(0, room - len(to_place))
    chosen = state.must_place[:placeable]
    state.unplaced = len(state.must_place) - len(chosen)
    to_place.extend(chosen)

    # 2. Place them largest first on the least loaded agent with room.
    heap = [(load[a], a) for a in present if count[a] < limit[a]]
    heapq.heapify(heap)
    for index in sorted(to_place, key=lambda i: (-weight[i], accounts[i].debtor_id)):
        while heap and count[heap[0][1]] >= limit[heap[0][1]]:
            heapq.heappop(heap)
        if not heap:  # cannot happen: room was counted above
            state.unplaced += 1
            continue
        _, agent = heapq.heappop(heap)
        state.destination[index] = agent
        load[agent] += weight[index]
        count[agent] += 1
        if count[agent] < limit[agent]:
            heapq.heappush(heap, (load[agent], agent))

    # 3. Best-fit moves from the most to the least loaded agents.
    if len(present) < 2:
        return
    weights_of = {a: [weight[i] for i in sorted_movable[a]] for a in present}
    mean = sum(load.values()) / len(present)
    enough = max(tolerance * abs(mean), 1e-9)
    for _ in range(len(accounts)):
        order = sorted(present, key=lambda a: (load[a], a))
        if load[order[-1]] - load[order[0]] <= enough:
            break
        moved = _best_fit_move(
            order, load, count, limit, mean, enough, weights_of, state, sorted_movable
        )
        if not moved:
            break


def _best_fit_move(
    order: list[int],
    load: dict[int, float],
    count: dict[int, int],
    limit: dict[int, int],
    mean: float,
    enough: float,
    weights_of: dict[int, list[float]],
    state: _State,
    sorted_movable: dict[int, list[int]],
) -> bool:
    """Make the best single move from a heavy agent to a light one; False if none helps."""
    for donor in reversed(order):
        weights = weights_of[donor]
        if not weights:
            continue
        for receiver in order:
            gap = load[donor] - load[receiver]
            if gap <= enough:
                break
            if count[receiver] >= limit[receiver]:
                continue
            # Bring one of the two to the mean without overshooting the other; at least
            # half the tolerance, so nearly-even pairs do not trade tiny accounts.
            target = max(min(load[donor] - mean, mean - load[receiver]), min(gap, enough) / 2)
            position = bisect_left(weights, target)
            best = -1
            for candidate in (position - 1, position):
                if 0 <= candidate < len(weights):
                    w = weights[candidate]
                    if 0 < w < gap and (best < 0 or abs(w - target) < abs(weights[best] - target)):
                        best = candidate
            if best < 0:
                continue
            w = weights.pop(best)
            index = sorted_movable[donor].pop(best)
            state.destination[index] = receiver
            load[donor] -= w
            load[receiver] += w
            count[donor] -= 1
            count[receiver] += 1
            return True
    return False


def plan_rebalance(
    accounts: Sequence[AccountLoad],
    agents: Sequence[AgentSlot],
    measure: Measure,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> RebalancePlan:
    """Plan the moves that even out ``measure`` across the present ``agents``.

    Every account's agent must be in ``agents`` or None (the pool). ``tolerance`` (balance
    and workload only) is the spread, as a share of the mean load, that is good enough.
    Raises ``ValueError`` on an unknown measure, a duplicate or an unlisted agent.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}")
    if tolerance < 0:
        raise ValueError("the tolerance cannot be negative")
    state = _prepare(accounts, agents)
    if measure == "count":
        _plan_by_count(state)
    else:
        _plan_by_weight(state, measure, tolerance)
    return _summarise(state, agents, measure)


class _Totals:
    """Per-holder sums; Decimal balances add exactly, float ones as floats (to the cent)."""

    def __init__(self, keys: Iterable[int | None]) -> None:
        self.count: dict[int | None, int] = dict.fromkeys(keys, 0)
        self.exact: dict[int | None, Decimal] = dict.fromkeys(self.count, ZERO)
        self.rough: dict[int | None, float] = dict.fromkeys(self.count, 0.0)
        self.work: dict[int | None, float] = dict.fromkeys(self.count, 0.0)

    def add_all(self, accounts: Iterable[AccountLoad]) -> None:
        count, exact, rough, work = self.count, self.exact, self.rough, self.work
        for _, agent, balance, workload, _ in accounts:
            count[agent] += 1
            if isinstance(balance, Decimal):
                exact[agent] += balance
            else:
                rough[agent] += balance
            work[agent] += workload

    def move(self, account: AccountLoad, source: int | None, target: int | None) -> None:
        balance = account.balance_base
        for agent, sign in ((source, -1), (target, 1)):
            self.count[agent] += sign
            if isinstance(balance, Decimal):
                self.exact[agent] += balance if sign > 0 else -balance
            else:
                self.rough[agent] += sign * balance
            self.work[agent] += sign * account.workload

    def load(self, agent: int | None) -> Load:
        rough = self.rough[agent]
        balance = self.exact[agent] + (Decimal(repr(round(rough, 2))) if rough else ZERO)
        return Load(self.count[agent], balance, self.work[agent])


def _summarise(state: _State, agents: Sequence[AgentSlot], measure: Measure) -> RebalancePlan:
    accounts = state.accounts
    moves = tuple(
        sorted(
            (
                Move(accounts[i].debtor_id, accounts[i].agent_id, to)
                for i, to in state.destination.items()
                if to != accounts[i].agent_id
            ),
            key=lambda move: move.debtor_id,
        )
    )
    has_pool = any(account.agent_id is None for account in accounts)
    keys: list[int | None] = [slot.agent_id for slot in agents] + ([None] if has_pool else [])
    totals = _Totals(keys)
    totals.add_all(accounts)
    before = {key: totals.load(key) for key in keys}
    moved_in: dict[int | None, int] = dict.fromkeys(keys, 0)
    moved_out: dict[int | None, int] = dict.fromkeys(keys, 0)
    by_id = {account.debtor_id: account for account in accounts} if moves else {}
    for move in moves:
        account = by_id[move.debtor_id]
        totals.move(account, move.from_agent, move.to_agent)
        moved_out[move.from_agent] += 1
        moved_in[move.to_agent] += 1
    after = {key: totals.load(key) for key in keys}

    def change(agent: int | None, present: bool, capacity: int | None) -> AgentChange:
        return AgentChange(
            agent, present, capacity, before[agent], after[agent], moved_in[agent], moved_out[agent]
        )

    present = [slot.agent_id for slot in agents if slot.present]
    return RebalancePlan(
        measure=measure,
        moves=moves,
        agents=tuple(change(slot.agent_id, slot.present, slot.capacity) for slot in agents),
        pool=change(None, False, None) if has_pool else None,
        spread_before=_spread(before[a].value(measure) for a in present),
        spread_after=_spread(after[a].value(measure) for a in present),
        unplaced=state.unplaced,
    )
