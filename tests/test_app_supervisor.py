"""The supervisor console through Pilot at 80x24: workloads, drill-in, moves, rebalance with
preview, settlement approvals, KPIs, and refusals for an agent at every step."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import no_daily_work
from sqlalchemy import func, select
from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable, Input, Select
from textual.widgets._toast import ToastRack

from collect_tui import app as app_module
from collect_tui import clock
from collect_tui.app import CollectApp
from collect_tui.screens.queue import QueueScreen
from collect_tui.screens.supervisor import SupervisorScreen
from collect_tui.screens.supervisor_kpis import KpiScreen
from collect_tui.screens.supervisor_queue import AgentQueueScreen
from collect_tui.screens.supervisor_reassign import ReassignScreen
from collect_tui.screens.supervisor_rebalance import (
    RebalancePreviewScreen,
    RebalanceSetupScreen,
)
from collect_tui.screens.supervisor_settlements import DecisionScreen, SettlementsScreen
from collect_tui.services.agents import AgentInfo, get_agent
from collect_tui.services.database import Database, open_database
from collect_tui.services.seed import seed_portfolio
from collect_tui.services.supervisor import preview_rebalance, workloads
from collect_tui.storage.models import Assignment, Debtor, Settlement
from collect_tui.widgets.supervisor_workload import WorkloadTable

AS_OF = date(2026, 11, 2)
FIXED_NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
SIZE = (80, 24)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded portfolio file (900 accounts, alice/bruno/chen) with two settlements
    awaiting approval; each test works on its own copy."""
    path = tmp_path_factory.mktemp("sup") / "template.db"
    db = open_database(f"sqlite:///{path}")
    seed_portfolio(db.engine, debtors=900, agents=3, seed=11, as_of=AS_OF)
    no_daily_work(db)  # the scores and tasks stay as of AS_OF
    alice = get_agent(db, "alice")
    with db.session() as session:
        for debtor_id, amount in ((5, "600.00"), (9, "150.00")):
            session.add(
                Settlement(
                    debtor_id=debtor_id,
                    agent_id=alice.id,
                    balance_at_offer=Decimal("1000.00"),
                    amount=Decimal(amount),
                    currency="USD",
                    due_date=AS_OF + timedelta(days=7),
                    status="awaiting_approval",
                    created_at=FIXED_NOW - timedelta(days=2),
                )  # fmt: skip
            )
    db.close()
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[Database]:
    """A private copy of the template portfolio."""
    path = tmp_path / "sup.db"
    shutil.copy(template, path)
    database = open_database(f"sqlite:///{path}")
    yield database
    database.close()


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: FIXED_NOW)


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    """Let every worker finish and the screen repaint."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def settle_quiet(pilot) -> None:  # type: ignore[no-untyped-def]
    """Settle, then drop the toasts (they time out; a snapshot shows the screen itself)."""
    await settle(pilot)
    pilot.app.clear_notifications()
    for screen in pilot.app.screen_stack:  # the screens under a dialog keep theirs otherwise
        for rack in screen.query(ToastRack):
            rack.show(pilot.app._notifications)
    await pilot.pause()


def _owners(db: Database) -> dict[int, int | None]:
    with db.session() as session:
        return dict(session.execute(select(Debtor.id, Debtor.assigned_agent_id)).all())


def _notes(app: App[None]) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


def _cells(table: DataTable, column: int = 0) -> list[str]:  # type: ignore[type-arg]
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


# ------------------------------------------------------------------ workloads


async def test_a_supervisor_lands_on_the_console_with_every_agent(db: Database) -> None:
    boss = get_agent(db, "supervisor")
    expected = workloads(db, boss, now=FIXED_NOW)
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        table = app.screen.query_one(WorkloadTable)
        names = _cells(table)
        assert names == ["alice", "bruno", "chen", "(pool)", "Total"]
        accounts = [int(c.replace(",", "")) for c in _cells(table, 1)]
        assert accounts == [r.accounts for r in expected]
        summary = str(app.screen.query_one("#sup-summary").render())
        assert "3 agents" in summary and "900 accounts" in summary
        assert "2 to approve" in summary
        # s sorts by the next key; the pool and the totals stay at the bottom.
        await pilot.press("s")
        by_accounts = sorted(
            (r for r in expected if r.kind == "agent"), key=lambda r: (-r.accounts, r.name)
        )
        assert _cells(table)[:3] == [r.name for r in by_accounts]
        assert _cells(table)[3:] == ["(pool)", "Total"]
        # w opens the supervisor's own queue; F2 comes back.
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("f2")
        assert isinstance(app.screen, SupervisorScreen)
        await pilot.press("question_mark")
        assert "Supervisor console" in str(app.screen.query_one("Static").render())
        await pilot.press("escape")
        assert isinstance(app.screen, SupervisorScreen)


async def test_enter_drills_into_an_agents_queue_read_only_and_moves_a_selection(
    db: Database,
) -> None:
    boss = get_agent(db, "supervisor")
    alice, chen = get_agent(db, "alice"), get_agent(db, "chen")
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # alice is the first row
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AgentQueueScreen)
        assert screen.agent.id == alice.id
        assert "read-only" in str(screen.query_one("#agent-queue-title").render())
        picked = [screen.rows[0].debtor_id, screen.rows[1].debtor_id]
        await pilot.press("enter")
        assert "Read-only" in _notes(app)
        await pilot.press("space", "space")
        assert screen.selected == set(picked)
        assert "2 selected" in str(screen.query_one("#agent-queue-summary").render())
        await pilot.press("m")
        dialog = app.screen
        assert isinstance(dialog, ReassignScreen)
        assert "Move 2 account(s) from Alice" in str(dialog.query_one("#reassign-heading").render())
        # Nothing is saved while the form is invalid: no target, no reason.
        await pilot.press("ctrl+s")
        assert app.screen is dialog
        assert "Choose who receives them" in str(dialog.query_one("#move-target-error").render())
        assert "Give a reason" in str(dialog.query_one("#move-reason-error").render())
        dialog.query_one("#move-target", Select).value = chen.id
        dialog.query_one("#move-reason", Input).focus()
        await pilot.press(*"cover for leave")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        owners = _owners(db)
        assert all(owners[d] == chen.id for d in picked)
        assert "2 account(s) moved to chen" in _notes(app)
        assert all(r.debtor_id not in picked for r in screen.rows)
        await pilot.press("escape")
        assert isinstance(app.screen, SupervisorScreen)


async def test_move_by_filter_from_the_workload_screen(db: Database) -> None:
    boss = get_agent(db, "supervisor")
    alice, bruno = get_agent(db, "alice"), get_agent(db, "bruno")
    with db.session() as session:
        expected = set(
            session.scalars(
                select(Debtor.id).where(
                    Debtor.assigned_agent_id == alice.id, Debtor.segment == "commercial"
                )
            )
        )
    assert expected
    before = _owners(db)
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("m")
        dialog = app.screen
        assert isinstance(dialog, ReassignScreen)
        dialog.query_one("#move-min", Input).focus()
        await pilot.press(*"ten")
        assert "Not an amount" in str(dialog.query_one("#move-min-error").render())
        await pilot.press("ctrl+s")
        assert app.screen is dialog
        dialog.query_one("#move-min", Input).value = ""
        dialog.query_one("#move-segment", Input).focus()
        await pilot.press(*"commercial")
        dialog.query_one("#move-target", Select).value = bruno.id
        dialog.query_one("#move-reason", Input).focus()
        await pilot.press(*"segment split")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        after = _owners(db)
        changed = {d for d in after if after[d] != before[d]}
        assert changed == expected
        assert all(after[d] == bruno.id for d in changed)
        assert f"{len(expected)} account(s) moved to bruno" in _notes(app)


# ------------------------------------------------------------------ rebalance


async def test_rebalance_is_previewed_then_applied_only_on_confirmation(db: Database) -> None:
    boss = get_agent(db, "supervisor")
    plan = preview_rebalance(db, boss, measure="count", today=FIXED_NOW.date())
    assert plan.moved > 0
    before = _owners(db)
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        assert isinstance(app.screen, RebalanceSetupScreen)
        await pilot.press("ctrl+s")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, RebalancePreviewScreen)
        heading = str(preview.query_one("#preview-heading").render())
        assert f"{plan.moved:,} account(s) move" in heading
        table = preview.query_one("#preview-table", DataTable)
        assert _cells(table) == ["alice", "bruno", "chen"]
        # escape cancels: nothing moved.
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        assert _owners(db) == before
        # Again, and apply.
        await pilot.press("b", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, RebalancePreviewScreen)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
    after = _owners(db)
    assert {d for d in after if after[d] != before[d]} == {m.debtor_id for m in plan.moves}
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Assignment)) == plan.moved


async def test_rebalance_setup_marks_absent_agents_and_the_pool(db: Database) -> None:
    boss = get_agent(db, "supervisor")
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        setup = app.screen
        assert isinstance(setup, RebalanceSetupScreen)
        await pilot.press("tab")  # the pool checkbox
        await pilot.press("space")
        await pilot.press("tab", "down", "down", "space")  # untick chen
        await pilot.press("ctrl+s")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, RebalancePreviewScreen)
        assert preview.plan.pool is not None
        chen = next(c for c in preview.plan.agents if c.agent_id == get_agent(db, "chen").id)
        assert not chen.present
        assert "chen (away)" in _cells(preview.query_one("#preview-table", DataTable))
        reason = preview.query_one("#preview-reason", Input)
        reason.value = ""
        await pilot.press("a")
        assert app.screen is preview
        assert "Give a reason" in str(preview.query_one("#preview-error").render())


# ------------------------------------------------------------------ settlements


async def test_settlement_approvals_with_context_and_notes(db: Database) -> None:
    boss = get_agent(db, "supervisor")
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettlementsScreen)
        assert [v.debtor_id for v in screen.views] == [5, 9]
        detail = str(screen.query_one("#settlements-detail").render())
        assert "Offer USD 600.00" in detail and "alice" in detail
        # Reject needs a note.
        await pilot.press("x")
        dialog = app.screen
        assert isinstance(dialog, DecisionScreen)
        await pilot.press("enter")
        assert app.screen is dialog
        assert "Say why it is rejected" in str(dialog.query_one("#decision-error").render())
        await pilot.press(*"too deep a discount")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert [v.debtor_id for v in screen.views] == [9]
        await pilot.press("a", "enter")
        await settle(pilot)
        assert screen.views == []
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        assert "to approve" not in str(app.screen.query_one("#sup-summary").render())
    with db.session() as session:
        decided = dict(session.execute(select(Settlement.debtor_id, Settlement.status)).all())
        note = session.scalar(select(Settlement.decision_note).where(Settlement.debtor_id == 5))
    assert decided == {5: "rejected", 9: "approved"}
    assert note == "too deep a discount"


# ------------------------------------------------------------------ KPIs


async def test_kpi_screen_shows_the_charts_and_switches_tabs(db: Database) -> None:
    boss = get_agent(db, "supervisor")
    app = CollectApp(db, boss)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("k")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, KpiScreen)
        assert screen.report is not None
        assert "KPIs as of 2026-11-02" in str(screen.query_one("#kpi-title").render())
        for key, tab in (("2", "collected"), ("3", "dso"), ("4", "agents"), ("5", "hours")):
            await pilot.press(key)
            await pilot.pause()
            assert screen.query_one("TabbedContent").active == tab  # type: ignore[attr-defined]
        names = _cells(screen.query_one("#kpi-agents-table", DataTable))
        assert names == ["alice", "bruno", "chen", "(team)"]
        await pilot.press("escape")
        assert isinstance(app.screen, SupervisorScreen)


# ------------------------------------------------------------------ permissions


async def test_an_agent_pressing_the_console_key_is_refused(db: Database) -> None:
    alice = get_agent(db, "alice")
    app = CollectApp(db, alice)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        assert "Only supervisors can open the supervisor console; alice signed in as agent" in (
            _notes(app)
        )


class _Host(App[None]):
    """An app with one supervisor screen pushed directly (as if an agent reached it)."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

    def __init__(self, db: Database, agent: AgentInfo, screen: Screen[None]) -> None:
        super().__init__()
        self.db = db
        self.agent = agent
        self.first = screen

    def on_mount(self) -> None:
        self.push_screen(self.first)


