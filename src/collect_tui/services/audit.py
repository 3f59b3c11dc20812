"""The audit log: who changed what, when, with the values before and after.

:func:`record` (ORM, flushed with the session) and :func:`write` (Core, inserted at once,
for hot paths) are the only ways code writes audit rows; both run in the caller's
transaction, so the audit row commits or rolls back with the change it describes.

The log is append-only. Through the app, any UPDATE, DELETE or TRUNCATE of ``audit_log``
(ORM unit of work, ORM bulk, Core or raw SQL) raises :class:`AuditLogImmutable` (the
guards live in :mod:`collect_tui.storage.engine`); in the database itself, triggers
(migration 0006) refuse the same on SQLite and PostgreSQL, whoever connects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from collect_tui.services.agents import AgentInfo
from collect_tui.storage.engine import AuditLogImmutable
from collect_tui.storage.models import AuditEntry

SYSTEM_ACTOR = "system"

__all__ = [
    "SYSTEM_ACTOR",
    "AuditLogImmutable",
    "actor_name",
    "record",
    "snapshot",
    "to_jsonable",
    "write",
]


def to_jsonable(value: Any) -> Any:
    """``value`` with Decimals, dates, times and enums turned into strings (JSON-safe)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of ``obj`` as a JSON-safe dict (for ``before``/``after``)."""
    return {name: to_jsonable(getattr(obj, name)) for name in fields}


def actor_name(actor: AgentInfo | str) -> str:
    """The name stored as the actor: the agent's sign-in name, or the given string."""
    return actor.name if isinstance(actor, AgentInfo) else str(actor)


# The columns :func:`row_values` fills, in the table's order.
COLUMNS = ("at", "actor", "action", "entity", "entity_id", "debtor_id", "before", "after")


def row_values(
    actor: AgentInfo | str,
    action: str,
    entity: str,
    entity_id: int | str | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    debtor_id: int | None,
    at: datetime | None,
) -> dict[str, Any]:
    """The columns of one audit row (names clipped to their columns, values JSON-safe)."""
    if at is not None and at.tzinfo is None:
        raise ValueError("naive datetime given as the audit time; attach a time zone")
    return {
        "at": at or datetime.now(UTC),
        "actor": actor_name(actor)[:64],
        "action": action[:64],
        "entity": entity[:32],
        "entity_id": None if entity_id is None else str(entity_id)[:64],
        "debtor_id": debtor_id,
        "before": None if before is None else to_jsonable(before),
        "after": None if after is None else to_jsonable(after),
    }


_INSERT = insert(AuditEntry.__table__)  # built once: its cache key is computed once


def write(
    conn: Connection,
    actor: AgentInfo | str,
    action: str,
    entity: str,
    entity_id: int | str | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    debtor_id: int | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Insert one audit row now on ``conn`` (the same row :func:`record` adds), without the
    ORM unit of work: for hot paths. Flush the session first if it holds earlier audit
    rows, so that the log keeps their order."""
    values = row_values(actor, action, entity, entity_id, before, after, debtor_id, at)
    conn.execute(_INSERT, values)


def record(
    session: Session,
    actor: AgentInfo | str,
    action: str,
    entity: str,
    entity_id: int | str | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    debtor_id: int | None = None,
    *,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one audit row to ``session`` (flushed with the change it describes)."""
    entry = AuditEntry(**row_values(actor, action, entity, entity_id, before, after, debtor_id, at))
    session.add(entry)
    return entry
