"""A connector for Xero's Accounting API (and anything speaking its wire format).

Follows the published OpenAPI description (XeroAPI/Xero-OpenAPI, ``xero_accounting.yaml``):
``GET /Contacts|/Invoices|/Payments|/CreditNotes`` with ``page``/``pageSize`` paging that stops
by ``pagination.pageCount``, ``If-Modified-Since`` for incremental pulls, ``/Date(ms+zzzz)/``
dates, ``PUT /Invoices/{InvoiceID}/History`` and ``POST /Invoices/{InvoiceID}`` (for
``ExpectedPaymentDate``) with an ``Idempotency-Key``. Retries transient failures with exponential
backoff and full jitter, honours ``Retry-After`` on 429, and stops on the daily limit.

Secrets (client secrets, refresh and access tokens) are held as ``pydantic.SecretStr`` and never
appear in reprs, exceptions or logs.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import functools
import json
import logging
import os
import random
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
import msgspec
from pydantic import SecretStr, ValidationError

from collect_tui.logsafe import register_secret
from collect_tui.sync.protocol import (
    AuthenticationError,
    ConnectorError,
    DailyLimitReached,
    Page,
    PushResult,
    RateLimited,
    RequestRejected,
    TokenProvider,
    TransientError,
)
from collect_tui.sync.ratelimit import LimitWouldBlock, RateLimiter
from collect_tui.sync.records import (
    Address,
    CreditAllocation,
    ExpectedPaymentDate,
    ExternalContact,
    ExternalCreditNote,
    ExternalInvoice,
    ExternalPayment,
    ExternalRecord,
    HistoryNote,
    Malformed,
    Outcome,
    Phone,
    Stream,
    prevalidated,
)

log = logging.getLogger(__name__)

XERO_API_URL: Final = "https://api.xero.com/api.xro/2.0"
XERO_TOKEN_URL: Final = "https://identity.xero.com/connect/token"
MAX_PAGE_SIZE: Final = 1000

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{2})(\d{2}))?\)/$")
_ONE_MS = dt.timedelta(milliseconds=1)

# --------------------------------------------------------------------------- dates


def _ms_date_parts(value: str) -> tuple[dt.datetime, dt.timedelta] | None:
    if value.startswith("/Date(") and value.endswith("+0000)/"):
        # The common case, without the regex: /Date(1518685950940+0000)/
        digits = value[6:-7]
        unsigned = digits[1:] if digits.startswith("-") else digits
        if unsigned.isascii() and unsigned.isdecimal():
            try:
                return _EPOCH + dt.timedelta(milliseconds=int(digits)), dt.timedelta(0)
            except OverflowError as error:
                raise ValueError(f"date out of range: {value!r}") from error
    match = _MS_DATE.match(value.strip())
    if match is None:
        return None
    millis, sign, hours, minutes = match.groups()
    offset = dt.timedelta(0)
    if sign:
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
        if sign == "-":
            offset = -offset
    try:
        instant = _EPOCH + dt.timedelta(milliseconds=int(millis))
    except OverflowError as error:
        raise ValueError(f"date out of range: {value!r}") from error
    return instant, offset


def parse_xero_datetime(value: str) -> dt.datetime:
    """Parse a Xero timestamp into an aware UTC ``datetime``.

    Accepts the ``/Date(1518685950940+0000)/`` form (milliseconds since the epoch, UTC; the
    offset only says which local time it was, so the instant does not move), negative epochs,
    and ISO 8601 (``2019-11-14T18:10:38Z``, ``2020-02-06T12:17:43.202-08:00``; naive means UTC).
    """
    if not isinstance(value, str):
        raise ValueError(f"not a Xero date: {value!r}")
    parts = _ms_date_parts(value)
    if parts is not None:
        return parts[0]
    if value.strip().startswith("/Date("):
        raise ValueError(f"not a Xero date: {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise ValueError(f"not a Xero date: {value!r}") from error
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_xero_date(value: str) -> dt.date:
    """Parse a Xero calendar date (``Date``, ``DueDate``, ``ExpectedPaymentDate``...).

    ``/Date(ms+zzzz)/`` gives the date of the wall-clock time at that offset (``+0000``, as Xero
    sends, is the UTC date); ISO strings give the date as written. A portfolio has few
    distinct dates, so parsed values are cached.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a Xero date: {value!r}")
    return _parse_xero_date(value)


@functools.lru_cache(maxsize=16_384)
def _parse_xero_date(value: str) -> dt.date:
    parts = _ms_date_parts(value)
    if parts is not None:
        instant, offset = parts
        try:
            return (instant + offset).date()
        except OverflowError as error:
            raise ValueError(f"date out of range: {value!r}") from error
    if value.strip().startswith("/Date("):
        raise ValueError(f"not a Xero date: {value!r}")
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text).date()
    except ValueError as error:
        raise ValueError(f"not a Xero date: {value!r}") from error


def format_xero_datetime(value: dt.datetime) -> str:
    """Format an aware timestamp as Xero does: ``/Date(1518685950940+0000)/``."""
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    delta = value.astimezone(dt.UTC) - _EPOCH
    millis = delta // _ONE_MS
    return f"/Date({millis}+0000)/"


