"""Reliability: SIGKILL at random points, a thousand faulty requests, malformed records.

The CLI runs in a subprocess against a sandbox on 127.0.0.1 (in this process); after every
kill the next run resumes. At the end the database must equal a fault-free sync of the same
sandbox, and every outcome must have reached the sandbox exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collect_tui.cli import main as cli_main
from collect_tui.services.database import Database, open_database
from collect_tui.storage.models import Debtor, Invoice, OutboxMessage, Payment, SyncRun
from collect_tui.sync.engine import SyncEngine
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import StaticTokenProvider, XeroConnector

TENANT = "sandbox"


def _state(db: Database) -> dict[str, Any]:
    """What a sync leaves behind, comparable between two databases."""
    with db.session() as session:
        invoices = session.execute(
            select(
                Invoice.external_id, Invoice.amount_due, Invoice.status, Debtor.external_id
            ).join(Debtor, Debtor.id == Invoice.debtor_id)
        ).all()
        payments = session.execute(
            select(Payment.external_id, Payment.amount, Payment.status)
        ).all()
        debtors = session.scalars(select(Debtor.external_id)).all()
    assert len(invoices) == len({row[0] for row in invoices}), "an invoice is duplicated"
    return {
        "invoices": sorted(tuple(map(str, row)) for row in invoices),
        "payments": sorted(tuple(map(str, row)) for row in payments),
        "debtors": sorted(debtors),
    }


def _reference(sandbox: SandboxServer, tmp_path: Path) -> dict[str, Any]:
    db = open_database(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        with XeroConnector(
            sandbox.base_url, TENANT, StaticTokenProvider("t"), rate_limiter=None, page_size=1000
        ) as connector:
            assert SyncEngine(db.engine, connector, tenant=TENANT).run(push=False).status == "ok"
        return _state(db)
    finally:
        db.close()


def _split_invoices(sandbox: SandboxServer, changing: int) -> tuple[list[str], list[str]]:
    """Open invoices to queue outcomes on, and disjoint ones the test pays or voids.

    Chosen once: the sandbox lists invoices in update order, and every pushed expected payment
    date moves its invoice to the end, so slicing the list again later could hand an invoice
    the test has voided to an outcome (which the source then rightly refuses).
    """
    authorised = sandbox.invoice_ids("AUTHORISED")
    return authorised[: len(authorised) // 2], authorised[-changing:]


def _add_outcomes(db: Database, targets: list[str], count: int, tag: str) -> list[str]:
    """Queue history notes and expected payment dates on ``targets``."""
    keys = []
    with db.session() as session:
        for n in range(count):
            invoice = targets[(n * 7) % len(targets)]
            key = f"{tag}-{n}"
            keys.append(key)
            if n % 4 == 3:
                kind, payload = "expected_payment_date", {"date": "2027-01-15"}
            else:
                kind, payload = "history_note", {"details": f"Outcome {key}: called, left note"}
            session.add(
                OutboxMessage(
                    idempotency_key=key, kind=kind, invoice_external_id=invoice, payload=payload
                )  # fmt: skip
            )
    return keys


def _assert_delivered_once(db: Database, sandbox: SandboxServer, keys: list[str]) -> None:
    with db.session() as session:
        rows = session.execute(
            select(
                OutboxMessage.idempotency_key,
                OutboxMessage.status,
                OutboxMessage.kind,
                OutboxMessage.invoice_external_id,
                OutboxMessage.payload,
            )  # fmt: skip
        ).all()
    assert {r.idempotency_key for r in rows} == set(keys)
    assert {r.status for r in rows} == {"delivered"}, Counter(r.status for r in rows)
    executed = Counter(p.idempotency_key for p in sandbox.pushes if not p.replayed)
    assert all(executed[k] == 1 for k in keys), [k for k in keys if executed[k] != 1]
    for row in rows:
        if row.kind == "history_note":
            assert sandbox.history(row.invoice_external_id).count(row.payload["details"]) == 1


def _sync_command(db_url: str, sandbox: SandboxServer) -> list[str]:
    return [
        sys.executable, "-m", "collect_tui.cli", "sync", "--db", db_url, "--source", "xero",
        "--base-url", sandbox.base_url, "--page-size", "100",
    ]  # fmt: skip


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = make_sandbox(customers=500, seed=23)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    db = open_database(url)
    targets, changing = _split_invoices(sandbox, 40)
    keys = _add_outcomes(db, targets, 120, "k")
    rng = random.Random(5)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("XERO_ACCESS_TOKEN", None)
    env.pop("XERO_CLIENT_ID", None)
    kills = 0
    for round_ in range(6):
        # Kill after a random number of answered requests: mid-pull, mid-push, or between a
        # request being answered and its result being committed.
        target = len(sandbox.requests) + rng.randint(1, 150 if round_ == 0 else 25)
        process = subprocess.Popen(
            _sync_command(url, sandbox), env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            len(sandbox.requests) < target
            and process.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.001)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        # The source keeps changing between runs.
        sandbox.mark_paid(changing[round_ * 2])
        sandbox.touch_invoice(changing[round_ * 2 + 1], status="VOIDED")
        keys += _add_outcomes(db, targets, 20, f"r{round_}")
    assert kills >= 4
    finished = subprocess.run(
        _sync_command(url, sandbox), env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    with db.session() as session:
        failures = session.execute(
            select(
                OutboxMessage.idempotency_key, OutboxMessage.attempts, OutboxMessage.last_error
            ).where(OutboxMessage.status != "delivered")
        ).all()
    assert "pulled" in finished.stdout and "pending 0, failed 0" in finished.stdout, failures
    with db.session() as session:
        runs = Counter(session.scalars(select(SyncRun.status)))
    assert runs["interrupted"] >= 2, runs  # the kills hit runs in progress

    assert _state(db) == _reference(sandbox, tmp_path)
    _assert_delivered_once(db, sandbox, keys)
    with db.session() as session:
        statuses = Counter(session.scalars(select(SyncRun.status)))
    assert statuses["ok"] >= 1 and statuses["running"] == 0
    db.close()


def test_a_thousand_requests_with_429_5xx_and_timeouts(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(customers=250, seed=31, fail_rate=0.15, slow_rate=0.02, slow_seconds=0.4)
    db = open_database(f"sqlite:///{tmp_path / 'faults.db'}")
    targets, changing = _split_invoices(sandbox, 60)
    keys = _add_outcomes(db, targets, 200, "f")
    stop = threading.Event()

    def inject_429() -> None:
        while not stop.wait(0.05):
            sandbox.rate_limit_next(1, retry_after=1)

    injector = threading.Thread(target=inject_429, daemon=True)
    injector.start()
    connector = XeroConnector(
        sandbox.base_url, TENANT, StaticTokenProvider("t"), rate_limiter=None, page_size=10,
        max_retries=10, timeout=0.2, sleep=lambda _: None, rng=random.Random(3),
    )  # fmt: skip
    clock = [datetime.now(UTC)]
    try:
        rounds = 0
        while len(sandbox.requests) < 1100 and rounds < 15:
            rounds += 1
            engine = SyncEngine(db.engine, connector, tenant=TENANT, now=lambda: clock[0])
            result = engine.run()
            assert result.status in ("ok", "partial"), result.error
            clock[0] += timedelta(hours=2)  # lets rescheduled outcomes become due
            # More work for the next round: changes at the source, new outcomes.
            for invoice in changing[rounds * 4 : rounds * 4 + 4]:
                sandbox.mark_paid(invoice, Decimal("1.00"))
            for invoice in changing[-20:]:
                sandbox.touch_invoice(invoice)
            keys += _add_outcomes(db, targets, 60, f"g{rounds}")
        stop.set()
        injector.join()
        sandbox._forced.clear()  # noqa: SLF001 - no injected fault left for the last run
        final = SyncEngine(db.engine, connector, tenant=TENANT, now=lambda: clock[0]).run()
        assert final.status == "ok", final.error
    finally:
        stop.set()
        connector.close()
    answered = list(sandbox.requests)
    assert len(answered) >= 1000
    codes = Counter(r.status for r in answered)
    assert codes[429] > 20 and sum(codes[c] for c in (500, 502, 503)) > 50
    assert "ReadTimeout" in caplog.text  # slow answers timed out and were retried
    assert _state(db) == _reference(sandbox, tmp_path)
    _assert_delivered_once(db, sandbox, keys)
    db.close()


def test_malformed_records_are_listed_by_the_cli(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = make_sandbox(customers=120, seed=41, malformed_rate=0.1)
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    args = ["sync", "--db", url, "--source", "xero", "--base-url", sandbox.base_url]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    quarantined = int(out.split("quarantined ")[1].split(",")[0].replace(",", ""))
    assert quarantined >= sum(len(ids) for ids in sandbox.malformed_ids.values()) > 0
    assert cli_main(["sync", "--db", url, "--quarantine"]) == 0
    listing = capsys.readouterr().out.strip().splitlines()
    assert listing[-1] == f"{quarantined:,} quarantined record(s)"
    assert len(listing) == quarantined + 1
    assert all(line.split()[2] in ("contacts", "invoices", "payments", "credit_notes")
               for line in listing[:-1])  # fmt: skip
    assert date.today()
