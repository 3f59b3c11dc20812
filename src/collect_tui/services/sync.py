"""Sync runs as the app and the CLI use them: run one, and read runs, outbox and quarantine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from collect_tui.services.agents import AgentInfo, SignInRevoked, is_supervisor_now
from collect_tui.services.database import Database
from collect_tui.storage import sync_store as store
from collect_tui.storage.settings import read_setting, write_setting
from collect_tui.sync.config import ConfigError, SyncTarget, make_connector
from collect_tui.sync.engine import Progress, SyncEngine, SyncResult, SyncStats

TARGET_KEY = "sync.target"


class SyncNotPermitted(PermissionError):
    """Only supervisors and admins may run a sync or re-queue failed outcomes."""


def _require_supervisor(db: Database, caller: AgentInfo | None, what: str) -> None:
    """Refuse an agent; ``caller=None`` is the operator at the shell (the CLI)."""
    if caller is None:
        return
    with db.session() as session:
        try:
            allowed = is_supervisor_now(session, caller)
        except SignInRevoked as exc:
            raise SyncNotPermitted(str(exc)) from None
    if not allowed:
        raise SyncNotPermitted(f"only a supervisor or an admin may {what}")


@dataclass(frozen=True)
class RunView:
    """One recorded run."""

    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: str
    error: str | None


@dataclass(frozen=True)
class OutboxView:
    """One outcome waiting for delivery (or failed)."""

    id: int
    kind: str
    invoice_external_id: str | None
    details: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class QuarantineView:
    """One quarantined record."""

    id: int
    stream: str
    external_id: str | None
    reason: str
    received_at: datetime


@dataclass(frozen=True)
class SyncOverview:
    """What the sync screen shows."""

    target: SyncTarget | None
    runs: tuple[RunView, ...]
    outbox_counts: Mapping[str, int]
    pending: tuple[OutboxView, ...]
    failed: tuple[OutboxView, ...]
    quarantine: tuple[QuarantineView, ...]
    quarantine_count: int


def _summary(stats: Mapping[str, object]) -> str:
    fields = ("pulled", "created", "updated", "quarantined", "pushed", "pending", "failed")
    return ", ".join(f"{name} {int(stats.get(name, 0) or 0):,}" for name in fields)  # type: ignore[call-overload]


def _details(row: store.OutboxRow) -> str:
    payload = row.payload or {}
    if row.kind == "expected_payment_date":
        return f"expected payment {payload.get('date', '?')}"
    return str(payload.get("details", ""))


def _outbox_view(row: store.OutboxRow) -> OutboxView:
    return OutboxView(
        row.id,
        row.kind,
        row.invoice_external_id,
        _details(row),
        row.attempts,
        row.next_attempt_at,
        row.last_error,
    )


def load_overview(db: Database, *, limit: int = 50) -> SyncOverview:
    """The latest runs, pending and failed outcomes, and quarantined records."""
    with db.engine.connect() as conn:
        stored = read_setting(conn, TARGET_KEY)
        runs = tuple(
            RunView(
                r.id, r.source, r.started_at, r.finished_at, r.status, _summary(r.stats), r.error
            )  # fmt: skip
            for r in store.list_runs(conn, limit=limit)
        )
        counts = store.outbox_counts(conn)
        pending = tuple(_outbox_view(r) for r in store.list_outbox(conn, limit=limit))
        failed = tuple(
            _outbox_view(r) for r in store.list_outbox(conn, status="failed", limit=limit)
        )
        quarantine = tuple(
            QuarantineView(q.id, q.stream, q.external_id, q.reason, q.received_at)
            for q in store.list_quarantine(conn, limit=limit)
        )
        quarantine_count = store.open_quarantine_count(conn)
    target = SyncTarget.from_json(stored) if stored else None
    return SyncOverview(target, runs, counts, pending, failed, quarantine, quarantine_count)


def list_quarantine(db: Database, *, limit: int = 1000) -> list[store.QuarantineRow]:
    """Unresolved quarantined records, newest first (for ``sync --quarantine``)."""
    with db.engine.connect() as conn:
        return store.list_quarantine(conn, limit=limit)


def saved_target(db: Database) -> SyncTarget | None:
    """The target the last CLI sync used (no secrets are stored)."""
    with db.engine.connect() as conn:
        stored = read_setting(conn, TARGET_KEY)
    return SyncTarget.from_json(stored) if stored else None


def save_target(db: Database, target: SyncTarget) -> None:
    """Remember ``target`` for the app's "sync now"."""
    with db.engine.begin() as conn:
        write_setting(conn, TARGET_KEY, target.to_json())


def retry_failed(db: Database, now: datetime, *, caller: AgentInfo | None = None) -> int:
    """Queue every failed outcome again; returns how many (supervisors and admins only)."""
    _require_supervisor(db, caller, "retry failed outcomes")
    with db.engine.begin() as conn:
        return store.retry_failed_outbox(conn, now)


def run_sync(
    db: Database,
    target: SyncTarget | None = None,
    *,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
    page_size: int = 1000,
    timeout: float = 60.0,
    caller: AgentInfo | None = None,
) -> SyncResult:
    """One run (pull then push) against ``target`` (default: the saved one).

    From the app pass the signed-in ``caller``: agents are refused (:class:`SyncNotPermitted`).
    """
    _require_supervisor(db, caller, "run a sync")
    target = target or saved_target(db)
    if target is None:
        raise ConfigError(
            "sync is not set up: run 'collect-tui sync --source xero --base-url URL' once"
        )
    connector = make_connector(target, environ=environ, page_size=page_size, timeout=timeout)
    try:
        engine = SyncEngine(db.engine, connector, tenant=target.tenant_id, progress=progress)
        return engine.run()
    finally:
        connector.close()


__all__ = [
    "OutboxView",
    "QuarantineView",
    "RunView",
    "SyncOverview",
    "SyncNotPermitted",
    "SyncResult",
    "SyncStats",
    "SyncTarget",
    "list_quarantine",
    "load_overview",
    "retry_failed",
    "run_sync",
    "save_target",
    "saved_target",
]
