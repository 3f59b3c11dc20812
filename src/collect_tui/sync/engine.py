"""The sync engine: pull changed records into the database, push queued outcomes out.

Pull, per stream (contacts, invoices, payments, credit notes), page by page: each page's
records are upserted set-based by external id, its malformed records quarantined and the
stream's cursor saved in ONE transaction (pages already fetched ahead may share it, with the
last one's cursor), so a crash at any point resumes from the last page that committed and
re-applies nothing twice (upserts are idempotent). Invoices that were paid,
voided or deleted at the source leave the queue in the same transaction (open tasks on them
are cancelled, the accounts rescored).

Push: pending outbox rows are delivered one by one, each with its own ``Idempotency-Key``;
each result is committed straight after, so a crash re-sends at most the one outcome in
flight, under the same key, which the accounting system answers from its idempotency cache.
Transient failures are rescheduled with exponential backoff and full jitter (at least the
server's ``Retry-After``); a spent daily limit pauses pushing until the limit resets.
"""

from __future__ import annotations

import gc
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Transaction

from collect_tui import clock
from collect_tui.logsafe import redact_secrets
from collect_tui.storage import sync_store as store
from collect_tui.storage.scoring import rescore
from collect_tui.storage.settings import read_setting, write_setting
from collect_tui.sync.protocol import (
    AuthenticationError,
    Connector,
    ConnectorError,
    DailyLimitReached,
    Page,
)
from collect_tui.sync.records import (
    STREAMS,
    ExpectedPaymentDate,
    ExternalContact,
    ExternalCreditNote,
    ExternalInvoice,
    ExternalPayment,
    HistoryNote,
    Outcome,
    Stream,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, done, total)``: phase is ``pull:<stream>`` or ``push``."""

_LOCAL_STATUS = {
    "open": "open",
    "paid": "paid",
    "voided": "voided",
    "deleted": "deleted",
    "draft": "draft",
}
_CLOSED = ("paid", "voided", "deleted")
SQLITE_PULL_CHECKPOINT = 20_000  # WAL pages (of 4 KiB) between checkpoints during a pull
SQLITE_PULL_CACHE_KIB = 128 * 1024  # page cache while pulling (random-key index inserts)
PRELOAD_OVER = 5_000  # records in a stream above which its lookup keys are read at once
_PRELOADED = ("invoices", "payments")


@dataclass
class SyncStats:
    """What one run did; ``summary()`` is the line the CLI prints."""

    pulled: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0
    pushed: int = 0
    pending: int = 0
    failed: int = 0
    retried: int = 0
    closed_invoices: int = 0
    requests: int = 0
    push_paused_until: str | None = None
    streams: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """``pulled N, created N, updated N, quarantined N, pushed N, pending N, failed N``."""
        return (
            f"pulled {self.pulled:,}, created {self.created:,}, updated {self.updated:,}, "
            f"quarantined {self.quarantined:,}, pushed {self.pushed:,}, "
            f"pending {self.pending:,}, failed {self.failed:,}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The stats as JSON-ready values (stored on the run)."""
        return asdict(self)


@dataclass(frozen=True)
class SyncResult:
    """The outcome of a run: its id, status (``ok``, ``partial``, ``failed``) and stats."""

    run_id: int
    status: str
    stats: SyncStats
    error: str | None = None


