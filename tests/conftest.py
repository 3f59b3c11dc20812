"""Shared fixtures: every storage-backed test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
import os
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from pgserver import PostgresServer, postgres_available
from sqlalchemy import event
from textual import events
from textual.app import App
from textual.keys import _get_unicode_name_from_key

from collect_tui.services.daily import mark_cadence_run, mark_rescored
from collect_tui.services.database import Database, open_database

_counter = itertools.count()


def no_daily_work(db: Database) -> None:
    """Mark today's rescore and cadence done: an app started on ``db`` then does neither
    (the portfolio keeps the scores and tasks of its own day)."""
    now = datetime.now(UTC)
    mark_rescored(db, now.date())
    mark_cadence_run(db, now)


def burst(app: App[object], *keys: str) -> None:
    """Queue ``keys`` all at once, as a fast typist or one SSH packet delivers them
    (``Pilot.press`` waits for the app to settle after each key)."""
    for key in keys:
        try:
            character: str | None = unicodedata.lookup(_get_unicode_name_from_key(key))
        except KeyError:
            character = key if len(key) == 1 else None
        event = events.Key(key, character)
        event.set_sender(app)
        app._driver.send_message(event)  # type: ignore[union-attr]


@contextmanager
def connections_held(db: Database) -> Iterator[list[int]]:
    """Watch ``db``'s pool: the list yielded holds, once the block ends, the most
    connections that were checked out at one time."""
    held = 0
    most = [0]

    def checked_out(*_: object) -> None:
        nonlocal held
        held += 1
        most[0] = max(most[0], held)

    def checked_in(*_: object) -> None:
        nonlocal held
        held -= 1

    event.listen(db.engine, "checkout", checked_out)
    event.listen(db.engine, "checkin", checked_in)
    try:
        yield most
    finally:
        event.remove(db.engine, "checkout", checked_out)
        event.remove(db.engine, "checkin", checked_in)


def in_ci() -> bool:
    """True on the CI machine, where PostgreSQL tests must run, never skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session."""
    reason = postgres_available()
    if reason is not None:
        if in_ci():
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL to a fresh, empty database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_counter)}"
    url = server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A fresh database with the schema applied, on each engine."""
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture
def sqlite_db(tmp_path: os.PathLike[str]) -> Iterator[Database]:
    """A fresh embedded database (for tests that are about one engine only)."""
    database = open_database(f"sqlite:///{tmp_path}/test.db")
    yield database
    database.close()
