"""Which accounts may be contacted right now, decided by the compliance rules.

The contact window depends only on an account's jurisdiction and time zone, and a
portfolio has few distinct ones; so the rules run once per (country, region, zone)
and the queue filters with the resulting list in SQL, never account by account.
"""

from __future__ import annotations

import contextlib
import threading
import time as clock
from datetime import datetime

from sqlalchemy import select

from collect_tui.domain.compliance import contact_window_decision
from collect_tui.services import compliance_config
from collect_tui.services.database import Database
from collect_tui.storage.models import Debtor

Jurisdiction = tuple[str, str | None, str]  # country, region, time zone

_CACHE_SECONDS = 300.0
_cache: dict[int, tuple[float, list[Jurisdiction]]] = {}
_lock = threading.Lock()
_refreshing: set[int] = set()  # engines whose list a thread is reading
_first_reads: dict[int, threading.Event] = {}  # engines whose first list is being read


def jurisdictions_in_use(db: Database) -> list[Jurisdiction]:
    """The distinct (country, region, zone) of all debtors, cached for a few minutes.

    Reading them walks every debtor (30 ms at 200k on PostgreSQL): once the cache has
    expired, the old list is returned and a thread reads the new one, so no key press
    waits for it. Only the first call reads while the caller waits (or waits for the
    read :func:`read_jurisdictions_soon` started).
    """
    key = id(db.engine)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            if cached[0] <= clock.monotonic() and key not in _refreshing:
                _refreshing.add(key)
                threading.Thread(target=_refresh_quietly, args=(db, key), daemon=True).start()
            return cached[1]
        first = _first_reads.get(key)
    if first is not None and first.wait(timeout=10):
        with _lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached[1]
    return _refresh(db, key)


def read_jurisdictions_soon(db: Database) -> None:
    """Start reading the jurisdictions in use in a thread, if they are not cached.

    The app calls this as soon as the database is open: the read then waits on the
    database server while the rest of the app is imported and built, instead of
    holding up the queue's first rows.
    """
    key = id(db.engine)
    with _lock:
        if key in _cache or key in _first_reads:
            return
        done = _first_reads[key] = threading.Event()

    def read() -> None:
        try:
            _refresh_quietly(db, key)
        finally:
            done.set()
            with _lock:
                _first_reads.pop(key, None)

    threading.Thread(target=read, daemon=True).start()


def _refresh_quietly(db: Database, key: int) -> None:
    """:func:`_refresh` in a thread: on failure the old list stays, the next call retries."""
    with contextlib.suppress(Exception):
        _refresh(db, key)


def _refresh(db: Database, key: int) -> list[Jurisdiction]:
    try:
        with db.session() as session:
            found = [
                (country, region, zone)
                for country, region, zone in session.execute(
                    select(Debtor.country, Debtor.region, Debtor.time_zone).distinct()
                )
            ]
        with _lock:
            _cache[key] = (clock.monotonic() + _CACHE_SECONDS, found)
        return found
    finally:
        with _lock:
            _refreshing.discard(key)


def forget_jurisdictions(db: Database) -> None:
    """Drop the cached list (after a sync or a seed brought new jurisdictions)."""
    with _lock:
        _cache.pop(id(db.engine), None)


_open_cache: dict[
    tuple[int, datetime], tuple[object, list[Jurisdiction], tuple[Jurisdiction, ...]]
] = {}


def open_jurisdictions(db: Database, now: datetime) -> tuple[Jurisdiction, ...]:
    """The jurisdictions whose contact window is open at ``now`` (installed rules file).

    Windows are set in whole minutes, so the answer is kept for the minute of ``now``
    (and for the same rules and the same jurisdictions in use): every ``n`` of a busy
    team asks this, and it runs the rules once per jurisdiction.
    """
    config = compliance_config.active()
    in_use = jurisdictions_in_use(db)
    minute = now.replace(second=0, microsecond=0)
    key = (id(db.engine), minute)
    with _lock:
        cached = _open_cache.get(key)
    if cached is not None and cached[0] is config and cached[1] is in_use:
        return cached[2]
    result = []
    for country, region, zone in in_use:
        rules = config.rules_for(country, region)
        decision = contact_window_decision(
            now,
            zone,
            rules.window,
            weekend_days=rules.weekend_days,
            holidays=rules.holidays,
            day_windows=rules.day_windows,
        )
        if decision.allowed:
            result.append((country, region, zone))
    found = tuple(result)
    with _lock:
        if len(_open_cache) > 256:
            _open_cache.clear()
        _open_cache[key] = (config, in_use, found)  # references keep the identities valid
    return found