def format_xero_date(value: dt.date) -> str:
    """Format a calendar date as Xero does: midnight UTC, ``/Date(1539993600000+0000)/``."""
    return format_xero_datetime(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))


def format_if_modified_since(value: dt.datetime) -> str:
    """The ``If-Modified-Since`` value: ISO 8601 in UTC with milliseconds, as the spec shows."""
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _floor_ms(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# --------------------------------------------------------------------------- JSON

_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(content: bytes) -> Any:
    """Parse a response body; numbers with a fraction become exact ``Decimal`` (never float).

    msgspec hands the number's own text to ``Decimal``, as ``json.loads(parse_float=Decimal)``
    does, at about twice the speed; what msgspec refuses (``NaN``, huge integers) goes through
    the standard parser, so the result is the same for every input.
    """
    try:
        return _DECODER.decode(content)
    except (msgspec.DecodeError, ValueError):
        return json.loads(content, parse_float=Decimal)


# --------------------------------------------------------------------------- mapping


def _required(raw: Mapping[str, Any], key: str) -> Any:
    value = raw.get(key)
    if value is None or value == "":
        raise ValueError(f"missing {key}")
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    value = value.strip()
    return value or None


def _object(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} is not an object")
    return value


def _list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{key} is not a list")
    return value


_PHONE_TYPES: Final = {
    "DEFAULT": "default",
    "MOBILE": "mobile",
    "DDI": "ddi",
    "FAX": "fax",
    "OFFICE": "office",
}
_CONTACT_STATUS: Final = {"ACTIVE": "active", "ARCHIVED": "archived", "GDPRREQUEST": "gdpr_request"}
_INVOICE_STATUS: Final = {
    "DRAFT": "draft",
    "SUBMITTED": "draft",
    "AUTHORISED": "open",
    "PAID": "paid",
    "VOIDED": "voided",
    "DELETED": "deleted",
}
_PAYMENT_STATUS: Final = {"AUTHORISED": "active", "DELETED": "deleted"}
_COMPANY_MARKERS = re.compile(
    r"\b(ltd|limited|inc|incorporated|llc|llp|plc|pty|gmbh|ag|sa|s\.a\.|ltda|eireli|corp|"
    r"corporation|co\.|company|group|holdings|trust|partners|nv|bv|srl|sarl|oy|ab|as)\b|&",
    re.IGNORECASE,
)


def _phone(raw: Mapping[str, Any]) -> Phone | None:
    number = _text(raw.get("PhoneNumber"))
    if number is None:
        return None
    country = _text(raw.get("PhoneCountryCode"))
    area = _text(raw.get("PhoneAreaCode"))
    parts = [f"+{country.lstrip('+')}" if country else None, area, number]
    kind = _PHONE_TYPES.get(str(raw.get("PhoneType") or "DEFAULT").upper(), "other")
    # Valid by construction (a non-empty number, a kind from the table): no second check.
    return prevalidated(Phone, {"number": " ".join(p for p in parts if p), "type": kind})


def _address(raw: Mapping[str, Any]) -> Address | None:
    lines = tuple(
        line
        for key in ("AddressLine1", "AddressLine2", "AddressLine3", "AddressLine4")
        if (line := _text(raw.get(key)))
    )
    city, region = _text(raw.get("City")), _text(raw.get("Region"))
    postal, country = _text(raw.get("PostalCode")), _text(raw.get("Country"))
    if not (lines or city or region or postal or country):
        return None
    kind = {"POBOX": "postal", "STREET": "street"}.get(str(raw.get("AddressType")), "other")
    # Valid by construction (texts from _text, a kind from the table): no second check.
    return prevalidated(
        Address,
        {
            "kind": kind,
            "lines": lines,
            "city": city,
            "region": region,
            "postal_code": postal,
            "country": country,
            "attention_to": _text(raw.get("AttentionTo")),
        },
    )


def _is_company(name: str, first: str | None, last: str | None, company_number: str | None) -> bool:
    """Xero has no person/company flag: infer it from the names (documented heuristic)."""
    if _COMPANY_MARKERS.search(name):
        return True
    if first or last:
        person = " ".join(p for p in (first, last) if p).casefold()
        reversed_person = ", ".join(p for p in (last, first) if p).casefold()
        return name.casefold() not in (person, reversed_person)
    return company_number is not None


def map_contact(raw: Mapping[str, Any]) -> ExternalContact:
    """Map a Xero Contact onto an ``ExternalContact``."""
    first, last = _text(raw.get("FirstName")), _text(raw.get("LastName"))
    name = _text(raw.get("Name")) or " ".join(p for p in (first, last) if p)
    emails: list[str] = []
    primary = _text(raw.get("EmailAddress"))
    candidates = [primary] + [
        _text(_object(person, "ContactPersons").get("EmailAddress"))
        for person in _list(raw.get("ContactPersons"), "ContactPersons")
    ]
    for candidate in candidates:
        if candidate and candidate.casefold() not in {e.casefold() for e in emails}:
            emails.append(candidate)
    phones = tuple(
        phone
        for item in _list(raw.get("Phones"), "Phones")
        if (phone := _phone(_object(item, "Phones")))
    )
    addresses = tuple(
        address
        for item in _list(raw.get("Addresses"), "Addresses")
        if (address := _address(_object(item, "Addresses")))
    )
    best = next((a for a in addresses if a.kind == "postal"), None) or next(
        (a for a in addresses if a.kind == "street"), None
    )
    status_code = str(raw.get("ContactStatus") or "ACTIVE").upper()
    if status_code not in _CONTACT_STATUS:
        raise ValueError(f"unknown ContactStatus {status_code!r}")
    return ExternalContact(
        external_id=_required(raw, "ContactID"),
        name=name,
        is_company=_is_company(name, first, last, _text(raw.get("CompanyNumber"))),
        first_name=first,
        last_name=last,
        email_addresses=tuple(emails),
        phones=phones,
        address=best,
        addresses=addresses,
        tax_number=_text(raw.get("TaxNumber")),
        contact_number=_text(raw.get("ContactNumber")),
        account_number=_text(raw.get("AccountNumber")),
        default_currency=_text(raw.get("DefaultCurrency")),
        is_customer=raw.get("IsCustomer") if isinstance(raw.get("IsCustomer"), bool) else None,
        status=_CONTACT_STATUS[status_code],  # type: ignore[arg-type]
        merged_to_external_id=_text(raw.get("MergedToContactID")),
        updated_at=parse_xero_datetime(_required(raw, "UpdatedDateUTC")),
    )


def _optional_date(raw: Mapping[str, Any], key: str) -> dt.date | None:
    value = raw.get(key)
    return None if value in (None, "") else parse_xero_date(value)


def _status(raw: Mapping[str, Any], table: Mapping[str, str]) -> str:
    code = str(_required(raw, "Status")).upper()
    if code not in table:
        raise ValueError(f"unknown Status {code!r}")
    return table[code]


def map_invoice(raw: Mapping[str, Any]) -> ExternalInvoice | None:
    """Map a Xero sales invoice (``ACCREC``) onto an ``ExternalInvoice``; ``None`` for bills."""
    if raw.get("Type") not in (None, "ACCREC"):
        return None
    contact = _object(raw.get("Contact"), "Contact")
    issue = raw.get("Date") or raw.get("DateString")
    if not issue:
        raise ValueError("missing Date")
    return ExternalInvoice(
        external_id=_required(raw, "InvoiceID"),
        number=_text(raw.get("InvoiceNumber")) or "",
        reference=_text(raw.get("Reference")),
        contact_external_id=_required(contact, "ContactID"),
        issue_date=parse_xero_date(issue),
        due_date=_optional_date(raw, "DueDate"),
        currency=_required(raw, "CurrencyCode"),
        total=_required(raw, "Total"),
        amount_due=_required(raw, "AmountDue"),
        amount_paid=raw.get("AmountPaid", 0),
        amount_credited=raw.get("AmountCredited", 0),
        status=_status(raw, _INVOICE_STATUS),  # type: ignore[arg-type]
        expected_payment_date=_optional_date(raw, "ExpectedPaymentDate"),
        fully_paid_on=_optional_date(raw, "FullyPaidOnDate"),
        updated_at=parse_xero_datetime(_required(raw, "UpdatedDateUTC")),
    )


def map_payment(raw: Mapping[str, Any]) -> ExternalPayment | None:
    """Map a Xero payment on a sales invoice onto an ``ExternalPayment``; ``None`` otherwise."""
    if raw.get("PaymentType") not in (None, "ACCRECPAYMENT"):
        return None
    invoice = _object(raw.get("Invoice"), "Invoice")
    if invoice.get("Type") not in (None, "ACCREC"):
        return None
    contact = _object(invoice.get("Contact"), "Invoice.Contact")
    return ExternalPayment(
        external_id=_required(raw, "PaymentID"),
        invoice_external_id=_required(invoice, "InvoiceID"),
        contact_external_id=_text(contact.get("ContactID")),
        amount=_required(raw, "Amount"),
        currency=_text(invoice.get("CurrencyCode")),
        date=parse_xero_date(_required(raw, "Date")),
        reference=_text(raw.get("Reference")),
        status=_status(raw, _PAYMENT_STATUS),  # type: ignore[arg-type]
        updated_at=parse_xero_datetime(_required(raw, "UpdatedDateUTC")),
    )


def map_credit_note(raw: Mapping[str, Any]) -> ExternalCreditNote | None:
    """Map a Xero customer credit note (``ACCRECCREDIT``); ``None`` for supplier credits."""
    if raw.get("Type") not in (None, "ACCRECCREDIT"):
        return None
    allocations = []
    for item in _list(raw.get("Allocations"), "Allocations"):
        allocation = _object(item, "Allocations")
        if allocation.get("IsDeleted") is True:
            continue
        allocations.append(
            CreditAllocation(
                invoice_external_id=_required(
                    _object(allocation.get("Invoice"), "Invoice"), "InvoiceID"
                ),
                amount=_required(allocation, "Amount"),
                date=_optional_date(allocation, "Date"),
            )
        )
    return ExternalCreditNote(
        external_id=_required(raw, "CreditNoteID"),
        number=_text(raw.get("CreditNoteNumber")) or "",
        contact_external_id=_required(_object(raw.get("Contact"), "Contact"), "ContactID"),
        issue_date=_optional_date(raw, "Date"),
        amount=_required(raw, "Total"),
        remaining=raw.get("RemainingCredit", 0),
        currency=_required(raw, "CurrencyCode"),
        status=_status(raw, _INVOICE_STATUS),  # type: ignore[arg-type]
        allocations=tuple(allocations),
        updated_at=parse_xero_datetime(_required(raw, "UpdatedDateUTC")),
    )


# The fast paths: the common, well-formed shape of a record, checked by hand and built without
# a second validation. Anything unusual (a missing or oddly typed field, a lower-case status,
# an unparseable date, a float) returns _SLOW, and the record goes through the mappers above,
# which give the same result or the reason it is malformed. tests/sync/test_fast_mapping.py
# checks both paths agree.

_SLOW: Final = object()


def _fast_money(value: Any) -> Decimal | None:
    kind = type(value)
    if kind is Decimal:
        return value if value.is_finite() else None
    if kind is int:
        return Decimal(value)
    return None


def _fast_date(value: Any) -> dt.date | None | object:
    if value is None or value == "":
        return None
    if type(value) is not str:
        return _SLOW
    try:
        return _parse_xero_date(value)
    except ValueError:
        return _SLOW


def _fast_stamp(value: Any) -> dt.datetime | None:
    if type(value) is not str:
        return None
    parts = _ms_date_parts(value) if value.startswith("/Date(") else None
    if parts is None:
        return None
    return parts[0]


def _fast_currency(value: Any) -> str | None:
    if type(value) is str and len(value) == 3 and value.isascii() and value.isalpha():
        return value if value.isupper() else None
    return None


def _fast_text(value: Any) -> str | None | object:
    if value is None:
        return None
    if type(value) is not str:
        return _SLOW
    return value.strip() or None


def fast_invoice(raw: dict[str, Any]) -> ExternalInvoice | None | object:
    """``map_invoice`` for the common shape, or ``_SLOW`` to take the full path."""
    kind = raw.get("Type")
    if kind is not None and kind != "ACCREC":
        return None
    external_id = raw.get("InvoiceID")
    contact = raw.get("Contact")
    if type(external_id) is not str or not external_id or type(contact) is not dict:
        return _SLOW
    contact_id = contact.get("ContactID")
    status = _INVOICE_STATUS.get(raw.get("Status"))  # type: ignore[arg-type]
    currency = _fast_currency(raw.get("CurrencyCode"))
    total = _fast_money(raw.get("Total"))
    due = _fast_money(raw.get("AmountDue"))
    paid = _fast_money(raw.get("AmountPaid", 0))
    credited = _fast_money(raw.get("AmountCredited", 0))
    updated = _fast_stamp(raw.get("UpdatedDateUTC"))
    issue = _fast_date(raw.get("Date") or raw.get("DateString"))
    due_date = _fast_date(raw.get("DueDate"))
    expected = _fast_date(raw.get("ExpectedPaymentDate"))
    fully_paid = _fast_date(raw.get("FullyPaidOnDate"))
    number = _fast_text(raw.get("InvoiceNumber"))
    reference = _fast_text(raw.get("Reference"))
    if (
        type(contact_id) is not str
        or not contact_id
        or status is None
        or currency is None
        or total is None
        or due is None
        or paid is None
        or credited is None
        or updated is None
        or issue is None
        or _SLOW in (issue, due_date, expected, fully_paid, number, reference)
    ):
        return _SLOW
    return prevalidated(
        ExternalInvoice,
        {
            "external_id": external_id,
            "number": number or "",
            "reference": reference,
            "contact_external_id": contact_id,
            "issue_date": issue,
            "due_date": due_date,
            "currency": currency,
            "total": total,
            "amount_due": due,
            "amount_paid": paid,
            "amount_credited": credited,
            "status": status,
            "expected_payment_date": expected,
            "fully_paid_on": fully_paid,
            "updated_at": updated,
        },
    )


def fast_payment(raw: dict[str, Any]) -> ExternalPayment | None | object:
    """``map_payment`` for the common shape, or ``_SLOW`` to take the full path."""
    kind = raw.get("PaymentType")
    if kind is not None and kind != "ACCRECPAYMENT":
        return None
    invoice = raw.get("Invoice")
    if type(invoice) is not dict:
        return _SLOW
    invoice_kind = invoice.get("Type")
    if invoice_kind is not None and invoice_kind != "ACCREC":
        return None
    contact = invoice.get("Contact")
    if contact is None:
        contact_id: Any = None
    elif type(contact) is dict:
        contact_id = _fast_text(contact.get("ContactID"))
    else:
        return _SLOW
    external_id = raw.get("PaymentID")
    invoice_id = invoice.get("InvoiceID")
    amount = _fast_money(raw.get("Amount"))
    currency = _fast_text(invoice.get("CurrencyCode"))
    if currency is not None and currency is not _SLOW:
        currency = _fast_currency(currency) or _SLOW
    paid_on = _fast_date(raw.get("Date"))
    status = _PAYMENT_STATUS.get(raw.get("Status"))  # type: ignore[arg-type]
    updated = _fast_stamp(raw.get("UpdatedDateUTC"))
    reference = _fast_text(raw.get("Reference"))
    if (
        type(external_id) is not str
        or not external_id
        or type(invoice_id) is not str
        or not invoice_id
        or amount is None
        or status is None
        or updated is None
        or paid_on is None
        or _SLOW in (contact_id, currency, paid_on, reference)
    ):
        return _SLOW
    return prevalidated(
        ExternalPayment,
        {
            "external_id": external_id,
            "invoice_external_id": invoice_id,
            "contact_external_id": contact_id,
            "amount": amount,
            "currency": currency,
            "date": paid_on,
            "reference": reference,
            "status": status,
            "updated_at": updated,
        },
    )


@dataclass(frozen=True)
class _StreamSpec:
    path: str
    key: str
    id_field: str
    mapper: Callable[[Mapping[str, Any]], ExternalRecord | None]
    params: Mapping[str, str]
    fast: Callable[[dict[str, Any]], ExternalRecord | None | object] | None = None


_STREAMS: Final[dict[str, _StreamSpec]] = {
    "contacts": _StreamSpec(
        "Contacts", "Contacts", "ContactID", map_contact, {"includeArchived": "true"}
    ),
    "invoices": _StreamSpec(
        "Invoices",
        "Invoices",
        "InvoiceID",
        map_invoice,
        {"where": 'Type=="ACCREC"'},
        fast_invoice,
    ),
    "payments": _StreamSpec("Payments", "Payments", "PaymentID", map_payment, {}, fast_payment),
    "credit_notes": _StreamSpec("CreditNotes", "CreditNotes", "CreditNoteID", map_credit_note, {}),
}


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in error.errors()
        )
    if isinstance(error, KeyError):
        return f"missing {error.args[0]}"
    return str(error) or type(error).__name__


