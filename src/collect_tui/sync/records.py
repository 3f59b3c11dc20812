"""Normalized records a connector yields, and the outcomes it pushes back.

These types are independent of any accounting system: the Xero connector maps Xero's wire
format onto them, and a QuickBooks, Stripe or CSV connector would do the same. Money is always
``Decimal``; timestamps are timezone-aware UTC ``datetime``; calendar dates are ``date``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

HISTORY_DETAILS_MAX = 250
"""Xero's limit on the Details of a history record."""

IDEMPOTENCY_KEY_MAX = 128
"""Xero's limit on an Idempotency-Key header."""

Stream = Literal["contacts", "invoices", "payments", "credit_notes"]
"""The record streams a connector can pull."""

STREAMS: tuple[Stream, ...] = ("contacts", "invoices", "payments", "credit_notes")

InvoiceStatus = Literal["open", "paid", "voided", "deleted", "draft"]
ContactStatus = Literal["active", "archived", "gdpr_request"]
PaymentStatus = Literal["active", "deleted"]
CreditNoteStatus = Literal["open", "paid", "voided", "deleted", "draft"]
PhoneType = Literal["default", "mobile", "ddi", "fax", "office", "other"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(dt.UTC)


def _money(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError("money must be Decimal, int or a numeric string, never float or bool")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except ArithmeticError as error:
        raise ValueError(f"not a number: {value!r}") from error
    if not result.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return result


def _currency(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("currency must be a string")
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValueError(f"not an ISO 4217 currency code: {value!r}")
    return code


UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]
"""A timezone-aware timestamp, normalized to UTC."""

Money = Annotated[Decimal, BeforeValidator(_money)]
"""A finite Decimal amount; floats are refused."""

Currency = Annotated[str, BeforeValidator(_currency)]
"""A three-letter ISO 4217 code, upper case."""


class Phone(_Record):
    """A phone number of a contact, already joined from its parts."""

    number: str = Field(min_length=1)
    type: PhoneType = "default"


class Address(_Record):
    """A postal or street address."""

    kind: Literal["postal", "street", "other"] = "postal"
    lines: tuple[str, ...] = ()
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    attention_to: str | None = None


class ExternalContact(_Record):
    """A customer (debtor) as the accounting system knows it.

    ``address`` is the best mailing address (postal first, then street); ``addresses`` holds
    every non-empty one.
    """

    external_id: str = Field(min_length=1)
    name: str
    is_company: bool
    first_name: str | None = None
    last_name: str | None = None
    email_addresses: tuple[str, ...] = ()
    phones: tuple[Phone, ...] = ()
    address: Address | None = None
    addresses: tuple[Address, ...] = ()
    tax_number: str | None = None
    contact_number: str | None = None
    account_number: str | None = None
    default_currency: Currency | None = None
    is_customer: bool | None = None
    status: ContactStatus = "active"
    merged_to_external_id: str | None = None
    updated_at: UtcDatetime


class ExternalInvoice(_Record):
    """A sales invoice (accounts receivable)."""

    external_id: str = Field(min_length=1)
    number: str = ""
    reference: str | None = None
    contact_external_id: str = Field(min_length=1)
    issue_date: dt.date
    due_date: dt.date | None = None
    currency: Currency
    total: Money
    amount_due: Money
    amount_paid: Money = Decimal("0")
    amount_credited: Money = Decimal("0")
    status: InvoiceStatus
    expected_payment_date: dt.date | None = None
    fully_paid_on: dt.date | None = None
    updated_at: UtcDatetime


class ExternalPayment(_Record):
    """A payment received against an invoice (``currency`` is the invoice's, when known)."""

    external_id: str = Field(min_length=1)
    invoice_external_id: str = Field(min_length=1)
    contact_external_id: str | None = None
    amount: Money
    currency: Currency | None = None
    date: dt.date
    reference: str | None = None
    status: PaymentStatus = "active"
    updated_at: UtcDatetime


class CreditAllocation(_Record):
    """Part of a credit note applied to an invoice."""

    invoice_external_id: str = Field(min_length=1)
    amount: Money
    date: dt.date | None = None


class ExternalCreditNote(_Record):
    """A customer credit note and the invoices it was allocated to."""

    external_id: str = Field(min_length=1)
    number: str = ""
    contact_external_id: str = Field(min_length=1)
    issue_date: dt.date | None = None
    amount: Money
    remaining: Money
    currency: Currency
    status: CreditNoteStatus
    allocations: tuple[CreditAllocation, ...] = ()
    updated_at: UtcDatetime


ExternalRecord = ExternalContact | ExternalInvoice | ExternalPayment | ExternalCreditNote

_set_attr = object.__setattr__
_R = TypeVar("_R", bound=BaseModel)
_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


def prevalidated(cls: type[_R], values: dict[str, Any]) -> _R:
    """A record built from ``values`` that the caller has already checked field by field.

    For a connector's hot path: ``values`` must name every field with a value the model
    would itself produce (the tests compare both ways on real pages). It skips validation,
    like ``model_construct``, without its per-field default handling, so an incomplete
    ``values`` is an error here.
    """
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = frozenset(cls.model_fields)
    if len(values) != len(fields) or not fields.issuperset(values):
        raise ValueError(f"{cls.__name__}: fields {sorted(values)} are incomplete")
    record = cls.__new__(cls)
    _set_attr(record, "__dict__", values)
    _set_attr(record, "__pydantic_fields_set__", set(values))
    _set_attr(record, "__pydantic_extra__", None)
    _set_attr(record, "__pydantic_private__", None)
    return record


class Malformed(_Record):
    """A record that failed validation; quarantined with its reason, never aborting a page."""

    stream: Stream
    external_id: str | None = None
    reason: str
    raw: dict[str, Any]


class _Outcome(_Record):
    invoice_external_id: str = Field(min_length=1)
    idempotency_key: str = Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)

    @field_validator("idempotency_key")
    @classmethod
    def _printable_key(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable():
            raise ValueError("idempotency key must be printable ASCII (it is sent as a header)")
        return value


class HistoryNote(_Outcome):
    """A note to add to the invoice's history (truncated to Xero's 250-character limit)."""

    kind: Literal["history_note"] = "history_note"
    details: str

    @field_validator("details")
    @classmethod
    def _fit_details(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("history note details must not be empty")
        if len(text) > HISTORY_DETAILS_MAX:
            text = text[: HISTORY_DETAILS_MAX - 1].rstrip() + "\u2026"
        return text


class ExpectedPaymentDate(_Outcome):
    """The date the debtor promised to pay, set on the invoice."""

    kind: Literal["expected_payment_date"] = "expected_payment_date"
    date: dt.date


Outcome = HistoryNote | ExpectedPaymentDate
"""Anything a connector can push back to the accounting system."""

__all__ = [
    "HISTORY_DETAILS_MAX",
    "IDEMPOTENCY_KEY_MAX",
    "STREAMS",
    "Address",
    "ContactStatus",
    "CreditAllocation",
    "CreditNoteStatus",
    "ExpectedPaymentDate",
    "ExternalContact",
    "ExternalCreditNote",
    "ExternalInvoice",
    "ExternalPayment",
    "ExternalRecord",
    "HistoryNote",
    "InvoiceStatus",
    "Malformed",
    "Outcome",
    "PaymentStatus",
    "Phone",
    "PhoneType",
    "Currency",
    "Money",
    "Stream",
    "UtcDatetime",
    "prevalidated",
]
