"""What the first start of a day still has to do: the daily rescore and the cadence.

Kept apart from the scoring and cadence services so that the app's start can ask without
loading them (the cadence brings the letter templates' engine).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from collect_tui import clock
from collect_tui.services.database import Database
from collect_tui.storage.settings import read_setting, write_setting

LAST_RESCORE_DAY = "last_rescore_day"
CADENCE_LAST_RUN = "cadence_last_run"


def rescore_needed(db: Database, *, today: date | None = None) -> bool:
    """True when no full rescore has run today (UTC), e.g. at the first start of a day."""
    today = today or datetime.now(UTC).date()
    with db.session() as session:
        last = read_setting(session.connection(), LAST_RESCORE_DAY)
    return last != today.isoformat()


def mark_rescored(db: Database, today: date) -> None:
    """Record that the scores are current for ``today`` (the seed scores as of its own day)."""
    with db.session() as session:
        record_rescore_day(session.connection(), today)


def record_rescore_day(conn: Connection, today: date) -> None:
    """Note, in the caller's transaction, that every score is current for ``today``."""
    write_setting(conn, LAST_RESCORE_DAY, today.isoformat())


def last_cadence_run(session: Session) -> datetime | None:
    """When the cadence last turned due steps into tasks (None: never, or unreadable)."""
    value = read_setting(session.connection(), CADENCE_LAST_RUN)
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def cadence_needed(db: Database, *, now: datetime | None = None) -> bool:
    """True when the cadence has not run yet today (UTC): the app runs it once a day."""
    now = now or clock.now()
    with db.session() as session:
        last = last_cadence_run(session)
    return last is None or last.astimezone(UTC).date() < now.astimezone(UTC).date()


def mark_cadence_run(db: Database, now: datetime) -> None:
    """Record that the cadence ran at ``now`` (e.g. a test's portfolio, to start quietly)."""
    with db.session() as session:
        record_cadence_run(session, now)


def record_cadence_run(session: Session, now: datetime) -> None:
    """Note, in the caller's transaction, that the cadence ran at ``now``."""
    write_setting(session.connection(), CADENCE_LAST_RUN, now.isoformat())
