"""Opening the database for the app and the commands (the only way upper layers get one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from collect_tui.storage.engine import (
    StorageError,
    describe_db_error,
    make_engine,
    make_session_factory,
    resolve_db_url,
    safe_url,
)
from collect_tui.storage.migrate import ensure_schema


@dataclass
class Database:
    """An open database: its engine and a session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return safe_url(self.engine.url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, self._storage_errors(), session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A Core connection in a transaction, for a few statements that need no ORM
        objects: committed on success, rolled back on any error, errors as :meth:`session`
        gives them."""
        with self._storage_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """Driver errors as :class:`StorageError`, described without the password."""
        try:
            yield
        except DBAPIError as exc:
            raise StorageError(describe_db_error(exc, self.engine.url)) from None

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_database(
    db: str | None = None, *, migrate: bool = True, pool_size: int | None = None
) -> Database:
    """Open ``db`` (or ``$COLLECT_TUI_DB``, or the embedded default) with a current schema.

    An empty database is migrated on first use; an outdated or newer one is refused with
    a clear :class:`StorageError`.
    """
    engine = make_engine(resolve_db_url(db), pool_size=pool_size)
    try:
        if migrate:
            ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, make_session_factory(engine))
