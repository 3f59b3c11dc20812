"""The sync screen at 80x24: runs, outbox, quarantine, and sync now in a worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import DataTable, Static, TabbedContent
from textual.worker import WorkerCancelled

from collect_tui import clock
from collect_tui.app import CollectApp
from collect_tui.screens.help import HelpScreen
from collect_tui.screens.sync import SyncScreen
from collect_tui.services.agents import AgentInfo, create_agent
from collect_tui.services.database import Database, open_database
from collect_tui.services.sync import SyncTarget, load_overview, save_target
from collect_tui.storage import sync_store as store
from collect_tui.storage.models import OutboxMessage
from collect_tui.sync.sandbox import SandboxServer

FIXED_NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: FIXED_NOW)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'sync.db'}")
    yield database
    database.close()


def _history(db: Database) -> None:
    """Two recorded runs, outcomes in each state and two quarantined records."""
    with db.engine.begin() as conn:
        first = store.start_run(conn, "xero", FIXED_NOW - timedelta(hours=3))
        store.finish_run(
            conn, first, "ok",
            {"pulled": 5120, "created": 5100, "updated": 20, "pushed": 3}, None,
            FIXED_NOW - timedelta(hours=3) + timedelta(seconds=4),
        )  # fmt: skip
        second = store.start_run(conn, "xero", FIXED_NOW - timedelta(minutes=20))
        store.finish_run(
            conn, second, "partial", {"pulled": 40, "updated": 40}, "GET /Invoices: HTTP 503",
            FIXED_NOW - timedelta(minutes=19),
        )  # fmt: skip
        store.quarantine_records(
            conn,
            "xero",
            [
                ("invoices", "5a828a50-2a4e", "not a Xero date: 'yesterday'", {"x": 1}),
                ("contacts", None, "missing ContactID", {"Name": "Nobody"}),
            ],
            FIXED_NOW - timedelta(minutes=19),
        )
    with db.session() as session:
        session.add_all(
            [
                OutboxMessage(idempotency_key="a", kind="history_note",
                              invoice_external_id="inv-0001",
                              payload={"details": "Promise to pay USD 120.00 by 2026-11-09"},
                              next_attempt_at=FIXED_NOW, created_at=FIXED_NOW),
                OutboxMessage(idempotency_key="b", kind="expected_payment_date",
                              invoice_external_id="inv-0001", payload={"date": "2026-11-09"},
                              next_attempt_at=FIXED_NOW, created_at=FIXED_NOW),
                OutboxMessage(idempotency_key="c", kind="dispute", invoice_external_id="inv-0002",
                              payload={"details": "Disputed: goods damaged"}, status="failed",
                              attempts=1, last_error="invoice inv-0002 not found (HTTP 404)",
                              next_attempt_at=FIXED_NOW, created_at=FIXED_NOW),
            ]
        )  # fmt: skip
    save_target(db, SyncTarget("xero", "http://127.0.0.1:8765/api.xro/2.0"))


class SyncOnly(App[None]):
    """The sync screen alone (no daily jobs), for stable snapshots."""

    def __init__(self, db: Database, agent: AgentInfo) -> None:
        super().__init__()
        self.db, self.agent = db, agent

    def on_mount(self) -> None:
        self.push_screen(SyncScreen(self.db, self.agent))


async def _settle(app: App[None], pilot: object) -> None:
    for _ in range(3):
        # A screen left behind cancels its exclusive workers.
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()  # type: ignore[attr-defined]


async def test_sync_screen_shows_runs_outbox_and_quarantine(db: Database) -> None:
    _history(db)
    sup = create_agent(db, "sup", role="supervisor")
    app = SyncOnly(db, sup)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SyncScreen)
        status = str(screen.query_one("#sync-status", Static).render())
        assert "Last run 2 partial 20 min ago" in status
        assert "2 pending, 1 failed" in status and "Quarantine: 2" in status
        runs = screen.query_one("#sync-runs", DataTable)
        assert runs.row_count == 2 and runs.get_row_at(1)[3] == "5,120"
        await pilot.press("2")
        assert screen.query_one(TabbedContent).active == "outbox"
        outbox = screen.query_one("#sync-outbox", DataTable)
        assert outbox.row_count == 3 and outbox.get_row_at(0)[1] == "failed"
        await pilot.press("3")
        quarantine = screen.query_one("#sync-quarantine", DataTable)
        assert quarantine.row_count == 2
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("f")  # failed outcomes go back in the queue
        await _settle(app, pilot)
        assert load_overview(db).outbox_counts["failed"] == 0


async def test_sync_now_runs_in_a_worker_and_the_screen_stays_usable(db: Database) -> None:
    sup = create_agent(db, "sup", role="supervisor")
    with SandboxServer(customers=200, seed=4, slow_rate=1.0, slow_seconds=0.3) as sandbox:
        save_target(db, SyncTarget("xero", sandbox.base_url))
        app = SyncOnly(db, sup)
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, SyncScreen)
            await pilot.press("s")
            await pilot.pause()
            assert screen.syncing
            await pilot.press("2")  # keys still work while the sync runs
            assert screen.query_one(TabbedContent).active == "outbox"
            await pilot.press("s")  # a second sync is refused while one runs
            await _settle(app, pilot)
            assert not screen.syncing
            runs = screen.query_one("#sync-runs", DataTable)
            assert runs.row_count == 1 and runs.get_row_at(0)[2] == "ok"
        overview = load_overview(db)
        assert len(overview.runs) == 1
        assert len(sandbox.invoice_ids()) > 0


async def test_agents_cannot_start_a_sync(db: Database) -> None:
    agent = create_agent(db, "alice")
    app = SyncOnly(db, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        assert not app.screen.syncing  # type: ignore[attr-defined]
        assert any("supervisor" in n.message for n in app._notifications)  # noqa: SLF001


async def test_f6_opens_the_sync_screen_and_escape_goes_back(db: Database) -> None:
    agent = create_agent(db, "alice")
    app = CollectApp(db, agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        before = app.screen
        await pilot.press("f6")
        await _settle(app, pilot)
        assert isinstance(app.screen, SyncScreen)
        await pilot.press("escape")
        assert app.screen is before


def test_sync_screen_snapshot(db: Database, snap_compare: object) -> None:
    _history(db)
    sup = create_agent(db, "sup", role="supervisor")

    async def settle(pilot: object) -> None:
        await _settle(pilot.app, pilot)  # type: ignore[attr-defined]

    assert snap_compare(  # type: ignore[operator]
        SyncOnly(db, sup), terminal_size=(80, 24), run_before=settle
    )