class SyncEngine:
    """Runs one connector against one database.

    ``engine`` is the SQLAlchemy engine of the database. ``tenant`` keys the cursors (one set
    per connected organisation). ``now`` is the clock (tests pin it); ``rng`` the backoff jitter.
    """

    def __init__(
        self,
        engine: Engine,
        connector: Connector,
        *,
        tenant: str = "",
        streams: Sequence[Stream] = STREAMS,
        progress: Progress | None = None,
        push_batch: int = 200,
        max_push: int | None = None,
        retry_base: float = 30.0,
        retry_cap: float = 3600.0,
        max_attempts: int = 12,
        prefetch: int = 2,
        now: Callable[[], datetime] = clock.now,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.connector = connector
        self.source = connector.name
        self.tenant = tenant
        self.streams = tuple(streams)
        self.progress = progress
        self.push_batch = push_batch
        self.max_push = max_push
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_attempts = max_attempts
        self.prefetch = prefetch
        self._now = now
        self._rng = rng or random.Random()
        self._debtor_cache: dict[str, int] = {}
        self._deferred = False
        self._quarantine_open = False
        self._conn: Connection | None = None
        self._invoice_cache: dict[str, store.InvoiceRef] | None = None
        self._payment_cache: set[str] | None = None

    # -- the whole run -------------------------------------------------------------------

    def run(self, *, pull: bool = True, push: bool = True) -> SyncResult:
        """Pull then push, recording the run; never raises for connector failures."""
        stats = SyncStats()
        started = self._now()
        with self.engine.begin() as conn:
            run_id = store.start_run(conn, self.source, started)
            crashed = store.interrupted_runs(conn, self.source, run_id)
            store.mark_interrupted(conn, crashed, started)
        errors: list[str] = []
        try:
            if crashed:
                self._recover()
            if pull:
                try:
                    self.pull(stats)
                except (AuthenticationError, DailyLimitReached):
                    raise
                except ConnectorError as exc:  # outcomes can still go out
                    errors.append(str(exc))
            if push:
                self.push(stats)
        except AuthenticationError as exc:
            errors.append(str(exc))
        except ConnectorError as exc:
            errors.append(str(exc))
        except Exception as exc:  # recorded on the run, then re-raised for the caller
            self._finish(run_id, "failed", stats, redact_secrets(f"{type(exc).__name__}: {exc}"))
            raise
        error = redact_secrets("; ".join(errors)) or None  # no token in the stored run
        status = "ok" if error is None else "partial" if stats.pulled or stats.pushed else "failed"
        self._finish(run_id, status, stats, error)
        return SyncResult(run_id, status, stats, error)

    def _finish(self, run_id: int, status: str, stats: SyncStats, error: str | None) -> None:
        stats.requests = int(getattr(self.connector, "requests_sent", 0))
        with self.engine.begin() as conn:
            counts = store.outbox_counts(conn)
            stats.pending = counts["pending"]
            stats.failed = counts["failed"]
            data = stats.as_dict()
            data["tenant"] = self.tenant
            store.finish_run(conn, run_id, status, data, error, self._now())

    def _recover(self) -> None:
        """After a run died mid-way: re-evaluate promises (and rescore if one was deferred).

        Each incremental page commits its own rescore, so this only repairs what a run killed
        between a payments page and its promise evaluation could have left behind.
        """
        with self.engine.begin() as conn:
            if read_setting(conn, self._rescore_key()) is not None:
                now = self._now()
                rescore(conn, today=now.astimezone(UTC).date(), now=now)
                write_setting(conn, self._rescore_key(), None)
        self._evaluate_promises(None)

    # -- pull ----------------------------------------------------------------------------

    def pull(self, stats: SyncStats) -> None:
        """Pull every stream from its cursor; each page commits with its cursor.

        A stream pulled from the start (no cursor: the first sync) defers rescoring to one
        set-based pass over every account at the end, instead of one per page; a run killed
        before that pass leaves a marker, and the next run rescores everything first.
        """
        with _relaxed_gc(), self.engine.connect() as conn:
            self._conn = conn
            try:
                self._pull_all(conn, stats)
            finally:
                self._conn = None

    def _pull_all(self, conn: Connection, stats: SyncStats) -> None:
        with conn.begin():
            self._quarantine_open = store.open_quarantine_count(conn, self.source) > 0
            self._deferred = read_setting(conn, self._rescore_key()) is not None
        sqlite = conn.dialect.name == "sqlite"
        size = None
        if sqlite:  # fewer checkpoints and a bigger cache while pages stream in
            size = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_PULL_CHECKPOINT}")
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_PULL_CACHE_KIB}")
            conn.commit()
        try:
            for stream in self.streams:
                started = time.perf_counter()
                self._pull_stream(conn, stream, stats)
                stats.seconds[stream] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            now = self._now()
            with conn.begin():
                store.mark_all_synced(conn, now)
                if self._deferred:
                    rescore(conn, today=now.astimezone(UTC).date(), now=now)
                    write_setting(conn, self._rescore_key(), None)
                    self._deferred = False
            stats.seconds["rescore"] = round(time.perf_counter() - started, 3)
        finally:
            if sqlite:
                if conn.in_transaction():
                    conn.rollback()
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")
                conn.exec_driver_sql(f"PRAGMA cache_size={size}")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                conn.commit()

    def _rescore_key(self) -> str:
        return f"sync:{self.source}:{self.tenant}:rescore_pending"

    def _pull_stream(self, conn: Connection, stream: Stream, stats: SyncStats) -> None:
        """Pull one stream; pages commit with their cursor, a few at a time when they stream in.

        While the next page is already fetched (prefetch), consecutive pages share one
        transaction, up to ``GROUP_RECORDS`` records or ``GROUP_SECONDS``: the cursor saved is
        the last page's, committed with the records of every page in the group, so a crash
        still resumes from a cursor whose records all committed. The transaction is never held
        open while waiting for the server.
        """
        with conn.begin():
            since = store.get_cursor(conn, self.source, self.tenant, stream)
        done = 0
        group: Transaction | None = None
        opened = 0.0
        grouped = 0
        bad = 0
        payment_debtors: set[int] = set()
        self._invoice_cache = self._payment_cache = None
        pages = _Prefetcher(self.connector.pull(stream, since), self.prefetch)
        fetched = iter(pages)

        def commit() -> None:
            nonlocal group, grouped, bad
            if group is None:
                return
            group.commit()
            group, grouped = None, 0
            stats.quarantined += bad
            bad = 0
            if payment_debtors:  # promises are evaluated on committed payments
                self._evaluate_promises(sorted(payment_debtors))
                payment_debtors.clear()

        try:
            while True:
                try:
                    page = next(fetched)
                except StopIteration:
                    break
                except Exception:
                    commit()  # the server failed: the pages already written are sound
                    raise
                if group is None:
                    if done == 0 and (page.item_count or 0) > PRELOAD_OVER and stream in _PRELOADED:
                        # A large pull: one read of the keys instead of one lookup per page.
                        with conn.begin():
                            self._invoice_cache = store.all_invoice_refs(conn)
                            if stream == "payments":
                                self._payment_cache = store.all_payment_ids(conn)
                    if since is None and not self._deferred and not page.is_last:
                        # A pull from the start of more than a page: rescore once at the end.
                        with conn.begin():
                            write_setting(conn, self._rescore_key(), self._now().isoformat())
                        self._deferred = True
                    group, opened = conn.begin(), time.perf_counter()
                bad += self._apply_page(conn, page, stats, payment_debtors)
                size = len(page.records) + len(page.malformed) + page.skipped
                done += size
                grouped += size
                if (
                    page.is_last
                    or grouped >= GROUP_RECORDS
                    or time.perf_counter() - opened >= GROUP_SECONDS
                    or not pages.ready()
                ):
                    commit()
                stats.streams[stream] = stats.streams.get(stream, 0) + len(page.records)
                if self.progress is not None:
                    self.progress(f"pull:{stream}", done, page.item_count)
            commit()  # the connector ended without a last page
        finally:
            if group is not None:
                group.rollback()
            pages.close()
        self._invoice_cache = self._payment_cache = None

    def _apply_page(
        self, conn: Connection, page: Page, stats: SyncStats, payment_debtors: set[int]
    ) -> int:
        """Write one page with its cursor in the open transaction; returns its quarantined."""
        now = self._now()
        bad = [(m.stream, m.external_id, m.reason, m.raw) for m in page.malformed]
        touched: set[int] = set()
        if page.stream == "contacts":
            touched = self._contacts(conn, page, stats, now)
        elif page.stream == "invoices":
            touched = self._invoices(conn, page, stats, now, bad)
        elif page.stream == "payments":
            touched = self._payments(conn, page, stats, now, bad)
            payment_debtors.update(touched)
        else:
            touched = self._credit_notes(conn, page, stats, now, bad)
        if bad:
            store.quarantine_records(conn, self.source, bad, now)
        if self._quarantine_open and page.records:
            store.resolve_quarantine(
                conn,
                self.source,
                page.stream,
                [r.external_id for r in page.records],
            )
        if touched and not self._deferred:
            store.touch_debtors(conn, touched, now)
            rescore(conn, today=now.astimezone(UTC).date(), now=now, debtor_ids=sorted(touched))
        if page.cursor is not None:
            store.set_cursor(conn, self.source, self.tenant, page.stream, page.cursor, now)
        stats.skipped += page.skipped
        return len(bad)

    def _debtor_ids(self, conn: Connection, externals: set[str], now: datetime) -> dict[str, int]:
        missing = [e for e in externals if e not in self._debtor_cache]
        if missing:
            found = store.debtor_ids(conn, missing)
            unknown = [e for e in missing if e not in found]
            if unknown:
                store.create_stub_debtors(conn, unknown, now)
                found.update(store.debtor_ids(conn, unknown))
            self._debtor_cache.update(found)
        return {e: self._debtor_cache[e] for e in externals}

    def _contacts(self, conn: Connection, page: Page, stats: SyncStats, now: datetime) -> set[int]:
        contacts = [r for r in page.records if isinstance(r, ExternalContact)]
        if not contacts:
            return set()
        known = store.debtor_ids(conn, [c.external_id for c in contacts])
        values = store.values_for(conn)
        stamp = values.ts(now)
        defaults = store.debtor_defaults(values)
        rows = []
        for c in contacts:
            address = c.address
            country = store.country_code(address.country if address else None) or "US"
            rows.append(
                (
                    c.external_id,
                    (c.name or c.external_id)[:200],
                    values.flag(c.is_company),
                    _person(c),
                    c.tax_number[:64] if c.tax_number else None,
                    _address_text(c),
                    country,
                    store.zone_for(country),
                    c.default_currency or store.currency_for(country),
                    stamp,
                    stamp,
                    stamp,
                    *defaults,
                )
            )
        store.upsert_debtors(conn, rows)
        ids = store.debtor_ids(conn, [c.external_id for c in contacts])
        self._debtor_cache.update(ids)
        stats.pulled += len(contacts)
        stats.created += sum(1 for c in contacts if c.external_id not in known)
        stats.updated += sum(1 for c in contacts if c.external_id in known)
        phone_rows = [
            (ids[c.external_id], p.number[:32], _phone_kind(p.type))
            for c in contacts
            for p in c.phones
        ]
        email_rows = [(ids[c.external_id], e[:254]) for c in contacts for e in c.email_addresses]
        store.add_contact_points(conn, phone_rows, email_rows)
        return set(ids.values())

    def _invoices(
        self,
        conn: Connection,
        page: Page,
        stats: SyncStats,
        now: datetime,
        bad: list[tuple[str, str | None, str, Mapping[str, Any]]],
    ) -> set[int]:
        items = [r for r in page.records if isinstance(r, ExternalInvoice)]
        if not items:
            return set()
        # The latest version of each invoice in the page wins.
        latest: dict[str, ExternalInvoice] = {}
        for item in items:
            seen = latest.get(item.external_id)
            if seen is None or seen.updated_at <= item.updated_at:
                latest[item.external_id] = item
        if self._invoice_cache is not None:
            cache = self._invoice_cache
            existing = {k: cache[k] for k in latest if k in cache}
        else:
            existing = store.invoice_refs(conn, latest)
        owners = self._debtor_ids(conn, {i.contact_external_id for i in latest.values()}, now)
        values = store.values_for(conn)
        ts, day, money = values.ts, values.day, values.money
        stamp = ts(now)
        rows = []
        touched: set[int] = set()
        closing: list[str] = []
        zero = Decimal("0")
        for inv in latest.values():
            status = _LOCAL_STATUS[inv.status]
            if status == "open" and inv.amount_due <= 0:
                status = "paid"
            debtor_id = owners[inv.contact_external_id]
            ref = existing.get(inv.external_id)
            if ref is None:
                stats.created += 1
            elif ref.source_updated_at is not None and ref.source_updated_at > inv.updated_at:
                stats.unchanged += 1
                continue
            elif ref.source_updated_at == inv.updated_at:
                stats.unchanged += 1
            else:
                stats.updated += 1
            if ref is not None:
                touched.add(ref.debtor_id)
                if status in _CLOSED and ref.status not in _CLOSED:
                    closing.append(inv.external_id)
            touched.add(debtor_id)
            rows.append(
                (
                    inv.external_id,
                    debtor_id,
                    (inv.number or inv.external_id[:8])[:64],
                    day(inv.issue_date),
                    day(inv.due_date or inv.issue_date),
                    inv.currency,
                    money(inv.total),
                    money(max(inv.amount_due, zero)),
                    money(inv.amount_paid),
                    status,
                    day(inv.expected_payment_date),
                    ts(inv.updated_at),
                    stamp,
                    1,
                )
            )
        stats.pulled += len(items)
        store.upsert_invoices(conn, rows)
        if self._invoice_cache is not None:  # seen in this pull (the id is not needed here)
            for row in rows:
                self._invoice_cache[row[0]] = store.InvoiceRef(-1, row[1], None, row[9])
        if closing:
            refs = store.invoice_refs(conn, closing)
            store.close_followups(conn, [r.id for r in refs.values()], now)
            stats.closed_invoices += len(closing)
        return touched

    def _payments(
        self,
        conn: Connection,
        page: Page,
        stats: SyncStats,
        now: datetime,
        bad: list[tuple[str, str | None, str, Mapping[str, Any]]],
    ) -> set[int]:
        items = [r for r in page.records if isinstance(r, ExternalPayment)]
        if not items:
            return set()
        if self._invoice_cache is not None and self._payment_cache is not None:
            cache = self._invoice_cache
            refs = {i: cache[i] for i in {p.invoice_external_id for p in items} if i in cache}
            known = {p.external_id for p in items if p.external_id in self._payment_cache}
            self._payment_cache.update(p.external_id for p in items)
        else:
            refs = store.invoice_refs(conn, {p.invoice_external_id for p in items})
            known = store.existing_payments(conn, [p.external_id for p in items])
        values = store.values_for(conn)
        stamp = values.ts(now)
        rows: dict[str, tuple[Any, ...]] = {}
        fresh: list[int] = []
        touched: set[int] = set()
        for p in items:
            ref = refs.get(p.invoice_external_id)
            if ref is None:
                bad.append(
                    (
                        "payments",
                        p.external_id,
                        f"invoice {p.invoice_external_id} is not synced (not a sales invoice, "
                        "or quarantined)",
                        p.model_dump(mode="json"),
                    )
                )
                continue
            stats.pulled += 1
            if p.external_id in known or p.external_id in rows:
                stats.updated += 1
            else:
                stats.created += 1
                if p.status == "active" and ref.status == "open":
                    fresh.append(ref.id)
            touched.add(ref.debtor_id)
            rows[p.external_id] = (
                p.external_id,
                ref.debtor_id,
                ref.id,
                values.money(p.amount),
                p.currency or "USD",
                values.day(p.date),
                stamp,
                values.flag(True),
                p.status,
            )
        store.upsert_payments(conn, list(rows.values()))
        if fresh:
            store.apply_payments(conn, fresh, now)
        return touched

    def _credit_notes(
        self,
        conn: Connection,
        page: Page,
        stats: SyncStats,
        now: datetime,
        bad: list[tuple[str, str | None, str, Mapping[str, Any]]],
    ) -> set[int]:
        """Credit notes lower invoice balances at the source, which the invoice pull brings.

        They are not stored; the accounts they belong to are marked as synced.
        """
        items = [r for r in page.records if isinstance(r, ExternalCreditNote)]
        stats.pulled += len(items)
        stats.unchanged += len(items)
        if not items:
            return set()
        owners = store.debtor_ids(conn, {c.contact_external_id for c in items})
        return set(owners.values())

    def _evaluate_promises(self, debtor_ids: list[int] | None) -> None:
        from collect_tui.services.database import Database
        from collect_tui.services.workspace import evaluate_promises
        from collect_tui.storage.engine import make_session_factory

        if debtor_ids is not None:
            with self.engine.connect() as conn:
                debtor_ids = store.debtors_with_pending_promises(conn, debtor_ids)
            if not debtor_ids:
                return
        now = self._now()
        db = Database(self.engine, make_session_factory(self.engine))
        evaluate_promises(db, today=now.astimezone(UTC).date(), debtor_ids=debtor_ids, now=now)

    # -- push ----------------------------------------------------------------------------

    def _pause_key(self) -> str:
        return f"sync:{self.source}:{self.tenant}:push_paused_until"

    def push(self, stats: SyncStats) -> None:
        """Deliver due outbox rows, committing each result as it comes back."""
        now = self._now()
        with self.engine.begin() as conn:
            paused = read_setting(conn, self._pause_key())
            if paused is not None:
                until = datetime.fromisoformat(paused)
                if until > now:
                    stats.push_paused_until = paused
                    return
                write_setting(conn, self._pause_key(), None)
        sent = 0
        after_id = 0
        total: int | None = None
        while self.max_push is None or sent < self.max_push:
            with self.engine.connect() as conn:
                batch = store.due_outbox(
                    conn, self._now(), after_id=after_id, limit=self.push_batch
                )
                if total is None:
                    total = store.outbox_counts(conn)["pending"]
            if not batch:
                return
            for row in batch:
                if self.max_push is not None and sent >= self.max_push:
                    return
                after_id = row.id
                sent += 1
                if not self._push_one(row, stats):
                    return
                if self.progress is not None:
                    self.progress("push", sent, total)

    def _push_one(self, row: store.OutboxRow, stats: SyncStats) -> bool:
        """Push one row and commit its result; ``False`` stops pushing for this run."""
        try:
            outcome = _outcome(row)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            with self.engine.begin() as conn:
                store.outbox_failed(
                    conn, row.id, redact_secrets(f"cannot build the outcome: {exc}")
                )
            return True
        result = self.connector.push(outcome)
        now = self._now()
        with self.engine.begin() as conn:
            if result.status == "delivered":
                store.outbox_delivered(conn, row.id, now)
                stats.pushed += 1
                return True
            reason = redact_secrets(result.reason or result.status)
            if result.status == "failed":
                store.outbox_failed(conn, row.id, reason)
                return True
            if result.status == "daily_limit_reached":
                wait = result.retry_after if result.retry_after is not None else 3600.0
                until = now + timedelta(seconds=wait)
                write_setting(conn, self._pause_key(), until.isoformat())
                store.outbox_retry_later(conn, row.id, until, reason)
                stats.push_paused_until = until.isoformat()
                return False
            stats.retried += 1
            if row.attempts + 1 >= self.max_attempts:
                store.outbox_failed(
                    conn, row.id, f"gave up after {row.attempts + 1} tries: {reason}"
                )
                return True
            ceiling = min(self.retry_cap, self.retry_base * 2**row.attempts)
            delay = max(self._rng.uniform(0.0, ceiling), result.retry_after or 0.0)
            store.outbox_retry_later(conn, row.id, now + timedelta(seconds=delay), reason)
            # A 429 the connector would not wait out: the minute budget is gone for now.
            return result.http_status != 429


