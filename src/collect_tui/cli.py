"""Command line: ``collect-tui [COMMAND]``; with no command it opens the workstation."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from collect_tui import __version__
from collect_tui.storage.engine import StorageError

if TYPE_CHECKING:
    from collect_tui.services.agents import AgentInfo
    from collect_tui.services.database import Database

DEMO_AGENT = "demo"
RULES_HELP = (
    "compliance and cadence rules file (default: $COLLECT_TUI_RULES, else rules.toml in "
    "the user config dir; built-in rules when there is none)"
)
DEMO_DEBTORS = 3_000


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _login_name() -> str:
    """The Unix account running this process (its real uid), never the environment."""
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def under_ssh() -> bool:
    """True in a session started by sshd (SSH_CONNECTION or SSH_ORIGINAL_COMMAND is set)."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_ORIGINAL_COMMAND"))


def _default_agent() -> str:
    """The OS user name; over SSH the login account itself, whatever $USER/$LOGNAME say."""
    try:
        return _login_name() if under_ssh() else getpass.getuser()
    except Exception:
        return os.environ.get("USER", "agent")


DUMB_TERMS = {"", "dumb", "unknown"}


def check_terminal(environ: dict[str, str] | None = None) -> None:
    """Refuse, in one clear line, a terminal the full-screen workstation cannot drive."""
    env = os.environ if environ is None else environ
    if env.get("TEXTUAL_DRIVER"):  # a browser session (collect-tui serve) has no tty
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CommandError(
            "the workstation needs an interactive terminal (stdin/stdout are not one); "
            "over SSH connect with 'ssh -t'"
        )
    term = env.get("TERM", "").strip()
    if term.lower() in DUMB_TERMS:
        shown = f"TERM={term!r}" if term else "TERM is not set"
        raise CommandError(
            f"{shown}: this terminal cannot show the full-screen workstation (no cursor "
            "movement or colours); use a terminal such as xterm-256color, e.g. "
            "'TERM=xterm-256color ssh -t HOST'"
        )


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
    common.add_argument("--rules", metavar="FILE", default=argparse.SUPPRESS, help=RULES_HELP)

    parser = argparse.ArgumentParser(
        prog="collect-tui",
        description="A keyboard-driven terminal workstation for debt collection.",
        epilog="With no command, opens the workstation as --agent on --db.",
    )
    parser.add_argument("--version", action="version", version=f"collect-tui {__version__}")
    parser.add_argument("--db", metavar="URL", help=db_help)
    parser.add_argument("--rules", metavar="FILE", help=RULES_HELP)
    parser.add_argument(
        "--agent", metavar="NAME", help="sign in as this agent (default: your OS user name)"
    )
    parser.add_argument(
        "--login-agent",
        action="store_true",
        help="sign in as the Unix account running collect-tui and ignore --agent "
        "(for an sshd ForceCommand: the SSH user is the agent)",
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

    rescore = sub.add_parser(
        "rescore",
        parents=[common],
        help="recompute every account's priority score (set-based; the app runs it daily)",
        description="Score every account from its cached facts, refreshing the promise facts "
        "that change with the day (every write keeps the other facts current). "
        "The weights are stored in the database; --weights FILE replaces them.",
    )
    rescore.add_argument(
        "--facts",
        action="store_true",
        help="also recompute every cached fact (balances, aging, contacts, tasks) from its "
        "source tables: for a database written by another program",
    )
    rescore.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="TOML file with a [priority] table of weights to store and rescore with",
    )
    rescore.add_argument(
        "--show-weights", action="store_true", help="print the weights in use and exit"
    )

    cadence = sub.add_parser(
        "cadence",
        parents=[common],
        help="turn due collection-rule steps into tasks and send due reminders",
        description="Run the collection rule (cadence) of the rules file: due steps become "
        "tasks (never twice), promises and disputes suspend them, and due email/SMS steps "
        "are sent inside the contact window. The app runs it at start.",
    )
    cadence.add_argument(
        "--dry-run", action="store_true", help="print what would be created and sent; save nothing"
    )
    cadence.add_argument(
        "--no-send", action="store_true", help="create the tasks but send no message"
    )

    rebalance = sub.add_parser(
        "rebalance",
        parents=[common],
        help="even out workloads across agents (prints the plan; --apply moves the accounts)",
        description="Plan a rebalance of the agents' workloads and print it; with --apply, "
        "move the accounts in one transaction with assignment history and an audit row. "
        "Accounts with a pending promise, plan installment or open callback stay put. "
        "Supervisors and admins only.",
    )
    rebalance.add_argument(
        "--by", choices=("count", "balance", "workload"), default="count",
        help="what to even out: account count, open balance, or expected workload",
    )  # fmt: skip
    rebalance.add_argument(
        "--agents", metavar="A,B,...", help="agents taking part (default: every agent)"
    )
    rebalance.add_argument(
        "--absent", metavar="A,B,...", help="agents away: they keep only pinned accounts"
    )
    rebalance.add_argument("--pool", action="store_true", help="hand out the unassigned pool too")
    rebalance.add_argument(
        "--as", dest="as_agent", metavar="NAME",
        help="the supervisor running it (default: your OS user name)",
    )  # fmt: skip
    rebalance.add_argument("--apply", action="store_true", help="move the accounts")
    rebalance.add_argument(
        "--reason", default="scheduled rebalance", help="goes into the assignment history"
    )
    rebalance.add_argument("--json", action="store_true", help="print JSON")

    kpis = sub.add_parser(
        "kpis",
        parents=[common],
        help="collection KPIs: aging, collected per day, DSO, CEI, contact and promise rates",
        description="The supervisor console's KPIs (formulas in the README). Supervisors "
        "and admins only.",
    )
    kpis.add_argument(
        "--as", dest="as_agent", metavar="NAME",
        help="the supervisor asking (default: your OS user name)",
    )  # fmt: skip
    kpis.add_argument("--as-of", type=_iso_date, help="KPIs as of this day (default: today)")
    kpis.add_argument("--months", type=_positive_int, default=6, help="months of DSO/CEI")
    kpis.add_argument("--json", action="store_true", help="print JSON")

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
    _add_sync_parsers(sub, common)
    _add_serve_parser(sub, common)
    return parser


