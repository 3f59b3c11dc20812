"""Command line: ``collect-tui [COMMAND]``; with no command it opens the workstation."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from collect_tui import __version__
from collect_tui.storage.engine import StorageError

DEMO_AGENT = "demo"
DEMO_DEBTORS = 3_000


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _default_agent() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "agent")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _money(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    db_help = "database URL (default: $COLLECT_TUI_DB, else the embedded SQLite file)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", help=db_help)

    parser = argparse.ArgumentParser(
        prog="collect-tui",
        description="A keyboard-driven terminal workstation for debt collection.",
        epilog="With no command, opens the workstation as --agent on --db.",
    )
    parser.add_argument("--version", action="version", version=f"collect-tui {__version__}")
    parser.add_argument("--db", metavar="URL", help=db_help)
    parser.add_argument(
        "--agent", metavar="NAME", help="sign in as this agent (default: your OS user name)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="open the app on a demo portfolio (seeded into its own database on first run)",
        description="Seed a small demo portfolio on first run, then open the app as 'demo'.",
    )
    demo.add_argument("--reset", action="store_true", help="throw the demo database away first")

    seed = sub.add_parser(
        "seed",
        parents=[common],
        help="write a realistic synthetic portfolio, deterministic for a seed",
        description="Write a synthetic portfolio (debtors, invoices, payments, contacts, "
        "promises, disputes) in one transaction.",
    )
    seed.add_argument("--debtors", type=_positive_int, default=1000, help="default 1000")
    seed.add_argument("--agents", type=_positive_int, default=5, help="default 5")
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument("--as-of", type=_iso_date, help="lay dates relative to this day")
    seed.add_argument("--demo-agent", metavar="NAME", help="also create this agent")

    report = sub.add_parser(
        "report",
        parents=[common],
        help="the portfolio at a glance (text, or --json for scripts)",
        description="Debtors, open invoices, balance by currency, aging, agents, promises.",
    )
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--as-of", type=_iso_date, help="report as of this day")

    sub.add_parser(
        "rescore",
        parents=[common],
        help="recompute every account's priority score (set-based; the app runs it daily)",
        description="Refresh cached balances, promise and callback facts and priority scores.",
    )

    db = sub.add_parser("db", help="database schema: upgrade, current")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", parents=[common], help="apply pending migrations")
    db_sub.add_parser("current", parents=[common], help="show the schema revision")

    agent = sub.add_parser("agent", help="manage agents: add, list")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    add = agent_sub.add_parser("add", parents=[common], help="create an agent")
    add.add_argument("name")
    add.add_argument("--role", choices=("agent", "supervisor", "admin"), default="agent")
    add.add_argument("--display-name")
    add.add_argument("--settlement-limit", type=_money, default=Decimal("0"))
    agent_sub.add_parser("list", parents=[common], help="list active agents")
    return parser


def _progress_bar(total: int, label: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress bar on stderr; returns (advance, finish)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task(label, total=total)
    progress.start()
    return (lambda n: progress.advance(task, n)), progress.stop


def cmd_seed(args: argparse.Namespace) -> int:
    from collect_tui.services.database import open_database
    from collect_tui.services.seed import seed_portfolio

    if args.agents < 1:
        raise CommandError("--agents must be at least 1")
    db = open_database(args.db)
    advance, finish = _progress_bar(args.debtors, "Seeding debtors")
    started = time.perf_counter()
    try:
        stats = seed_portfolio(
            db.engine,
            debtors=args.debtors,
            agents=args.agents,
            seed=args.seed,
            as_of=args.as_of,
            demo_agent=args.demo_agent,
            progress=advance,
        )
    finally:
        finish()
        db.close()
    elapsed = time.perf_counter() - started
    counts = ", ".join(f"{table} {count:,}" for table, count in stats.rows.items())
    print(f"seeded {db.display_url} in {elapsed:.1f}s: {counts}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from collect_tui.services.database import open_database
    from collect_tui.services.report import portfolio_report

    db = open_database(args.db)
    try:
        report = portfolio_report(db, today=args.as_of)
    finally:
        db.close()
    print(report.to_json() if args.json else report.to_text())
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from collect_tui.services.database import open_database
    from collect_tui.services.scoring import rescore_portfolio

    db = open_database(args.db)
    started = time.perf_counter()
    try:
        count = rescore_portfolio(db)
    finally:
        db.close()
    print(f"rescored {count:,} accounts in {time.perf_counter() - started:.2f}s")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from collect_tui.storage.engine import make_engine, resolve_db_url, safe_url
    from collect_tui.storage.migrate import current_revision, head_revision, upgrade

    url = resolve_db_url(args.db)
    engine = make_engine(url)
    try:
        if args.db_command == "upgrade":
            before, after = upgrade(engine)
            if before == after:
                print(f"{safe_url(url)} is already at schema {after}")
            else:
                print(f"upgraded {safe_url(url)} from {before or 'empty'} to {after}")
        else:
            print(f"{current_revision(engine) or 'empty'} (newest known: {head_revision()})")
    finally:
        engine.dispose()
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from collect_tui.services.agents import create_agent, list_agents
    from collect_tui.services.database import open_database

    db = open_database(args.db)
    try:
        if args.agent_command == "add":
            try:
                agent = create_agent(
                    db,
                    args.name,
                    role=args.role,
                    display_name=args.display_name,
                    settlement_limit=args.settlement_limit,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            print(f"created {agent.role} {agent.name}")
        else:
            for agent in list_agents(db):
                print(f"{agent.name:<20} {agent.role:<11} {agent.display_name}")
    finally:
        db.close()
    return 0


def _open_app(db_url: str | None, agent_name: str) -> int:
    from collect_tui.app import CollectApp
    from collect_tui.services.agents import UnknownAgentError, get_agent, list_agents
    from collect_tui.services.database import open_database

    db = open_database(db_url)
    try:
        try:
            agent = get_agent(db, agent_name)
        except UnknownAgentError:
            known = [a.name for a in list_agents(db)]
            hint = f" Known agents: {', '.join(known[:12])}." if known else ""
            where = f" --db {db_url}" if db_url else ""
            raise CommandError(
                f"no agent named {agent_name!r} in {db.display_url}.{hint} "
                f"Sign in with --agent NAME, create one with "
                f"'collect-tui agent add {agent_name}{where}' (add --role supervisor for a "
                "supervisor), or try 'collect-tui demo'."
            ) from None
        CollectApp(db, agent).run()
    finally:
        db.close()
    return 0


def demo_db_path() -> Path:
    """The demo's own database file, beside the embedded default."""
    from collect_tui.storage.engine import default_db_path

    return default_db_path().with_name("demo.db")


