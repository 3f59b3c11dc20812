"""Debtors' time zones: an IANA name read from the database, UTC when it is unknown."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=1024)  # ZoneInfo keeps only a few zones; a queue page has dozens
def zone_or_utc(name: str | None) -> ZoneInfo:
    """The zone called ``name``; UTC when it is empty or not a known zone."""
    if not name:
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE
