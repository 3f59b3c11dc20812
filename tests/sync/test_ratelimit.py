"""The client-side limiter: never more than N calls in any minute, yet close to N."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collect_tui.sync.ratelimit import LimitWouldBlock, RateLimiter


class Clock:
    """Simulated time: sleeping advances it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds
        self.slept += seconds


def limiter(clock: Clock, per_minute: int, per_day: int, margin: float = 1.0) -> RateLimiter:
    return RateLimiter(per_minute, per_day, margin=margin, clock=clock, sleep=clock.sleep)


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@settings(max_examples=60, deadline=None)
@given(
    per_minute=st.integers(1, 25),
    gaps=st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=250),
)
def test_never_more_than_n_calls_in_any_60_second_window(
    per_minute: int, gaps: list[float]
) -> None:
    clock = Clock()
    limit = limiter(clock, per_minute=per_minute, per_day=100_000)
    calls = []
    for gap in gaps:
        clock.now += gap
        limit.acquire("tenant")
        calls.append(clock.now)
    assert max_in_window(calls, 60.0) <= per_minute


@pytest.mark.parametrize("per_minute", [60, 7])
def test_a_long_sync_uses_at_least_90_percent_of_the_rate(per_minute: int) -> None:
    clock = Clock()
    limit = limiter(clock, per_minute=per_minute, per_day=1_000_000)
    start, calls = clock.now, []
    while clock.now - start < 3600:  # an hour of back-to-back calls
        limit.acquire()
        calls.append(clock.now)
    allowed = per_minute * 60
    assert len(calls) >= 0.9 * allowed
    assert max_in_window(calls, 60.0) <= per_minute


def test_the_daily_budget() -> None:
    clock = Clock()
    limit = limiter(clock, per_minute=100, per_day=10)
    for _ in range(10):
        limit.acquire("t")
    assert limit.remaining("t") == (90, 0)
    with pytest.raises(LimitWouldBlock) as raised:
        limit.acquire("t", max_wait=120)
    assert raised.value.limit == "daily" and raised.value.wait > 86_000
    assert limit.try_acquire("t") > 86_000
    clock.now += 86_401
    assert limit.try_acquire("t") == 0.0


def test_tenants_have_their_own_budgets() -> None:
    clock = Clock()
    limit = limiter(clock, per_minute=2, per_day=100)
    for tenant in ("a", "b"):
        assert limit.try_acquire(tenant) == 0.0
        assert limit.try_acquire(tenant) == 0.0
    assert limit.try_acquire("a") > 0
    assert limit.remaining("c") == (2, 100)


def test_try_acquire_takes_nothing_when_it_says_wait() -> None:
    clock = Clock()
    limit = limiter(clock, per_minute=1, per_day=100, margin=0)
    assert limit.try_acquire() == 0.0
    assert limit.try_acquire() == pytest.approx(60.0)
    clock.now += 30
    assert limit.try_acquire() == pytest.approx(30.0)
    clock.now += 30
    assert limit.try_acquire() == 0.0


def test_threads_share_the_budget() -> None:
    clock = Clock()
    lock = threading.Lock()
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        with lock:
            clock.now += seconds

    limit = RateLimiter(per_minute=5, per_day=1000, clock=clock, sleep=sleep)

    def worker() -> None:
        for _ in range(10):
            limit.acquire()
            with lock:
                calls.append(clock.now)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 40


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0)
    with pytest.raises(ValueError):
        RateLimiter(margin=-1)