def map_record(stream: Stream, raw: Any) -> ExternalRecord | Malformed | None:
    """Map one raw record of ``stream``; a ``Malformed`` when it fails, ``None`` when skipped."""
    spec = _STREAMS[stream]
    if not isinstance(raw, dict):
        return Malformed(stream=stream, reason="record is not an object", raw={"value": raw})
    if spec.fast is not None:
        try:
            result = spec.fast(raw)
        except (ValueError, TypeError, KeyError, ArithmeticError):
            result = _SLOW
        if result is not _SLOW:
            return result  # type: ignore[return-value]
    try:
        return spec.mapper(raw)
    except (ValueError, TypeError, KeyError, ArithmeticError, ValidationError) as error:
        external_id = raw.get(spec.id_field)
        return Malformed(
            stream=stream,
            external_id=external_id if isinstance(external_id, str) and external_id else None,
            reason=_reason(error),
            raw=raw,
        )


# --------------------------------------------------------------------------- secrets


class SecretFileError(ConnectorError):
    """A secret file is missing, unreadable or readable by others."""


def _check_secret_file(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretFileError(f"secret file {path} does not exist") from None
    except OSError as error:
        raise SecretFileError(f"cannot read secret file {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretFileError(f"secret file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if os.name == "posix" and mode & 0o077:
        raise SecretFileError(
            f"secret file {path} has permissions {mode:04o}, looser than 0600: "
            f"other users could read it. Run: chmod 600 {path}"
        )


def _read_secret_file(path: Path) -> SecretStr:
    _check_secret_file(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretFileError(f"cannot read secret file {path}: {error.strerror}") from None
    if not text:
        raise SecretFileError(f"secret file {path} is empty")
    return SecretStr(text)


def _write_secret_file(path: Path, value: str) -> None:
    """Replace ``path`` atomically with ``value``, readable by the owner only."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_secret(
    env_var: str | None,
    file_path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> SecretStr:
    """Read a secret from the environment variable, else from the file.

    Refuses a file whose permissions are looser than 0600 (``SecretFileError``, with the fix).
    The value comes back as a ``SecretStr``: its repr and str are masked.
    """
    env = os.environ if environ is None else environ
    if env_var:
        value = env.get(env_var, "").strip()
        if value:
            return SecretStr(value)
    if file_path is not None:
        return _read_secret_file(Path(file_path))
    where = f"environment variable {env_var}" if env_var else "no source"
    raise SecretFileError(f"secret not found: set the {where} or give a secret file")


# --------------------------------------------------------------------------- tokens


class StaticTokenProvider:
    """A fixed bearer token (the sandbox, or a token obtained elsewhere)."""

    def __init__(self, token: str | SecretStr) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        if not self._token.get_secret_value():
            raise ValueError("the token must not be empty")

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=SecretStr('**********'))"

    def token(self) -> str:
        """The token."""
        return self._token.get_secret_value()

    def invalidate(self) -> None:
        """Nothing to refresh."""


class _OAuthTokenProvider:
    """Shared machinery: POST to the token endpoint, cache the access token until it expires."""

    grant: str = ""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | SecretStr,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        leeway: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._client = client
        self._clock = clock
        self._leeway = leeway
        self._timeout = timeout
        self._access: SecretStr | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            "client_secret=SecretStr('**********'))"
        )

    def _form(self) -> dict[str, str]:
        raise NotImplementedError

    def _received(self, body: Mapping[str, Any]) -> None:
        """Hook for the refresh-token rotation."""

    def token(self) -> str:
        """A valid access token, fetched anew when the cached one is (nearly) expired."""
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at - self._leeway:
                self._fetch()
            assert self._access is not None
            return self._access.get_secret_value()

    def invalidate(self) -> None:
        """Drop the cached access token."""
        with self._lock:
            self._access = None
            self._expires_at = 0.0

    def _fetch(self) -> None:
        basic = base64.b64encode(
            f"{self.client_id}:{self._secret.get_secret_value()}".encode()
        ).decode("ascii")
        headers = {"Authorization": f"Basic {basic}", "Accept": "application/json"}
        client = self._client or httpx.Client(timeout=self._timeout)
        try:
            response = client.post(self.token_url, data=self._form(), headers=headers)
        except httpx.HTTPError as error:
            raise AuthenticationError(
                f"token endpoint {self.token_url} unreachable ({type(error).__name__})"
            ) from None
        finally:
            if self._client is None:
                client.close()
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error_code = body.get("error") if isinstance(body, dict) else None
            raise AuthenticationError(
                f"token endpoint refused the {self.grant} grant "
                f"({response.status_code}{', ' + str(error_code) if error_code else ''})"
            )
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthenticationError("token endpoint answered without an access_token")
        register_secret(access)  # never shown in a message or log line
        self._received(body)
        expires_in = body.get("expires_in", 1800)
        self._access = SecretStr(access)
        self._expires_at = self._clock() + float(expires_in)


class ClientCredentialsTokenProvider(_OAuthTokenProvider):
    """OAuth2 client credentials (Xero custom connections)."""

    grant = "client_credentials"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | SecretStr,
        *,
        scopes: Sequence[str] = (),
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        leeway: float = 60.0,
    ) -> None:
        super().__init__(
            token_url, client_id, client_secret, client=client, clock=clock, leeway=leeway
        )
        self.scopes = tuple(scopes)

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        return form


class RefreshTokenProvider(_OAuthTokenProvider):
    """OAuth2 refresh-token grant; rotates the stored refresh token in its 0600 file.

    Xero issues a new refresh token with every refresh; it is written (atomically, 0600) before
    the access token is used, so a crash never leaves the file with a spent token.
    """

    grant = "refresh_token"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | SecretStr,
        refresh_token_path: str | os.PathLike[str],
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        leeway: float = 60.0,
    ) -> None:
        super().__init__(
            token_url, client_id, client_secret, client=client, clock=clock, leeway=leeway
        )
        self.refresh_token_path = Path(refresh_token_path)

    def __repr__(self) -> str:
        return (
            f"RefreshTokenProvider(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"client_secret=SecretStr('**********'), "
            f"refresh_token_path={str(self.refresh_token_path)!r})"
        )

    def _form(self) -> dict[str, str]:
        refresh = _read_secret_file(self.refresh_token_path)
        return {"grant_type": "refresh_token", "refresh_token": refresh.get_secret_value()}

    def _received(self, body: Mapping[str, Any]) -> None:
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            _write_secret_file(self.refresh_token_path, rotated)


# --------------------------------------------------------------------------- connector


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The limit headers of the latest response (``None`` where the server sent none)."""

    minute_remaining: int | None = None
    day_remaining: int | None = None
    app_minute_remaining: int | None = None
    problem: str | None = None


class _DefaultLimiter:
    """Marker: build Xero's published per-tenant limits (60/minute, 5000/day)."""


DEFAULT_LIMITER: Final = _DefaultLimiter()
_RETRYABLE_STATUS: Final = frozenset({500, 502, 503, 504})


def _header_int(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(headers: httpx.Headers, now: Callable[[], float] = time.time) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now())


def _error_message(response: httpx.Response) -> str:
    """A short, secret-free description of a Xero error response."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    messages: list[str] = []
    for element in body.get("Elements") or []:
        if isinstance(element, dict):
            for error in element.get("ValidationErrors") or []:
                if isinstance(error, dict) and error.get("Message"):
                    messages.append(str(error["Message"]))
    text = (
        "; ".join(messages)
        or body.get("Message")
        or body.get("Detail")
        or body.get("Title")
        or f"HTTP {response.status_code}"
    )
    return f"{text} (HTTP {response.status_code})"


class XeroConnector:
    """Pulls contacts, invoices, payments and credit notes; pushes notes and expected dates.

    ``rate_limiter`` defaults to Xero's published per-tenant limits (60 calls a minute, 5000 a
    day); pass ``None`` to disable client-side limiting (tests, the throughput benchmark).
    ``sleep`` and ``rng`` are injectable so retry tests run instantly and deterministically.
    """

    name = "xero"

    def __init__(
        self,
        base_url: str,
        tenant_id: str | None,
        token_provider: TokenProvider,
        *,
        client: httpx.Client | None = None,
        rate_limiter: RateLimiter | _DefaultLimiter | None = DEFAULT_LIMITER,
        page_size: int = 100,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_wait: float = 120.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.token_provider = token_provider
        self.page_size = page_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_wait = max_wait
        self.rate_limiter: RateLimiter | None = (
            RateLimiter() if isinstance(rate_limiter, _DefaultLimiter) else rate_limiter
        )
        self.limits = RateLimitStatus()
        self.requests_sent = 0
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )

    def __repr__(self) -> str:
        return (
            f"XeroConnector(base_url={self.base_url!r}, tenant_id={self.tenant_id!r}, "
            f"token_provider={self.token_provider!r})"
        )

    def __enter__(self) -> XeroConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if the connector created it."""
        if self._owns_client:
            self._client.close()

    # -- transport -----------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token_provider.token()}",
            "Accept": "application/json",
        }
        if self.tenant_id:
            headers["xero-tenant-id"] = self.tenant_id
        if extra:
            headers.update(extra)
        return headers

    def _observe(self, response: httpx.Response) -> None:
        headers = response.headers
        self.limits = RateLimitStatus(
            minute_remaining=_header_int(headers, "X-MinLimit-Remaining"),
            day_remaining=_header_int(headers, "X-DayLimit-Remaining"),
            app_minute_remaining=_header_int(headers, "X-AppMinLimit-Remaining"),
            problem=headers.get("X-Rate-Limit-Problem"),
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """Send with client-side limiting and retries; return a 2xx or a terminal 4xx."""
        url = self.base_url + path
        content = None
        extra = dict(headers or {})
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            extra["Content-Type"] = "application/json"
        refreshed = False
        attempt = 0
        while True:
            if self.rate_limiter is not None:
                try:
                    self.rate_limiter.acquire(self.tenant_id or "default", max_wait=self.max_wait)
                except LimitWouldBlock as error:
                    if error.limit == "daily":
                        raise DailyLimitReached(
                            "client-side daily call budget spent", error.wait
                        ) from None
                    raise RateLimited("client-side call budget spent", error.wait) from None
            wait: float | None
            try:
                self.requests_sent += 1
                response = self._client.request(
                    method, url, params=params, content=content, headers=self._headers(extra)
                )
            except httpx.TransportError as error:
                problem = f"{method} {path}: {type(error).__name__}"
                wait = None
            else:
                self._observe(response)
                status = response.status_code
                if status < 400:
                    return response
                if status == 401:
                    if refreshed:
                        raise AuthenticationError(f"{method} {path}: access token refused (401)")
                    refreshed = True
                    self.token_provider.invalidate()
                    continue
                if status == 403:
                    raise AuthenticationError(
                        f"{method} {path}: forbidden, check the tenant connection and scopes "
                        f"({_error_message(response)})"
                    )
                if status == 429:
                    retry_after = _retry_after(response.headers)
                    limit = (response.headers.get("X-Rate-Limit-Problem") or "").lower()
                    if "day" in limit:
                        raise DailyLimitReached(
                            f"{method} {path}: daily limit reached", retry_after
                        )
                    wait = retry_after if retry_after is not None else self._backoff(attempt)
                    if wait > self.max_wait:
                        raise RateLimited(f"{method} {path}: rate limited ({limit})", wait)
                    if attempt >= self.max_retries:
                        raise RateLimited(f"{method} {path}: still rate limited", wait)
                    log.info(
                        "rate limited (%s) on %s %s; waiting %.1f s", limit, method, path, wait
                    )
                    self._sleep(wait)
                    attempt += 1
                    continue
                if status not in _RETRYABLE_STATUS:
                    return response
                problem = f"{method} {path}: HTTP {status}"
                wait = _retry_after(response.headers)
            if attempt >= self.max_retries:
                raise TransientError(f"{problem}, after {attempt + 1} attempts")
            delay = self._backoff(attempt) if wait is None else min(wait, self.max_wait)
            log.warning("%s; retry %d in %.2f s", problem, attempt + 1, delay)
            self._sleep(delay)
            attempt += 1

    # -- pull ----------------------------------------------------------------------

    def pull(self, stream: Stream, since: dt.datetime | None) -> Iterator[Page]:
        """Yield pages of ``stream`` updated after ``since``, ordered by UpdatedDateUTC.

        Paging stops by ``pagination.pageCount`` (a short page is not the end). Records that
        fail to map are returned in ``Page.malformed``; the rest of the page goes on.
        """
        if stream not in _STREAMS:
            raise ValueError(f"unknown stream {stream!r}")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        spec = _STREAMS[stream]
        headers = {"If-Modified-Since": format_if_modified_since(since)} if since else None
        emitted = since
        seen_max: dt.datetime | None = None
        previous_last: dt.datetime | None = None
        ordered = True
        page_number = 1
        while True:
            params: dict[str, str | int] = {
                "page": page_number,
                "pageSize": self.page_size,
                "order": "UpdatedDateUTC ASC",
                **spec.params,
            }
            response = self._send("GET", "/" + spec.path, params=params, headers=headers)
            if response.status_code >= 400:
                raise RequestRejected(
                    f"GET /{spec.path}: {_error_message(response)}", response.status_code
                )
            try:
                body = decode_json(response.content)
            except ValueError:
                raise ConnectorError(f"GET /{spec.path}: the response is not JSON") from None
            if not isinstance(body, dict):
                raise ConnectorError(f"GET /{spec.path}: the response is not a JSON object")
            items = body.get(spec.key) or []
            if not isinstance(items, list):
                raise ConnectorError(f"GET /{spec.path}: {spec.key} is not a list")
            pagination = body.get("pagination")
            page_count = item_count = None
            if isinstance(pagination, dict):
                page_count = pagination.get("pageCount")
                item_count = pagination.get("itemCount")
                page_count = page_count if isinstance(page_count, int) else None
                item_count = item_count if isinstance(item_count, int) else None

            records: list[ExternalRecord] = []
            malformed: list[Malformed] = []
            stamps: list[dt.datetime] = []
            skipped = 0
            for raw in items:
                result = map_record(stream, raw)
                if result is None:
                    skipped += 1
                    stamp = _stamp(raw)
                elif isinstance(result, Malformed):
                    malformed.append(result)
                    stamp = _stamp(raw)
                else:
                    records.append(result)
                    stamp = result.updated_at
                if stamp is not None:
                    stamps.append(stamp)

            if page_count is not None:
                last = page_number >= page_count or item_count == 0
            else:
                # No pagination element: only then may a page shorter than asked end the pull.
                last = len(items) != self.page_size

            if stamps:
                page_max = max(stamps)
                seen_max = page_max if seen_max is None else max(seen_max, page_max)
                in_order = all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))
                if not in_order or (previous_last is not None and stamps[0] < previous_last):
                    ordered = False
                previous_last = stamps[-1]

            cursor: dt.datetime | None = None
            candidate: dt.datetime | None = None
            if last:
                candidate = seen_max
            elif ordered and stamps:
                # Records sharing the last timestamp may continue on the next page.
                candidate = _floor_ms(stamps[-1]) - _ONE_MS
            if candidate is not None and (emitted is None or candidate > emitted):
                cursor = emitted = candidate

            yield Page(
                stream=stream,
                records=tuple(records),
                malformed=tuple(malformed),
                page_number=page_number,
                page_count=page_count,
                cursor=cursor,
                item_count=item_count,
                skipped=skipped,
            )
            if last:
                return
            page_number += 1

    # -- push ----------------------------------------------------------------------

    def push(self, outcome: Outcome) -> PushResult:
        """Deliver a history note or an expected payment date, with its idempotency key.

        Raises ``AuthenticationError`` when the credentials are refused: that stops every
        push, not just this one.
        """
        invoice = quote(outcome.invoice_external_id, safe="")
        headers = {"Idempotency-Key": outcome.idempotency_key}
        if isinstance(outcome, HistoryNote):
            method, path = "PUT", f"/Invoices/{invoice}/History"
            body: dict[str, Any] = {"HistoryRecords": [{"Details": outcome.details}]}
            key = "HistoryRecords"
        elif isinstance(outcome, ExpectedPaymentDate):
            method, path = "POST", f"/Invoices/{invoice}"
            body = {
                "Invoices": [
                    {
                        "InvoiceID": outcome.invoice_external_id,
                        "ExpectedPaymentDate": outcome.date.isoformat(),
                    }
                ]
            }
            key = "Invoices"
        else:  # pragma: no cover - guarded by the type
            raise TypeError(f"cannot push {type(outcome).__name__}")
        try:
            response = self._send(method, path, headers=headers, body=body)
        except DailyLimitReached as error:
            return PushResult.daily_limit(error.retry_after, str(error))
        except RateLimited as error:
            return PushResult.retry(error.retry_after, str(error), 429)
        except TransientError as error:
            return PushResult.retry(self.backoff_cap, str(error))
        status = response.status_code
        if status == 404:
            return PushResult.failed(
                f"invoice {outcome.invoice_external_id} not found (HTTP 404)", status
            )
        if status >= 400:
            return PushResult.failed(_error_message(response), status)
        try:
            answer = json.loads(response.content) if response.content else {}
        except ValueError:
            answer = {}
        problems = _validation_errors(answer, key)
        if problems:
            return PushResult.failed("; ".join(problems), status)
        return PushResult.delivered(status)


def _stamp(raw: Any) -> dt.datetime | None:
    if not isinstance(raw, dict):
        return None
    try:
        return parse_xero_datetime(raw["UpdatedDateUTC"])
    except (KeyError, ValueError):
        return None


def _validation_errors(answer: Any, key: str) -> list[str]:
    problems: list[str] = []
    if not isinstance(answer, dict):
        return problems
    for item in answer.get(key) or []:
        if isinstance(item, dict):
            for error in item.get("ValidationErrors") or []:
                if isinstance(error, dict) and error.get("Message"):
                    problems.append(str(error["Message"]))
    return problems


__all__ = [
    "DEFAULT_LIMITER",
    "MAX_PAGE_SIZE",
    "XERO_API_URL",
    "XERO_TOKEN_URL",
    "ClientCredentialsTokenProvider",
    "RateLimitStatus",
    "RefreshTokenProvider",
    "SecretFileError",
    "StaticTokenProvider",
    "XeroConnector",
    "decode_json",
    "format_if_modified_since",
    "format_xero_date",
    "format_xero_datetime",
    "load_secret",
    "map_contact",
    "map_credit_note",
    "map_invoice",
    "map_payment",
    "map_record",
    "parse_xero_date",
    "parse_xero_datetime",
]