_DONE = object()
GROUP_RECORDS = 5_000
"""Records of consecutive, already fetched pages that may share one transaction."""
GROUP_SECONDS = 1.0
"""Longest a group's transaction stays open (other writers wait on SQLite meanwhile)."""
PULL_GC_THRESHOLDS = (50_000, 50, 1_000)
"""Collector thresholds while pulling (see ``_relaxed_gc``)."""


@contextmanager
def _relaxed_gc() -> Iterator[None]:
    """Collect cyclic garbage rarely while pages stream in.

    A pull allocates millions of short-lived, acyclic objects (parsed JSON, records, rows)
    that reference counting frees; with the default thresholds the collector still walks the
    whole heap (the key caches of a large pull) over and over, which cost a third of the
    pull's CPU time. The thresholds only rise, and are put back afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(before, PULL_GC_THRESHOLDS, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Prefetcher:
    """Fetch up to ``depth`` pages ahead in a thread while the caller commits the current one.

    Pages are only fetched, never committed, ahead of time: cursors still advance strictly
    after their page commits. Errors of the fetch are raised in order, by the iteration.
    ``ready()`` says whether the next page (or the end) is already there; with ``depth`` 0
    pages are fetched on demand and it is always ``False``.
    """

    def __init__(self, pages: Iterator[Page], depth: int) -> None:
        self._pages = pages
        self._depth = depth
        self._box: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        if depth > 0:
            self._worker = threading.Thread(target=self._produce, name="sync-prefetch", daemon=True)
            self._worker.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for page in self._pages:
                if not self._put(page):
                    return
            item: Any = _DONE
        except BaseException as exc:  # handed to the consumer
            item = exc
        self._put(item)

    def __iter__(self) -> Iterator[Page]:
        if self._worker is None:
            yield from self._pages
            return
        while True:
            item = self._box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def ready(self) -> bool:
        """True when the next page (or the end of the stream) needs no wait."""
        return self._worker is not None and not self._box.empty()

    def close(self) -> None:
        """Stop fetching ahead and wait for the fetching thread."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)