def _add_serve_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """``serve``: the workstation in a web browser (textual-serve)."""
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the workstation to web browsers (put it behind an authenticating proxy)",
        description="Serve the workstation over HTTP with textual-serve: every browser tab "
        "runs its own session, signed in as the user the authenticating proxy names in "
        "--user-header, or else as --agent. It does no authentication of its own, so it "
        "binds only loopback addresses unless --allow-remote is given; put it behind a "
        "reverse proxy that authenticates the user. Ctrl+C stops it.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, default=8000, help="default 8000")
    serve.add_argument(
        "--agent", metavar="NAME", help="the agent every session signs in as (default: your "
        "OS user name)",
    )  # fmt: skip
    serve.add_argument(
        "--user-header", metavar="HEADER",
        help="sign each session in as the agent the proxy names in this request header "
        "(e.g. X-Forwarded-User); requests without it are refused",
    )  # fmt: skip
    serve.add_argument(
        "--allow-remote", action="store_true",
        help="allow a non-loopback --host (only behind an authenticating proxy)",
    )  # fmt: skip
    serve.add_argument(
        "--public-url", metavar="URL",
        help="the URL browsers reach it at, e.g. https://collect.example.com behind a proxy",
    )  # fmt: skip


def _add_sync_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """``sync`` and ``sandbox``: the accounting-system connection."""
    sync = sub.add_parser(
        "sync",
        parents=[common],
        help="pull invoices, customers and payments; push outcomes (one run, or --watch)",
        description="Pull contacts, invoices, payments and credit notes changed since the last "
        "run, then deliver queued outcomes (history notes, expected payment dates). "
        "Credentials come from the environment: XERO_CLIENT_ID with XERO_CLIENT_SECRET or "
        "XERO_CLIENT_SECRET_FILE (0600), optionally XERO_REFRESH_TOKEN_FILE (0600), or "
        "XERO_ACCESS_TOKEN; a sandbox on 127.0.0.1 needs none.",
    )
    sync.add_argument("--source", choices=("xero",), default="xero", help="default xero")
    sync.add_argument("--base-url", metavar="URL", help="API root, e.g. .../api.xro/2.0")
    sync.add_argument("--tenant", metavar="ID", help="xero-tenant-id (default: $XERO_TENANT_ID)")
    sync.add_argument(
        "--watch", type=_positive_int, metavar="SECONDS", help="run again every SECONDS"
    )
    sync.add_argument("--quarantine", action="store_true", help="list quarantined records and exit")
    sync.add_argument(
        "--retry-failed", action="store_true", help="queue failed outcomes again before running"
    )
    sync.add_argument("--minute-limit", type=_positive_int, metavar="N", help="calls a minute")
    sync.add_argument("--day-limit", type=_positive_int, metavar="N", help="calls a day")
    sync.add_argument(
        "--page-size", type=_positive_int, default=1000, metavar="N", help="default 1000"
    )

    sandbox = sub.add_parser(
        "sandbox",
        help="run a local Xero-compatible API server for demos and tests",
        description="A seeded server speaking Xero's wire format on 127.0.0.1, with paging, "
        "If-Modified-Since, history writes and injected faults. Ctrl+C stops it.",
    )
    sandbox.add_argument("--port", type=_positive_int, default=8765, help="default 8765")
    sandbox.add_argument("--customers", type=_positive_int, default=1000, help="default 1000")
    sandbox.add_argument("--seed", type=int, default=1, help="default 1")
    sandbox.add_argument("--fail-rate", type=float, default=0.0, metavar="X", help="5xx share")
    sandbox.add_argument(
        "--rate-limit", type=_positive_int, metavar="R", help="calls a minute before 429"
    )
    sandbox.add_argument("--day-limit", type=_positive_int, metavar="N", help="calls a day")
    sandbox.add_argument("--slow-rate", type=float, default=0.0, metavar="X")
    sandbox.add_argument("--malformed-rate", type=float, default=0.0, metavar="X")


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
    from collect_tui.services.scoring import (
        current_weights,
        read_weights_file,
        rescore_portfolio,
        set_weights,
        tidy_after_pass,
    )

    try:
        weights = read_weights_file(args.weights) if args.weights else None
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    db = open_database(args.db)
    started = time.perf_counter()
    try:
        if args.show_weights:
            for key, value in current_weights(db).model_dump(mode="json").items():
                print(f"{key} = {value}")
            return 0
        if weights is None:
            count = rescore_portfolio(db, facts=args.facts, tidy=False)
        else:
            count = set_weights(db, weights, tidy=False)
        scored = time.perf_counter()
        tidy_after_pass(db)
    finally:
        db.close()
    print(
        f"rescored {count:,} accounts in {scored - started:.2f}s "
        f"(then {time.perf_counter() - scored:.2f}s refreshing the planner's statistics)"
    )
    return 0


