"""Rebalance and supervisor-console figures at scale (200,000 accounts over 50 agents).

Pure: ``plan_rebalance`` on synthetic loads, by count, balance and workload, with every
agent present, then with an absent agent, capacities and the pool handed out.
End to end: on a seeded database (SQLite in a temp dir unless ``--db`` is given):
workloads, preview (one query + plan) by count and balance, apply, KPIs, and a
reassign by filter. Prints seconds (best of ``--repeat`` for reads).

    python bench/rebalance.py
    python bench/rebalance.py --db postgresql+psycopg://localhost/collect --no-seed
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where a script named like a standard
# module (e.g. queue) would shadow it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from decimal import Decimal  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from collect_tui.domain.rebalance import (  # noqa: E402
    AccountLoad,
    AgentSlot,
    RebalancePlan,
    plan_rebalance,
)

T = TypeVar("T")


def _timed(repeat: int, call: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best, result  # type: ignore[return-value]


def _synthetic(accounts: int, agents: int, seed: int = 1) -> list[AccountLoad]:
    rng = random.Random(seed)
    rows = []
    for debtor_id in range(1, accounts + 1):
        agent = rng.randint(1, agents) if rng.random() < 0.92 else None
        balance = Decimal(max(1_000, int(rng.lognormvariate(10.3, 0.9)))) / 100
        rows.append(
            AccountLoad(debtor_id, agent, balance, 1.0 + rng.random() * 2, rng.random() < 0.05)
        )
    return rows


def _line(label: str, seconds: float, plan: RebalancePlan | None = None) -> None:
    extra = ""
    if plan is not None:
        extra = (
            f"  moves {plan.moved:>7,}  spread {plan.spread_before:>14,.2f}"
            f" -> {plan.spread_after:>12,.2f}  unplaced {plan.unplaced:,}"
        )
    print(f"  {label:<38} {seconds:7.3f} s{extra}")


def bench_pure(accounts: int, agents: int, repeat: int) -> None:
    print(f"pure plan_rebalance, {accounts:,} accounts over {agents} agents")
    loads = _synthetic(accounts, agents)
    assigned = [a for a in loads if a.agent_id is not None]
    everyone = [AgentSlot(i) for i in range(1, agents + 1)]
    for measure in ("count", "balance", "workload"):
        seconds, plan = _timed(repeat, lambda m=measure: plan_rebalance(assigned, everyone, m))
        _line(f"{measure}, all present", seconds, plan)
    per_agent = accounts // agents
    constrained = [
        AgentSlot(i, per_agent + 300 if i % 3 == 0 else None, present=i != 1)
        for i in range(1, agents + 1)
    ]
    for measure in ("count", "balance"):
        seconds, plan = _timed(repeat, lambda m=measure: plan_rebalance(loads, constrained, m))
        _line(f"{measure}, 1 absent + capacity + pool", seconds, plan)


def bench_end_to_end(url: str | None, debtors: int, agents: int, seed: bool, repeat: int) -> None:
    from collect_tui.services.agents import get_agent
    from collect_tui.services.database import open_database
    from collect_tui.services.seed import seed_portfolio
    from collect_tui.services.supervisor import (
        AccountMatch,
        apply_rebalance,
        kpis,
        preview_rebalance,
        reassign,
        workloads,
    )

    scratch = None
    if url is None:
        scratch = tempfile.TemporaryDirectory()
        url = f"sqlite:///{scratch.name}/bench.db"
    db = open_database(url)
    try:
        if seed:
            print(f"seeding {debtors:,} debtors over {agents} agents...", file=sys.stderr)
            started = time.perf_counter()
            seed_portfolio(db.engine, debtors=debtors, agents=agents, seed=1)
            print(f"  seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        boss = get_agent(db, "supervisor")
        now = datetime.now(UTC)
        print(f"end to end on {db.dialect} ({db.display_url})")
        seconds, rows = _timed(repeat, lambda: workloads(db, boss, now=now))
        _line(f"workloads ({len(rows) - 2} agents)", seconds)
        for measure in ("count", "balance"):
            seconds, plan = _timed(repeat, lambda m=measure: preview_rebalance(db, boss, measure=m))
            _line(f"preview by {measure}", seconds, plan)
        seconds, plan = _timed(
            repeat,
            lambda: preview_rebalance(db, boss, measure="balance", include_pool=True),
        )
        _line("preview by balance + pool", seconds, plan)
        seconds, moved = _timed(1, lambda: apply_rebalance(db, boss, plan, reason="bench"))
        _line(f"apply ({moved:,} moves)", seconds)
        seconds, _ = _timed(repeat, lambda: kpis(db, boss, today=now.date()))
        _line("kpis (6 months)", seconds)
        first = get_agent(db, "alice")
        target = get_agent(db, "bruno")
        match = AccountMatch(from_agent_id=first.id, bucket="120+")
        seconds, moved = _timed(
            1,
            lambda: reassign(db, boss, match=match, to_agent_id=target.id, reason="bench"),
        )
        _line(f"reassign by filter ({moved:,} moves)", seconds)
    finally:
        db.close()
        if scratch is not None:
            scratch.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--no-seed", action="store_true", help="use --db as it is")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pure-only", action="store_true")
    args: Any = parser.parse_args(argv)
    bench_pure(args.accounts, args.agents, args.repeat)
    if not args.pure_only:
        bench_end_to_end(args.db, args.accounts, args.agents, not args.no_seed, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
