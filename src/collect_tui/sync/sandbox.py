"""A local server speaking Xero's Accounting API wire format, for the demo and the tests.

Seeded and deterministic: ``SandboxServer(customers=N, seed=S)`` always builds the same
portfolio of contacts (persons and companies in several countries, some archived, a few merged),
1-8 sales invoices each (authorised with an aging spread, paid, voided, deleted, draft), their
payments and a few credit notes, with dates as Xero sends them (``/Date(ms+0000)/``).

Endpoints (under ``/api.xro/2.0``): ``GET /Contacts``, ``/Invoices``, ``/Payments``,
``/CreditNotes`` (``page``, ``pageSize``, ``If-Modified-Since``, ``includeArchived``, ``where``,
``Statuses``, ``order``), ``GET /Invoices/{id}``, ``GET|PUT /Invoices/{id}/History``,
``POST /Invoices/{id}`` (``ExpectedPaymentDate``); plus an OAuth2 token endpoint at
``/connect/token`` (client credentials and rotating refresh tokens).

Writes honour ``Idempotency-Key``: a repeated key replays the first response and changes
nothing. Faults are injected deterministically from the seed: 429 with ``Retry-After`` and
``X-Rate-Limit-Problem`` past ``rate_limit`` calls a minute, 5xx at ``fail_rate``, slow responses
at ``slow_rate``, malformed records at ``malformed_rate``. Records are kept pre-serialized, so a
full pull at ``pageSize=1000`` runs at well over 10,000 invoices a second over 127.0.0.1.

Run it in the foreground with ``main(["--port", "8765", "--customers", "1000"])``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import functools
import gc
import json
import logging
import math
import random
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

API_PREFIX: Final = "/api.xro/2.0"
TOKEN_PATH: Final = "/connect/token"
MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 100
NOMINAL_MINUTE_LIMIT: Final = 60
NOMINAL_DAY_LIMIT: Final = 5000
APP_MINUTE_LIMIT: Final = 10_000
HISTORY_DETAILS_MAX: Final = 250

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CENT = Decimal("0.01")
_RESOURCES: Final = ("Contacts", "Invoices", "Payments", "CreditNotes")
_STATUS_TEXT: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# --------------------------------------------------------------------------- wire helpers


def _ms(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)


def _wire_datetime(millis: int) -> str:
    return f"/Date({millis}+0000)/"


@functools.lru_cache(maxsize=4096)
def _wire_date(value: dt.date) -> str:
    return _wire_datetime(_ms(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)))


def _iso_utc(millis: int) -> str:
    moment = _EPOCH + dt.timedelta(milliseconds=millis)
    return moment.isoformat()[:19] + "Z"


def _money(value: Decimal) -> float:
    """JSON numbers for the wire: a 2-decimal amount's float repr is that same decimal."""
    return float(value)


def _decimal(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _parse_if_modified_since(value: str) -> int:
    """Milliseconds since the epoch from an ISO 8601 or an HTTP date."""
    text = value.strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError) as error:
            raise ValueError(f"bad If-Modified-Since: {value!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return _ms(moment.astimezone(dt.UTC))


# --------------------------------------------------------------------------- portfolio

_FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Mia",
    "Lucas",
    "Isla",
    "Jack",
    "Aroha",
    "Nikau",
    "Charlotte",
    "William",
    "Amelia",
    "James",
    "Sophie",
    "Thomas",
    "Grace",
    "Henry",
    "Ruby",
    "Leo",
    "Chloe",
    "Samuel",
    "Maia",
    "Tane",
    "Ana",
    "Joao",
    "Maria",
    "Pedro",
    "Lucia",
    "Rafael",
    "Beatriz",
    "Gabriel",
    "Priya",
    "Arjun",
    "Mei",
    "Wei",
    "Hana",
    "Kenji",
    "Fatima",
    "Omar",
    "Zoe",
    "Ethan",
]
_LAST = [
    "Smith",
    "Jones",
    "Williams",
    "Brown",
    "Taylor",
    "Wilson",
    "Ngata",
    "Walker",
    "Harris",
    "Martin",
    "Thompson",
    "White",
    "Clarke",
    "Robinson",
    "Wright",
    "Tane",
    "Patel",
    "Singh",
    "Chen",
    "Wang",
    "Kim",
    "Nguyen",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Costa",
    "Pereira",
    "Almeida",
    "Murphy",
    "Kelly",
    "OBrien",
    "Campbell",
    "Stewart",
    "Morris",
    "Hughes",
    "Edwards",
    "Parata",
    "Hohaia",
]
_TRADES = [
    "Plumbing",
    "Electrical",
    "Builders",
    "Landscaping",
    "Cafe",
    "Bakery",
    "Motors",
    "Logistics",
    "Design",
    "Consulting",
    "Joinery",
    "Roofing",
    "Dental",
    "Physio",
    "Print",
    "Media",
    "Catering",
    "Freight",
    "Engineering",
    "Accounting",
]


@dataclass(frozen=True)
class _Country:
    name: str
    code: str
    currency: str
    phone: str
    tax_rate: Decimal
    suffixes: tuple[str, ...]
    places: tuple[tuple[str, str, str], ...]  # city, region, postal code
    domain: str


