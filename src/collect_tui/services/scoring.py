"""Keeping priority scores current: the daily set-based pass and its bookkeeping."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect_tui.services.database import Database
from collect_tui.storage.models import Setting
from collect_tui.storage.scoring import rescore

LAST_RESCORE_DAY = "last_rescore_day"


def rescore_portfolio(db: Database, *, now: datetime | None = None) -> int:
    """Refresh every account's cached facts and score in one set-based pass."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    with db.session() as session:
        count = rescore(session.connection(), today=today, now=now)
        _remember_day(session, today)
    return count


def rescore_needed(db: Database, *, today: date | None = None) -> bool:
    """True when no full rescore has run today (UTC), e.g. at the first start of a day."""
    today = today or datetime.now(UTC).date()
    with db.session() as session:
        last = session.scalar(select(Setting.value).where(Setting.key == LAST_RESCORE_DAY))
    return last != today.isoformat()


def mark_rescored(db: Database, today: date) -> None:
    """Record that the scores are current for ``today`` (the seed scores as of its own day)."""
    with db.session() as session:
        _remember_day(session, today)


def _remember_day(session: Session, today: date) -> None:
    setting = session.get(Setting, LAST_RESCORE_DAY)
    if setting is None:
        session.add(Setting(key=LAST_RESCORE_DAY, value=today.isoformat()))
    else:
        setting.value = today.isoformat()
