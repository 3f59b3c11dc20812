"""A client-side rate limiter: stay within N calls a minute and M a day, per tenant.

A sliding-window log: a call is allowed when fewer than N calls were made in the last
``60 s + margin`` (and fewer than M in the last ``24 h + margin``). A long sync therefore runs at
N calls per window (about 98% of the allowed rate with the default one-second margin) and never
provokes a 429 itself. The margin absorbs the time between taking a slot here and the request
reaching the server. The clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MINUTE = 60.0
DAY = 86_400.0
_MIN_SLEEP = 0.001


class LimitWouldBlock(Exception):
    """Taking a slot would mean waiting longer than the caller allowed."""

    def __init__(self, wait: float, limit: str) -> None:
        super().__init__(f"the {limit} call budget is used up; next slot in {wait:.1f} s")
        self.wait = wait
        self.limit = limit


@dataclass
class _Window:
    minute: deque[float] = field(default_factory=deque)
    day: deque[float] = field(default_factory=deque)


class RateLimiter:
    """Keeps each tenant within ``per_minute`` and ``per_day`` calls (sliding windows)."""

    def __init__(
        self,
        per_minute: int = 60,
        per_day: int = 5000,
        *,
        margin: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError("rate limits must be at least one call")
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.per_minute = per_minute
        self.per_day = per_day
        self.minute_window = MINUTE + margin
        self.day_window = DAY + margin
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self.per_minute}, per_day={self.per_day})"

    def _purge(self, window: _Window, now: float) -> None:
        while window.minute and window.minute[0] <= now - self.minute_window:
            window.minute.popleft()
        while window.day and window.day[0] <= now - self.day_window:
            window.day.popleft()

    def _wait(self, window: _Window, now: float) -> tuple[float, str]:
        wait, limit = 0.0, "minute"
        if len(window.minute) >= self.per_minute:
            wait = window.minute[-self.per_minute] + self.minute_window - now
        if len(window.day) >= self.per_day:
            day_wait = window.day[-self.per_day] + self.day_window - now
            if day_wait >= wait:
                wait, limit = day_wait, "daily"
        return wait, limit

    def try_acquire(self, key: str = "default") -> float:
        """Take a slot now and return 0, or take nothing and return the seconds to wait."""
        with self._lock:
            now = self._clock()
            window = self._windows.setdefault(key, _Window())
            self._purge(window, now)
            wait, _ = self._wait(window, now)
            if wait > 0:
                return max(wait, _MIN_SLEEP)
            window.minute.append(now)
            window.day.append(now)
            return 0.0

    def acquire(self, key: str = "default", *, max_wait: float | None = None) -> float:
        """Block until a slot is free, take it, and return the seconds waited.

        Raises ``LimitWouldBlock`` (taking nothing) when the wait would exceed ``max_wait``,
        e.g. when the daily budget is spent.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                window = self._windows.setdefault(key, _Window())
                self._purge(window, now)
                wait, limit = self._wait(window, now)
                if wait <= 0:
                    window.minute.append(now)
                    window.day.append(now)
                    return waited
                if max_wait is not None and wait > max_wait:
                    raise LimitWouldBlock(wait, limit)
            wait = max(wait, _MIN_SLEEP)
            self._sleep(wait)
            waited += wait

    def remaining(self, key: str = "default") -> tuple[int, int]:
        """Calls still allowed now for ``key``: (this minute, today)."""
        with self._lock:
            window = self._windows.setdefault(key, _Window())
            self._purge(window, self._clock())
            return (
                max(0, self.per_minute - len(window.minute)),
                max(0, self.per_day - len(window.day)),
            )


__all__ = ["DAY", "MINUTE", "LimitWouldBlock", "RateLimiter"]
