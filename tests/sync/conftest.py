"""Fixtures for the connector tests: sandbox servers on 127.0.0.1 and instant, recorded sleeps."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import StaticTokenProvider, XeroConnector

TENANT = "tenant-1"
TOKEN = "sandbox-token-7f3a"


class FakeSleep:
    """Records the waits asked for instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes (small by default) and stop them after the test."""
    servers: list[SandboxServer] = []

    def make(**options: Any) -> SandboxServer:
        options.setdefault("customers", 40)
        options.setdefault("seed", 11)
        server = SandboxServer(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    """A small, fault-free sandbox."""
    return make_sandbox()


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_connector(fake_sleep: FakeSleep) -> Iterator[Callable[..., XeroConnector]]:
    """Connectors to a sandbox, without client-side rate limiting and with a recorded sleep."""
    connectors: list[XeroConnector] = []

    def make(server: SandboxServer, **options: Any) -> XeroConnector:
        options.setdefault("rate_limiter", None)
        options.setdefault("sleep", fake_sleep)
        options.setdefault("rng", random.Random(0))
        provider = options.pop("token_provider", StaticTokenProvider(TOKEN))
        connector = XeroConnector(
            server.base_url, options.pop("tenant_id", TENANT), provider, **options
        )
        connectors.append(connector)
        return connector

    yield make
    for connector in connectors:
        connector.close()
