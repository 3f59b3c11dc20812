"""Alembic migrations driven from code: no alembic.ini needed by users."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import DBAPIError

from collect_tui.storage.engine import StorageError, describe_db_error

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and this engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


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
