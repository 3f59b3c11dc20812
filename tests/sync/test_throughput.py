"""How fast a full pull runs against the sandbox. Not timed: it prints the rate.

The 100,000-invoice figure comes from the same pull with ``customers=22_300``.
"""

from __future__ import annotations

import time

from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import StaticTokenProvider, XeroConnector


def test_full_pull_of_20000_invoices_at_page_size_1000() -> None:
    with SandboxServer(customers=4_500, seed=7) as server:
        expected = len(server.invoice_ids())
        assert expected >= 19_000
        with XeroConnector(
            server.base_url,
            "tenant",
            StaticTokenProvider("token"),
            rate_limiter=None,
            page_size=1000,
        ) as connector:
            started = time.perf_counter()
            pulled = sum(len(page.records) for page in connector.pull("invoices", None))
            elapsed = time.perf_counter() - started
    assert pulled == expected
    assert connector.requests_sent == -(-expected // 1000)
    print(f"\npulled {pulled} invoices in {elapsed:.2f} s: {pulled / elapsed:,.0f} invoices/s")