@pytest.mark.parametrize("key", ["m", "b", "a", "k", "enter"])
async def test_every_console_action_refuses_an_agent(db: Database, key: str) -> None:
    alice = get_agent(db, "alice")
    before = _owners(db)
    app = _Host(db, alice, SupervisorScreen(db, alice))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        summary = str(app.screen.query_one("#sup-summary").render())
        assert "Only supervisors can see every agent's workload" in summary
        assert app.screen.query_one(WorkloadTable).row_count == 0
        await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, SupervisorScreen)
        assert "alice signed in as agent" in _notes(app)
    assert _owners(db) == before


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda db, who: SettlementsScreen(db, who), "Only supervisors can see settlements"),
        (lambda db, who: KpiScreen(db, who), "Only supervisors can see the KPIs"),
        (
            lambda db, who: AgentQueueScreen(db, who, get_agent(db, "bruno"), []),
            "Only supervisors can see another agent's queue",
        ),
    ],
)
async def test_each_supervisor_screen_refuses_an_agent(db: Database, make, needle: str) -> None:  # type: ignore[no-untyped-def]
    alice = get_agent(db, "alice")
    app = _Host(db, alice, make(db, alice))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert needle in _notes(app)


async def test_approving_or_applying_as_an_agent_writes_nothing(db: Database) -> None:
    boss, alice = get_agent(db, "supervisor"), get_agent(db, "alice")
    plan = preview_rebalance(db, boss, measure="count", today=FIXED_NOW.date())
    before = _owners(db)
    app = _Host(db, alice, RebalancePreviewScreen(db, alice, plan))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, RebalancePreviewScreen)
        assert "Only supervisors can rebalance workloads" in _notes(app)
    assert _owners(db) == before
    # A settlement decision by an agent is refused by the service, shown, not written.
    screen = SettlementsScreen(db, boss)
    app = _Host(db, alice, screen)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen.caller = alice
        await pilot.press("a", "enter")
        await settle(pilot)
        assert "Only supervisors can approve or reject settlements" in _notes(app)
    with db.session() as session:
        statuses = set(session.scalars(select(Settlement.status)))
    assert statuses == {"awaiting_approval"}


# ------------------------------------------------------------------ snapshots


def test_workload_screen_snapshot(db: Database, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = CollectApp(db, get_agent(db, "supervisor"))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle_quiet)


def test_rebalance_preview_snapshot(db: Database, snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def preview(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("b", "ctrl+s")
        await settle_quiet(pilot)

    app = CollectApp(db, get_agent(db, "supervisor"))
    assert snap_compare(app, terminal_size=SIZE, run_before=preview)


def test_kpi_screen_snapshot(db: Database, snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def kpis(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("k")
        await settle_quiet(pilot)

    app = CollectApp(db, get_agent(db, "supervisor"))
    assert snap_compare(app, terminal_size=SIZE, run_before=kpis)
