"""Retries, backoff, 429 + Retry-After, the daily limit, timeouts and token refresh."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import httpx
import pytest

from collect_tui.sync.protocol import (
    AuthenticationError,
    DailyLimitReached,
    RateLimited,
    TransientError,
)
from collect_tui.sync.ratelimit import RateLimiter
from collect_tui.sync.records import HistoryNote
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import StaticTokenProvider, XeroConnector, format_xero_datetime

from .conftest import TOKEN, FakeSleep

Make = Callable[..., XeroConnector]


def note(invoice_id: str, key: str, details: str = "Called, promised to pay Friday") -> HistoryNote:
    return HistoryNote(invoice_external_id=invoice_id, idempotency_key=key, details=details)


def test_429_minute_waits_retry_after(
    sandbox: SandboxServer, make_connector: Make, fake_sleep: FakeSleep
) -> None:
    sandbox.rate_limit_next(2, problem="minute", retry_after=7)
    pages = list(make_connector(sandbox).pull("invoices", None))
    assert pages and pages[-1].is_last
    assert fake_sleep.calls == [7.0, 7.0]
    statuses = [r.status for r in sandbox.requests_to("/Invoices")]
    assert statuses[:3] == [429, 429, 200]


def test_the_sandbox_minute_limit_is_reported_and_honoured(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make, fake_sleep: FakeSleep
) -> None:
    server = make_sandbox(rate_limit=3)
    connector = make_connector(server, page_size=10, max_retries=2)
    with pytest.raises(RateLimited) as raised:
        list(connector.pull("invoices", None))
    # three calls got through, then 429s whose Retry-After (<= 60 s) was honoured each time
    assert [r.status for r in server.requests_to("/Invoices")] == [200] * 3 + [429] * 3
    assert len(fake_sleep.calls) == 2 and all(0 < s <= 60 for s in fake_sleep.calls)
    assert raised.value.retry_after is not None
    assert connector.limits.problem == "minute"
    assert connector.limits.minute_remaining == 0


def test_5xx_is_retried_with_exponential_backoff_and_full_jitter(
    sandbox: SandboxServer, make_connector: Make, fake_sleep: FakeSleep
) -> None:
    sandbox.fail_next(3, status=503)
    connector = make_connector(sandbox, backoff_base=0.5, backoff_cap=30.0)
    pages = list(connector.pull("invoices", None))
    assert sorted(r.external_id for p in pages for r in p.records) == sorted(sandbox.invoice_ids())
    assert len(fake_sleep.calls) == 3
    for attempt, waited in enumerate(fake_sleep.calls):
        assert 0 <= waited <= 0.5 * 2**attempt


def test_retry_after_on_a_503_is_honoured(
    sandbox: SandboxServer, make_connector: Make, fake_sleep: FakeSleep
) -> None:
    sandbox.fail_next(1, status=503, headers={"Retry-After": "4"})
    list(make_connector(sandbox).pull("contacts", None))
    assert fake_sleep.calls == [4.0]


def test_retries_run_out(
    sandbox: SandboxServer, make_connector: Make, fake_sleep: FakeSleep
) -> None:
    sandbox.fail_next(10, status=500)
    with pytest.raises(TransientError, match="after 3 attempts"):
        list(make_connector(sandbox, max_retries=2).pull("invoices", None))
    assert len(sandbox.requests_to("/Invoices")) == 3
    assert len(fake_sleep.calls) == 2


def test_a_random_fail_rate_still_gives_the_same_data(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make
) -> None:
    clean = make_sandbox(seed=5)
    flaky = make_sandbox(seed=5, fail_rate=0.3)
    expected = [
        r for p in make_connector(clean, page_size=10).pull("invoices", None) for r in p.records
    ]
    got = [
        r
        for p in make_connector(flaky, page_size=10, max_retries=10).pull("invoices", None)
        for r in p.records
    ]
    assert got == expected
    assert any(r.status >= 500 for r in flaky.requests)


def test_daily_limit_on_a_pull_stops_without_retrying(
    sandbox: SandboxServer, make_connector: Make, fake_sleep: FakeSleep
) -> None:
    sandbox.rate_limit_next(1, problem="day", retry_after=3600)
    with pytest.raises(DailyLimitReached) as raised:
        list(make_connector(sandbox).pull("invoices", None))
    assert raised.value.retry_after == 3600
    assert fake_sleep.calls == []
    assert len(sandbox.requests_to("/Invoices")) == 1


def test_daily_limit_stops_pushing(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make, fake_sleep: FakeSleep
) -> None:
    server = make_sandbox(day_limit=2)
    connector = make_connector(server)
    invoice_id = server.invoice_ids("AUTHORISED")[0]
    assert connector.push(note(invoice_id, "k1")).ok
    assert connector.push(note(invoice_id, "k2", "second")).ok
    result = connector.push(note(invoice_id, "k3", "third"))
    assert result.status == "daily_limit_reached"
    assert result.retry_after is not None and result.retry_after > 3600
    assert fake_sleep.calls == []  # no retry
    assert [r.status for r in server.requests] == [200, 200, 429]
    assert server.history(invoice_id) == ["Called, promised to pay Friday", "second"]
    assert connector.limits.day_remaining == 0


def test_the_client_side_daily_budget_stops_before_calling(
    sandbox: SandboxServer, make_connector: Make
) -> None:
    now = [0.0]
    limiter = RateLimiter(
        per_minute=60,
        per_day=2,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    connector = make_connector(sandbox, rate_limiter=limiter)
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    assert connector.push(note(invoice_id, "a")).ok
    assert connector.push(note(invoice_id, "b")).ok
    result = connector.push(note(invoice_id, "c"))
    assert result.status == "daily_limit_reached"
    assert len(sandbox.pushes) == 2


def test_a_lost_response_is_retried_under_the_same_key_and_applied_once(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make
) -> None:
    server = make_sandbox(slow_rate=1.0, slow_seconds=0.6)
    connector = make_connector(server, timeout=0.2, max_retries=1)
    invoice_id = server.invoice_ids("AUTHORISED")[0]
    outcome = note(invoice_id, "promise-42")
    first = connector.push(outcome)  # the server applies it, but every answer comes too late
    assert first.status == "retry"
    server.slow_rate = 0.0
    assert connector.push(outcome).ok
    assert server.history(invoice_id) == [outcome.details]
    assert [p.replayed for p in server.pushes] == [False, True, True]


class FlakyTokens:
    """Hands out a refused token first, a good one after ``invalidate``."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.invalidated = 0

    def token(self) -> str:
        return self.tokens[0]

    def invalidate(self) -> None:
        self.invalidated += 1
        if len(self.tokens) > 1:
            self.tokens.pop(0)


