"""Time `collect-tui seed` at 20k and 200k debtors and `report` on the 200k portfolio.

Beside each seed it times a raw sqlite3 ``executemany`` of the same number of rows
into the same tables (same columns, indexes dropped: the floor to approach), so the
ratio to that limit is visible. Run: ``python bench/seed_report.py [--sizes 20000,200000]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("debtors", "phones", "emails", "invoices", "payments", "contacts", "promises",
          "disputes", "tasks")  # fmt: skip


def run(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def raw_insert_seconds(seeded: Path, scratch: Path) -> float:
    """Copy the seeded rows into Python, then time plain executemany into a fresh schema."""
    source = sqlite3.connect(seeded)
    target = sqlite3.connect(scratch)
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=OFF")
    payload = []
    for table in TABLES:
        schema = source.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()[0]
        target.execute(schema)
        rows = source.execute(f"SELECT * FROM {table}").fetchall()
        payload.append((table, rows))
    target.commit()
    started = time.perf_counter()
    for table, rows in payload:
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            target.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    target.commit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20000,200000")
    args = parser.parse_args()
    exe = [sys.executable, "-m", "collect_tui.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'debtors':>8} {'rows':>10} {'seed s':>8} {'raw s':>7} {'ratio':>6}")
        last_db = None
        for size in [int(s) for s in args.sizes.split(",")]:
            db = Path(tmp) / f"seed{size}.db"
            seconds = run([*exe, "seed", "--db", f"sqlite:///{db}", "--debtors", str(size),
                           "--agents", "50", "--seed", "1"])  # fmt: skip
            conn = sqlite3.connect(db)
            rows = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
            conn.close()
            raw = raw_insert_seconds(db, Path(tmp) / f"raw{size}.db")
            print(f"{size:>8} {rows:>10,} {seconds:>8.1f} {raw:>7.1f} {seconds / raw:>6.2f}")
            last_db = db
        if last_db is not None:
            url = f"sqlite:///{last_db}"
            text = run([*exe, "report", "--db", url])
            as_json = run([*exe, "report", "--db", url, "--json"])
            print(f"report on the largest: text {text:.2f}s, json {as_json:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
