"""Keeping priority scores current: the daily set-based pass and its bookkeeping."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from collect_tui.domain.priority import DEFAULT_WEIGHTS, PriorityWeights
from collect_tui.services.daily import mark_rescored, record_rescore_day, rescore_needed
from collect_tui.services.database import Database
from collect_tui.storage.engine import vacuum_analyze
from collect_tui.storage.scoring import rescore, store_weights, stored_weights


class WeightsFileError(ValueError):
    """A priority weights file that cannot be used, with the file and key in the message."""


def rescore_portfolio(
    db: Database, *, now: datetime | None = None, facts: bool = False, tidy: bool = True
) -> int:
    """Score every account in one set-based pass (the daily pass).

    By default the facts that every write keeps current are trusted and only those that
    change with the day (promises falling due or out of the lookback) are refreshed;
    ``facts=True`` also aggregates every fact afresh from invoices, contacts, promises
    and tasks (slower; for a database written by something other than this app).
    ``tidy=False`` leaves :func:`tidy_after_pass` to the caller.
    """
    return _full_pass(db, now, None, facts=facts, tidy=tidy)


def _full_pass(
    db: Database,
    now: datetime | None,
    new_weights: PriorityWeights | None,
    *,
    facts: bool = False,
    tidy: bool = True,
) -> int:
    """The set-based pass over every account, storing ``new_weights`` first if given, then
    (``tidy``) :func:`tidy_after_pass`."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    with db.session() as session:
        conn = session.connection()
        if new_weights is not None:
            store_weights(conn, new_weights)
        count = rescore(conn, today=today, now=now, weights=new_weights, facts=facts)
        record_rescore_day(conn, today)
    if tidy:
        tidy_after_pass(db)
    return count


def tidy_after_pass(db: Database) -> None:
    """What the queue's reads need after a pass that rewrote every account.

    SQLite: refresh the planner's statistics where they went stale (they can make it pick
    a slow index). PostgreSQL: ``VACUUM (ANALYZE) debtors``, which marks the rewritten
    pages all-visible again for the index-only scans of the queue's counts and filters
    (see :func:`collect_tui.storage.engine.vacuum_analyze`).
    """
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA optimize")
            conn.commit()
    else:
        vacuum_analyze(db.engine, ["debtors"])


def current_weights(db: Database) -> PriorityWeights:
    """The priority weights every rescore of this database uses."""
    with db.session() as session:
        return stored_weights(session.connection())


def read_weights_file(path: Path) -> PriorityWeights:
    """Weights from a TOML file: the ``[priority]`` table, or top-level keys.

    Keys not given keep their defaults; an unknown key or a bad value is an error naming
    the file and the key.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WeightsFileError(f"{path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise WeightsFileError(f"{path}: {exc}") from exc
    table = dict(data.get("priority", data))
    rates = table.get("fx_to_base")
    if isinstance(rates, dict):  # currencies not named keep their default rates
        table["fx_to_base"] = {**DEFAULT_WEIGHTS.fx_to_base, **rates}
    try:
        return PriorityWeights.model_validate(table)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(str(part) for part in problem["loc"]) or "priority"
        raise WeightsFileError(f"{path}: [priority] {key}: {problem['msg']}") from exc


def set_weights(
    db: Database, weights: PriorityWeights, *, now: datetime | None = None, tidy: bool = True
) -> int:
    """Store new weights and rescore the whole portfolio with them, in one transaction."""
    return _full_pass(db, now, weights, tidy=tidy)


__all__ = [
    "WeightsFileError",
    "current_weights",
    "mark_rescored",
    "read_weights_file",
    "rescore_needed",
    "rescore_portfolio",
    "set_weights",
    "tidy_after_pass",
]
