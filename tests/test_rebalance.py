"""The rebalancer: properties over random portfolios, and small worked examples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collect_tui.domain.rebalance import (
    AccountLoad,
    AgentSlot,
    Move,
    RebalancePlan,
    estimate_workload,
    plan_rebalance,
)

MEASURES = ("count", "balance", "workload")


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[list[AccountLoad], list[AgentSlot]]:
    """Up to 6 agents (some absent, some with a capacity) and up to 80 accounts."""
    agent_count = draw(st.integers(1, 6))
    agents = [
        AgentSlot(
            agent_id,
            draw(st.none() | st.integers(0, 25)),
            draw(st.booleans()) if agent_id > 1 else True,
        )
        for agent_id in range(1, agent_count + 1)
    ]
    holders = st.sampled_from([None, *range(1, agent_count + 1)])
    count = draw(st.integers(0, 80))
    accounts = [
        AccountLoad(
            debtor_id,
            draw(holders),
            Decimal(draw(st.integers(0, 5_000_000))) / 100,
            draw(st.floats(0.5, 5.0)),
            draw(st.booleans()) and draw(st.booleans()),  # about a quarter pinned
        )
        for debtor_id in range(1, count + 1)
    ]
    return accounts, agents


def _final(accounts: Sequence[AccountLoad], plan: RebalancePlan) -> dict[int, int | None]:
    owner = {a.debtor_id: a.agent_id for a in accounts}
    for move in plan.moves:
        assert owner[move.debtor_id] == move.from_agent
        owner[move.debtor_id] = move.to_agent
    return owner


def _weight(account: AccountLoad, measure: str) -> float:
    if measure == "count":
        return 1.0
    return float(account.balance_base) if measure == "balance" else account.workload


def _room(accounts: Sequence[AccountLoad], agents: Sequence[AgentSlot]) -> tuple[bool, bool]:
    """(feasible: everything that should sit with present agents fits, calm: nothing
    has to move - no pool or absent accounts to hand out and nobody over capacity)."""
    present = {s.agent_id: s for s in agents if s.present}
    pinned = Counter(a.agent_id for a in accounts if a.pinned)
    holds = Counter(a.agent_id for a in accounts)
    must = sum(1 for a in accounts if not a.pinned and a.agent_id not in present)
    limit = {
        agent: None if slot.capacity is None else max(slot.capacity, pinned[agent])
        for agent, slot in present.items()
    }
    if any(v is None for v in limit.values()):
        feasible = bool(present)
    else:
        feasible = sum(limit.values()) >= sum(holds[a] for a in present) + must  # type: ignore[misc]
    over = any(v is not None and holds[a] > v for a, v in limit.items())
    return feasible, must == 0 and not over


@settings(max_examples=300, deadline=None)
@given(portfolios(), st.sampled_from(MEASURES))
def test_rebalance_properties(
    portfolio: tuple[list[AccountLoad], list[AgentSlot]], measure: str
) -> None:
    accounts, agents = portfolio
    plan = plan_rebalance(accounts, agents, measure)  # type: ignore[arg-type]
    by_id = {a.debtor_id: a for a in accounts}
    present = {s.agent_id for s in agents if s.present}

    # No account lost or duplicated; each moves at most once, to a present agent.
    final = _final(accounts, plan)
    assert sorted(final) == sorted(by_id)
    assert len({m.debtor_id for m in plan.moves}) == len(plan.moves)
    assert all(m.to_agent in present and m.from_agent != m.to_agent for m in plan.moves)
    # Pinned accounts never move.
    assert not any(by_id[m.debtor_id].pinned for m in plan.moves)

    # The summary agrees with the moves.
    after = Counter(final.values())
    for change in plan.agents:
        assert change.after.count == after[change.agent_id]
        assert change.before.count - change.moved_out + change.moved_in == change.after.count
    assert sum(c.moved_in for c in plan.agents) == plan.moved

    feasible, calm = _room(accounts, agents)
    slots = {s.agent_id: s for s in agents}
    pinned = Counter(a.agent_id for a in accounts if a.pinned)
    before = Counter(a.agent_id for a in accounts)
    for agent in present:
        capacity = slots[agent].capacity
        if capacity is not None:
            # Never above capacity when it is feasible; never worse than before otherwise.
            bound = max(capacity, pinned[agent])
            assert after[agent] <= (bound if feasible else max(bound, before[agent]))
    if feasible:
        # Absent agents end with only their pinned accounts.
        for slot in agents:
            if not slot.present:
                assert after[slot.agent_id] == pinned[slot.agent_id]
        assert plan.unplaced == 0

    eps = 1e-6 * (1 + sum(_weight(a, measure) for a in accounts))
    if calm:
        assert plan.spread_after <= plan.spread_before + eps
    elif all(s.capacity is None for s in agents):
        # Handing out accounts raises the spread by at most the heaviest one handed out.
        heaviest = max((_weight(by_id[m.debtor_id], measure) for m in plan.moves), default=0.0)
        assert plan.spread_after <= max(plan.spread_before, heaviest) + eps


@settings(max_examples=100, deadline=None)
@given(portfolios())
def test_count_plan_is_even_and_minimal_when_unconstrained(
    portfolio: tuple[list[AccountLoad], list[AgentSlot]],
) -> None:
    accounts, agents = portfolio
    agents = [AgentSlot(s.agent_id) for s in agents]  # all present, no capacity
    accounts = [a._replace(pinned=False) for a in accounts if a.agent_id is not None]
    plan = plan_rebalance(accounts, agents, "count")
    counts = [c.after.count for c in plan.agents]
    assert max(counts) - min(counts) <= 1
    # Minimal: only the surplus above the ceiling of the mean moves, at most.
    ceiling = -(-len(accounts) // len(agents))
    assert plan.moved <= sum(max(0, c.before.count - (ceiling - 1)) for c in plan.agents)


def _slots(*ids: int, capacity: int | None = None) -> list[AgentSlot]:
    return [AgentSlot(i, capacity) for i in ids]


def test_count_evens_out_with_the_fewest_moves() -> None:
    accounts = [AccountLoad(i, 1) for i in range(1, 11)] + [
        AccountLoad(11, 3),
        AccountLoad(12, 3),
    ]
    plan = plan_rebalance(accounts, _slots(1, 2, 3), "count")
    assert [c.after.count for c in plan.agents] == [4, 4, 4]
    assert plan.moved == 6
    assert all(m.from_agent == 1 for m in plan.moves)
    assert (plan.spread_before, plan.spread_after) == (10.0, 0.0)
    # The newest accounts move (highest ids), deterministically.
    assert [m.debtor_id for m in plan.moves] == [5, 6, 7, 8, 9, 10]


def test_balance_moves_the_account_that_best_fits_the_gap() -> None:
    amounts = {1: "100", 2: "400", 3: "500", 4: "1000"}  # agent 1 holds 2,000
    accounts = [AccountLoad(i, 1, Decimal(v)) for i, v in amounts.items()]
    accounts.append(AccountLoad(5, 2, Decimal("1000")))  # agent 2 holds 1,000
    plan = plan_rebalance(accounts, _slots(1, 2), "balance")
    # Mean 1,500: agent 1 should give 500, and account 3 is exactly 500.
    assert plan.moves == (Move(3, 1, 2),)
    assert [c.after.balance for c in plan.agents] == [Decimal("1500"), Decimal("1500")]
    assert plan.spread_after == 0


def test_pinned_accounts_stay_even_when_that_leaves_an_imbalance() -> None:
    accounts = [AccountLoad(i, 1, pinned=True) for i in range(1, 6)]
    accounts.append(AccountLoad(6, 1))
    plan = plan_rebalance(accounts, _slots(1, 2), "count")
    assert plan.moves == (Move(6, 1, 2),)
    assert [c.after.count for c in plan.agents] == [5, 1]


def test_absent_agent_keeps_only_pinned_accounts_and_receives_nothing() -> None:
    accounts = [AccountLoad(i, 3) for i in range(1, 7)] + [AccountLoad(7, 3, pinned=True)]
    accounts += [AccountLoad(8, 1), AccountLoad(9, 2)]
    agents = [AgentSlot(1), AgentSlot(2), AgentSlot(3, present=False)]
    plan = plan_rebalance(accounts, agents, "count")
    after = {c.agent_id: c.after.count for c in plan.agents}
    assert after == {1: 4, 2: 4, 3: 1}
    assert {m.from_agent for m in plan.moves} == {3}
    # Spread is measured over present agents only.
    assert plan.spread_before == 0 and plan.spread_after == 0


def test_pool_accounts_are_handed_out_and_pinned_pool_accounts_stay() -> None:
    accounts = [AccountLoad(i, None, Decimal(i * 100)) for i in range(1, 7)]
    accounts.append(AccountLoad(7, None, Decimal("50"), pinned=True))
    plan = plan_rebalance(accounts, _slots(1, 2), "balance")
    assert plan.pool is not None
    assert plan.pool.before.count == 7 and plan.pool.after.count == 1
    assert plan.moved == 6
    balances = sorted(c.after.balance for c in plan.agents)
    assert balances == [Decimal("1000"), Decimal("1100")]  # largest first, least loaded


def test_capacity_is_respected_and_the_rest_stays_unplaced() -> None:
    accounts = [AccountLoad(i, None) for i in range(1, 11)]
    plan = plan_rebalance(accounts, _slots(1, 2, capacity=3), "count")
    assert [c.after.count for c in plan.agents] == [3, 3]
    assert plan.unplaced == 4
    assert plan.pool is not None and plan.pool.after.count == 4


def test_an_agent_over_capacity_gives_the_surplus_away() -> None:
    accounts = [AccountLoad(i, 1, Decimal(i)) for i in range(1, 9)]
    agents = [AgentSlot(1, capacity=2), AgentSlot(2, capacity=None)]
    for measure in MEASURES:
        plan = plan_rebalance(accounts, agents, measure)  # type: ignore[arg-type]
        assert plan.agents[0].after.count <= 2, measure


def test_unknown_agents_duplicates_and_measures_are_refused() -> None:
    with pytest.raises(ValueError, match="not listed"):
        plan_rebalance([AccountLoad(1, 9)], _slots(1), "count")
    with pytest.raises(ValueError, match="twice"):
        plan_rebalance([AccountLoad(1, 1), AccountLoad(1, 1)], _slots(1), "count")
    with pytest.raises(ValueError, match="twice"):
        plan_rebalance([], _slots(1, 1), "count")
    with pytest.raises(ValueError, match="measure"):
        plan_rebalance([], _slots(1), "weight")  # type: ignore[arg-type]


def test_no_present_agent_moves_nothing() -> None:
    accounts = [AccountLoad(1, 1), AccountLoad(2, None)]
    plan = plan_rebalance(accounts, [AgentSlot(1, present=False)], "balance")
    assert plan.moves == () and plan.unplaced == 2


def test_workload_estimate_grows_with_invoices_and_lateness() -> None:
    assert estimate_workload(1, 0) == 1.0
    assert estimate_workload(3, 0) == 1.5
    assert estimate_workload(1, 60) == 1.5
    assert estimate_workload(1, 999) == 2.0
    assert estimate_workload(0, -5) == 1.0


def test_large_portfolio_is_planned_quickly() -> None:
    """A smoke check of scale (the timed figures live in bench/rebalance.py)."""
    import random

    rng = random.Random(3)
    accounts = [
        AccountLoad(i, rng.randint(1, 20), Decimal(rng.randint(0, 10**7)) / 100)
        for i in range(1, 20_001)
    ]
    plan = plan_rebalance(accounts, _slots(*range(1, 21)), "balance")
    assert plan.spread_after < plan.spread_before
    assert plan.moved < 2_000
