"""The sync screen: recent runs, outcomes waiting to be pushed, quarantined records, sync now."""

from __future__ import annotations

import time
from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from collect_tui import clock
from collect_tui.screens.help import HelpScreen
from collect_tui.services.agents import AgentInfo
from collect_tui.services.database import Database
from collect_tui.services.sync import SyncOverview, load_overview, retry_failed, run_sync
from collect_tui.widgets.elapsed import ago

PROGRESS_EVERY = 0.2  # seconds between progress updates sent to the screen


def _when(value: datetime | None) -> str:
    return value.astimezone(clock.now().tzinfo).strftime("%m-%d %H:%M") if value else "-"


def _clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


class SyncScreen(Screen[None]):
    """Runs, outbox and quarantine; ``s`` syncs now in a thread worker."""

    DEFAULT_CSS = """
    SyncScreen #sync-title { height: 1; background: $primary; color: $text; padding: 0 1; }
    SyncScreen #sync-status { height: 2; padding: 0 1; }
    SyncScreen #sync-progress { height: 1; padding: 0 1; color: $warning; }
    SyncScreen TabbedContent { height: 1fr; }
    SyncScreen DataTable { height: 1fr; }
    """

    BINDINGS = [
        Binding("s", "sync_now", "Sync now", id="sync.now"),
        Binding("r", "refresh", "Refresh", id="sync.refresh"),
        Binding("f", "retry_failed", "Retry failed", id="sync.retry_failed"),
        Binding("1", "tab('runs')", "Runs", show=False, id="sync.tab_runs"),
        Binding("2", "tab('outbox')", "Outbox", show=False, id="sync.tab_outbox"),
        Binding("3", "tab('quarantine')", "Quarantine", show=False, id="sync.tab_quarantine"),
        Binding("question_mark", "help", "Help", key_display="?", id="sync.help"),
        Binding("escape", "back", "Back", id="sync.back"),
    ]

    def __init__(self, db: Database, agent: AgentInfo) -> None:
        super().__init__()
        self.db = db
        self.agent = agent
        self.overview: SyncOverview | None = None
        self.syncing = False
        self._last_progress = 0.0

    def compose(self) -> ComposeResult:
        yield Static("collect-tui  sync with the accounting system", id="sync-title")
        yield Static("Loading...", id="sync-status")
        yield Static("", id="sync-progress")
        with TabbedContent(id="sync-tabs"):
            with TabPane("Runs", id="runs"):
                yield DataTable(id="sync-runs", cursor_type="row", zebra_stripes=True)
            with TabPane("Outbox", id="outbox"):
                yield DataTable(id="sync-outbox", cursor_type="row", zebra_stripes=True)
            with TabPane("Quarantine", id="quarantine"):
                yield DataTable(id="sync-quarantine", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#sync-runs", DataTable)
        runs.add_columns("Run", "Started UTC", "Status", "Pulled", "New", "Upd", "Push", "Error")
        outbox = self.query_one("#sync-outbox", DataTable)
        outbox.add_columns("#", "State", "Kind", "Invoice", "Tries", "What")
        quarantine = self.query_one("#sync-quarantine", DataTable)
        quarantine.add_columns("Received", "Stream", "Record", "Reason")
        self.query_one("#sync-progress", Static).display = False
        runs.focus()
        self.action_refresh()

    # Loading -------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        """Reload runs, outbox and quarantine."""
        self._load()

    @work(thread=True, exclusive=True, group="sync-load")
    def _load(self) -> None:
        try:
            overview = load_overview(self.db)
        except Exception as exc:  # shown, never a crash
            self.app.call_from_thread(self._error, f"Cannot read the sync tables: {exc}")
            return
        self.app.call_from_thread(self._show, overview)

    def _error(self, message: str) -> None:
        self.notify(message, title="Sync", severity="error", timeout=10)

    def _show(self, overview: SyncOverview) -> None:
        self.overview = overview
        now = clock.now()
        target = overview.target
        where = (
            f"{target.source}  {target.base_url}  tenant {target.tenant_id or '-'}"
            if target
            else "not set up: run 'collect-tui sync --base-url URL' once"
        )
        last = overview.runs[0] if overview.runs else None
        if last is None:
            first = "No sync has run yet."
        else:
            first = f"Last run {last.id} {last.status} {ago(last.started_at, now)}: {last.summary}"
        counts = overview.outbox_counts
        second = (
            f"Outbox: {counts['pending']:,} pending, {counts['failed']:,} failed, "
            f"{counts['delivered']:,} delivered.  Quarantine: {overview.quarantine_count:,}."
        )
        self.query_one("#sync-title", Static).update(_clip(f"collect-tui  sync  {where}", 78))
        self.query_one("#sync-status", Static).update(_clip(first, 78) + "\n" + _clip(second, 78))
        runs = self.query_one("#sync-runs", DataTable)
        runs.clear()
        for run in overview.runs:
            stats = dict(part.rsplit(" ", 1) for part in run.summary.split(", "))
            runs.add_row(
                str(run.id),
                _when(run.started_at),
                run.status,
                stats.get("pulled", "0"),
                stats.get("created", "0"),
                stats.get("updated", "0"),
                stats.get("pushed", "0"),
                _clip(run.error, 22),
                key=str(run.id),
            )
        outbox = self.query_one("#sync-outbox", DataTable)
        outbox.clear()
        for state, rows in (("failed", overview.failed), ("pending", overview.pending)):
            for row in rows:
                what = row.last_error if state == "failed" and row.last_error else row.details
                outbox.add_row(
                    str(row.id),
                    state,
                    row.kind.replace("expected_payment_date", "exp. date").replace("_", " "),
                    _clip(row.invoice_external_id, 10),
                    str(row.attempts),
                    _clip(what, 34),
                    key=f"{state}:{row.id}",
                )
        quarantine = self.query_one("#sync-quarantine", DataTable)
        quarantine.clear()
        for item in overview.quarantine:
            quarantine.add_row(
                _when(item.received_at),
                item.stream,
                _clip(item.external_id or "-", 12),
                _clip(item.reason, 40),
                key=str(item.id),
            )

    # Actions -------------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        """Show one tab (1 runs, 2 outbox, 3 quarantine)."""
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#sync-{tab}", DataTable).focus()

    def action_sync_now(self) -> None:
        """Run one sync (pull then push) in a thread worker."""
        if not self.agent.is_supervisor:
            self.notify(
                "Only a supervisor or an admin can start a sync.", title="Sync", severity="error"
            )
            return
        if self.syncing:
            self.notify("A sync is already running.", title="Sync")
            return
        self.syncing = True
        line = self.query_one("#sync-progress", Static)
        line.update("Syncing: connecting...")
        line.display = True
        self._sync()

    @work(thread=True, exclusive=True, group="sync-run")
    def _sync(self) -> None:
        def progress(phase: str, done: int, total: int | None) -> None:
            moment = time.monotonic()
            if moment - self._last_progress < PROGRESS_EVERY:
                return
            self._last_progress = moment
            of = f"/{total:,}" if total else ""
            label = phase.replace("pull:", "pulling ").replace("push", "pushing").replace("_", " ")
            self.app.call_from_thread(self._progress, f"Syncing: {label} {done:,}{of}")

        try:
            result = run_sync(self.db, progress=progress, caller=self.agent)
        except Exception as exc:
            self.app.call_from_thread(self._finished, f"Sync failed: {exc}", "error")
            return
        message = f"Run {result.run_id} {result.status}: {result.stats.summary()}"
        if result.error:
            message += f" ({result.error})"
        severity = "information" if result.status == "ok" else "warning"
        self.app.call_from_thread(self._finished, message, severity)

    def _progress(self, text: str) -> None:
        self.query_one("#sync-progress", Static).update(_clip(text, 78))

    def _finished(self, message: str, severity: str) -> None:
        self.syncing = False
        self.query_one("#sync-progress", Static).display = False
        self.notify(message, title="Sync", severity=severity, timeout=8)  # type: ignore[arg-type]
        self.action_refresh()

    def action_retry_failed(self) -> None:
        """Queue failed outcomes again (after the cause was fixed)."""
        if not self.agent.is_supervisor:
            self.notify(
                "Only a supervisor or an admin can retry failed outcomes.",
                title="Sync",
                severity="error",
            )
            return
        self._retry()

    @work(thread=True, exclusive=True, group="sync-retry")
    def _retry(self) -> None:
        try:
            count = retry_failed(self.db, clock.now(), caller=self.agent)
        except Exception as exc:
            self.app.call_from_thread(self._error, str(exc))
            return
        self.app.call_from_thread(self.notify, f"{count:,} failed outcome(s) queued again")
        self.app.call_from_thread(self.action_refresh)

    def action_back(self) -> None:
        """Back to the previous screen."""
        self.app.pop_screen()

    def action_help(self) -> None:
        keys = [
            ("s", "sync now: pull changes, then push queued outcomes"),
            ("r", "refresh the lists"),
            ("f", "queue failed outcomes again"),
            ("1 2 3", "runs, outbox, quarantine"),
            ("up/down", "move in the list"),
            ("escape", "back"),
        ]
        notes = (
            "A sync pulls customers, invoices, payments and credit notes changed since the "
            "last run; paid or voided invoices leave the queue. Outcomes (notes, promised "
            "dates, disputes) are pushed once each. Malformed records wait in quarantine."
        )
        self.app.push_screen(HelpScreen("Sync", keys, notes))


__all__ = ["SyncScreen"]