def cmd_cadence(args: argparse.Namespace) -> int:
    from collect_tui.services.cadence import run_cadence
    from collect_tui.services.database import open_database

    db = open_database(args.db)
    try:
        report = run_cadence(db, dry_run=args.dry_run, deliver=not args.no_send)
    finally:
        db.close()
    for message in report.messages:
        to = f" to {message.to}" if message.to else ""
        what = message.subject or message.body.strip().replace("\n", " ")[:70]
        why = f": {message.reason}" if message.reason and message.outcome != "sent" else ""
        print(
            f"{message.outcome:<10} {message.channel:<5} account {message.debtor_id} "
            f"{message.step_key}{to}{why}" + (f" | {what}" if what else "")
        )
    print(report.summary())
    return 1 if report.count("failed") else 0


def _install_rules(args: argparse.Namespace) -> None:
    """Load and install the rules file before anything runs (a bad file stops here)."""
    from collect_tui.services.compliance_config import ConfigError, install, load_config

    try:
        install(load_config(getattr(args, "rules", None)))
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _signed_in(db: Database, name: str) -> AgentInfo:
    from collect_tui.services.agents import UnknownAgentError, get_agent

    try:
        return get_agent(db, name)
    except UnknownAgentError:
        raise CommandError(
            f"no agent named {name!r}; say who you are with --as NAME (a supervisor)"
        ) from None


