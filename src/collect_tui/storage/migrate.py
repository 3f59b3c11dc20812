"""Alembic migrations driven from code: no alembic.ini needed by users.

Alembic is imported only when a migration has to run or a revision is unknown: a start on
a current database checks the recorded revision against the packaged head without it,
which saves a fifth of the app's start.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from collect_tui.storage.engine import StorageError, describe_db_error

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)', re.M)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and this engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def _script() -> ScriptDirectory:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


@functools.cache
def packaged_head() -> str | None:
    """The head revision read from the migration files' ``revision``/``down_revision``
    lines (no Alembic import); None if they do not form one chain."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((key, value) for key, value in _REVISION_LINE.findall(path.read_text()))
        if "revision" in found:
            revisions[found["revision"]] = found.get("down_revision") or None
    heads = set(revisions) - {down for down in revisions.values() if down}
    return heads.pop() if len(heads) == 1 else None


def _recorded_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, read with plain SQL; None if unreadable."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no such table, or no server: the full check says which
        return None
    return rows[0][0] if len(rows) == 1 else None


def _is_known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except Exception:  # alembic raises for an id it cannot resolve
        return False


def head_revision() -> str:
    """The newest schema revision this version of collect-tui knows."""
    head = _script().get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, or None for an unversioned one."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise StorageError(describe_db_error(exc, engine.url)) from None


def is_empty(engine: Engine) -> bool:
    """True when the database has no tables at all."""
    try:
        return not inspect(engine).get_table_names()
    except DBAPIError as exc:
        raise StorageError(describe_db_error(exc, engine.url)) from None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    before = current_revision(engine)
    if before is not None and not _is_known(before):
        raise StorageError(
            f"the database has schema revision {before}, newer than this collect-tui knows "
            f"(newest {head_revision()}); upgrade collect-tui"
        ) from None
    if before is None and not is_empty(engine):
        raise StorageError("the database has tables but no collect-tui schema version; refusing")
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), "head")
        if before is not None and before != head_revision():
            # New indexes have no statistics yet: without them SQLite may pick an index
            # that is valid but far slower (e.g. every open invoice to find one debtor's).
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
    except DBAPIError as exc:
        raise StorageError(describe_db_error(exc, engine.url)) from None
    return before, head_revision()


def ensure_schema(engine: Engine) -> None:
    """Check the schema is current; an empty database is migrated on first use.

    A database at an older revision is not changed behind the user's back: they are told
    to run ``collect-tui db upgrade``. A newer one is refused.
    """
    head = packaged_head()
    if head is not None and _recorded_revision(engine) == head:
        return  # current: the usual start, without importing Alembic
    revision = current_revision(engine)
    head = head_revision()
    if revision == head:
        return
    if revision is None and is_empty(engine):
        upgrade(engine)
        return
    if revision is not None and not _is_known(revision):
        raise StorageError(
            f"the database has schema revision {revision}, newer than this collect-tui knows "
            f"(newest {head}); upgrade collect-tui"
        )
    if revision is None:
        raise StorageError("the database has tables but no collect-tui schema version; refusing")
    raise StorageError(
        f"the database schema is at {revision}, older than {head}; "
        "run: collect-tui db upgrade --db URL"
    )
