"""The sync engine against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from collect_tui.services.agents import AgentInfo, create_agent
from collect_tui.services.database import Database
from collect_tui.services.workspace import load_account, log_contact, make_promise, open_dispute
from collect_tui.storage import sync_store as store
from collect_tui.storage.models import (
    Debtor,
    Invoice,
    OutboxMessage,
    Payment,
    Promise,
    QuarantinedRecord,
    SyncCursor,
    SyncRun,
    Task,
)
from collect_tui.storage.settings import read_setting, write_setting
from collect_tui.sync.engine import SyncEngine
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import XeroConnector

from .conftest import TENANT

NOW = datetime.now(UTC).replace(microsecond=0)

MakeConnector = Callable[..., XeroConnector]


def _engine(db: Database, connector: XeroConnector, **options: Any) -> SyncEngine:
    options.setdefault("rng", random.Random(1))
    return SyncEngine(db.engine, connector, tenant=TENANT, **options)


def _scalar(db: Database, query: Any) -> Any:
    with db.session() as session:
        return session.scalar(query)


def _rows(db: Database, query: Any) -> list[Any]:
    with db.session() as session:
        return list(session.execute(query).all())


def _open_invoice(db: Database, sandbox: SandboxServer) -> tuple[int, int, str]:
    """An open invoice (id, debtor id, external id) the sandbox also has as AUTHORISED."""
    authorised = set(sandbox.invoice_ids("AUTHORISED"))
    for id_, debtor_id, external in _rows(
        db,
        select(Invoice.id, Invoice.debtor_id, Invoice.external_id)
        .where(Invoice.status == "open", Invoice.amount_due > 10)
        .order_by(Invoice.id),
    ):
        if external in authorised:
            return id_, debtor_id, external
    raise AssertionError("no open invoice")


def _supervisor(db: Database) -> AgentInfo:
    return create_agent(db, "sup", role="supervisor", display_name="Sam Super")


def _version(db: Database, debtor_id: int) -> int:
    return int(_scalar(db, select(Debtor.version).where(Debtor.id == debtor_id)))


def test_full_pull_then_incremental_makes_one_request_per_resource(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox, page_size=50)
    result = _engine(db, connector).run()
    assert result.status == "ok", result.error
    stored = {e for (e,) in _rows(db, select(Invoice.external_id))}
    assert stored == set(sandbox.invoice_ids())
    assert result.stats.streams["invoices"] == len(stored)
    assert result.stats.created >= len(stored) + len(sandbox.contact_ids())
    # Amounts and statuses follow the source.
    for external in list(stored)[:20]:
        wire = sandbox.invoice(external)
        row = _rows(
            db,
            select(Invoice.amount_due, Invoice.status).where(Invoice.external_id == external),
        )[0]
        assert row.amount_due == max(Decimal(str(wire["AmountDue"])), Decimal("0"))
        expected = {"AUTHORISED": "open", "PAID": "paid", "VOIDED": "voided"}.get(wire["Status"])
        if expected and not (expected == "open" and row.amount_due <= 0):
            assert row.status == expected
    # Debtor caches were refreshed by the deferred set-based rescore.
    balance = _scalar(db, select(func.sum(Debtor.open_balance)))
    open_due = _scalar(db, select(func.sum(Invoice.amount_due)).where(Invoice.status == "open"))
    assert balance == open_due
    assert _scalar(db, select(func.count()).where(Debtor.scored_at.is_(None))) == 0

    sandbox.requests.clear()
    again = _engine(db, connector).run()
    assert again.stats.pulled == 0 and again.stats.created == 0
    gets = [r for r in sandbox.requests if r.method == "GET"]
    assert sorted(r.path for r in gets) == ["/Contacts", "/CreditNotes", "/Invoices", "/Payments"]
    assert all(r.if_modified_since for r in gets if r.path in ("/Contacts", "/Invoices"))
    assert {e for (e,) in _rows(db, select(Invoice.external_id))} == stored


def test_paid_and_voided_invoices_leave_the_queue(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox)
    _engine(db, connector).run()
    sup = _supervisor(db)
    paid_id, debtor_id, paid_ext = _open_invoice(db, sandbox)
    due = _scalar(db, select(Invoice.amount_due).where(Invoice.id == paid_id))
    make_promise(
        db, sup, debtor_id, _version(db, debtor_id), amount=due,
        due_date=NOW.date() + timedelta(days=3), invoice_id=paid_id,
    )  # fmt: skip
    # A second open invoice, voided at the source, with a promise and a cadence step on it.
    authorised = set(sandbox.invoice_ids("AUTHORISED"))
    void_id, void_debtor, void_ext = next(
        row
        for row in _rows(
            db,
            select(Invoice.id, Invoice.debtor_id, Invoice.external_id).where(
                Invoice.status == "open", Invoice.debtor_id != debtor_id
            ),
        )
        if row[2] in authorised
    )
    make_promise(
        db, sup, void_debtor, _version(db, void_debtor), amount=Decimal("5"),
        due_date=NOW.date() + timedelta(days=3), invoice_id=void_id,
    )  # fmt: skip
    with db.session() as session:
        session.add(
            Task(
                debtor_id=void_debtor, invoice_id=void_id, kind="cadence", step_key="d7", due_at=NOW
            )  # fmt: skip
        )
    sandbox.mark_paid(paid_ext, on=NOW.date())
    sandbox.touch_invoice(void_ext, status="VOIDED")

    result = _engine(db, connector).run(push=False)
    assert result.status == "ok"
    assert result.stats.closed_invoices == 2
    statuses = dict(
        _rows(db, select(Invoice.id, Invoice.status).where(Invoice.id.in_([paid_id, void_id])))
    )
    assert statuses == {paid_id: "paid", void_id: "voided"}
    # The payment arrived and kept the promise; the voided invoice's promise is cancelled.
    assert _scalar(
        db, select(func.count()).select_from(Payment).where(Payment.invoice_id == paid_id)
    )
    promise_status = dict(_rows(db, select(Promise.invoice_id, Promise.status)))
    assert promise_status == {paid_id: "kept", void_id: "cancelled"}
    assert _scalar(db, select(Task.status).where(Task.invoice_id == void_id)) == "cancelled"
    # Balances and open-invoice counts no longer include them.
    for debtor in (debtor_id, void_debtor):
        balance, count = _rows(
            db, select(Debtor.open_balance, Debtor.open_invoices).where(Debtor.id == debtor)
        )[0]
        open_rows = _rows(
            db,
            select(Invoice.amount_due).where(Invoice.debtor_id == debtor, Invoice.status == "open"),
        )
        assert count == len(open_rows)
        assert balance == sum((r[0] for r in open_rows), Decimal("0"))


def test_payment_lowers_the_balance_before_the_invoice_is_pulled_again(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox)
    _engine(db, connector).run()
    invoice_id, debtor_id, external = _open_invoice(db, sandbox)
    due = _scalar(db, select(Invoice.amount_due).where(Invoice.id == invoice_id))
    sandbox.mark_paid(external, Decimal("10.00"))
    _engine(db, connector, streams=("payments",)).run(push=False)
    assert _scalar(db, select(Invoice.amount_due).where(Invoice.id == invoice_id)) == due - 10
    balance = _scalar(db, select(Debtor.open_balance).where(Debtor.id == debtor_id))
    # The invoice pull then confirms the same figure, never counting the payment twice.
    _engine(db, connector).run(push=False)
    assert _scalar(db, select(Invoice.amount_due).where(Invoice.id == invoice_id)) == due - 10
    assert _scalar(db, select(Debtor.open_balance).where(Debtor.id == debtor_id)) == balance


def test_outcomes_are_pushed_once_with_their_keys(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox)
    _engine(db, connector).run()
    sup = _supervisor(db)
    invoice_id, debtor_id, external = _open_invoice(db, sandbox)
    promised = NOW.date() + timedelta(days=5)
    make_promise(
        db, sup, debtor_id, _version(db, debtor_id), amount=Decimal("10"), due_date=promised,
        invoice_id=invoice_id,
    )  # fmt: skip
    log_contact(
        db, sup, debtor_id, _version(db, debtor_id), channel="email", direction="inbound",
        disposition="right_party", notes="x" * 400,
    )  # fmt: skip
    open_dispute(
        db, sup, debtor_id, _version(db, debtor_id), invoice_ids=[invoice_id],
        reason="Goods arrived damaged",
    )  # fmt: skip
    keys = {k for (k,) in _rows(db, select(OutboxMessage.idempotency_key))}
    assert len(keys) >= 3

    result = _engine(db, connector).run(pull=False)
    assert result.stats.pushed == len(keys) and result.stats.pending == 0
    writes = [p for p in sandbox.pushes if not p.replayed]
    assert sorted(p.idempotency_key for p in writes) == sorted(keys)
    assert all(len(p.body.get("HistoryRecords", [{}])[0].get("Details", "")) <= 250 for p in writes)
    assert sandbox.invoice(external)["ExpectedPaymentDate"].startswith("/Date(")
    history = sandbox.history(external)
    assert any(h.startswith("Disputed: Goods arrived damaged") for h in history)

    # A crash after delivery but before the commit: the same key is sent again, and the
    # sandbox answers from its idempotency cache; nothing is added twice.
    with db.session() as session:
        session.execute(update(OutboxMessage).values(status="pending", delivered_at=None))
    before = {i: list(sandbox.history(i)) for i in {p.invoice_id for p in writes}}
    again = _engine(db, connector).run(pull=False)
    assert again.stats.pushed == len(keys)
    assert {i: list(sandbox.history(i)) for i in before} == before
    assert sum(1 for p in sandbox.pushes if not p.replayed) == len(keys)
    assert _engine(db, connector).run(pull=False).stats.pushed == 0


def test_transient_failures_back_off_and_honour_retry_after(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox, max_retries=1, max_wait=1.0)
    _engine(db, connector).run()
    invoice_id, debtor_id, external = _open_invoice(db, sandbox)
    with db.session() as session:
        for n in range(3):
            session.add(
                OutboxMessage(idempotency_key=f"k{n}", kind="history_note", debtor_id=debtor_id,
                              invoice_external_id=external, payload={"details": f"note {n}"})
            )  # fmt: skip
    sandbox.fail_next(2, 503)
    now = datetime.now(UTC)
    result = _engine(db, connector, now=lambda: now).run(pull=False)
    assert result.stats.retried == 1 and result.stats.pushed == 2
    row = _rows(db, select(OutboxMessage).where(OutboxMessage.idempotency_key == "k0"))[0][0]
    assert row.status == "pending" and row.attempts == 1 and "503" in (row.last_error or "")
    assert now < row.next_attempt_at <= now + timedelta(seconds=30)

    # A 429 asking for a long wait: rescheduled after Retry-After, and pushing stops.
    with db.session() as session:
        session.execute(update(OutboxMessage).values(status="pending", next_attempt_at=now))
    sandbox.rate_limit_next(1, retry_after=500)
    result = _engine(db, connector, now=lambda: now).run(pull=False)
    assert result.stats.pushed == 0
    first = _rows(db, select(OutboxMessage).where(OutboxMessage.idempotency_key == "k0"))[0][0]
    assert first.next_attempt_at >= now + timedelta(seconds=500)
    # Permanent failures (unknown invoice) are kept with their reason, never retried.
    with db.session() as session:
        session.add(
            OutboxMessage(idempotency_key="gone", kind="history_note", debtor_id=debtor_id,
                          invoice_external_id="no-such-invoice", payload={"details": "x"})
        )  # fmt: skip
    result = _engine(db, connector).run(pull=False)
    gone = _rows(db, select(OutboxMessage).where(OutboxMessage.idempotency_key == "gone"))[0][0]
    assert gone.status == "failed" and "404" in (gone.last_error or "")


def test_daily_limit_stops_pushing_until_it_resets(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox)
    _engine(db, connector).run()
    _, debtor_id, external = _open_invoice(db, sandbox)
    with db.session() as session:
        for n in range(3):
            session.add(
                OutboxMessage(idempotency_key=f"d{n}", kind="history_note", debtor_id=debtor_id,
                              invoice_external_id=external, payload={"details": f"note {n}"})
            )  # fmt: skip
    sandbox.rate_limit_next(1, problem="day", retry_after=3600)
    now = datetime.now(UTC)
    result = _engine(db, connector, now=lambda: now).run(pull=False)
    assert result.stats.pushed == 0 and result.stats.push_paused_until
    sandbox.requests.clear()
    later = _engine(db, connector, now=lambda: now + timedelta(minutes=30)).run(pull=False)
    assert later.stats.pushed == 0 and not sandbox.requests_to(
        f"/Invoices/{external}/History", "PUT"
    )
    after = _engine(db, connector, now=lambda: now + timedelta(hours=2)).run(pull=False)
    assert after.stats.pushed == 3 and after.stats.pending == 0


def test_malformed_records_are_quarantined_and_the_rest_commits(
    db: Database, make_sandbox: Callable[..., SandboxServer], make_connector: MakeConnector
) -> None:
    sandbox = make_sandbox(malformed_rate=0.08)
    connector = make_connector(sandbox, page_size=25)
    result = _engine(db, connector).run()
    assert result.status == "ok"
    expected_bad = sum(len(ids) for ids in sandbox.malformed_ids.values())
    assert expected_bad > 0
    quarantined = _scalar(db, select(func.count()).select_from(QuarantinedRecord))
    assert result.stats.quarantined == quarantined >= expected_bad
    reasons = [r for (r,) in _rows(db, select(QuarantinedRecord.reason))]
    assert all(reasons)
    stored = {e for (e,) in _rows(db, select(Invoice.external_id))}
    assert set(sandbox.invoice_ids()) <= stored
    assert not stored & sandbox.malformed_ids["Invoices"]
    # Pulling everything again replaces quarantined copies instead of adding more.
    with db.session() as session:
        session.execute(SyncCursor.__table__.delete())
    _engine(db, connector).run()
    assert _scalar(db, select(func.count()).select_from(QuarantinedRecord)) == quarantined


def test_cursor_advances_only_after_its_page_commits(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector, monkeypatch: Any
) -> None:
    connector = make_connector(sandbox, page_size=20)
    engine = _engine(db, connector, prefetch=0)
    original = store.upsert_invoices
    calls = {"n": 0}

    def failing(conn: Any, rows: Any) -> None:
        calls["n"] += 1
        original(conn, rows)
        if calls["n"] == 3:
            raise RuntimeError("disk full")

    monkeypatch.setattr(store, "upsert_invoices", failing)
    with pytest.raises(RuntimeError):
        engine.run()
    monkeypatch.setattr(store, "upsert_invoices", original)
    assert _scalar(db, select(func.count()).select_from(Invoice)) == 40
    cursor = _scalar(db, select(SyncCursor.cursor).where(SyncCursor.stream == "invoices"))
    assert cursor is not None
    run = _rows(db, select(SyncRun.status, SyncRun.error))[0]
    assert run.status == "failed" and "disk full" in run.error

    result = _engine(db, connector).run()
    assert result.status == "ok"
    stored = [e for (e,) in _rows(db, select(Invoice.external_id))]
    assert len(stored) == len(set(stored)) and set(stored) == set(sandbox.invoice_ids())


def test_freshness_shows_the_last_sync(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    connector = make_connector(sandbox)
    _engine(db, connector, now=lambda: at).run()
    sup = _supervisor(db)
    _, debtor_id, _ = _open_invoice(db, sandbox)
    view = load_account(db, sup, debtor_id, now=at + timedelta(hours=1))
    assert view.freshness.debtor_synced_at == at
    assert view.freshness.invoices_synced_at == at
    later = at + timedelta(hours=2)
    _engine(db, connector, now=lambda: later).run()
    view = load_account(db, sup, debtor_id, now=later)
    assert view.freshness.debtor_synced_at == later  # nothing changed, but it was checked


def test_invoice_of_an_unknown_contact_gets_a_placeholder_account(
    db: Database, make_sandbox: Callable[..., SandboxServer], make_connector: MakeConnector
) -> None:
    sandbox = make_sandbox()
    connector = make_connector(sandbox)
    _engine(db, connector, streams=("invoices",)).run()
    stored = {e for (e,) in _rows(db, select(Invoice.external_id))}
    assert stored == set(sandbox.invoice_ids())
    names = [n for (n,) in _rows(db, select(Debtor.name))]
    assert all(n.startswith("Contact ") for n in names)
    _engine(db, connector).run()
    names = [n for (n,) in _rows(db, select(Debtor.name))]
    assert not any(n.startswith("Contact ") for n in names)


def test_interrupted_run_is_recorded_and_repaired(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    with db.engine.begin() as conn:
        store.start_run(conn, "xero", datetime.now(UTC))
        write_setting(conn, f"sync:xero:{TENANT}:rescore_pending", "x")
    result = _engine(db, make_connector(sandbox)).run()
    assert result.status == "ok"
    statuses = [s for (s,) in _rows(db, select(SyncRun.status).order_by(SyncRun.id))]
    assert statuses == ["interrupted", "ok"]
    with db.engine.connect() as conn:
        assert read_setting(conn, f"sync:xero:{TENANT}:rescore_pending") is None


def test_summary_line_names_every_count() -> None:
    from collect_tui.sync.engine import SyncStats

    line = SyncStats(pulled=1200, created=3, pushed=2, pending=1).summary()
    assert line == (
        "pulled 1,200, created 3, updated 0, quarantined 0, pushed 2, pending 1, failed 0"
    )
    assert date.today()  # keeps the import honest for the type checker


def test_a_failed_pull_still_pushes_and_is_recorded_as_partial(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    connector = make_connector(sandbox, max_retries=0)
    _engine(db, connector).run()
    _, debtor_id, external = _open_invoice(db, sandbox)
    with db.session() as session:
        session.add(
            OutboxMessage(idempotency_key="p1", kind="history_note", debtor_id=debtor_id,
                          invoice_external_id=external, payload={"details": "Called"})
        )  # fmt: skip
    sandbox.fail_next(1, 503)
    result = _engine(db, connector).run()
    assert result.status == "partial" and "503" in (result.error or "")
    assert result.stats.pushed == 1
    assert sandbox.history(external) == ["Called"]
    run = _rows(db, select(SyncRun.status, SyncRun.error).order_by(SyncRun.id.desc()))[0]
    assert run.status == "partial"


def test_grouped_pages_commit_together_with_the_last_cursor(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector, monkeypatch: Any
) -> None:
    """Pages fetched ahead share a transaction; a failure rolls the whole group back, and the
    saved cursor never runs ahead of what committed."""
    import time

    from collect_tui.sync.xero import parse_xero_datetime

    connector = make_connector(sandbox, page_size=20)
    engine = _engine(db, connector, prefetch=3)
    original = store.upsert_invoices
    calls = {"n": 0}

    def slow_then_failing(conn: Any, rows: Any) -> None:
        calls["n"] += 1
        time.sleep(0.05)  # lets the next pages arrive, so they join the open transaction
        original(conn, rows)
        if calls["n"] == 4:
            raise RuntimeError("disk full")

    monkeypatch.setattr(store, "upsert_invoices", slow_then_failing)
    with pytest.raises(RuntimeError):
        engine.run()
    monkeypatch.setattr(store, "upsert_invoices", original)
    stored = {e for (e,) in _rows(db, select(Invoice.external_id))}
    assert len(stored) < 60  # at least the pages of the failing group were rolled back
    cursor = _scalar(db, select(SyncCursor.cursor).where(SyncCursor.stream == "invoices"))
    if cursor is not None:
        cursor = cursor if cursor.tzinfo else cursor.replace(tzinfo=UTC)
        upto = {
            i
            for i in sandbox.invoice_ids()
            if parse_xero_datetime(sandbox.invoice(i)["UpdatedDateUTC"]) <= cursor
        }
        assert upto <= stored
    else:
        assert not stored

    result = _engine(db, connector, prefetch=3).run()
    assert result.status == "ok"
    again = [e for (e,) in _rows(db, select(Invoice.external_id))]
    assert len(again) == len(set(again)) and set(again) == set(sandbox.invoice_ids())


def test_a_run_with_nothing_new_rewrites_no_account_but_every_account_is_fresh(
    db: Database, sandbox: SandboxServer, make_connector: MakeConnector
) -> None:
    """A complete pull stamps the source once; rewriting every account on each run locked
    the whole portfolio against agents' saves."""
    connector = make_connector(sandbox, page_size=50)
    assert _engine(db, connector, now=lambda: NOW).run().status == "ok"
    rows_before = _rows(db, select(Debtor.id, Debtor.version, Debtor.last_synced_at))
    later = NOW + timedelta(minutes=5)
    again = _engine(db, connector, now=lambda: later).run()
    assert again.status == "ok" and again.stats.pulled == 0
    assert _rows(db, select(Debtor.id, Debtor.version, Debtor.last_synced_at)) == rows_before
    debtor_id = rows_before[0][0]
    account = load_account(db, _supervisor(db), debtor_id, now=later)
    assert account.freshness.debtor_synced_at == later
