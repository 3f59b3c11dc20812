"""The connector protocol: what every accounting-system connector offers the sync engine.

A connector pulls pages of normalized records per stream since a cursor, and pushes outcomes.
It is synchronous (the engine runs it in a thread worker). HTTP failures that a retry cannot
fix surface as ``ConnectorError`` subclasses from ``pull``; ``push`` reports them as a
``PushResult`` instead, so the outbox can decide what to do with each outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from collect_tui.sync.records import ExternalRecord, Malformed, Outcome, Stream

PushStatus = Literal["delivered", "retry", "failed", "daily_limit_reached"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a pull.

    ``cursor`` is a safe resume point: every record of the stream updated at or before it has
    been yielded in this page or an earlier one of the same pull. Save it only after the page
    (records and quarantined ``malformed``) has committed. ``None`` means nothing new to save.
    """

    stream: Stream
    records: tuple[ExternalRecord, ...]
    malformed: tuple[Malformed, ...]
    page_number: int
    page_count: int | None
    cursor: dt.datetime | None
    item_count: int | None = None
    skipped: int = 0
    """Records of the stream that are not the connector's business (e.g. supplier bills)."""

    @property
    def is_last(self) -> bool:
        """True when the server said no page follows this one."""
        return self.page_count is not None and self.page_number >= self.page_count


@dataclass(frozen=True, slots=True)
class PushResult:
    """What became of one pushed outcome."""

    status: PushStatus
    retry_after: float | None = None
    """Seconds to wait before trying again (``retry`` and ``daily_limit_reached``)."""
    reason: str | None = None
    http_status: int | None = None

    @classmethod
    def delivered(cls, http_status: int | None = None) -> PushResult:
        """The system accepted the outcome (or had already accepted it under this key)."""
        return cls("delivered", http_status=http_status)

    @classmethod
    def retry(
        cls, retry_after: float | None, reason: str, http_status: int | None = None
    ) -> PushResult:
        """A transient failure: keep the outcome and try again later."""
        return cls("retry", retry_after, reason, http_status)

    @classmethod
    def failed(cls, reason: str, http_status: int | None = None) -> PushResult:
        """A permanent failure: retrying the same request cannot succeed."""
        return cls("failed", None, reason, http_status)

    @classmethod
    def daily_limit(
        cls, retry_after: float | None, reason: str = "daily limit reached"
    ) -> PushResult:
        """The daily call budget is spent: stop pushing until ``retry_after``."""
        return cls("daily_limit_reached", retry_after, reason, 429)

    @property
    def ok(self) -> bool:
        """True when the outcome was delivered."""
        return self.status == "delivered"


class ConnectorError(Exception):
    """A failure a connector could not recover from by itself. Never carries secrets."""


class AuthenticationError(ConnectorError):
    """The credentials were refused (401/403, or the token endpoint said no)."""


class DailyLimitReached(ConnectorError):
    """The daily call budget is spent (server-side or client-side): stop until ``retry_after``."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(ConnectorError):
    """The server asked for a wait longer than the connector is willing to block."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ConnectorError):
    """Server errors, timeouts or connection failures persisted through every retry."""


class RequestRejected(ConnectorError):
    """The server refused a request as invalid (4xx other than 401/403/429)."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies bearer tokens for a connector."""

    def token(self) -> str:
        """A currently valid access token."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it); the next ``token()`` fetches anew."""
        ...


@runtime_checkable
class Connector(Protocol):
    """An accounting system the sync engine can pull from and push to."""

    name: str

    def pull(self, stream: Stream, since: dt.datetime | None) -> Iterator[Page]:
        """Yield pages of ``stream`` changed after ``since`` (everything when ``None``)."""
        ...

    def push(self, outcome: Outcome) -> PushResult:
        """Deliver one outcome, with its idempotency key, retrying transient failures."""
        ...

    def close(self) -> None:
        """Release network resources."""
        ...


__all__ = [
    "AuthenticationError",
    "Connector",
    "ConnectorError",
    "DailyLimitReached",
    "Page",
    "PushResult",
    "PushStatus",
    "RateLimited",
    "RequestRejected",
    "TokenProvider",
    "TransientError",
]
