"""Queue figures at two portfolio sizes: first paint, `n`, cursor moves, filters, memory.

Seeds (or reuses) a small and a large portfolio, then runs the real app headless at 80x24
in a fresh process per size (``--probe``) and prints, per size:
start to first painted queue (from interpreter start), `n`, a cursor move, a filter
change and a search (each from the key press until the screen shows the result),
rescore of the whole portfolio, incremental rescore of one account, and peak memory.
A figure ends at the first frame written to the terminal that shows the result. For `n`:
``next_open_account_ms`` ends at the account screen's first frame (header and timeline
showing their loading state or data), ``next_account_loaded_ms`` at the frame that shows
the loaded account, ``next_ms`` when the next account is known. ``filter_first_ms`` is
the median over the first visit of each filter, ``filter_ms`` over all visits.
``pause_gc_ms`` is one full garbage collection after the keys, as the app runs in a pause.
Before each probe the day's rescore and cadence are done (``--prepare``), as an earlier
start of the app today would have: the figures are those of a start, not of the day's
first, whose daily work runs after the first paint and would compete with the keys timed.

    python bench/queue_bench.py                       # 1,000 and 200,000 debtors, SQLite
    python bench/queue_bench.py --small URL --large URL
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()
RESCORE_WARMUP = 5  # rescores before the timed ones (see the incremental rescore below)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def _interpreter_start_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


async def _probe(url: str, agent_name: str) -> dict[str, float]:
    # In the order the CLI starts the app (cli._open_app): the database first, then the app.
    from collect_tui.services.agents import get_agent
    from collect_tui.services.contactability import read_jurisdictions_soon
    from collect_tui.services.database import open_database

    db = open_database(url)
    read_jurisdictions_soon(db)
    from textual import events

    from collect_tui.app import CollectApp
    from collect_tui.screens.account import AccountScreen
    from collect_tui.screens.queue import QueueScreen
    from collect_tui.services.queue import QueueFilter
    from collect_tui.widgets.queue_table import QueueTable

    agent = get_agent(db, agent_name)
    app = CollectApp(db, agent)
    painted: list[float] = []
    shown: list[object] = [None]  # the screen of the latest paint
    # Each watcher is [predicate, time of the first paint at which it held].
    watchers: list[list[object]] = []
    display = app._display

    def record_paint(screen: object, renderable: object) -> None:
        display(screen, renderable)  # type: ignore[arg-type]
        painted.append(time.perf_counter())
        shown[0] = screen
        for watcher in watchers:
            if watcher[1] is None and watcher[0]():  # type: ignore[operator]
                watcher[1] = painted[-1]

    app._display = record_paint  # type: ignore[method-assign]
    figures: dict[str, float] = {}

    def watch(done: object) -> list[object]:
        """Start checking ``done()`` at each frame written (arm it before the key)."""
        watcher = [done, None]
        watchers.append(watcher)
        return watcher

    async def reached(watcher: list[object], started: float) -> float:
        """Seconds from ``started`` to the first paint after which the watcher's
        predicate held; it is checked as each frame is written, so a frame that shows
        the result is never missed, however soon after the key it comes."""
        try:
            while watcher[1] is None:
                if time.perf_counter() - started > 30:
                    raise TimeoutError("the screen never showed the result")
                await asyncio.sleep(0.0005)
            return watcher[1] - started  # type: ignore[operator]
        finally:
            watchers.remove(watcher)

    async def until(done: object, started: float) -> float:
        return await reached(watch(done), started)

    def key(name: str) -> float:
        started = time.perf_counter()
        event = events.Key(name, None)
        event.set_sender(app)
        app._driver.send_message(event)  # type: ignore[union-attr]
        return started

    # Armed before the app starts so that the first frame with rows cannot be missed.
    first = watch(lambda: isinstance(shown[0], QueueScreen) and shown[0].rows)
    async with app.run_test(size=(80, 24)) as pilot:
        figures["first_paint_s"] = await reached(first, STARTED)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        table = screen.query_one(QueueTable)
        await pilot.pause()

        moves = []
        steps = min(20, table.row_count - 1)
        for direction, delta in (("down", 1), ("up", -1)):
            for _ in range(steps):
                target = table.cursor_row + delta
                moves.append(await until(lambda t=target: table.cursor_row == t, key(direction)))
        figures["cursor_move_ms"] = statistics.median(moves) * 1000
        figures["cursor_move_max_ms"] = max(moves) * 1000
        nexts, opens, loads = [], [], []
        for _ in range(10):
            await pilot.press("home")
            await pilot.pause()
            chosen: list[float] = []
            original = screen._go_to_next

            def spy(row: object, original: object = original, chosen: list[float] = chosen) -> None:
                chosen.append(time.perf_counter())
                original(row)  # type: ignore[operator]

            screen._go_to_next = spy  # type: ignore[method-assign]
            # The account screen's first frame: header and timeline in their loading state
            # (or already filled); and the frame that shows the loaded account (it may be
            # the same one: both are armed before the key).
            opened = watch(lambda: isinstance(shown[0], AccountScreen))
            loaded = watch(
                lambda: isinstance(shown[0], AccountScreen) and shown[0].account is not None
            )
            started = key("n")
            opens.append(await reached(opened, started))
            if chosen:  # the key until the next account is known
                nexts.append(chosen[0] - started)
            screen._go_to_next = original  # type: ignore[method-assign]
            loads.append(await reached(loaded, started))
            await app.workers.wait_for_complete()
            while not isinstance(app.screen, QueueScreen):
                app.screen.dismiss()
                await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
        figures["next_open_account_ms"] = statistics.median(opens) * 1000
        figures["next_account_loaded_ms"] = statistics.median(loads) * 1000
        figures["next_ms"] = statistics.median(nexts) * 1000 if nexts else float("nan")

        async def change(queue_filter: QueueFilter) -> float:
            started = time.perf_counter()
            screen.apply_filter(queue_filter)
            generation = screen._generation
            return await until(lambda: screen.shown_generation == generation, started)

        filters = []
        for queue_filter in (
            QueueFilter(contactable_now=True),
            QueueFilter(bucket="61-90"),
            QueueFilter(promise_due=True),
            QueueFilter(),
        ) * 3:
            filters.append(await change(queue_filter))
            await pilot.pause()
        figures["filter_ms"] = statistics.median(filters) * 1000
        figures["filter_first_ms"] = statistics.median(filters[:3]) * 1000  # each filter's 1st
        figures["filter_max_ms"] = max(filters) * 1000
        figures["search_ms"] = await change(QueueFilter(search="smith")) * 1000
        figures["rows_shown"] = float(table.row_count)
        # The full garbage collection the app runs in the agent's pauses (app.IdleCollections):
        # a key pressed during it waits this long.
        await pilot.pause()
        started = time.perf_counter()
        gc.collect()
        figures["pause_gc_ms"] = (time.perf_counter() - started) * 1000
        await pilot.press("q")
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from collect_tui.services.scoring import rescore_portfolio
    from collect_tui.storage.models import Debtor
    from collect_tui.storage.scoring import rescore

    started = time.perf_counter()
    figures["accounts"] = float(rescore_portfolio(db))
    figures["rescore_all_s"] = time.perf_counter() - started
    now = datetime.now(UTC)
    with db.session() as session:
        top = session.scalar(select(func.max(Debtor.id))) or 1
    singles = []
    # The first few rescores of a process are left out: the first plans the statement
    # and fills the server's catalog caches (20-35 ms on PostgreSQL), and the driver
    # prepares a statement at its fifth execution. An app at work is past them after
    # its first few saves; ``rescore_one_ms_first`` shows the very first.
    ids = list(range(1, top, max(1, top // 200)))
    for position, debtor_id in enumerate([top // 3 + i for i in range(RESCORE_WARMUP)] + ids):
        with db.session() as session:
            started = time.perf_counter()
            rescore(session.connection(), today=now.date(), now=now, debtor_ids=[debtor_id])
            elapsed = time.perf_counter() - started
        if position == 0:
            figures["rescore_one_ms_first"] = elapsed * 1000
        if position >= RESCORE_WARMUP:
            singles.append(elapsed)
    figures["rescore_one_ms_p50"] = statistics.median(singles) * 1000
    figures["rescore_one_ms_p99"] = sorted(singles)[int(len(singles) * 0.99) - 1] * 1000
    db.close()
    return figures


def _day_done(url: str) -> None:
    """Do today's rescore and cadence, as an earlier start of the app today would have:
    the first start of a day does them after its first paint, in the background, where
    they would compete with the keys being timed."""
    from collect_tui.services.cadence import run_cadence
    from collect_tui.services.daily import cadence_needed, rescore_needed
    from collect_tui.services.database import open_database
    from collect_tui.services.scoring import rescore_portfolio

    db = open_database(url)
    if rescore_needed(db):
        rescore_portfolio(db)
    if cadence_needed(db):
        run_cadence(db, deliver=False)
    db.close()


def _seed(url: str, debtors: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "collect_tui.cli", "seed", "--db", url, "--debtors", str(debtors),
         "--agents", "20", "--seed", "1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", help="database URL of the small portfolio")
    parser.add_argument("--large", help="database URL of the large portfolio")
    parser.add_argument("--agent", default="alice")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(asyncio.run(_probe(args.probe, args.agent))))
        return 0
    if args.prepare:
        _day_done(args.prepare)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        urls = {}
        for label, given, size in (("1k", args.small, 1000), ("200k", args.large, 200_000)):
            if given is None:
                given = f"sqlite:///{Path(tmp) / f'{label}.db'}"
                print(f"seeding {size:,} debtors...", file=sys.stderr)
                _seed(given, size)
            urls[label] = given
        interpreter = _interpreter_start_seconds()
        results = {}
        for label, url in urls.items():
            prepared = subprocess.run([sys.executable, __file__, "--prepare", url])
            if prepared.returncode != 0:
                return 1
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--probe", url, "--agent", args.agent],
                capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            results[label] = json.loads(out.stdout.strip().splitlines()[-1])
            results[label]["first_paint_s"] += interpreter
            results[label]["process_s"] = time.perf_counter() - started
    names = list(results)
    print(f"{'figure':<22}" + "".join(f"{n:>12}" for n in names))
    for key in results[names[0]]:
        print(f"{key:<22}" + "".join(f"{results[n][key]:>12.2f}" for n in names))
    ratio = results["200k"]["first_paint_s"] / results["1k"]["first_paint_s"]
    print(f"first paint 200k / 1k: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
