"""Pulling from the sandbox over real HTTP: paging, incremental pulls, cursors, quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from collect_tui.sync.protocol import AuthenticationError, Connector, Page
from collect_tui.sync.records import ExternalContact, ExternalInvoice, Stream
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import StaticTokenProvider, XeroConnector, format_if_modified_since

from .conftest import TENANT, TOKEN

Make = Callable[..., XeroConnector]


def pull_all(
    connector: XeroConnector, stream: Stream, since: dt.datetime | None = None
) -> list[Page]:
    return list(connector.pull(stream, since))


def invoices_in(pages: list[Page]) -> list[ExternalInvoice]:
    records = [record for page in pages for record in page.records]
    assert all(isinstance(record, ExternalInvoice) for record in records)
    return records  # type: ignore[return-value]


def ids(pages: list[Page]) -> list[str]:
    return [record.external_id for page in pages for record in page.records]


def test_the_connector_satisfies_the_protocol(sandbox: SandboxServer, make_connector: Make) -> None:
    assert isinstance(make_connector(sandbox), Connector)


def test_full_pull_of_every_stream(sandbox: SandboxServer, make_connector: Make) -> None:
    connector = make_connector(sandbox, page_size=25)
    invoices = pull_all(connector, "invoices")
    assert sorted(ids(invoices)) == sorted(sandbox.invoice_ids())
    assert all(isinstance(r.amount_due, Decimal) for r in invoices_in(invoices))
    assert {r.status for r in invoices_in(invoices)} >= {"open", "paid"}

    contacts = pull_all(connector, "contacts")
    assert sorted(ids(contacts)) == sorted(sandbox.contact_ids())
    statuses = {r.status for p in contacts for r in p.records}
    assert statuses == {"active", "archived"}  # includeArchived=true
    assert all(isinstance(r, ExternalContact) for p in contacts for r in p.records)

    payments = pull_all(connector, "payments")
    expected_payments = [
        key
        for key in sandbox.ids("Payments")
        if sandbox.record("Payments", key)["PaymentType"] == "ACCRECPAYMENT"
    ]
    assert sorted(ids(payments)) == sorted(expected_payments)
    credit_notes = pull_all(connector, "credit_notes")
    assert sorted(ids(credit_notes)) == sorted(sandbox.ids("CreditNotes"))


def test_requests_follow_the_published_api(sandbox: SandboxServer, make_connector: Make) -> None:
    connector = make_connector(sandbox, page_size=30)
    pull_all(connector, "contacts")
    pull_all(connector, "invoices")
    contacts = sandbox.requests_to("/Contacts")
    assert contacts[0].query["includeArchived"] == ["true"]
    assert contacts[0].query["pageSize"] == ["30"]
    assert [r.query["page"] for r in contacts] == [[str(n)] for n in range(1, len(contacts) + 1)]
    invoices = sandbox.requests_to("/Invoices")
    assert invoices[0].query["where"] == ['Type=="ACCREC"']
    assert invoices[0].query["order"] == ["UpdatedDateUTC ASC"]
    assert all(r.status == 200 and r.if_modified_since is None for r in invoices)


def test_a_configured_token_and_tenant_are_required(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make
) -> None:
    server = make_sandbox(token=TOKEN, tenant_id=TENANT)
    assert ids(pull_all(make_connector(server), "invoices"))
    with pytest.raises(AuthenticationError, match="401"):
        pull_all(make_connector(server, token_provider=StaticTokenProvider("wrong")), "invoices")
    with pytest.raises(AuthenticationError, match="403"):
        pull_all(make_connector(server, tenant_id="another-tenant"), "invoices")


def test_paging_stops_by_page_count_not_by_a_short_page(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    total = len(sandbox.invoice_ids())
    sandbox.short_pages = {2: 4}  # page 2 comes back 4 records short
    pages = pull_all(make_connector(sandbox, page_size=10), "invoices")
    page_count = -(-total // 10)
    assert page_count >= 4
    assert [p.page_number for p in pages] == list(range(1, page_count + 1))
    assert len(pages[1].records) == 6
    assert all(p.page_count == page_count and p.item_count == total for p in pages)
    assert pages[-1].is_last and not pages[0].is_last
    assert len(sandbox.requests_to("/Invoices")) == page_count
    assert len(ids(pages)) == total - 4


def test_a_full_last_page_ends_the_pull_without_an_extra_request(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    total = len(sandbox.invoice_ids())
    pages = pull_all(make_connector(sandbox, page_size=total), "invoices")
    assert len(pages) == 1 and len(pages[0].records) == total
    assert len(sandbox.requests_to("/Invoices")) == 1


def test_incremental_pull_sees_only_touched_records(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    connector = make_connector(sandbox, page_size=20)
    invoice_cursor = pull_all(connector, "invoices")[-1].cursor
    payment_cursor = pull_all(connector, "payments")[-1].cursor
    assert invoice_cursor is not None and payment_cursor is not None
    open_ids = sandbox.invoice_ids("AUTHORISED")
    sandbox.touch_invoice(open_ids[0], amount_due=Decimal("12.34"))
    sandbox.touch_invoice(open_ids[1], status="VOIDED")
    payment_id = sandbox.mark_paid(open_ids[2])

    pages = pull_all(connector, "invoices", invoice_cursor)
    changed = {r.external_id: r for r in invoices_in(pages)}
    assert set(changed) == set(open_ids[:3])
    assert changed[open_ids[0]].amount_due == Decimal("12.34")
    assert changed[open_ids[1]].status == "voided"
    assert changed[open_ids[2]].status == "paid"
    assert changed[open_ids[2]].amount_due == 0
    sent = sandbox.requests_to("/Invoices")[-1].if_modified_since
    assert sent == format_if_modified_since(invoice_cursor)
    assert pages[-1].cursor is not None and pages[-1].cursor > invoice_cursor

    payments = pull_all(connector, "payments", payment_cursor)
    assert ids(payments) == [payment_id]


def test_nothing_changed_costs_one_request_per_stream(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    connector = make_connector(sandbox, page_size=10)
    streams: tuple[Stream, ...] = ("contacts", "invoices", "payments", "credit_notes")
    cursors = {s: pull_all(connector, s)[-1].cursor for s in streams}
    before = len(sandbox.requests)
    for stream in streams:
        pages = pull_all(connector, stream, cursors[stream])
        assert len(pages) == 1
        assert pages[0].records == () and pages[0].malformed == ()
        assert pages[0].cursor is None  # nothing new to save
    assert len(sandbox.requests) - before == len(streams)


def test_cursors_advance_and_resume_where_a_pull_stopped(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    connector = make_connector(sandbox, page_size=15)
    pages = pull_all(connector, "invoices")
    cursors = [p.cursor for p in pages if p.cursor is not None]
    assert cursors == sorted(cursors) and len(cursors) == len(pages)
    # no record after page 2 is at or before page 2's cursor (the cursor stops just short of
    # page 2's last timestamp, in case records sharing it continue on page 3)
    resume = pages[1].cursor
    assert resume is not None
    assert resume < pages[1].records[-1].updated_at
    assert all(r.updated_at > resume for p in pages[2:] for r in p.records)
    # crash after page 2 committed: a pull since its cursor brings the rest, and nothing is lost
    rest = set(ids(pull_all(connector, "invoices", resume)))
    assert set(ids(pages[2:])) <= rest <= set(ids(pages[1:]))
    assert set(ids(pages[:2])) | rest == set(sandbox.invoice_ids())


def test_malformed_records_are_quarantined_and_pages_go_on(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make
) -> None:
    server = make_sandbox(customers=80, malformed_rate=0.1)
    connector = make_connector(server, page_size=25)
    checks: tuple[tuple[Stream, str], ...] = (
        ("invoices", "Invoices"),
        ("contacts", "Contacts"),
        ("payments", "Payments"),
    )
    for stream, resource in checks:
        pages = pull_all(connector, stream)
        malformed = [m for p in pages for m in p.malformed]
        assert malformed, f"no malformed {stream} at rate 0.1"
        assert all(m.stream == stream and m.reason and m.raw for m in malformed)
        known = {m.external_id for m in malformed if m.external_id}
        assert known <= server.malformed_ids[resource]
        good = ids(pages)
        assert not set(good) & server.malformed_ids[resource]
        assert pages[-1].is_last
    invoice_pages = pull_all(connector, "invoices")
    reasons = " | ".join(m.reason for p in invoice_pages for m in p.malformed)
    assert "missing InvoiceID" in reasons or "not a Xero date" in reasons or "amount_due" in reasons
    total = sum(len(p.records) + len(p.malformed) + p.skipped for p in invoice_pages)
    assert total == invoice_pages[0].item_count
