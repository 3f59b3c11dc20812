"""The connector's fast mapping path agrees with the full (validating) one on every record.

``map_record`` tries a hand-checked fast path for invoices and payments and falls back to the
pydantic-validated mappers for anything unusual; both must give the same record, or the same
quarantine reason. Checked on a whole sandbox portfolio (with malformed records), on Xero's
own examples, and on mutations of each field.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from collect_tui.sync import xero
from collect_tui.sync.records import ExternalContact, ExternalInvoice, Malformed, prevalidated
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import decode_json, map_record

from .spec_examples import example

FULL = {"invoices": xero.map_invoice, "payments": xero.map_payment}
FAST = {"invoices": xero.fast_invoice, "payments": xero.fast_payment}
KEYS = {"invoices": "Invoices", "payments": "Payments"}


def _full(stream: str, raw: Any) -> Any:
    """What ``map_record`` returned before the fast path existed."""
    saved = xero._STREAMS[stream]
    xero._STREAMS[stream] = xero._StreamSpec(
        saved.path, saved.key, saved.id_field, saved.mapper, saved.params, None
    )
    try:
        return map_record(stream, raw)  # type: ignore[arg-type]
    finally:
        xero._STREAMS[stream] = saved


def _same(stream: str, raw: Any) -> bool:
    """Fast and full paths agree on ``raw``; returns whether the fast path took it."""
    expected = _full(stream, copy.deepcopy(raw))
    got = map_record(stream, raw)  # type: ignore[arg-type]
    if isinstance(expected, Malformed):
        assert isinstance(got, Malformed)
        assert (got.reason, got.external_id) == (expected.reason, expected.external_id)
    else:
        assert got == expected
        if got is not None:
            assert repr(got) == repr(expected)
            assert got.model_dump(mode="json") == expected.model_dump(mode="json")
            assert got.model_fields_set == expected.model_fields_set
    try:  # map_record takes an error of the fast path as "go the full way"
        fast = FAST[stream](raw) if isinstance(raw, dict) else xero._SLOW
    except (ValueError, TypeError, KeyError, ArithmeticError):
        fast = xero._SLOW
    return fast is not xero._SLOW


def _pages(server: SandboxServer, path: str) -> list[dict[str, Any]]:
    headers = {"Authorization": "Bearer t", "xero-tenant-id": "t"}
    records: list[dict[str, Any]] = []
    page = 1
    with httpx.Client(base_url=server.base_url) as client:
        while True:
            params: dict[str, Any] = {"page": page, "pageSize": 1000}
            body = decode_json(client.get(f"/{path}", params=params, headers=headers).content)
            records.extend(body[path])
            if page >= body["pagination"]["pageCount"]:
                return records
            page += 1


@pytest.mark.parametrize("stream", ["invoices", "payments"])
def test_fast_path_matches_on_a_sandbox_portfolio(
    make_sandbox: Callable[..., SandboxServer], stream: str
) -> None:
    server = make_sandbox(customers=300, seed=5, malformed_rate=0.05)
    records = _pages(server, KEYS[stream])
    taken = sum(_same(stream, raw) for raw in records)
    assert len(records) > 100
    assert taken >= len(records) * 0.8  # the common shape goes the fast way


def test_fast_path_matches_xero_examples() -> None:
    for stream, name in (("invoices", "invoices"), ("payments", "payments")):
        for raw in example(name)[KEYS[stream]]:
            _same(stream, raw)


MUTATIONS: list[Any] = [
    None,
    "",
    "  ",
    0,
    1,
    True,
    1.5,
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("12.30"),
    "12.30",
    " 7 ",
    "abc",
    "nzd",
    "NZD ",
    "N1D",
    "authorised",
    "PAID",
    "DELETED",
    "/Date(1518685950940+0000)/",
    "/Date(1518685950940+1300)/",
    "/Date(-1518685950940)/",
    "/Date(99999999999999999999+0000)/",
    "2019-11-14T18:10:38Z",
    "2019-11-14",
    "/Date(x)/",
    [],
    {},
    {"ContactID": ""},
    {"ContactID": "c-1", "Type": "ACCPAY"},
    {"InvoiceID": "i-1", "Type": "ACCREC"},
    {"InvoiceID": "i-1", "Contact": {"ContactID": 5}},
]


@pytest.mark.parametrize("stream", ["invoices", "payments"])
def test_fast_path_matches_on_every_field_mutation(stream: str) -> None:
    base = example(stream)[KEYS[stream]][0]
    fields = set(base) | {
        "Type",
        "PaymentType",
        "AmountPaid",
        "AmountCredited",
        "ExpectedPaymentDate",
        "FullyPaidOnDate",
        "DueDate",
        "Date",
        "DateString",
        "Reference",
        "Invoice",
        "Contact",
    }
    rng = random.Random(3)
    for field in sorted(fields):
        for value in MUTATIONS:
            raw = copy.deepcopy(base)
            raw[field] = copy.deepcopy(value)
            _same(stream, raw)
        raw = copy.deepcopy(base)
        raw.pop(field, None)
        _same(stream, raw)
    for _ in range(300):  # a few fields at once
        raw = copy.deepcopy(base)
        for field in rng.sample(sorted(fields), 3):
            raw[field] = copy.deepcopy(rng.choice(MUTATIONS))
        _same(stream, raw)


def test_prevalidated_needs_every_field() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        prevalidated(ExternalInvoice, {"external_id": "x"})


def test_contacts_with_prebuilt_phones_and_addresses_validate_the_same(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    """Phones and addresses are built without a second check: they must pass one."""
    server = make_sandbox(customers=200, seed=9)
    raws = _pages(server, "Contacts") + example("contacts")["Contacts"]
    phones = 0
    for raw in raws:
        contact = map_record("contacts", raw)
        assert isinstance(contact, ExternalContact)
        again = ExternalContact.model_validate(contact.model_dump())
        assert again == contact and repr(again) == repr(contact)
        phones += len(contact.phones)
    assert phones > 0
