"""Pushing outcomes: history notes and expected payment dates, exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from collect_tui.sync.records import ExpectedPaymentDate, ExternalInvoice, HistoryNote
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import XeroConnector, format_xero_date, parse_xero_datetime

from .spec_examples import example

Make = Callable[..., XeroConnector]


def test_history_note_uses_the_published_request(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    outcome = HistoryNote(
        invoice_external_id=invoice_id,
        idempotency_key="outbox-1",
        details="Spoke to debtor; promised 500.00 on 2024-06-01",
    )
    result = make_connector(sandbox).push(outcome)
    assert result.ok and result.http_status == 200
    (push,) = sandbox.pushes
    assert (push.method, push.path) == ("PUT", f"/Invoices/{invoice_id}/History")
    assert push.idempotency_key == "outbox-1"
    # the body has the shape of the spec's historyRecords request example
    assert push.body.keys() == example("history_request").keys()
    assert push.body == {"HistoryRecords": [{"Details": outcome.details}]}
    assert sandbox.history(invoice_id) == [outcome.details]


def test_the_same_key_twice_adds_one_history_record(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    outcome = HistoryNote(
        invoice_external_id=invoice_id, idempotency_key="outbox-7", details="Left a voicemail"
    )
    connector = make_connector(sandbox)
    assert connector.push(outcome).ok
    assert connector.push(outcome).ok
    assert sandbox.history(invoice_id) == ["Left a voicemail"]
    assert [p.replayed for p in sandbox.pushes] == [False, True]
    other = HistoryNote(
        invoice_external_id=invoice_id, idempotency_key="outbox-8", details="Left a voicemail"
    )
    assert connector.push(other).ok
    assert sandbox.history(invoice_id) == ["Left a voicemail", "Left a voicemail"]


def test_a_push_retried_after_a_5xx_lands_once(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    sandbox.fail_next(2, status=502)
    outcome = HistoryNote(invoice_external_id=invoice_id, idempotency_key="k", details="Paid?")
    assert make_connector(sandbox).push(outcome).ok
    assert sandbox.history(invoice_id) == ["Paid?"]


def test_long_details_are_truncated_and_accepted(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    outcome = HistoryNote(
        invoice_external_id=invoice_id, idempotency_key="k", details="Long call. " * 60
    )
    assert make_connector(sandbox).push(outcome).ok
    (stored,) = sandbox.history(invoice_id)
    assert len(stored) == 250


def test_expected_payment_date_updates_the_invoice(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    connector = make_connector(sandbox)
    cursor = list(connector.pull("invoices", None))[-1].cursor
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    before = parse_xero_datetime(sandbox.invoice(invoice_id)["UpdatedDateUTC"])
    promised = dt.date(2031, 6, 1)
    outcome = ExpectedPaymentDate(
        invoice_external_id=invoice_id, idempotency_key="ptp-1", date=promised
    )
    assert connector.push(outcome).ok
    (push,) = sandbox.pushes
    assert (push.method, push.path) == ("POST", f"/Invoices/{invoice_id}")
    assert push.body == {
        "Invoices": [{"InvoiceID": invoice_id, "ExpectedPaymentDate": "2031-06-01"}]
    }
    invoice = sandbox.invoice(invoice_id)
    assert invoice["ExpectedPaymentDate"] == format_xero_date(promised)
    assert parse_xero_datetime(invoice["UpdatedDateUTC"]) > before
    changed = [r for p in connector.pull("invoices", cursor) for r in p.records]
    assert all(isinstance(r, ExternalInvoice) for r in changed)
    assert [(r.external_id, getattr(r, "expected_payment_date", None)) for r in changed] == [
        (invoice_id, promised)
    ]


def test_a_paid_invoice_refuses_an_expected_date_permanently(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    invoice_id = sandbox.invoice_ids("PAID")[0]
    outcome = ExpectedPaymentDate(
        invoice_external_id=invoice_id, idempotency_key="k", date=dt.date(2031, 1, 1)
    )
    result = make_connector(sandbox).push(outcome)
    assert result.status == "failed" and result.http_status == 400
    assert "valid status" in (result.reason or "")


def test_an_unknown_invoice_fails_permanently(sandbox: SandboxServer, make_connector: Make) -> None:
    outcome = HistoryNote(
        invoice_external_id="00000000-0000-0000-0000-000000000000",
        idempotency_key="k",
        details="hello",
    )
    result = make_connector(sandbox).push(outcome)
    assert result.status == "failed" and result.http_status == 404
    assert "not found" in (result.reason or "")
