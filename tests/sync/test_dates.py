"""Xero's date formats: /Date(ms+zzzz)/ and ISO 8601, with the spec's own examples."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collect_tui.sync.xero import (
    format_if_modified_since,
    format_xero_date,
    format_xero_datetime,
    parse_xero_date,
    parse_xero_datetime,
)

from .spec_examples import example

UTC = dt.UTC


def test_ms_date_with_offset_from_the_brief() -> None:
    assert parse_xero_datetime("/Date(1518685950940+0000)/") == dt.datetime(
        2018, 2, 15, 9, 12, 30, 940_000, tzinfo=UTC
    )


def test_ms_date_without_offset_as_in_the_envelopes() -> None:
    # "DateTimeUTC: /Date(1551399323399)/" in the GET /Contacts example
    assert parse_xero_datetime("/Date(1551399323399)/") == dt.datetime(
        2019, 3, 1, 0, 15, 23, 399_000, tzinfo=UTC
    )


@pytest.mark.parametrize("name", ["invoices", "invoice", "invoice_updated"])
def test_spec_invoice_dates_agree_with_their_string_twins(name: str) -> None:
    for invoice in example(name)["Invoices"]:
        assert parse_xero_date(invoice["Date"]) == parse_xero_date(invoice["DateString"])
        assert parse_xero_date(invoice["DueDate"]) == parse_xero_date(invoice["DueDateString"])
        updated = parse_xero_datetime(invoice["UpdatedDateUTC"])
        assert updated.replace(microsecond=0) == parse_xero_datetime(
            invoice["UpdatedDateUTCString"]
        )


def test_spec_date_examples() -> None:
    assert parse_xero_date("/Date(1539993600000+0000)/") == dt.date(2018, 10, 20)
    assert parse_xero_date("2018-12-30T00:00:00") == dt.date(2018, 12, 30)
    assert parse_xero_date("2019-03-05") == dt.date(2019, 3, 5)
    # the If-Modified-Since example of the spec
    assert parse_xero_datetime("2020-02-06T12:17:43.202-08:00") == dt.datetime(
        2020, 2, 6, 20, 17, 43, 202_000, tzinfo=UTC
    )
    assert parse_xero_datetime("2019-11-14T18:10:38Z") == dt.datetime(
        2019, 11, 14, 18, 10, 38, tzinfo=UTC
    )


def test_positive_offset_keeps_the_instant_and_gives_the_local_date() -> None:
    # 11:00 UTC on 19 October is midnight on 20 October in New Zealand (+1300)
    nz_midnight = "/Date(1539946800000+1300)/"
    assert parse_xero_datetime(nz_midnight) == dt.datetime(2018, 10, 19, 11, 0, tzinfo=UTC)
    assert parse_xero_date(nz_midnight) == dt.date(2018, 10, 20)
    assert parse_xero_date("/Date(1539993600000+1300)/") == dt.date(2018, 10, 20)


def test_negative_offset() -> None:
    assert parse_xero_date("/Date(1539993600000-0500)/") == dt.date(2018, 10, 19)
    assert parse_xero_datetime("/Date(1539993600000-0500)/") == dt.datetime(
        2018, 10, 20, tzinfo=UTC
    )


def test_negative_epoch() -> None:
    assert parse_xero_datetime("/Date(-86400000+0000)/") == dt.datetime(1969, 12, 31, tzinfo=UTC)
    assert parse_xero_date("/Date(-1+0000)/") == dt.date(1969, 12, 31)
    assert parse_xero_date("/Date(-62135596800000)/") == dt.date(1, 1, 1)


def test_naive_iso_is_utc_and_long_fractions_are_accepted() -> None:
    assert parse_xero_datetime("2018-10-20T00:00:00") == dt.datetime(2018, 10, 20, tzinfo=UTC)
    assert parse_xero_datetime("2020-02-06T12:17:43.2021234+00:00").microsecond == 202_123


@pytest.mark.parametrize(
    "value",
    [
        "",
        "/Date()/",
        "/Date(abc)/",
        "/Date(1_000+0000)/",
        "/Date(+5+0000)/",
        "Date(5)",
        "2020-13-01",
        "yesterday",
        "/Date(99999999999999999999+0000)/",
        1518685950940,
        None,
    ],
)
def test_garbage_raises_value_error(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_xero_datetime(value)
    with pytest.raises(ValueError):
        parse_xero_date(value)


def test_formatting() -> None:
    moment = dt.datetime(2018, 2, 15, 9, 12, 30, 940_123, tzinfo=UTC)
    assert format_xero_datetime(moment) == "/Date(1518685950940+0000)/"
    assert format_xero_date(dt.date(2018, 10, 20)) == "/Date(1539993600000+0000)/"
    eastern = dt.timezone(dt.timedelta(hours=-8))
    assert (
        format_if_modified_since(dt.datetime(2020, 2, 6, 12, 17, 43, 202_000, tzinfo=eastern))
        == "2020-02-06T20:17:43.202+00:00"
    )
    with pytest.raises(ValueError):
        format_xero_datetime(dt.datetime(2020, 1, 1))


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_datetime_round_trip(moment: dt.datetime) -> None:
    expected = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_xero_datetime(format_xero_datetime(moment)) == expected
    assert parse_xero_datetime(format_if_modified_since(moment)) == expected


@given(st.dates(min_value=dt.date(1, 1, 2), max_value=dt.date(9999, 12, 30)))
def test_date_round_trip(day: dt.date) -> None:
    assert parse_xero_date(format_xero_date(day)) == day
