"""Team load: many agents claiming and saving on one PostgreSQL database while a sync runs.

Each simulated agent does what the queue and account screens do, through the same
services: ``n`` (:func:`collect_tui.services.claims.claim_next`), then logs a call on the
claimed account (:func:`collect_tui.services.workspace.log_contact`): mostly "no answer"
and "left message", some right-party contacts, and one in ten a promise to pay. A save
refused because the account changed underneath (a sync, a supervisor) is reloaded and
retried once, as the screen offers. Meanwhile a sync pulls from an in-process Xero
sandbox every second, with a payment arriving before each pull.

Agents run as threads spread over several processes (``--processes``), so Python's
global lock does not cap the figures at one core. ``--in-flight N`` lets each process's
agents into the database N at a time, in the order they asked (the rest wait their turn,
and that wait counts in their latency), much as a transaction pooler in front of
PostgreSQL does; by default every agent goes in at once, as 50 workstations would. Time is
simulated from a weekday at 15:00 UTC, when most contact windows are open, so the figures
do not depend on the hour the bench runs; claims and saves all use that clock.

The agents work ``--warmup`` seconds (default 5) before counting starts, then
``--seconds``: a workstation's connection plans its statements a few times when it opens,
once a shift, and the bench opens 50 at once; ``--warmup 0`` counts that too. It prints
contacts saved per second, p50/p99 latency of claim and of save, double claims
(two sessions holding one account at once; must be 0), lost writes (saves reported done
but missing from the database; must be 0), deadlocks and errors::

    python bench/team_load.py                          # a throwaway PostgreSQL, 20k debtors
    python bench/team_load.py --db postgresql+psycopg://... --agents 50 --seconds 30 --json
    python bench/team_load.py --in-flight 1            # one transaction per process at once

Without ``--db`` it starts its own PostgreSQL server (as the ``postgres`` user when run as
root) and seeds it. Given a ``--db`` with no debtors, it seeds that database first.
Target (issue 9): at least 300 saves/s with p99 under 100 ms on a 2-core machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path; keep it from shadowing standard modules.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict, deque  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import func, select  # noqa: E402

from collect_tui.services.agents import get_agent, list_agents  # noqa: E402
from collect_tui.services.claims import claim_next, new_session_id, release_claims  # noqa: E402
from collect_tui.services.database import Database, open_database  # noqa: E402
from collect_tui.services.seed import seed_portfolio  # noqa: E402
from collect_tui.services.workspace import (  # noqa: E402
    AccessDenied,
    PromiseInput,
    StaleEdit,
    log_contact,
)
from collect_tui.storage.models import Contact, Debtor  # noqa: E402

SANDBOX_CUSTOMERS = 300
SYNC_EVERY = 1.0  # seconds between incremental pulls
# Each agent's connection plans its statements a few times before they are prepared and
# planned once; a workstation does that once per shift, the bench at every start.
WARMUP_S = 5.0


def _simulated_start(today: date) -> datetime:
    """15:00 UTC on ``today`` or the weekday before it: most contact windows are open."""
    day = today
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=15)


@dataclass
class WorkerResult:
    """What one process of agents did."""

    claim_ms: list[float] = field(default_factory=list)
    save_ms: list[float] = field(default_factory=list)
    saved: list[int] = field(default_factory=list)  # contact ids reported saved
    counted_saves: int = 0  # those saved after the warm-up
    claims: list[tuple[int, str, float, float]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    finished_at: float = 0.0


def _error_kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if "deadlock" in text:
        return "deadlock"
    return f"{type(exc).__name__}: {str(exc)[:80]}"


class _Turns:
    """Lets at most ``slots`` callers in at once, the others in the order they came: a
    freed slot is handed to the longest waiter, so nobody is overtaken."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._free = slots
        self._waiting: deque[threading.Event] = deque()

    def __enter__(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()

    def __exit__(self, *_: object) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._free += 1


def _agent_loop(
    db: Database,
    agent_name: str,
    deadline: float,
    count_from: float,
    clock_base: datetime,
    wall_base: float,
    result: WorkerResult,
    lock: threading.Lock,
    turns: _Turns | contextlib.nullcontext[None],
) -> None:
    agent = get_agent(db, agent_name)
    session_id = new_session_id()
    rng = random.Random(agent_name)

    def now() -> datetime:
        return clock_base + timedelta(seconds=time.time() - wall_base)

    held: tuple[int, float] | None = None
    while time.time() < deadline:
        started = time.perf_counter()
        released_at = time.time()
        counted = released_at >= count_from  # after the warm-up
        try:
            with turns:
                claimed = claim_next(db, agent, session_id=session_id, now=now())
        except Exception as exc:  # counted, and the agent carries on like the screen does
            with lock:
                result.errors[_error_kind(exc)] += 1
            continue
        claim_ms = (time.perf_counter() - started) * 1000
        if held is not None:
            with lock:
                result.claims.append((held[0], session_id, held[1], released_at))
            held = None
        if counted:
            with lock:
                result.claim_ms.append(claim_ms)
        if claimed is None:
            with lock:
                result.outcomes["nothing to claim"] += 1
            time.sleep(0.05)
            continue
        held = (claimed.row.debtor_id, time.time())
        roll = rng.random()
        promise = None
        if roll < 0.1:
            disposition = "promise"
            amount = min(claimed.row.balance, Decimal("100.00"))
            promise = PromiseInput(amount=amount, due_date=now().date() + timedelta(days=7))
        elif roll < 0.3:
            disposition = "right_party"
        elif roll < 0.65:
            disposition = "left_message"
        else:
            disposition = "no_answer"
        version = claimed.version
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                with turns:
                    contact_id = log_contact(
                        db, agent, claimed.row.debtor_id, version, channel="call",
                        direction="outbound", disposition=disposition, promise=promise,
                        notes="team load", now=now(),
                    )  # fmt: skip
            except StaleEdit as exc:
                with lock:
                    result.outcomes["stale, reloaded"] += 1
                if attempt == 2 or exc.current_version is None:
                    break
                version = exc.current_version
                continue
            except AccessDenied:
                with lock:
                    result.outcomes["moved away"] += 1
                break
            except Exception as exc:
                kind = type(exc).__name__
                with lock:
                    if kind in ("ComplianceBlocked", "ValidationFailed"):
                        result.outcomes[f"refused: {str(exc)[:60]}"] += 1
                    else:
                        result.errors[_error_kind(exc)] += 1
                break
            save_ms = (time.perf_counter() - started) * 1000
            with lock:
                result.saved.append(contact_id)  # all are checked for lost writes
                result.outcomes["saved"] += 1
                if counted:
                    result.save_ms.append(save_ms)
                    result.counted_saves += 1
            break
    if held is not None:
        result.claims.append((held[0], session_id, held[1], time.time()))
    release_claims(db, session_id=session_id)


def _worker(
    url: str,
    agent_names: list[str],
    start_at: float,
    warmup: float,
    seconds: float,
    clock_base: datetime,
    in_flight: int,
    out: Any,
) -> None:
    """One process: a thread per agent, all starting at ``start_at`` (wall clock) and
    counted after ``warmup`` seconds; ``in_flight`` of them in a transaction at once
    (0: all)."""
    db = open_database(url, migrate=False, pool_size=len(agent_names))
    result = WorkerResult()
    lock = threading.Lock()
    turns = _Turns(in_flight) if in_flight else contextlib.nullcontext()
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + warmup + seconds
    threads = [
        threading.Thread(
            target=_agent_loop,
            args=(db, name, deadline, start_at + warmup, clock_base, start_at, result, lock, turns),
            daemon=True,
        )
        for name in agent_names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.finished_at = time.time()
    db.close()
    out.put(result)


@dataclass
class SyncResult:
    """What the sync thread did during the run."""

    runs: int = 0
    failed: int = 0
    payments: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def _sync_loop(
    db: Database, sandbox: Any, stop: threading.Event, result: SyncResult, clock_base: datetime,
    wall_base: float,
) -> None:  # fmt: skip
    from collect_tui.sync.engine import SyncEngine
    from collect_tui.sync.xero import StaticTokenProvider, XeroConnector

    connector = XeroConnector(
        sandbox.base_url, "bench", StaticTokenProvider("bench"), rate_limiter=None,
        page_size=1000,
    )  # fmt: skip
    rng = random.Random(5)
    while True:  # at least once: a set ``stop`` gives exactly one pull
        open_invoices = sandbox.invoice_ids("AUTHORISED")
        if open_invoices:
            sandbox.mark_paid(rng.choice(open_invoices), Decimal("10.00"))
            result.payments += 1
        try:
            run = SyncEngine(
                db.engine, connector, tenant="bench",
                now=lambda: clock_base + timedelta(seconds=time.time() - wall_base),
            ).run(push=False)  # fmt: skip
            result.runs += 1
            if run.status != "ok":
                result.failed += 1
                result.errors[str(run.error)[:80]] += 1
        except Exception as exc:
            result.failed += 1
            result.errors[_error_kind(exc)] += 1
        if stop.wait(SYNC_EVERY):
            break
    connector.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _double_claims(claims: list[tuple[int, str, float, float]]) -> int:
    """Pairs of claims on one account by different sessions whose holding times overlap."""
    by_debtor: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    for debtor_id, session_id, start, end in claims:
        by_debtor[debtor_id].append((start, end, session_id))
    doubles = 0
    for spans in by_debtor.values():
        spans.sort()
        for (_, end, who), (start, _, other) in zip(spans, spans[1:], strict=False):
            if other != who and start < end:
                doubles += 1
    return doubles


def _prepare(url: str, agents: int, debtors: int) -> list[str]:
    db = open_database(url)
    try:
        with db.session() as session:
            have = session.scalar(select(func.count()).select_from(Debtor)) or 0
        if have == 0:
            print(f"seeding {debtors:,} debtors over {agents} agents ...", flush=True)
            started = time.perf_counter()
            seed_portfolio(db.engine, debtors=debtors, agents=agents, seed=1)
            print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
        names = [a.name for a in list_agents(db) if a.role == "agent"][:agents]
    finally:
        db.close()
    if len(names) < agents:
        raise SystemExit(f"the database has {len(names)} agents; --agents asks for {agents}")
    return names


def run(url: str, agents: int, seconds: float, processes: int, debtors: int,
        sync: bool, warmup: float = 0.0, in_flight: int = 0) -> dict[str, Any]:  # fmt: skip
    """Run the load and return its figures (those of the ``seconds`` after ``warmup``)."""
    names = _prepare(url, agents, debtors)
    clock_base = _simulated_start(datetime.now(UTC).date())
    db = open_database(url, migrate=False)
    sandbox = None
    sync_result = SyncResult()
    stop = threading.Event()
    sync_thread = None
    if sync:
        from collect_tui.sync.sandbox import SandboxServer

        sandbox = SandboxServer(customers=SANDBOX_CUSTOMERS, seed=3).start()
        first = SyncResult()
        once = threading.Event()
        once.set()
        _sync_loop(db, sandbox, once, first, clock_base, time.time())  # full pull before
        with db.session() as session:
            pool = session.scalar(select(func.count()).where(Debtor.assigned_agent_id.is_(None)))
        print(f"sync: first pull done; {pool:,} accounts in the pool", flush=True)
    with db.session() as session:
        contacts_before = session.scalar(select(func.max(Contact.id))) or 0
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3.0 + processes * 0.5  # spawned interpreters need to import
    groups = [names[i::processes] for i in range(processes)]
    workers = [
        context.Process(
            target=_worker,
            args=(url, group, start_at, warmup, seconds, clock_base, in_flight, out),
        )
        for group in groups
        if group
    ]
    for process in workers:
        process.start()
    if sync and sandbox is not None:
        time.sleep(max(0.0, start_at - time.time()))
        sync_thread = threading.Thread(
            target=_sync_loop,
            args=(db, sandbox, stop, sync_result, clock_base, start_at),
            daemon=True,
        )
        sync_thread.start()
    results = [out.get(timeout=warmup + seconds + 300) for _ in workers]
    for process in workers:
        process.join(timeout=60)
    stop.set()
    if sync_thread is not None:
        sync_thread.join(timeout=120)
    if sandbox is not None:
        sandbox.stop()
    elapsed = max(r.finished_at for r in results) - (start_at + warmup)
    counted_saves = sum(r.counted_saves for r in results)

    claim_ms = [v for r in results for v in r.claim_ms]
    save_ms = [v for r in results for v in r.save_ms]
    saved = [c for r in results for c in r.saved]
    claims = [c for r in results for c in r.claims]
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in results:
        outcomes.update(r.outcomes)
        errors.update(r.errors)
    with db.session() as session:
        stored = set()
        for i in range(0, len(saved), 5000):
            chunk = saved[i : i + 5000]
            stored |= set(session.scalars(select(Contact.id).where(Contact.id.in_(chunk))))
        new_contacts = session.scalar(
            select(func.count()).where(Contact.id > contacts_before, Contact.notes == "team load")
        )
    db.close()
    figures = {
        "database": url.split("@")[-1],
        "agents": agents,
        "processes": len(workers),
        "in_flight_per_process": in_flight or None,
        "warmup_seconds": warmup,
        "seconds": round(elapsed, 1),
        "saves": counted_saves,
        "saves_per_second": round(counted_saves / elapsed, 1),
        "claims": len(claim_ms),
        "claim_p50_ms": round(_percentile(claim_ms, 0.5), 1),
        "claim_p99_ms": round(_percentile(claim_ms, 0.99), 1),
        "save_p50_ms": round(_percentile(save_ms, 0.5), 1),
        "save_p99_ms": round(_percentile(save_ms, 0.99), 1),
        "save_mean_ms": round(statistics.fmean(save_ms), 1) if save_ms else None,
        "double_claims": _double_claims(claims),
        "lost_writes": len(set(saved) - stored),
        "unexpected_writes": (new_contacts or 0) - len(saved),
        "deadlocks": errors.get("deadlock", 0) + sync_result.errors.get("deadlock", 0),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(5)),
        "outcomes": dict(outcomes),
        "sync_runs": sync_result.runs,
        "sync_failed": sync_result.failed,
        "sync_payments": sync_result.payments,
        "sync_errors": dict(sync_result.errors.most_common(3)),
        "cpus": os.cpu_count(),
    }
    return figures


def _print(figures: dict[str, Any]) -> None:
    f = figures
    print(
        f"TEAM LOAD: {f['agents']} agents in {f['processes']} processes for {f['seconds']} s "
        f"after a {f['warmup_seconds']:g} s warm-up, on {f['database']} ({f['cpus']} CPUs)"
    )
    if f["in_flight_per_process"]:
        print(
            f"  {f['in_flight_per_process']} transaction(s) in flight per process, "
            "the others waiting their turn"
        )
    print(
        f"  saves: {f['saves']:,} = {f['saves_per_second']:,} saves/s (target >= 300); "
        f"save p50 {f['save_p50_ms']} ms, p99 {f['save_p99_ms']} ms (target p99 < 100 ms)"
    )
    print(f"  claims: {f['claims']:,}; p50 {f['claim_p50_ms']} ms, p99 {f['claim_p99_ms']} ms")
    print(
        f"  double claims {f['double_claims']} (must be 0), lost writes {f['lost_writes']} "
        f"(must be 0), unexpected writes {f['unexpected_writes']}, deadlocks {f['deadlocks']}, "
        f"errors {f['errors']}"
    )
    if f["error_kinds"]:
        print(f"  error kinds: {f['error_kinds']}")
    print(f"  outcomes, warm-up included: {f['outcomes']}")
    print(
        f"  sync: {f['sync_runs']} pulls ({f['sync_failed']} failed), "
        f"{f['sync_payments']} payments arrived meanwhile {f['sync_errors'] or ''}"
    )


def main() -> int:
    """Parse the options, run the load, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="counted (default 30)")
    parser.add_argument(
        "--warmup", type=float, default=WARMUP_S,
        help=f"seconds of work before counting starts (default {WARMUP_S:g}; 0 for none)",
    )  # fmt: skip
    parser.add_argument("--processes", type=int, default=2, help="agent processes (default 2)")
    parser.add_argument(
        "--in-flight", type=int, default=0, metavar="N",
        help="let each process's agents into the database N at a time, in turn (default: all)",
    )  # fmt: skip
    parser.add_argument("--debtors", type=int, default=20_000, help="seed size if empty")
    parser.add_argument("--no-sync", action="store_true", help="agents only, no running sync")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    if options.in_flight < 0:
        parser.error("--in-flight must be 0 (all at once) or more")
    server = None
    url = options.db
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgserver import PostgresServer

        server = PostgresServer(max_connections=200, durable=True).start()
        url = server.create_database("team_load")
    try:
        figures = run(url, options.agents, options.seconds, options.processes, options.debtors,
                      not options.no_sync, options.warmup, options.in_flight)  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        _print(figures)
    ok = figures["double_claims"] == 0 and figures["lost_writes"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