def cmd_demo(args: argparse.Namespace) -> int:
    from collect_tui.services.agents import UnknownAgentError, get_agent
    from collect_tui.services.database import open_database
    from collect_tui.services.seed import seed_portfolio

    url = args.db
    if url is None:
        path = demo_db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.reset:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    db = open_database(url)
    try:
        try:
            get_agent(db, DEMO_AGENT)
        except UnknownAgentError:
            print(f"Seeding a demo portfolio of {DEMO_DEBTORS:,} debtors...", file=sys.stderr)
            seed_portfolio(
                db.engine, debtors=DEMO_DEBTORS, agents=6, seed=2026, demo_agent=DEMO_AGENT
            )
    finally:
        db.close()
    return _open_app(url, DEMO_AGENT)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "seed": cmd_seed,
    "report": cmd_report,
    "rescore": cmd_rescore,
    "db": cmd_db,
    "agent": cmd_agent,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``collect-tui`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return _open_app(args.db, args.agent or _default_agent())
        return COMMANDS[args.command](args)
    except (StorageError, CommandError) as exc:
        print(f"collect-tui: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from collect_tui.storage.engine import describe_db_error, is_driver_error, resolve_db_url

        if not is_driver_error(exc):
            raise
        url = resolve_db_url(getattr(args, "db", None))
        print(f"collect-tui: error: {describe_db_error(exc, url)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("collect-tui: interrupted; nothing was committed by the interrupted step.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
