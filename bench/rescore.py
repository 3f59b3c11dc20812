"""Time the priority rescore: the full daily pass and the incremental rescore of one debtor.

Run against a seeded database (it is modified: scores and cached facts are rewritten)::

    python -m collect_tui.cli seed --db sqlite:////tmp/prio200k.db --debtors 200000 \\
        --agents 50 --seed 1
    python bench/rescore.py --db sqlite:////tmp/prio200k.db

Each full pass is run for a new day (the first one is tomorrow unless ``--today`` says
otherwise), as the daily pass at app start does, so that scores really change. By
default it is the daily pass (``rescore(..., facts=False)``: the day's promise facts and
every score); ``--facts`` times the pass that also aggregates every fact afresh from its
source table (after a seed, a first sync or a bulk cadence run). ``--checkpoint`` runs a
PostgreSQL CHECKPOINT before each pass, as a real daily pass finds one behind it: the
first change to each page after a checkpoint writes the whole page to the WAL (about
65 MB more WAL for 200k debtors, and more time than back-to-back passes show). It is
timed with its commit (the commit writes the rewritten pages; on SQLite it also
checkpoints the WAL). On a PostgreSQL server on this machine, the CPU time its backend
spent is shown too: on a busy machine it varies less than the elapsed time. The load
average is printed before and after. The incremental rescore is timed for ``--samples``
random debtors, each in its own transaction, with and without the commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, and a script there named like a
# standard module would shadow it for the database drivers.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402

from sqlalchemy import Connection, func, select  # noqa: E402

from collect_tui.services.database import open_database  # noqa: E402
from collect_tui.storage.models import Debtor  # noqa: E402
from collect_tui.storage.scoring import rescore  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def backend_cpu(conn: Connection) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend of ``conn``, if it runs here."""
    if conn.dialect.name != "postgresql":
        return None
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # another machine, or no /proc
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database URL")
    parser.add_argument("--full-runs", type=int, default=3, help="full passes (one a day)")
    parser.add_argument("--samples", type=int, default=200, help="incremental rescores")
    parser.add_argument(
        "--today", type=date.fromisoformat, help="day of the first full pass (default: tomorrow)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="PostgreSQL: CHECKPOINT before each full pass (untimed), as a day apart would",
    )
    parser.add_argument(
        "--facts",
        action="store_true",
        help="full passes also refresh every fact from its source table",
    )
    args = parser.parse_args()

    db = open_database(args.db)
    first = args.today or datetime.now(UTC).date() + timedelta(days=1)
    with db.engine.connect() as conn:
        debtors = conn.execute(select(func.count()).select_from(Debtor)).scalar_one()
        ids = list(conn.execute(select(Debtor.id)).scalars())
    print(f"{db.display_url}: {debtors:,} debtors; {load()}")

    full: list[float] = []
    for run in range(args.full_runs):
        today = first + timedelta(days=run)
        now = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=3)
        with db.engine.connect() as conn:
            if args.checkpoint and conn.dialect.name == "postgresql":
                conn.exec_driver_sql("CHECKPOINT")
                conn.commit()
            cpu_before = backend_cpu(conn)
            started = time.perf_counter()
            count = rescore(conn, today=today, now=now, facts=args.facts)
            scored = time.perf_counter()
            conn.commit()
            done = time.perf_counter()
            cpu_after = backend_cpu(conn)
        full.append(done - started)
        cpu = (
            f"; server CPU {cpu_after - cpu_before:.2f} s"
            if cpu_before is not None and cpu_after is not None
            else ""
        )
        print(
            f"full rescore{' with facts' if args.facts else ''} {today}: {done - started:.3f} s "
            f"(rescore {scored - started:.3f} s + commit {done - scored:.3f} s, "
            f"{count:,} rows{cpu})"
        )

    rng = random.Random(args.seed)
    sample = rng.sample(ids, min(args.samples, len(ids)))
    today = first + timedelta(days=max(0, args.full_runs - 1))
    now = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=10)
    calls: list[float] = []
    with_commit: list[float] = []
    with db.engine.connect() as conn:
        for debtor_id in sample:
            started = time.perf_counter()
            rescore(conn, today=today, now=now, debtor_ids=[debtor_id])
            scored = time.perf_counter()
            conn.commit()
            done = time.perf_counter()
            calls.append((scored - started) * 1000)
            with_commit.append((done - started) * 1000)
    print(
        f"incremental rescore of one debtor ({len(sample)} samples): "
        f"p50 {statistics.median(calls):.2f} ms, p99 {percentile(calls, 0.99):.2f} ms; "
        f"with commit p50 {statistics.median(with_commit):.2f} ms, "
        f"p99 {percentile(with_commit, 0.99):.2f} ms"
    )
    print(f"full rescore median: {statistics.median(full):.3f} s; {load()}")
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