_COUNTRIES: Final = (
    _Country(
        "New Zealand",
        "NZ",
        "NZD",
        "64",
        Decimal("0.15"),
        ("Ltd", "Limited"),
        (
            ("Auckland", "Auckland", "1010"),
            ("Wellington", "Wellington", "6011"),
            ("Christchurch", "Canterbury", "8011"),
        ),
        "example.co.nz",
    ),
    _Country(
        "Australia",
        "AU",
        "AUD",
        "61",
        Decimal("0.10"),
        ("Pty Ltd",),
        (("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("Brisbane", "QLD", "4000")),
        "example.com.au",
    ),
    _Country(
        "United Kingdom",
        "GB",
        "GBP",
        "44",
        Decimal("0.20"),
        ("Ltd", "LLP", "plc"),
        (
            ("London", "Greater London", "EC1A 1BB"),
            ("Manchester", "Greater Manchester", "M1 1AE"),
            ("Leeds", "West Yorkshire", "LS1 4AP"),
        ),
        "example.co.uk",
    ),
    _Country(
        "United States",
        "US",
        "USD",
        "1",
        Decimal("0"),
        ("Inc", "LLC", "Corp"),
        (("Palo Alto", "CA", "94301"), ("Austin", "TX", "78701"), ("New York", "NY", "10001")),
        "example.com",
    ),
    _Country(
        "Brazil",
        "BR",
        "BRL",
        "55",
        Decimal("0"),
        ("Ltda", "S.A."),
        (
            ("Sao Paulo", "SP", "01310-100"),
            ("Rio de Janeiro", "RJ", "20040-020"),
            ("Curitiba", "PR", "80010-000"),
        ),
        "example.com.br",
    ),
    _Country(
        "Canada",
        "CA",
        "CAD",
        "1",
        Decimal("0.05"),
        ("Inc", "Ltd"),
        (
            ("Toronto", "ON", "M5H 2N2"),
            ("Vancouver", "BC", "V6B 1A1"),
            ("Montreal", "QC", "H2Y 1C6"),
        ),
        "example.ca",
    ),
)
_COUNTRY_WEIGHTS: Final = (30, 20, 15, 20, 8, 7)


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (deterministic by seed)."""
    h = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def _randint(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` without its overhead (the portfolio draws hundreds of thousands)."""
    return low + int(rng.random() * (high - low + 1))


def _amount(rng: random.Random, low: float, high: float) -> Decimal:
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


_CONTAINERS: Final = (dict, list)


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar fields of a record, nested objects one level down as ``Parent.Child``."""
    flat = {key: value for key, value in data.items() if type(value) not in _CONTAINERS}
    for key, value in data.items():
        if type(value) is dict:
            for inner, scalar in value.items():
                if type(scalar) not in _CONTAINERS:
                    flat[f"{key}.{inner}"] = scalar
    return flat


@dataclass(slots=True)
class _Item:
    """One record: its pre-serialized JSON, its filterable fields and its position in time.

    A record lives as bytes plus a flat dict of scalars, not as nested dicts and lists: that
    keeps the garbage collector's work (and so the client's, in the same process) small.
    """

    id: str
    updated_ms: int
    blob: bytes = b""
    fields: dict[str, Any] = field(default_factory=dict)

    def load(self) -> dict[str, Any]:
        """A fresh copy of the wire dict."""
        return json.loads(self.blob)

    def seal(self, data: Mapping[str, Any]) -> None:
        """Serialize ``data`` as this record's wire form."""
        self.blob = _dumps(data)
        self.fields = _flatten(data)


@dataclass(slots=True)
class _Draft:
    """A record while the portfolio is being built."""

    id: str
    updated_ms: int
    data: dict[str, Any]


@dataclass
class _Store:
    """The records of one resource, kept sorted by UpdatedDateUTC."""

    key: str
    items: dict[str, _Item] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    version: int = 0

    def load(self, drafts: Iterable[_Draft]) -> None:
        ordered = sorted(drafts, key=lambda draft: (draft.updated_ms, draft.id))
        for draft in ordered:
            item = _Item(draft.id, draft.updated_ms)
            item.seal(draft.data)
            self.items[item.id] = item
        self.order = [item.id for item in ordered]
        self.stamps = [item.updated_ms for item in ordered]
        self.version += 1

    def touched(self, item: _Item, millis: int, data: dict[str, Any]) -> None:
        """Store ``data`` as ``item`` with a new UpdatedDateUTC, moved to the end."""
        if item.id in self.items:
            index = self.order.index(item.id)
            del self.order[index]
            del self.stamps[index]
        self.items[item.id] = item
        item.updated_ms = millis
        if "UpdatedDateUTC" in data:
            data["UpdatedDateUTC"] = _wire_datetime(millis)
        if "UpdatedDateUTCString" in data:
            data["UpdatedDateUTCString"] = _iso_utc(millis)
        item.seal(data)
        self.order.append(item.id)
        self.stamps.append(millis)
        self.version += 1


class _Portfolio:
    """Builds the seeded records."""

    def __init__(
        self,
        customers: int,
        seed: int,
        today: dt.date,
        now_ms: int,
        malformed_rate: float,
    ) -> None:
        self.rng = random.Random(seed)
        self.bad = random.Random(seed * 7919 + 17)
        self.today = today
        self.now_ms = now_ms
        self.malformed_rate = malformed_rate
        self.contacts: list[_Draft] = []
        self.invoices: list[_Draft] = []
        self.payments: list[_Draft] = []
        self.credit_notes: list[_Draft] = []
        self.malformed: dict[str, set[str]] = {name: set() for name in _RESOURCES}
        self.invoice_seq = 0
        self.credit_seq = 0
        self.build(customers)

    def past_ms(self, day: dt.date, *, spread_days: int = 3) -> int:
        """A moment on or a little after ``day`` (never in the future)."""
        base = _ms(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
        moment = base + _randint(self.rng, 8 * 3600_000, (8 + 24 * spread_days) * 3600_000)
        latest = self.now_ms - _randint(self.rng, 1_000, 600_000)
        return max(min(moment, latest), min(base, latest))

    def build(self, customers: int) -> None:
        active: list[str] = []
        for number in range(1, customers + 1):
            country = self.rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
            contact = self.contact(number, country)
            roll = self.rng.random()
            if roll < 0.01 and active:
                contact.data["ContactStatus"] = "ARCHIVED"
                contact.data["MergedToContactID"] = self.rng.choice(active)
                merged_on = self.today - dt.timedelta(days=_randint(self.rng, 1, 200))
                contact.updated_ms = self.past_ms(merged_on)
                contact.data["UpdatedDateUTC"] = _wire_datetime(contact.updated_ms)
                self.finish("Contacts", contact)
                continue
            if roll < 0.05:
                contact.data["ContactStatus"] = "ARCHIVED"
            else:
                active.append(contact.id)
            first_issue = self.today
            for _ in range(_randint(self.rng, 1, 8)):
                invoice = self.invoice(contact, country)
                first_issue = min(first_issue, self.issue_of(invoice))
            if self.rng.random() < 0.03:
                self.bill(contact, country)
            contact.updated_ms = self.past_ms(first_issue - dt.timedelta(days=7))
            contact.data["UpdatedDateUTC"] = _wire_datetime(contact.updated_ms)
            self.finish("Contacts", contact)

    @staticmethod
    def issue_of(invoice: _Draft) -> dt.date:
        return dt.date.fromisoformat(invoice.data["DateString"][:10])

    def contact(self, number: int, country: _Country) -> _Draft:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = rng.random() < 0.35
        if company:
            name = f"{last} {rng.choice(_TRADES)} {rng.choice(country.suffixes)}"
            slug = re.sub(r"[^a-z]", "", name.lower())[:24]
            email = f"accounts@{slug}.{country.domain}"
        else:
            name = f"{first} {last}"
            email = f"{first.lower()}.{last.lower()}{number}@{country.domain}"
        city, region, postal = rng.choice(country.places)
        street = f"{_randint(rng, 1, 400)} {rng.choice(_LAST)} {rng.choice(['St', 'Rd', 'Ave'])}"
        phones = [
            {
                "PhoneType": "DEFAULT",
                "PhoneNumber": f"555 {_randint(rng, 0, 9999):04d}",
                "PhoneAreaCode": str(_randint(rng, 2, 9)),
                "PhoneCountryCode": country.phone,
            },
            {"PhoneType": "DDI", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {"PhoneType": "FAX", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            {
                "PhoneType": "MOBILE",
                "PhoneNumber": f"555 {_randint(rng, 0, 9999):04d}" if rng.random() < 0.7 else "",
                "PhoneAreaCode": "21",
                "PhoneCountryCode": country.phone,
            },
        ]
        data: dict[str, Any] = {
            "ContactID": _uuid(rng),
            "ContactStatus": "ACTIVE",
            "Name": name,
            "AccountNumber": f"CUST-{number:06d}",
            "EmailAddress": email,
            "BankAccountDetails": "",
            "Addresses": [
                {
                    "AddressType": "STREET",
                    "City": "",
                    "Region": "",
                    "PostalCode": "",
                    "Country": "",
                },
                {
                    "AddressType": "POBOX",
                    "AddressLine1": street,
                    "AddressLine2": "",
                    "AddressLine3": "",
                    "AddressLine4": "",
                    "City": city,
                    "Region": region,
                    "PostalCode": postal,
                    "Country": country.name,
                },
            ],
            "Phones": phones,
            "UpdatedDateUTC": "",
            "ContactGroups": [],
            "IsSupplier": False,
            "IsCustomer": True,
            "DefaultCurrency": country.currency,
            "ContactPersons": [],
            "HasAttachments": False,
            "HasValidationErrors": False,
        }
        if company:
            data["CompanyNumber"] = f"{_randint(rng, 10_000_000, 99_999_999)}"
            data["TaxNumber"] = (
                f"{_randint(rng, 100, 999)}-{_randint(rng, 100, 999)}-{_randint(rng, 100, 999)}"
            )
            if rng.random() < 0.6:
                data["FirstName"], data["LastName"] = first, last
                data["ContactPersons"] = [
                    {
                        "FirstName": first,
                        "LastName": last,
                        "EmailAddress": f"{first.lower()}@{slug}.{country.domain}",
                        "IncludeInEmails": True,
                    }
                ]
        else:
            data["FirstName"], data["LastName"] = first, last
        return _Draft(data["ContactID"], 0, data)

    def _contact_ref(self, contact: _Draft) -> dict[str, Any]:
        return {"ContactID": contact.id, "Name": contact.data["Name"]}

    def invoice(self, contact: _Draft, country: _Country, kind: str = "ACCREC") -> _Draft:
        rng = self.rng
        issue = self.today - dt.timedelta(days=_randint(rng, 1, 421))
        due = issue + dt.timedelta(days=rng.choice((7, 14, 20, 30, 30, 30, 45, 60)))
        total = _amount(rng, 40, 25_000)
        subtotal = (total / (1 + country.tax_rate)).quantize(_CENT, rounding=ROUND_HALF_UP)
        roll = rng.random()
        if roll < 0.03:
            status = "DRAFT"
        elif roll < 0.05:
            status = "SUBMITTED"
        elif roll < 0.08:
            status = "VOIDED"
        elif roll < 0.10:
            status = "DELETED"
        elif roll < 0.40 and issue < self.today - dt.timedelta(days=3):
            status = "PAID"
        else:
            status = "AUTHORISED"
        if kind == "ACCREC":
            self.invoice_seq += 1
            number = f"INV-{self.invoice_seq:06d}"
        else:
            number = f"BILL-{_randint(rng, 1000, 99999)}"
        data: dict[str, Any] = {
            "Type": kind,
            "InvoiceID": _uuid(rng),
            "InvoiceNumber": number,
            "Reference": rng.choice(
                ("", "PO " + str(_randint(rng, 1000, 9999)), "Monthly service")
            ),
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "AmountDue": _money(total),
            "AmountPaid": 0.0,
            "AmountCredited": 0.0,
            "SentToContact": status not in ("DRAFT", "SUBMITTED"),
            "CurrencyRate": 1.0,
            "HasErrors": False,
            "IsDiscounted": False,
            "HasAttachments": False,
            "Contact": self._contact_ref(contact),
            "DateString": f"{issue.isoformat()}T00:00:00",
            "Date": _wire_date(issue),
            "DueDateString": f"{due.isoformat()}T00:00:00",
            "DueDate": _wire_date(due),
            "Status": status,
            "LineAmountTypes": "Exclusive",
            "LineItems": [
                {
                    "Description": f"{rng.choice(_TRADES)} services",
                    "Quantity": 1.0,
                    "UnitAmount": _money(subtotal),
                    "TaxAmount": _money(total - subtotal),
                    "LineAmount": _money(subtotal),
                    "AccountCode": "200",
                    "LineItemID": _uuid(rng),
                }
            ],
            "SubTotal": _money(subtotal),
            "TotalTax": _money(total - subtotal),
            "Total": _money(total),
            "UpdatedDateUTC": "",
            "UpdatedDateUTCString": "",
            "CurrencyCode": country.currency,
        }
        item = _Draft(data["InvoiceID"], self.past_ms(issue), data)
        if status == "AUTHORISED" and rng.random() < 0.05:
            promised = self.today + dt.timedelta(days=_randint(rng, -20, 30))
            data["ExpectedPaymentDate"] = _wire_date(promised)
        if status == "PAID":
            parts = 2 if rng.random() < 0.2 else 1
            first = (total / parts).quantize(_CENT) if parts == 2 else total
            amounts = [first, total - first] if parts == 2 else [total]
            last_day = issue
            for amount in amounts:
                last_day = self.payment(item, amount, issue, due)
            data["AmountDue"], data["AmountPaid"] = 0.0, _money(total)
            data["FullyPaidOnDate"] = _wire_date(last_day)
            item.updated_ms = max(item.updated_ms, self.past_ms(last_day))
        elif status == "AUTHORISED" and rng.random() < 0.15:
            paid = (total * Decimal(str(round(rng.uniform(0.1, 0.7), 2)))).quantize(_CENT)
            day = self.payment(item, paid, issue, due)
            data["AmountDue"], data["AmountPaid"] = _money(total - paid), _money(paid)
            item.updated_ms = max(item.updated_ms, self.past_ms(day))
        if status == "AUTHORISED" and rng.random() < 0.02:
            self.payment(item, total, issue, due, deleted=True)
        if status == "AUTHORISED" and kind == "ACCREC" and rng.random() < 0.02:
            self.credit_note(item, contact)
        data["UpdatedDateUTC"] = _wire_datetime(item.updated_ms)
        data["UpdatedDateUTCString"] = _iso_utc(item.updated_ms)
        if kind == "ACCREC":
            self.finish("Invoices", item)
        else:
            self.finish("Invoices", item, corrupt=False)
        return item

    def bill(self, contact: _Draft, country: _Country) -> None:
        contact.data["IsSupplier"] = True
        self.invoice(contact, country, kind="ACCPAY")

    def payment(
        self,
        invoice: _Draft,
        amount: Decimal,
        issue: dt.date,
        due: dt.date,
        *,
        deleted: bool = False,
    ) -> dt.date:
        rng = self.rng
        latest = min(self.today - dt.timedelta(days=1), due + dt.timedelta(days=60))
        span = max(0, (latest - issue).days)
        day = issue + dt.timedelta(days=_randint(rng, 0, span))
        millis = self.past_ms(day, spread_days=1)
        data: dict[str, Any] = {
            "PaymentID": _uuid(rng),
            "Date": _wire_date(day),
            "BankAmount": _money(amount),
            "Amount": _money(amount),
            "Reference": rng.choice(("", "Direct credit", "Card", "Bank transfer")),
            "CurrencyRate": 1.0,
            "PaymentType": "ACCRECPAYMENT" if invoice.data["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "Status": "DELETED" if deleted else "AUTHORISED",
            "UpdatedDateUTC": _wire_datetime(millis),
            "UpdatedDateUTCString": _iso_utc(millis),
            "HasAccount": True,
            "IsReconciled": rng.random() < 0.8,
            "Account": {"AccountID": "5690f1e8-1d02-4893-90c2-ee1a69eff942", "Code": "090"},
            "Invoice": {
                "Type": invoice.data["Type"],
                "InvoiceID": invoice.id,
                "InvoiceNumber": invoice.data["InvoiceNumber"],
                "Contact": invoice.data["Contact"],
                "CurrencyCode": invoice.data["CurrencyCode"],
            },
            "HasValidationErrors": False,
        }
        if not deleted:
            invoice.data["Payments"].append(
                {
                    "PaymentID": data["PaymentID"],
                    "Date": data["Date"],
                    "Amount": data["Amount"],
                    "Reference": data["Reference"],
                    "CurrencyRate": 1.0,
                }
            )
        self.finish("Payments", _Draft(data["PaymentID"], millis, data))
        return day

    def credit_note(self, invoice: _Draft, contact: _Draft) -> None:
        rng = self.rng
        due = _decimal(invoice.data["AmountDue"])
        total = _decimal(invoice.data["Total"])
        amount = min(due, (total * Decimal(str(round(rng.uniform(0.05, 0.3), 2)))).quantize(_CENT))
        if amount <= 0:
            return
        allocated = amount if rng.random() < 0.7 else (amount / 2).quantize(_CENT)
        issue = self.issue_of(invoice) + dt.timedelta(days=_randint(rng, 1, 20))
        issue = min(issue, self.today - dt.timedelta(days=1))
        millis = self.past_ms(issue, spread_days=1)
        self.credit_seq += 1
        data = {
            "CreditNoteID": _uuid(rng),
            "CreditNoteNumber": f"CN-{self.credit_seq:05d}",
            "Type": "ACCRECCREDIT",
            "Reference": "Goodwill credit",
            "Status": "PAID" if allocated == amount else "AUTHORISED",
            "Contact": self._contact_ref(contact),
            "DateString": f"{issue.isoformat()}T00:00:00",
            "Date": _wire_date(issue),
            "LineAmountTypes": "Exclusive",
            "LineItems": [],
            "SubTotal": _money(amount),
            "TotalTax": 0.0,
            "Total": _money(amount),
            "RemainingCredit": _money(amount - allocated),
            "Allocations": [
                {
                    "Amount": _money(allocated),
                    "Date": _wire_date(issue),
                    "Invoice": {
                        "InvoiceID": invoice.id,
                        "InvoiceNumber": invoice.data["InvoiceNumber"],
                    },
                }
            ],
            "Payments": [],
            "CurrencyCode": invoice.data["CurrencyCode"],
            "CurrencyRate": 1.0,
            "UpdatedDateUTC": _wire_datetime(millis),
            "UpdatedDateUTCString": _iso_utc(millis),
            "HasAttachments": False,
        }
        invoice.data["AmountDue"] = _money(due - allocated)
        invoice.data["AmountCredited"] = _money(allocated)
        invoice.data["CreditNotes"].append(
            {
                "CreditNoteID": data["CreditNoteID"],
                "CreditNoteNumber": data["CreditNoteNumber"],
                "Total": data["Total"],
                "AppliedAmount": _money(allocated),
            }
        )
        invoice.updated_ms = max(invoice.updated_ms, millis)
        self.finish("CreditNotes", _Draft(data["CreditNoteID"], millis, data))

    def finish(self, resource: str, item: _Draft, *, corrupt: bool = True) -> None:
        target = {
            "Contacts": self.contacts,
            "Invoices": self.invoices,
            "Payments": self.payments,
            "CreditNotes": self.credit_notes,
        }[resource]
        target.append(item)
        if corrupt and self.malformed_rate and self.bad.random() < self.malformed_rate:
            self.corrupt(resource, item)

    def corrupt(self, resource: str, item: _Draft) -> None:
        data = item.data
        choice = self.bad.randrange(3)
        if resource == "Invoices":
            if choice == 0:
                del data["InvoiceID"]
            elif choice == 1:
                data["DueDate"] = "/Date(not-a-date)/"
            else:
                data["AmountDue"] = "N/A"
        elif resource == "Contacts":
            if choice == 0:
                del data["ContactID"]
            else:
                data["UpdatedDateUTC"] = "yesterday"
        elif resource == "Payments":
            if choice == 0:
                data["Amount"] = "lots"
            else:
                data["Invoice"] = {}
        else:
            data["Total"] = "??"
        self.malformed[resource].add(item.id)


# --------------------------------------------------------------------------- where filters

_CLAUSE = re.compile(
    r"^\s*([A-Za-z][\w.]*)\s*(==|!=)\s*"
    r'(?:"([^"]*)"|Guid\("([^"]*)"\)|(true|false)|(-?\d+(?:\.\d+)?))\s*$',
    re.IGNORECASE,
)


def _lookup(fields: Mapping[str, Any], path: str) -> Any:
    return fields.get(path)


def _compile_where(where: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a Xero ``where`` filter of ``Field=="value"`` clauses joined by AND."""
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for clause in re.split(r"\s+(?:AND|&&)\s+", where.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ValueError(f"unsupported where clause: {clause!r}")
        path, operator, text, guid, boolean, number = match.groups()
        if boolean is not None:
            expected: Any = boolean.lower() == "true"
        elif number is not None:
            expected = Decimal(number)
        else:
            expected = text if text is not None else guid

        def test(
            data: Mapping[str, Any],
            path: str = path,
            expected: Any = expected,
            negate: bool = operator == "!=",
        ) -> bool:
            value = _lookup(data, path)
            if isinstance(expected, Decimal) and isinstance(value, int | float):
                value = _decimal(value)
            elif isinstance(expected, str) and isinstance(value, str):
                value, expected = value.casefold(), expected.casefold()
            return (value == expected) != negate

        tests.append(test)
    return lambda data: all(test(data) for test in tests)


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class PushRecord:
    """A write the sandbox executed (``replayed`` when answered from the idempotency cache)."""

    method: str
    path: str
    invoice_id: str
    idempotency_key: str | None
    body: Any
    status: int
    replayed: bool


@dataclass(frozen=True)
class RequestRecord:
    """A request the sandbox answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    if_modified_since: str | None = None


@dataclass
class _Fault:
    status: int
    headers: dict[str, str]


_Response = tuple[int, dict[str, str], bytes]


class _Headers(Protocol):
    """Request headers: a mapping or the ``email.message.Message`` that http.server gives."""

    def get(self, name: str, default: Any = None, /) -> Any: ...


class SandboxServer:
    """A seeded, fault-injecting Xero Accounting API on 127.0.0.1.

    ``token``/``tenant_id`` left ``None`` accept any non-empty bearer token and tenant id.
    ``rate_limit`` is calls a minute per tenant (``None``: unlimited), ``day_limit`` calls a day.
    """

    def __init__(
        self,
        port: int = 0,
        customers: int = 100,
        seed: int = 1,
        fail_rate: float = 0.0,
        rate_limit: int | None = None,
        slow_rate: float = 0.0,
        malformed_rate: float = 0.0,
        host: str = "127.0.0.1",
        *,
        day_limit: int | None = None,
        slow_seconds: float = 2.0,
        token: str | None = None,
        tenant_id: str | None = None,
        today: dt.date | None = None,
    ) -> None:
        for name, rate in (
            ("fail_rate", fail_rate),
            ("slow_rate", slow_rate),
            ("malformed_rate", malformed_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        self.host = host
        self.port = port
        self.customers = customers
        self.seed = seed
        self.fail_rate = fail_rate
        self.rate_limit = rate_limit
        self.day_limit = day_limit
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self.malformed_rate = malformed_rate
        self.token = token
        self.tenant_id = tenant_id
        self.today = today or dt.datetime.now(dt.UTC).date()
        self.pushes: deque[PushRecord] = deque(maxlen=100_000)
        self.requests: deque[RequestRecord] = deque(maxlen=100_000)
        """The latest answered requests (bounded, so a long demo does not grow without end)."""
        self.short_pages: dict[int, int] = {}
        """Page number -> records to leave out of that page (pagination still counts them)."""
        self._lock = threading.RLock()
        self._faults_rng = random.Random(seed * 104_729 + 3)
        self._forced: deque[_Fault] = deque()
        self._minute: dict[str, deque[float]] = {}
        self._day: dict[str, deque[float]] = {}
        self._idempotency: dict[str, tuple[str, str, _Response]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._views: OrderedDict[tuple[Any, ...], tuple[int, list[bytes]]] = OrderedDict()
        self._access_tokens: set[str] = set()
        self._refresh_tokens: set[str] = set()
        self._last_ms = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

        # Building allocates a few hundred thousand short-lived containers: pausing the cyclic
        # collector meanwhile halves the time, and it is switched back on straight after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            # Generated history ends at midnight UTC starting ``today``, so that a seed (and a
            # day) fully determines the portfolio; changes made later are stamped with real time.
            midnight = _ms(dt.datetime.combine(self.today, dt.time(), dt.UTC))
            portfolio = _Portfolio(customers, seed, self.today, midnight, malformed_rate)
            self.malformed_ids = portfolio.malformed
            self._stores = {name: _Store(name) for name in _RESOURCES}
            self._stores["Contacts"].load(portfolio.contacts)
            self._stores["Invoices"].load(portfolio.invoices)
            self._stores["Payments"].load(portfolio.payments)
            self._stores["CreditNotes"].load(portfolio.credit_notes)
            del portfolio
        finally:
            if collecting:
                gc.enable()
        self._last_ms = max(
            (store.stamps[-1] for store in self._stores.values() if store.stamps), default=0
        )

    # -- lifecycle ---------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"SandboxServer(host={self.host!r}, port={self.port}, customers={self.customers}, "
            f"seed={self.seed})"
        )

    def start(self) -> SandboxServer:
        """Start serving in a background thread (binds the port; ``port=0`` picks a free one)."""
        if self._httpd is not None:
            return self
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"sandbox:{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:8765/api.xro/2.0``."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return f"http://{self.host}:{self.port}{TOKEN_PATH}"

    # -- test helpers: reading -----------------------------------------------------------

    def _now_ms(self) -> int:
        return _ms(dt.datetime.now(dt.UTC))

    def _next_ms(self) -> int:
        self._last_ms = max(self._now_ms(), self._last_ms + 1)
        return self._last_ms

    def count(self, resource: str = "Invoices") -> int:
        """How many records ``resource`` holds (all types and statuses)."""
        return len(self._stores[resource].items)

    def ids(self, resource: str = "Invoices", *, valid_only: bool = True) -> list[str]:
        """Record ids of ``resource`` in UpdatedDateUTC order (sales invoices only for Invoices)."""
        with self._lock:
            store = self._stores[resource]
            bad = self.malformed_ids[resource] if valid_only else set()
            return [
                key
                for key in store.order
                if key not in bad
                and (resource != "Invoices" or store.items[key].fields.get("Type") == "ACCREC")
            ]

    def invoice_ids(self, status: str | None = None) -> list[str]:
        """Well-formed sales invoice ids, optionally of one Xero status."""
        with self._lock:
            store = self._stores["Invoices"]
            return [
                key
                for key in self.ids("Invoices")
                if status is None or store.items[key].fields.get("Status") == status
            ]

    def contact_ids(self) -> list[str]:
        """Well-formed contact ids."""
        return self.ids("Contacts")

    def record(self, resource: str, record_id: str) -> dict[str, Any]:
        """A copy of one record as the wire carries it."""
        with self._lock:
            return json.loads(self._stores[resource].items[record_id].blob)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """A copy of one invoice as the wire carries it."""
        return self.record("Invoices", invoice_id)

    def history(self, invoice_id: str) -> list[str]:
        """The Details of the history notes added to an invoice through the API."""
        with self._lock:
            return [entry["Details"] for entry in self._history.get(invoice_id, [])]

    def requests_to(self, path: str, method: str = "GET") -> list[RequestRecord]:
        """The answered requests for a path relative to the API root (e.g. ``/Invoices``)."""
        with self._lock:
            return [r for r in self.requests if r.path == path and r.method == method]

    # -- test helpers: changing data -----------------------------------------------------

    def touch_invoice(
        self,
        invoice_id: str,
        *,
        amount_due: Decimal | None = None,
        amount_paid: Decimal | None = None,
        status: str | None = None,
        due_date: dt.date | None = None,
        expected_payment_date: dt.date | None = None,
    ) -> None:
        """Change an invoice (or just bump it) so its UpdatedDateUTC advances."""
        with self._lock:
            store = self._stores["Invoices"]
            item = store.items[invoice_id]
            data = item.load()
            if amount_due is not None:
                data["AmountDue"] = _money(amount_due)
            if amount_paid is not None:
                data["AmountPaid"] = _money(amount_paid)
            if status is not None:
                data["Status"] = status
            if due_date is not None:
                data["DueDate"] = _wire_date(due_date)
                data["DueDateString"] = f"{due_date.isoformat()}T00:00:00"
            if expected_payment_date is not None:
                data["ExpectedPaymentDate"] = _wire_date(expected_payment_date)
            store.touched(item, self._next_ms(), data)

    def mark_paid(
        self, invoice_id: str, amount: Decimal | None = None, *, on: dt.date | None = None
    ) -> str:
        """Record a payment (default: the whole amount due); returns the new PaymentID."""
        with self._lock:
            invoices = self._stores["Invoices"]
            item = invoices.items[invoice_id]
            invoice = item.load()
            due = _decimal(invoice["AmountDue"])
            paid = due if amount is None else amount
            day = on or self.today
            millis = self._next_ms()
            payment_id = str(uuid.uuid4())
            data = {
                "PaymentID": payment_id,
                "Date": _wire_date(day),
                "BankAmount": _money(paid),
                "Amount": _money(paid),
                "Reference": "Sandbox payment",
                "CurrencyRate": 1.0,
                "PaymentType": "ACCRECPAYMENT",
                "Status": "AUTHORISED",
                "UpdatedDateUTC": _wire_datetime(millis),
                "UpdatedDateUTCString": _iso_utc(millis),
                "HasAccount": True,
                "IsReconciled": False,
                "Invoice": {
                    "Type": "ACCREC",
                    "InvoiceID": invoice_id,
                    "InvoiceNumber": invoice.get("InvoiceNumber", ""),
                    "Contact": invoice.get("Contact"),
                    "CurrencyCode": invoice.get("CurrencyCode"),
                },
                "HasValidationErrors": False,
            }
            self._stores["Payments"].touched(_Item(payment_id, millis), millis, data)
            remaining = due - paid
            invoice["AmountDue"] = _money(remaining)
            invoice["AmountPaid"] = _money(_decimal(invoice.get("AmountPaid", 0)) + paid)
            invoice.setdefault("Payments", []).append(
                {"PaymentID": payment_id, "Date": data["Date"], "Amount": data["Amount"]}
            )
            if remaining <= 0:
                invoice["Status"] = "PAID"
                invoice["FullyPaidOnDate"] = _wire_date(day)
            invoices.touched(item, self._next_ms(), invoice)
            return payment_id

    def touch_contact(
        self,
        contact_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        status: str | None = None,
        merged_to: str | None = None,
    ) -> None:
        """Change a contact (or just bump it) so its UpdatedDateUTC advances."""
        with self._lock:
            store = self._stores["Contacts"]
            item = store.items[contact_id]
            data = item.load()
            if name is not None:
                data["Name"] = name
            if email is not None:
                data["EmailAddress"] = email
            if status is not None:
                data["ContactStatus"] = status
            if merged_to is not None:
                data["ContactStatus"] = "ARCHIVED"
                data["MergedToContactID"] = merged_to
            store.touched(item, self._next_ms(), data)

    def fail_next(
        self, count: int = 1, status: int = 503, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer the next ``count`` API requests with ``status`` (before doing anything)."""
        with self._lock:
            for _ in range(count):
                self._forced.append(_Fault(status, dict(headers or {})))

    def rate_limit_next(
        self, count: int = 1, *, problem: str = "minute", retry_after: int = 1
    ) -> None:
        """Answer the next ``count`` API requests with 429 and ``X-Rate-Limit-Problem``."""
        self.fail_next(
            count, 429, {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem}
        )

    def issue_refresh_token(self) -> str:
        """A refresh token the token endpoint will accept once (it rotates on use)."""
        token = "sbx-refresh-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens.add(token)
        return token

    # -- request handling --------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: _Headers, body: bytes) -> _Response:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if path == TOKEN_PATH:
            response = self._token_endpoint(method, headers, body)
            self._log(method, path, query, response[0], None)
            return response
        if not path.startswith(API_PREFIX + "/"):
            return self._log(method, path, query, *_not_found(), None)
        route = path[len(API_PREFIX) :]
        ims = headers.get("If-Modified-Since")
        denied = self._authenticate(headers)
        if denied is not None:
            return self._log(method, route, query, *denied, ims)
        tenant = headers.get("xero-tenant-id", "")
        limited = self._admit(tenant)
        if limited is not None:
            return self._log(method, route, query, *limited, ims)
        try:
            response = self._route(method, route, query, headers, body)
        except Exception:  # the sandbox must answer, whatever went wrong
            log.exception("sandbox failed on %s %s", method, route)
            response = _problem(500, "Internal Server Error", "An error occurred in Xero")
        status, extra, payload = response
        extra = {**extra, **self._limit_headers(tenant)}
        self._log(method, route, query, status, extra, payload, ims)
        if self.slow_rate and self._roll() < self.slow_rate:
            time.sleep(self.slow_seconds)
        return status, extra, payload

    def _log(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        status: int,
        headers: dict[str, str] | None,
        payload: bytes = b"",
        ims: str | None = None,
    ) -> _Response:
        with self._lock:
            self.requests.append(RequestRecord(method, path, query, status, ims))
        return status, headers or {}, payload

    def _roll(self) -> float:
        with self._lock:
            return self._faults_rng.random()

    def _authenticate(self, headers: _Headers) -> _Response | None:
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        valid = scheme.lower() == "bearer" and bool(token)
        if valid and self.token is not None:
            with self._lock:
                valid = secrets.compare_digest(token, self.token) or token in self._access_tokens
        if not valid:
            status, extra, payload = _problem(401, "Unauthorized", "AuthenticationUnsuccessful")
            return status, {**extra, "WWW-Authenticate": 'Bearer error="invalid_token"'}, payload
        tenant = headers.get("xero-tenant-id", "").strip()
        if not tenant or (self.tenant_id is not None and tenant != self.tenant_id):
            return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
        return None

    def _admit(self, tenant: str) -> _Response | None:
        """Forced faults, rate limits and random 5xx, decided before anything happens."""
        with self._lock:
            if self._forced:
                fault = self._forced.popleft()
                extra = {**fault.headers, **self._limit_headers(tenant)}
                if fault.status == 429:
                    body = _problem(429, "Too Many Requests", "Rate limit exceeded")[2]
                else:
                    body = _problem(
                        fault.status,
                        _STATUS_TEXT.get(fault.status, "Error"),
                        "An error occurred in Xero",
                    )[2]
                return fault.status, extra, body
            now = time.monotonic()
            minute = self._minute.setdefault(tenant, deque())
            day = self._day.setdefault(tenant, deque())
            while minute and minute[0] <= now - 60:
                minute.popleft()
            while day and day[0] <= now - 86_400:
                day.popleft()
            problem = retry_after = None
            if self.day_limit is not None and len(day) >= self.day_limit:
                problem, retry_after = "day", math.ceil(day[0] + 86_400 - now)
            elif self.rate_limit is not None and len(minute) >= self.rate_limit:
                problem, retry_after = "minute", math.ceil(minute[0] + 60 - now)
            if problem is not None:
                extra = {
                    "Retry-After": str(max(1, retry_after or 1)),
                    "X-Rate-Limit-Problem": problem,
                    **self._limit_headers(tenant),
                }
                return 429, extra, _problem(429, "Too Many Requests", "Rate limit exceeded")[2]
            minute.append(now)
            day.append(now)
            if self.fail_rate and self._faults_rng.random() < self.fail_rate:
                status = self._faults_rng.choice((500, 502, 503, 503))
                return _problem(status, _STATUS_TEXT[status], "An error occurred in Xero")
        return None

    def _limit_headers(self, tenant: str) -> dict[str, str]:
        with self._lock:
            used_minute = len(self._minute.get(tenant, ()))
            used_day = len(self._day.get(tenant, ()))
            app_minute = sum(len(window) for window in self._minute.values())
        minute_limit = self.rate_limit if self.rate_limit is not None else NOMINAL_MINUTE_LIMIT
        day_limit = self.day_limit if self.day_limit is not None else NOMINAL_DAY_LIMIT
        return {
            "X-MinLimit-Remaining": str(max(0, minute_limit - used_minute)),
            "X-DayLimit-Remaining": str(max(0, day_limit - used_day)),
            "X-AppMinLimit-Remaining": str(max(0, APP_MINUTE_LIMIT - app_minute)),
        }

    def _route(
        self,
        method: str,
        route: str,
        query: dict[str, list[str]],
        headers: _Headers,
        body: bytes,
    ) -> _Response:
        segments = [s for s in route.split("/") if s]
        if len(segments) == 1 and segments[0] in self._stores:
            if method != "GET":
                return _problem(405, "Method Not Allowed", f"{method} is not supported here")
            return self._list(segments[0], query, headers)
        if len(segments) >= 2 and segments[0] == "Invoices":
            invoice_id = segments[1]
            with self._lock:
                exists = invoice_id in self._stores["Invoices"].items
            if not exists:
                return _not_found()
            if len(segments) == 2 and method == "GET":
                return self._envelope_one(invoice_id)
            if len(segments) == 2 and method == "POST":
                return self._idempotent(
                    method, route, invoice_id, headers, body, self._update_invoice
                )
            if len(segments) == 3 and segments[2] == "History":
                if method == "GET":
                    with self._lock:
                        records = list(self._history.get(invoice_id, []))
                    return 200, {}, _dumps(self._envelope({"HistoryRecords": records}))
                if method == "PUT":
                    return self._idempotent(
                        method, route, invoice_id, headers, body, self._add_history
                    )
            return _problem(405, "Method Not Allowed", f"{method} is not supported here")
        return _not_found()

    def _envelope(self, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "collect-tui sandbox",
            "DateTimeUTC": f"/Date({self._now_ms()})/",
            **content,
        }

    def _envelope_one(self, invoice_id: str) -> _Response:
        with self._lock:
            blob = self._stores["Invoices"].items[invoice_id].blob
        head = _dumps(self._envelope({}))[:-1]
        return 200, {}, head + b',"Invoices":[' + blob + b"]}"

    def _view(
        self, resource: str, query: dict[str, list[str]], since_ms: int | None
    ) -> list[bytes]:
        include_archived = _flag(query, "includeArchived")
        where = _first(query, "where")
        statuses = _first(query, "Statuses")
        order = (_first(query, "order") or "").strip().lower()
        descending = order.startswith("updateddateutc") and order.endswith("desc")
        key = (resource, since_ms, include_archived, where, statuses, descending)
        with self._lock:
            store = self._stores[resource]
            cached = self._views.get(key)
            if cached is not None and cached[0] == store.version:
                self._views.move_to_end(key)
                return cached[1]
            start = 0
            if since_ms is not None:
                start = bisect_right(store.stamps, since_ms)
            ids = store.order[start:]
            items = [store.items[i] for i in ids]
            if resource == "Contacts" and not include_archived:
                items = [i for i in items if i.fields.get("ContactStatus") != "ARCHIVED"]
            if where:
                predicate = _compile_where(where)
                items = [i for i in items if predicate(i.fields)]
            if statuses:
                wanted = {s.strip().upper() for s in statuses.split(",") if s.strip()}
                items = [i for i in items if i.fields.get("Status") in wanted]
            blobs = [i.blob for i in items]
            if descending:
                blobs.reverse()
            self._views[key] = (store.version, blobs)
            while len(self._views) > 16:
                self._views.popitem(last=False)
            return blobs

    def _list(self, resource: str, query: dict[str, list[str]], headers: _Headers) -> _Response:
        since_ms = None
        ims = headers.get("If-Modified-Since")
        if ims:
            try:
                since_ms = _parse_if_modified_since(ims)
            except ValueError as error:
                return _validation(str(error))
        try:
            blobs = self._view(resource, query, since_ms)
        except ValueError as error:
            return _validation(str(error))
        head = _dumps(self._envelope({}))[:-1]
        page_text = _first(query, "page")
        if page_text is None:
            chunk = blobs
            pagination = b""
        else:
            try:
                page = max(1, int(page_text))
                size_text = _first(query, "pageSize")
                size = DEFAULT_PAGE_SIZE if not size_text else int(size_text)
            except ValueError:
                return _validation("page and pageSize must be integers")
            size = min(max(1, size), MAX_PAGE_SIZE)
            total = len(blobs)
            start = (page - 1) * size
            chunk = blobs[start : start + size]
            drop = self.short_pages.get(page, 0)
            if drop:
                chunk = chunk[: max(0, len(chunk) - drop)]
            pagination = _dumps(
                {
                    "page": page,
                    "pageSize": size,
                    "pageCount": math.ceil(total / size),
                    "itemCount": total,
                }
            )
            pagination = b',"pagination":' + pagination
        payload = b"".join(
            (head, pagination, b',"', resource.encode(), b'":[', b",".join(chunk), b"]}")
        )
        return 200, {}, payload

    def _idempotent(
        self,
        method: str,
        route: str,
        invoice_id: str,
        headers: _Headers,
        body: bytes,
        action: Callable[[str, Any], _Response],
    ) -> _Response:
        key = headers.get("Idempotency-Key")
        if key is not None and len(key) > 128:
            return _validation("Idempotency-Key must be 128 characters or fewer")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return _validation("The request body is not valid JSON")
        with self._lock:
            if key is not None and key in self._idempotency:
                seen_method, seen_route, response = self._idempotency[key]
                if (seen_method, seen_route) != (method, route):
                    return _validation("This Idempotency-Key was used for another request")
                self.pushes.append(
                    PushRecord(method, route, invoice_id, key, parsed, response[0], True)
                )
                return response[0], {**response[1], "Idempotent-Replayed": "true"}, response[2]
            response = action(invoice_id, parsed)
            if key is not None:
                self._idempotency[key] = (method, route, response)
            self.pushes.append(
                PushRecord(method, route, invoice_id, key, parsed, response[0], False)
            )
            return response

    def _add_history(self, invoice_id: str, body: Any) -> _Response:
        records = body.get("HistoryRecords") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return _validation("HistoryRecords are required")
        created = []
        for record in records:
            details = record.get("Details") if isinstance(record, dict) else None
            if not isinstance(details, str) or not details.strip():
                return _validation("Details is required")
            if len(details) > HISTORY_DETAILS_MAX:
                return _validation(f"Details must be {HISTORY_DETAILS_MAX} characters or fewer")
            millis = self._now_ms()
            created.append(
                {
                    "Changes": "Note",
                    "DateUTCString": _iso_utc(millis)[:-1],
                    "DateUTC": _wire_datetime(millis),
                    "User": "collect-tui sandbox",
                    "Details": details,
                }
            )
        self._history.setdefault(invoice_id, []).extend(created)
        answer = [{**entry, "ValidationErrors": []} for entry in created]
        return 200, {}, _dumps(self._envelope({"HistoryRecords": answer}))

    def _update_invoice(self, invoice_id: str, body: Any) -> _Response:
        invoices = body.get("Invoices") if isinstance(body, dict) else None
        if (
            not isinstance(invoices, list)
            or len(invoices) != 1
            or not isinstance(invoices[0], dict)
        ):
            return _validation("Exactly one invoice is expected in Invoices")
        change = invoices[0]
        if change.get("InvoiceID") not in (None, invoice_id):
            return _validation("The InvoiceID does not match the URL")
        store = self._stores["Invoices"]
        item = store.items[invoice_id]
        data = item.load()
        if data.get("Status") in ("PAID", "VOIDED", "DELETED"):
            return _validation("Invoice not of valid status for modification")
        unknown = set(change) - {"InvoiceID", "ExpectedPaymentDate", "Reference", "DueDate"}
        if unknown:
            return _validation(f"The sandbox cannot update {', '.join(sorted(unknown))}")
        for field_name in ("ExpectedPaymentDate", "DueDate"):
            if field_name in change:
                try:
                    day = dt.date.fromisoformat(str(change[field_name])[:10])
                except ValueError:
                    return _validation(f"{field_name} must be a date (YYYY-MM-DD)")
                data[field_name] = _wire_date(day)
                if field_name == "DueDate":
                    data["DueDateString"] = f"{day.isoformat()}T00:00:00"
        if "Reference" in change:
            data["Reference"] = str(change["Reference"])
        store.touched(item, self._next_ms(), data)
        head = _dumps(self._envelope({}))[:-1]
        return 200, {}, head + b',"Invoices":[' + item.blob + b"]}"

    def _token_endpoint(self, method: str, headers: _Headers, body: bytes) -> _Response:
        if method != "POST":
            return 405, {}, _dumps({"error": "invalid_request"})
        form = parse_qs(body.decode("utf-8", "replace"))
        grant = _first(form, "grant_type")
        scheme, _, credentials = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or not credentials.strip():
            return 401, {}, _dumps({"error": "invalid_client"})
        with self._lock:
            if grant == "client_credentials":
                pass
            elif grant == "refresh_token":
                presented = _first(form, "refresh_token") or ""
                if presented not in self._refresh_tokens:
                    return 400, {}, _dumps({"error": "invalid_grant"})
                self._refresh_tokens.discard(presented)
            else:
                return 400, {}, _dumps({"error": "unsupported_grant_type"})
            access = "sbx-access-" + secrets.token_urlsafe(24)
            self._access_tokens.add(access)
            answer: dict[str, Any] = {
                "access_token": access,
                "expires_in": 1800,
                "token_type": "Bearer",
                "scope": "accounting.transactions",
            }
            if grant == "refresh_token":
                rotated = "sbx-refresh-" + secrets.token_urlsafe(24)
                self._refresh_tokens.add(rotated)
                answer["refresh_token"] = rotated
        return 200, {"Cache-Control": "no-store"}, _dumps(answer)


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    for key, values in query.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return (_first(query, name) or "").strip().lower() == "true"


def _problem(status: int, title: str, detail: str) -> _Response:
    return (
        status,
        {},
        _dumps(
            {
                "Type": None,
                "Title": title,
                "Status": status,
                "Detail": detail,
                "Instance": str(uuid.uuid4()),
                "Extensions": {},
            }
        ),
    )


def _not_found() -> _Response:
    return _problem(404, "Not Found", "The resource you're looking for cannot be found")


def _validation(message: str) -> _Response:
    return (
        400,
        {},
        _dumps(
            {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": [{"ValidationErrors": [{"Message": message}]}],
            }
        ),
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "collect-tui-sandbox/1"
    sandbox: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-body (killed, say): like a real server, act on
            # nothing. Answering the torn body would also keep that answer under its
            # Idempotency-Key, and the client's retry would be refused with it.
            self.close_connection = True
            return
        status, headers, payload = self.sandbox._handle(method, self.path, self.headers, body)
        lines = [
            f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Unknown')}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(payload)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl+C, printing its base URL."""
    parser = argparse.ArgumentParser(
        prog="collect-tui sandbox", description="A local Xero-compatible API for demos and tests."
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=None, help="calls a minute per tenant")
    parser.add_argument("--day-limit", type=int, default=None, help="calls a day per tenant")
    parser.add_argument("--slow-rate", type=float, default=0.0)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--tenant-id", default=None, help="require this xero-tenant-id")
    options = parser.parse_args(argv)
    server = SandboxServer(
        port=options.port,
        customers=options.customers,
        seed=options.seed,
        fail_rate=options.fail_rate,
        rate_limit=options.rate_limit,
        slow_rate=options.slow_rate,
        malformed_rate=options.malformed_rate,
        host=options.host,
        day_limit=options.day_limit,
        token=options.token,
        tenant_id=options.tenant_id,
    )
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(f"Xero sandbox at {server.base_url}", flush=True)
        print(
            f"  token endpoint {server.token_url}; {server.count('Contacts')} contacts, "
            f"{len(server.invoice_ids())} sales invoices. Ctrl+C stops.",
            flush=True,
        )
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
        print("sandbox stopped", file=sys.stderr, flush=True)
    return 0


__all__ = ["API_PREFIX", "PushRecord", "RequestRecord", "SandboxServer", "main"]
