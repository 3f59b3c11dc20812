"""Set-based bulk inserts straight through the driver (executemany on SQLite, COPY on PostgreSQL).

Values must already be in a form both engines accept as text-compatible input: ints,
bools, None and strings (ISO dates, ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC timestamps,
decimal strings for money). See :func:`sql_timestamp`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, text

from collect_tui.storage.models import Base

Row = tuple[Any, ...]


def sql_timestamp(value: datetime) -> str:
    """A naive-UTC timestamp in the text form SQLAlchemy stores on SQLite."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
    """Insert many rows into ``table`` in one set-based call; returns the row count."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    raw = conn.connection.driver_connection
    assert raw is not None
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * len(columns))
        raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
    return len(rows)


def next_ids(conn: Connection, tables: Sequence[str]) -> dict[str, int]:
    """For each table, the first id above those in use (for explicit-id bulk inserts)."""
    result = {}
    for name in tables:
        table = Base.metadata.tables[name]
        result[name] = (conn.execute(select(func.max(table.c.id))).scalar() or 0) + 1
    return result


def reset_sequences(conn: Connection, tables: Sequence[str]) -> None:
    """After explicit-id inserts on PostgreSQL, move each id sequence past the highest id."""
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
            )
        )
