"""Cadence figures on a large portfolio: first run, repeat run, a month of daily runs.

Works on a COPY of the database (the runs write tasks). Prints, for the first run (every
open invoice reaches its current step), a second run the same day (nothing new: the
cost of the idempotent scan), a dry run, and daily runs over the following days, the
time of the task phase and the task counts. Delivery is measured separately on the
messages of the first day (rendered and checked, sent to an in-memory sink).

    python bench/cadence_bench.py /tmp/bench/p200k.db            # copies it first
    python bench/cadence_bench.py /tmp/cad200k.db --in-place
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from collect_tui.services.cadence import run_cadence
from collect_tui.services.compliance_config import default_config
from collect_tui.services.database import open_database
from collect_tui.services.delivery import Message
from collect_tui.storage.engine import make_engine
from collect_tui.storage.migrate import upgrade
from collect_tui.storage.models import Debtor, Invoice, Task


class _MemorySink:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> str:
        self.sent.append(message)
        return f"mem:{len(self.sent)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path, help="a seeded SQLite file")
    parser.add_argument("--in-place", action="store_true", help="do not copy the file first")
    parser.add_argument("--days", type=int, default=30, help="daily runs after the first")
    parser.add_argument("--start", help="the first run's instant (ISO, UTC; default now)")
    args = parser.parse_args(argv)

    path = args.database
    if not args.in_place:
        copy = Path(tempfile.mkdtemp(prefix="cadence-bench-")) / path.name
        started = time.perf_counter()
        shutil.copy(path, copy)
        print(f"copied {path} to {copy} in {time.perf_counter() - started:.1f}s")
        path = copy
    engine = make_engine(f"sqlite:///{path}")
    started = time.perf_counter()
    before, after = upgrade(engine)
    engine.dispose()
    if before != after:
        print(f"schema {before} -> {after} in {time.perf_counter() - started:.1f}s")
    db = open_database(f"sqlite:///{path}")
    config = default_config()
    with db.session() as s:
        debtors = s.scalar(select(func.count()).select_from(Debtor))
        open_invoices = s.scalar(select(func.count()).where(Invoice.status == "open"))
    print(f"portfolio: {debtors:,} debtors, {open_invoices:,} open invoices")
    now = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC)
    now = now.replace(hour=15, minute=0, second=0, microsecond=0)

    def run(label: str, at: datetime, **kwargs: object) -> None:
        started = time.perf_counter()
        report = run_cadence(db, now=at, config=config, **kwargs)  # type: ignore[arg-type]
        total = time.perf_counter() - started
        print(
            f"{label:<28} total {total:6.2f}s  tasks phase {report.task_seconds:6.2f}s "
            f"(rescore of {report.rescored:,} included)  created {report.created_total:,}  "
            f"superseded {report.superseded:,}  completed {report.completed:,}  "
            f"suspended {report.suspended:,}"
        )

    run("dry run (day 0)", now, dry_run=True, deliver=False)
    run("first run (day 0)", now, deliver=False)
    run("second run (day 0)", now, deliver=False)
    sink = _MemorySink()
    started = time.perf_counter()
    report = run_cadence(db, now=now, config=config, email_sender=_MemorySink(), sms_provider=sink)
    elapsed = time.perf_counter() - started
    done = report.count("sent")
    print(
        f"{'delivery (day 0)':<28} total {elapsed:6.2f}s  sent {done:,}  "
        f"waiting {report.count('waiting'):,}  cancelled {report.count('cancelled'):,}  "
        f"({elapsed / max(1, len(report.messages)) * 1000:.1f} ms per message)"
    )
    times = []
    for day in range(1, args.days + 1):
        started = time.perf_counter()
        report = run_cadence(db, now=now + timedelta(days=day), config=config, deliver=False)
        times.append(time.perf_counter() - started)
        if day in (1, 7, args.days):
            print(
                f"{f'daily run (day {day})':<28} total {times[-1]:6.2f}s  "
                f"created {report.created_total:,}  superseded {report.superseded:,}"
            )
    if times:
        print(f"daily runs: mean {sum(times) / len(times):.2f}s, max {max(times):.2f}s")
    with db.session() as s:
        rows = s.execute(
            select(Task.status, func.count()).where(Task.kind == "cadence").group_by(Task.status)
        ).all()
    print("cadence tasks by status: " + ", ".join(f"{st} {n:,}" for st, n in rows))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
