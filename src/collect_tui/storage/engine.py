"""Engine and session setup for the embedded SQLite default and PostgreSQL.

Every failure a user can cause (a bad URL, an unreachable server, a read-only location)
surfaces as :class:`StorageError` with one clear line; the database URL's password is
never part of any message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, NoSuchModuleError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from collect_tui.logsafe import redact_secrets

DB_ENV_VAR = "COLLECT_TUI_DB"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


class StorageError(Exception):
    """A database problem explained in one line, fit to show a user."""


class AuditLogImmutable(Exception):
    """Something tried to change or delete audit rows: the audit log is append-only."""


AUDIT_TABLE = "audit_log"
_AUDIT_CHANGE = re.compile(
    rf"^\s*(?:UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?"
    rf"(?:[\w\"]+\.)?\"?{AUDIT_TABLE}\"?(?![\w])",
    re.IGNORECASE,
)


def _refuse(what: str) -> AuditLogImmutable:
    return AuditLogImmutable(f"the audit log is append-only: {what} of audit rows refused")


def _guard_flush(session: Session, _context: Any, _instances: Any) -> None:
    """ORM unit of work: no audit row may be deleted or modified once written."""
    for obj in session.deleted:
        if getattr(type(obj), "__tablename__", None) == AUDIT_TABLE:
            raise _refuse("delete")
    for obj in session.dirty:
        if getattr(type(obj), "__tablename__", None) == AUDIT_TABLE and session.is_modified(obj):
            raise _refuse("update")


def _guard_orm_execute(state: ORMExecuteState) -> None:
    """ORM bulk ``update(AuditEntry)`` / ``delete(AuditEntry)``."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) == AUDIT_TABLE:
        raise _refuse("update" if state.is_update else "delete")


def _guard_cursor(
    _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    """Any SQL the app's engines send (Core, text, driver SQL)."""
    if _AUDIT_CHANGE.match(statement):
        raise _refuse(statement.split(None, 1)[0].lower())


event.listen(Session, "before_flush", _guard_flush)
event.listen(Session, "do_orm_execute", _guard_orm_execute)


def default_db_path() -> Path:
    """The embedded database file in the user data dir."""
    return Path(platformdirs.user_data_dir("collect-tui", appauthor=False)) / "collect.db"


def resolve_db_url(db: str | None = None) -> str:
    """The URL to use: the argument, then ``$COLLECT_TUI_DB``, then the embedded default."""
    if db:
        return db
    env = os.environ.get(DB_ENV_VAR)
    if env:
        return env
    return f"sqlite:///{default_db_path()}"


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def parse_db_url(url: str) -> URL:
    """Parse and check a database URL, raising :class:`StorageError` on a bad one."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise StorageError(
            "not a database URL; expected e.g. sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host/dbname"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise StorageError(
            f"unsupported database '{parsed.get_backend_name()}' in {safe_url(parsed)}; "
            "use sqlite:///FILE or postgresql+psycopg://..."
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _prepare_sqlite_file(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        if not os.access(path, os.R_OK):
            raise StorageError(f"cannot read the database file {path}")
        return
    if path == default_db_path():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the data directory {path.parent}: {exc.strerror}"
            ) from None
    elif not path.parent.is_dir():
        raise StorageError(f"the directory {path.parent} does not exist")


def insert_for(dialect: str) -> Any:
    """The ``insert`` construct of ``dialect`` (it can say ON CONFLICT). The PostgreSQL
    one is imported at first use: it loads the whole dialect, which SQLite does without."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def vacuum_analyze(engine: Engine, tables: Sequence[str] = ()) -> None:
    """PostgreSQL: ``VACUUM (ANALYZE)`` of ``tables`` (every table when none are named),
    outside a transaction; nothing on other engines.

    For after a write that rewrote most rows (the daily rescore, a seed): rewritten pages
    lose their all-visible mark, and until a vacuum sets it again the index-only scans of
    the queue's counts and filters read the table too (the filters were 2-4x slower
    right after a daily pass over 200k debtors). Autovacuum would get there later.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) " + ", ".join(tables))


# psycopg prepares a statement server-side at its second execution on a connection (its
# default waits for the sixth). Until then PostgreSQL plans it afresh each time, and the
# hot path's larger statements take 3-15 ms to plan: with 50 agents connecting at once,
# planning was 40% of the server's CPU over the first 30 s (bench/team_load.py).
PREPARE_THRESHOLD = 1


def make_engine(url: str, *, echo: bool = False, pool_size: int | None = None) -> Engine:
    """Create an engine for ``url`` (SQLite: WAL and foreign keys on) and check it connects.

    ``pool_size`` is how many PostgreSQL connections stay open: a process running many
    agents' threads keeps one per thread instead of opening and closing extra ones
    (as many more may open briefly for reads nested in a transaction).
    """
    parsed = parse_db_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if pool_size is not None and parsed.get_backend_name() == "postgresql":
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(parsed)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["connect_args"] = {"connect_timeout": 5, "prepare_threshold": PREPARE_THRESHOLD}
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError:
        raise StorageError(f"no driver for {parsed.drivername}; use postgresql+psycopg") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        from collect_tui.storage.models import declare_postgresql_conditions

        declare_postgresql_conditions()
        event.listen(engine, "checkin", _note_checkin)
        event.listen(engine, "checkout", _pinger(engine))
    event.listen(engine, "before_cursor_execute", _guard_cursor)
    check_connection(engine)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return engine


# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 5.0


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _pinger(engine: Engine) -> Any:
    """A checkout listener that checks a connection that sat idle in the pool.

    A server restart or a dropped link then costs a reconnect, not an error. A
    connection back in the pool within ``PING_AFTER_IDLE_S`` goes out unchecked: pinging
    at every checkout (``pool_pre_ping``) was two extra round trips per claim and save
    when a team works. If such a connection has died, its first statement fails, and the
    pool then drops every connection older than that failure.
    """

    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in = record.info.get("checked_in_at")
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise DisconnectionError("the pooled connection did not answer")

    return ping_if_idle


def check_connection(engine: Engine) -> None:
    """Open one connection, turning driver errors into one-line :class:`StorageError`."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise StorageError(describe_db_error(exc, engine.url)) from None


def is_driver_error(exc: BaseException) -> bool:
    """True for errors raised by the database drivers themselves (not wrapped by SQLAlchemy)."""
    import sqlite3

    import psycopg

    return isinstance(exc, DBAPIError | sqlite3.Error | psycopg.Error)


def _password(url: URL | str) -> str | None:
    try:
        return make_url(url).password  # type: ignore[return-value]
    except Exception:
        return None


def describe_db_error(exc: BaseException, url: URL | str) -> str:
    """One line for a driver error, without the URL's password or a traceback."""
    return redact_secrets(_describe(exc, url), [_password(url)])


def _describe(exc: BaseException, url: URL | str) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    lines = str(cause).strip().splitlines()
    original = lines[0] if lines else type(cause).__name__
    lowered = original.lower()
    where = safe_url(url)
    if "readonly" in lowered or "read-only" in lowered:
        return f"the database {where} is read-only"
    if "unable to open database file" in lowered:
        return f"cannot open the database file at {where} (missing directory or no permission)"
    if "connection refused" in lowered or "could not connect" in lowered or "timeout" in lowered:
        return f"cannot reach the database server at {where}: {original}"
    if "password authentication failed" in lowered:
        return f"the database server at {where} refused the credentials"
    if "does not exist" in lowered:
        return f"{original} ({where})"
    return f"database error at {where}: {original}"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
