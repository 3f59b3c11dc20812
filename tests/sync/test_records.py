"""Normalized records and the mapping of Xero's own example payloads onto them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from collect_tui.sync.records import (
    HISTORY_DETAILS_MAX,
    ExpectedPaymentDate,
    ExternalContact,
    ExternalCreditNote,
    ExternalInvoice,
    ExternalPayment,
    HistoryNote,
    Malformed,
    Phone,
)
from collect_tui.sync.xero import (
    map_contact,
    map_credit_note,
    map_invoice,
    map_payment,
    map_record,
)

from .spec_examples import example

UTC = dt.UTC


def test_spec_contacts() -> None:
    katherine, lisa = (map_contact(raw) for raw in example("contacts")["Contacts"])
    assert isinstance(katherine, ExternalContact)
    assert katherine.external_id == "5cc8cf28-567e-4d43-b287-687cfcaec47c"
    assert katherine.name == "Katherine Warren"
    assert (katherine.first_name, katherine.last_name) == ("Katherine", "Warren")
    assert katherine.is_company is False
    assert katherine.email_addresses == ("kat.warren@clampett.com",)
    assert katherine.phones == (Phone(number="(626) 847-1294", type="default"),)
    assert katherine.address is not None
    assert katherine.address.kind == "postal"
    assert (katherine.address.city, katherine.address.region) == ("Palo Alto", "CA")
    assert (katherine.address.postal_code, katherine.address.country) == (
        "94020",
        "United States",
    )
    assert katherine.status == "active"
    assert katherine.merged_to_external_id is None
    assert katherine.tax_number is None
    assert katherine.updated_at == dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(
        milliseconds=1503348544227
    )
    assert lisa.is_customer is False
    assert lisa.phones[0].number == "(510) 266-3583"


def test_spec_invoices() -> None:
    voided, paid, open_ = (map_invoice(raw) for raw in example("invoices")["Invoices"])
    assert isinstance(open_, ExternalInvoice)
    assert voided is not None and paid is not None
    assert [voided.status, paid.status, open_.status] == ["voided", "paid", "open"]
    assert open_.external_id == "7ef31b20-de17-4312-8382-412f869b1510"
    assert open_.number == "INV-0003"
    assert open_.contact_external_id == "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7"
    assert open_.issue_date == dt.date(2018, 11, 2)
    assert open_.due_date == dt.date(2018, 11, 7)
    assert open_.currency == "NZD"
    assert open_.total == Decimal("115.00")
    assert open_.amount_due == Decimal("115.00")
    assert open_.amount_paid == Decimal("0.00")
    assert all(isinstance(v, Decimal) for v in (open_.total, open_.amount_due))
    assert open_.updated_at == dt.datetime(2018, 11, 2, 16, 37, 28, 927_000, tzinfo=UTC)
    assert paid is not None
    assert paid.amount_paid == Decimal("46.00")
    assert paid.fully_paid_on == dt.date(2018, 11, 29)


def test_spec_single_invoice_and_submitted_is_draft() -> None:
    invoice = map_invoice(example("invoice")["Invoices"][0])
    assert invoice is not None
    assert invoice.status == "paid"
    assert invoice.total == Decimal("148062.76")
    submitted = map_invoice(example("invoice_updated")["Invoices"][0])
    assert submitted is not None
    assert submitted.status == "draft"
    assert submitted.amount_due == Decimal("575.00")


@pytest.mark.parametrize(
    ("xero", "ours"),
    [
        ("DRAFT", "draft"),
        ("SUBMITTED", "draft"),
        ("AUTHORISED", "open"),
        ("PAID", "paid"),
        ("VOIDED", "voided"),
        ("DELETED", "deleted"),
    ],
)
def test_invoice_status_mapping(xero: str, ours: str) -> None:
    mapped = map_invoice(dict(example("invoices")["Invoices"][2], Status=xero))
    assert mapped is not None and mapped.status == ours


def test_bills_are_skipped_not_malformed() -> None:
    raw = dict(example("invoices")["Invoices"][2], Type="ACCPAY")
    assert map_invoice(raw) is None
    assert map_record("invoices", raw) is None


def test_spec_payments() -> None:
    customer, refund = example("payments")["Payments"]
    payment = map_payment(customer)
    assert isinstance(payment, ExternalPayment)
    assert payment.external_id == "99ea7f6b-c513-4066-bc27-b7c65dcd76c2"
    assert payment.invoice_external_id == "046d8a6d-1ae1-4b4d-9340-5601bdf41b87"
    assert payment.contact_external_id == "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7"
    assert payment.amount == Decimal("46.00")
    assert payment.currency == "NZD"
    assert payment.date == dt.date(2018, 11, 29)
    assert payment.status == "active"
    # a refund of a credit note (ARCREDITPAYMENT) is not a payment on an invoice
    assert map_payment(refund) is None
    deleted = map_payment(dict(customer, Status="DELETED"))
    assert deleted is not None
    assert deleted.status == "deleted"


def test_spec_credit_notes() -> None:
    customer, supplier = example("credit_notes")["CreditNotes"]
    note = map_credit_note(customer)
    assert isinstance(note, ExternalCreditNote)
    assert note.number == "CN-0005"
    assert note.amount == Decimal("34.50")
    assert note.remaining == Decimal("32.50")
    assert note.status == "open"
    assert note.issue_date == dt.date(2019, 3, 5)
    assert map_credit_note(supplier) is None
    allocation = example("credit_note_allocation")["Allocations"][0]
    with_allocation = map_credit_note(dict(customer, Allocations=[allocation]))
    assert with_allocation is not None
    (applied,) = with_allocation.allocations
    assert applied.invoice_external_id == "c45720a1-ade3-4a38-a064-d15489be6841"
    assert applied.amount == Decimal("1.00")
    assert applied.date == dt.date(2019, 3, 5)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"InvoiceID": None}, "missing InvoiceID"),
        ({"DueDate": "/Date(not-a-date)/"}, "not a Xero date"),
        ({"AmountDue": "N/A"}, "amount_due"),
        ({"CurrencyCode": "dollars"}, "currency"),
        ({"Status": "PENDING"}, "unknown Status"),
        ({"UpdatedDateUTC": "yesterday"}, "not a Xero date"),
        ({"Contact": "Barney"}, "Contact is not an object"),
    ],
)
def test_malformed_invoice_is_quarantined_with_its_reason(change: dict, reason: str) -> None:
    raw = dict(example("invoices")["Invoices"][2], **change)
    result = map_record("invoices", raw)
    assert isinstance(result, Malformed)
    assert reason in result.reason
    assert result.stream == "invoices"
    assert result.raw == raw
    assert result.external_id == (raw["InvoiceID"] or None)


def test_a_record_that_is_not_an_object_is_malformed() -> None:
    result = map_record("contacts", ["not", "a", "contact"])
    assert isinstance(result, Malformed)
    assert result.external_id is None


def test_money_is_never_float() -> None:
    good = map_invoice(example("invoices")["Invoices"][2])
    assert good is not None
    fields = good.model_dump()
    with pytest.raises(ValidationError):
        ExternalInvoice(**{**fields, "total": 115.0})
    with pytest.raises(ValidationError):
        ExternalInvoice(**{**fields, "total": Decimal("NaN")})
    assert ExternalInvoice(**{**fields, "total": "115.00"}).total == Decimal("115.00")


def test_records_are_frozen_and_timestamps_aware() -> None:
    good = map_invoice(example("invoices")["Invoices"][2])
    assert good is not None
    with pytest.raises(ValidationError):
        good.status = "paid"
    with pytest.raises(ValidationError):
        ExternalInvoice(**{**good.model_dump(), "updated_at": dt.datetime(2020, 1, 1)})


@pytest.mark.parametrize(
    ("name", "first", "last", "number", "company"),
    [
        ("Katherine Warren", "Katherine", "Warren", "NumberBusiness1234", False),
        ("Warren, Katherine", "Katherine", "Warren", None, False),
        ("Harris Plumbing Ltd", "Ana", "Harris", None, True),
        ("Oasis", "Liam", "Gallagher", None, True),
        ("Barney Rubble-83203", None, None, None, False),
        ("Acme Pty Ltd", None, None, None, True),
        ("Smith & Co", None, None, None, True),
        ("Widget Works", None, None, "12345678", True),
    ],
)
def test_company_or_person(
    name: str, first: str | None, last: str | None, number: str | None, company: bool
) -> None:
    raw = {
        "ContactID": "c1",
        "Name": name,
        "FirstName": first,
        "LastName": last,
        "CompanyNumber": number,
        "UpdatedDateUTC": "/Date(0+0000)/",
    }
    assert map_contact(raw).is_company is company


def test_contact_statuses_and_merges() -> None:
    raw = dict(
        example("contacts")["Contacts"][0],
        ContactStatus="ARCHIVED",
        MergedToContactID="3ec601ad-eddc-4ccb-a8ac-736e88293b1b",
    )
    merged = map_contact(raw)
    assert merged.status == "archived"
    assert merged.merged_to_external_id == "3ec601ad-eddc-4ccb-a8ac-736e88293b1b"
    assert map_contact(dict(raw, ContactStatus="GDPRREQUEST")).status == "gdpr_request"


def test_contact_phone_parts_and_person_emails() -> None:
    raw = {
        "ContactID": "c1",
        "Name": "Aroha Ngata",
        "EmailAddress": "aroha@example.co.nz",
        "UpdatedDateUTC": "/Date(0+0000)/",
        "Phones": [
            {
                "PhoneType": "MOBILE",
                "PhoneNumber": "555 0199",
                "PhoneAreaCode": "21",
                "PhoneCountryCode": "64",
            },
            {"PhoneType": "FAX", "PhoneNumber": "", "PhoneAreaCode": "9"},
        ],
        "ContactPersons": [
            {"FirstName": "Tane", "EmailAddress": "tane@example.co.nz"},
            {"FirstName": "Dup", "EmailAddress": "AROHA@example.co.nz"},
        ],
    }
    contact = map_contact(raw)
    assert contact.phones == (Phone(number="+64 21 555 0199", type="mobile"),)
    assert contact.email_addresses == ("aroha@example.co.nz", "tane@example.co.nz")
    assert contact.address is None


def test_history_note_is_truncated_to_xeros_limit() -> None:
    note = HistoryNote(invoice_external_id="i1", idempotency_key="k1", details="x" * 400)
    assert len(note.details) == HISTORY_DETAILS_MAX
    assert note.details.endswith("\u2026")
    exact = HistoryNote(invoice_external_id="i1", idempotency_key="k1", details="y" * 250)
    assert exact.details == "y" * 250
    with pytest.raises(ValidationError):
        HistoryNote(invoice_external_id="i1", idempotency_key="k1", details="   ")


def test_idempotency_keys_fit_a_header() -> None:
    ExpectedPaymentDate(invoice_external_id="i", idempotency_key="k" * 128, date=dt.date.today())
    for bad in ("", "k" * 129, "caf\u00e9", "line\nbreak"):
        with pytest.raises(ValidationError):
            ExpectedPaymentDate(invoice_external_id="i", idempotency_key=bad, date=dt.date.today())