def test_a_refused_token_is_refreshed_once(
    make_sandbox: Callable[..., SandboxServer], make_connector: Make
) -> None:
    server = make_sandbox(token=TOKEN)
    provider = FlakyTokens(["expired", TOKEN])
    pages = list(make_connector(server, token_provider=provider).pull("invoices", None))
    assert pages[-1].is_last and provider.invalidated == 1
    stuck = FlakyTokens(["expired"])
    with pytest.raises(AuthenticationError):
        list(make_connector(server, token_provider=stuck).pull("invoices", None))
    assert stuck.invalidated == 1


def test_connection_refused_is_transient(make_connector: Make, fake_sleep: FakeSleep) -> None:
    with SandboxServer(customers=1) as server:
        base_url = server.base_url
    connector = XeroConnector(
        base_url, "t", StaticTokenProvider("x"), rate_limiter=None, sleep=fake_sleep, max_retries=2
    )
    with pytest.raises(TransientError, match="ConnectError"):
        list(connector.pull("contacts", None))
    assert len(fake_sleep.calls) == 2
    result = connector.push(note("i", "k"))
    assert result.status == "retry" and result.retry_after
    connector.close()


def test_an_unordered_server_gets_no_cursor_until_the_last_page(fake_sleep: FakeSleep) -> None:
    """If a server ignored ``order``, mid-pull cursors would be unsafe: they are withheld."""
    base = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)

    def invoice(n: int, minutes: int) -> dict:
        return {
            "Type": "ACCREC",
            "InvoiceID": f"i{n}",
            "Contact": {"ContactID": "c"},
            "Date": "2024-05-01",
            "CurrencyCode": "NZD",
            "Total": 1,
            "AmountDue": 1,
            "Status": "AUTHORISED",
            "UpdatedDateUTC": format_xero_datetime(base + dt.timedelta(minutes=minutes)),
        }

    pages = {
        1: [invoice(1, 30), invoice(2, 40)],
        2: [invoice(3, 10), invoice(4, 20)],
        3: [invoice(5, 50)],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        body = {
            "pagination": {"page": page, "pageSize": 2, "pageCount": 3, "itemCount": 5},
            "Invoices": pages[page],
        }
        return httpx.Response(200, content=json.dumps(body).encode())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    connector = XeroConnector(
        "http://xero.test/api.xro/2.0",
        "t",
        StaticTokenProvider("x"),
        client=client,
        rate_limiter=None,
        page_size=2,
        sleep=fake_sleep,
    )
    got = list(connector.pull("invoices", None))
    assert got[0].cursor is not None  # page 1 alone looked ordered
    assert got[1].cursor is None  # page 2 went back in time: stop advancing
    assert got[2].cursor == base + dt.timedelta(minutes=50)