def _agent_ids(db: Database, names: list[str], option: str) -> list[int]:
    from collect_tui.services.agents import list_agents

    known = {agent.name: agent.id for agent in list_agents(db)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CommandError(f"{option}: no active agent named {', '.join(map(repr, unknown))}")
    return [known[name] for name in names]


def cmd_rebalance(args: argparse.Namespace) -> int:
    import json

    from collect_tui.services.database import open_database
    from collect_tui.services.supervisor import (
        NotSupervisor,
        SupervisorError,
        apply_rebalance,
        plan_to_json,
        preview_rebalance,
        rebalance_plan_text,
    )

    db = open_database(args.db)
    try:
        caller = _signed_in(db, args.as_agent or _default_agent())
        agent_names, absent_names = _names(args.agents), _names(args.absent)
        if args.agents is not None and not agent_names:
            raise CommandError("--agents: give at least one agent name")
        agent_ids = _agent_ids(db, agent_names, "--agents") if agent_names else None
        absent_ids = _agent_ids(db, absent_names, "--absent")
        try:
            plan = preview_rebalance(
                db, caller, measure=args.by, agent_ids=agent_ids,
                include_pool=args.pool, absent_agent_ids=absent_ids,
            )  # fmt: skip
            moved = apply_rebalance(db, caller, plan, reason=args.reason) if args.apply else 0
        except (NotSupervisor, SupervisorError) as exc:
            raise CommandError(str(exc)) from None
    finally:
        db.close()
    if args.json:
        print(json.dumps({**plan_to_json(plan), "applied": args.apply}, indent=2))
    else:
        print(rebalance_plan_text(plan))
        print()
        if args.apply:
            print(f"Applied: {moved:,} account(s) moved.")
        elif plan.moved:
            print("Preview only, nothing moved. Run again with --apply to move the accounts.")
        else:
            print("Nothing to move: the workloads are already even.")
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    import json

    from collect_tui.services.database import open_database
    from collect_tui.services.report import kpi_text
    from collect_tui.services.supervisor import NotSupervisor, kpis, kpis_json

    if args.months < 1:
        raise CommandError("--months must be at least 1")
    db = open_database(args.db)
    try:
        caller = _signed_in(db, args.as_agent or _default_agent())
        zone = datetime.now().astimezone().tzinfo or UTC  # "today" as the report means it
        today = args.as_of or datetime.now(zone).date()
        try:
            report = kpis(db, caller, today=today, months=args.months, zone=zone)
        except NotSupervisor as exc:
            raise CommandError(str(exc)) from None
    finally:
        db.close()
    print(json.dumps(kpis_json(report), indent=2) if args.json else kpi_text(report))
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
    from collect_tui.services.agents import UnknownAgentError, get_agent, list_agents
    from collect_tui.services.contactability import read_jurisdictions_soon
    from collect_tui.services.database import open_database

    db = open_database(db_url)
    read_jurisdictions_soon(db)  # the server reads them while the app is imported
    from collect_tui.app import CollectApp

    try:
        try:
            agent = get_agent(db, agent_name)
        except UnknownAgentError:
            if under_ssh():  # an SSH login: no list of other agents, no --agent advice
                raise CommandError(
                    f"no agent named {agent_name!r}; ask a supervisor to run "
                    f"'collect-tui agent add {agent_name}'"
                ) from None
            known = [a.name for a in list_agents(db)]
            hint = f" Known agents: {', '.join(known[:12])}." if known else ""
            where = f" --db {db_url}" if db_url else ""
            raise CommandError(
                f"no agent named {agent_name!r} in {db.display_url}.{hint} "
                f"Sign in with --agent NAME, create one with "
                f"'collect-tui agent add {agent_name}{where}' (add --role supervisor for a "
                "supervisor), or try 'collect-tui demo'."
            ) from None
        check_terminal()  # after the agent check: an unknown name is the likelier mistake
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


def _sync_progress() -> tuple[Callable[[str, int, int | None], None], Callable[[], None]]:
    """A progress bar per phase on stderr; returns (update, finish)."""
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
    tasks: dict[str, object] = {}

    def update(phase: str, done: int, total: int | None) -> None:
        if phase not in tasks:
            label = phase.replace("pull:", "pull ").replace("_", " ")
            tasks[phase] = progress.add_task(f"{label:<18}", total=total)
        progress.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

    progress.start()
    return update, progress.stop


def cmd_sync(args: argparse.Namespace) -> int:
    from collect_tui.services.database import open_database
    from collect_tui.services.sync import (
        list_quarantine,
        retry_failed,
        run_sync,
        save_target,
    )
    from collect_tui.sync.config import SyncTarget, check_target
    from collect_tui.sync.protocol import ConnectorError

    db = open_database(args.db)
    try:
        if args.quarantine:
            rows = list_quarantine(db)
            for row in rows:
                when = row.received_at.strftime("%Y-%m-%d %H:%M")
                print(f"{when}  {row.stream:<12} {row.external_id or '-':<36}  {row.reason}")
            print(f"{len(rows):,} quarantined record(s)")
            return 0
        if not args.base_url:
            raise CommandError("--base-url is required (e.g. http://127.0.0.1:8765/api.xro/2.0)")
        if not 1 <= args.page_size <= 1000:
            raise CommandError("--page-size must be between 1 and 1000")
        target = SyncTarget(
            source=args.source,
            base_url=args.base_url,
            tenant=args.tenant or os.environ.get("XERO_TENANT_ID", ""),
            minute_limit=args.minute_limit,
            day_limit=args.day_limit,
        )
        try:
            check_target(target)
        except ConnectorError as exc:
            raise CommandError(str(exc)) from None
        save_target(db, target)
        if args.retry_failed:
            print(f"queued {retry_failed(db, datetime.now(UTC)):,} failed outcome(s) again")
        while True:
            update, finish = _sync_progress()
            started = time.perf_counter()
            try:
                result = run_sync(db, target, progress=update, page_size=args.page_size)
            except ConnectorError as exc:
                raise CommandError(str(exc)) from None
            finally:
                finish()
            elapsed = time.perf_counter() - started
            line = f"sync run {result.run_id} {result.status} in {elapsed:.1f}s: "
            print(line + result.stats.summary(), flush=True)
            if result.stats.push_paused_until:
                print(f"pushing paused (daily limit) until {result.stats.push_paused_until}")
            if result.status != "ok" and not args.watch:
                raise CommandError(f"sync {result.status}: {result.error}")
            if result.status != "ok":
                print(
                    f"collect-tui: warning: sync {result.status}: {result.error}", file=sys.stderr
                )
            if not args.watch:
                return 0
            time.sleep(args.watch)
    finally:
        db.close()


def is_loopback_host(host: str) -> bool:
    """True if every address ``host`` names is a loopback address."""
    import ipaddress
    import socket

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import shlex

    from collect_tui.services.agents import UnknownAgentError, get_agent
    from collect_tui.services.database import open_database
    from collect_tui.storage.engine import resolve_db_url

    if not args.allow_remote and not is_loopback_host(args.host):
        raise CommandError(
            f"refusing to serve on {args.host!r}, not a loopback address: the page has no "
            "login of its own; put it behind an authenticating proxy and add --allow-remote"
        )
    header = (args.user_header or "").strip() or None
    if header is not None and args.agent:
        raise CommandError("--agent and --user-header exclude each other: with a user header "
                           "each session signs in as the user the proxy names")  # fmt: skip
    if header is not None and not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise CommandError(f"--user-header {header!r} is not an HTTP header name")
    agent_name = None if header is not None else args.agent or _default_agent()
    url = resolve_db_url(args.db)
    db = open_database(url)

    def is_agent(name: str) -> bool:
        try:
            get_agent(db, name)
        except UnknownAgentError:
            return False
        return True

    if agent_name is not None and not is_agent(agent_name):
        db.close()
        raise CommandError(
            f"no agent named {agent_name!r} in {db.display_url}; create one with "
            f"'collect-tui agent add {agent_name}' or pass --agent NAME"
        )
    from collect_tui.web import SessionServer

    # The URL goes to the sessions through the environment, never the command line (ps).
    os.environ["COLLECT_TUI_DB"] = url
    base = [sys.executable, "-m", "collect_tui.cli"]
    rules = getattr(args, "rules", None)
    if rules:
        base += ["--rules", str(Path(rules).resolve())]

    def command_for(agent: str) -> str:
        return shlex.join([*base, "--agent", agent])

    server = SessionServer(
        command_for,
        agent=agent_name,
        user_header=header,
        is_agent=is_agent,
        host=args.host,
        port=args.port,
        title=f"collect-tui ({agent_name})" if agent_name else "collect-tui",
        public_url=args.public_url.rstrip("/") if args.public_url else None,
    )
    try:
        server.serve()
    except OSError as exc:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    finally:
        db.close()
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from collect_tui.sync.sandbox import main as sandbox_main

    for name in ("fail_rate", "slow_rate", "malformed_rate"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise CommandError(f"--{name.replace('_', '-')} must be between 0 and 1")
    argv = ["--port", str(args.port), "--customers", str(args.customers), "--seed", str(args.seed)]
    argv += ["--fail-rate", str(args.fail_rate), "--slow-rate", str(args.slow_rate)]
    argv += ["--malformed-rate", str(args.malformed_rate)]
    if args.rate_limit is not None:
        argv += ["--rate-limit", str(args.rate_limit)]
    if args.day_limit is not None:
        argv += ["--day-limit", str(args.day_limit)]
    try:
        return sandbox_main(argv)
    except OSError as exc:
        raise CommandError(f"cannot serve on port {args.port}: {exc.strerror}") from None


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "seed": cmd_seed,
    "report": cmd_report,
    "rescore": cmd_rescore,
    "cadence": cmd_cadence,
    "rebalance": cmd_rebalance,
    "kpis": cmd_kpis,
    "db": cmd_db,
    "agent": cmd_agent,
    "demo": cmd_demo,
    "sync": cmd_sync,
    "sandbox": cmd_sandbox,
    "serve": cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``collect-tui`` console script."""
    from collect_tui.logsafe import configure_logging, register_url_password

    configure_logging()  # every log record masked: no secrets, no debtor phones or e-mails
    parser = build_parser()
    args = parser.parse_args(argv)
    register_url_password(getattr(args, "db", None))
    try:
        _install_rules(args)
        if args.command is None:
            if args.login_agent:
                agent = _login_name()
                if args.agent and args.agent != agent:
                    print(f"collect-tui: --agent {args.agent} ignored: --login-agent signs "
                          f"in as {agent}", file=sys.stderr)  # fmt: skip
                return _open_app(args.db, agent)
            return _open_app(args.db, args.agent or _default_agent())
        return COMMANDS[args.command](args)
    except (StorageError, CommandError) as exc:
        from collect_tui.logsafe import redact_secrets

        print(f"collect-tui: error: {redact_secrets(str(exc))}", file=sys.stderr)
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
