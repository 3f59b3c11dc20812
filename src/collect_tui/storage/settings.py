"""The ``settings`` table: small named values (the day's rescore, sync cursors, weights).

The one way the app reads and writes them, in the caller's transaction, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, select

from collect_tui.storage.engine import insert_for
from collect_tui.storage.models import Setting

settings: Table = Setting.__table__  # type: ignore[assignment]


def read_setting(conn: Connection, key: str) -> str | None:
    """The value stored under ``key`` (None if there is none)."""
    return conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()


def write_setting(conn: Connection, key: str, value: str | None) -> None:
    """Store ``value`` under ``key``, or with ``None`` remove it."""
    if value is None:
        conn.execute(settings.delete().where(settings.c.key == key))
        return
    stmt = insert_for(conn.dialect.name)(settings).values(key=key, value=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=[settings.c.key], set_={"value": value}))


__all__ = ["read_setting", "settings", "write_setting"]