def _outcome(row: store.OutboxRow) -> Outcome:
    if not row.invoice_external_id:
        raise ValueError("the outcome names no invoice")
    payload = row.payload or {}
    if row.kind in ("history_note", "dispute"):
        return HistoryNote(
            invoice_external_id=row.invoice_external_id,
            idempotency_key=row.idempotency_key,
            details=str(payload["details"]),
        )
    if row.kind == "expected_payment_date":
        day = store.as_date(payload["date"])
        if not isinstance(day, date):
            raise ValueError("no date in the outcome")
        return ExpectedPaymentDate(
            invoice_external_id=row.invoice_external_id,
            idempotency_key=row.idempotency_key,
            date=day,
        )
    raise ValueError(f"unknown outcome kind {row.kind!r}")


def _person(contact: ExternalContact) -> str | None:
    if not contact.is_company:
        return None
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    return name[:200] or None


def _address_text(contact: ExternalContact) -> str | None:
    address = contact.address
    if address is None:
        return None
    parts = [*address.lines]
    place = " ".join(p for p in (address.city, address.region, address.postal_code) if p)
    if place:
        parts.append(place)
    if address.country:
        parts.append(address.country)
    return "\n".join(parts) or None


def _phone_kind(kind: str) -> str:
    return {"mobile": "mobile", "ddi": "work", "office": "work"}.get(kind, "home")


__all__ = ["Progress", "SyncEngine", "SyncResult", "SyncStats"]
