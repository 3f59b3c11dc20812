"""Smoke test for the throwaway PostgreSQL helper in tests/pgserver.py."""

from __future__ import annotations

import os
import time

import pytest
from pgserver import PostgresServer, postgres_available
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.postgres


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _require_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if _in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


def test_server_lifecycle() -> None:
    _require_postgres()
    server = PostgresServer()
    t0 = time.monotonic()
    server.start()
    elapsed = time.monotonic() - t0
    base_dir = server.base_dir
    try:
        assert base_dir is not None and base_dir.is_dir()
        assert elapsed < 10, f"server start took {elapsed:.2f}s"
        assert server.url() == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"

        engine = create_engine(server.url())
        try:
            with engine.connect() as conn:
                version = conn.execute(text("SELECT version()")).scalar_one()
                listen = conn.execute(text("SHOW listen_addresses")).scalar_one()
                fsync = conn.execute(text("SHOW fsync")).scalar_one()
        finally:
            engine.dispose()
        assert "PostgreSQL" in version
        assert listen == "127.0.0.1"
        assert fsync == "off"

        url = server.create_database("pgserver_smoke")
        assert url.endswith(f":{server.port}/pgserver_smoke")
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, name text)"))
                conn.execute(text("INSERT INTO t VALUES (1, 'ü')"))
                assert conn.execute(text("SELECT name FROM t")).scalar_one() == "ü"
        finally:
            engine.dispose()
        server.drop_database("pgserver_smoke")

        engine = create_engine(server.url())
        try:
            with engine.connect() as conn:
                names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
        finally:
            engine.dispose()
        assert "pgserver_smoke" not in names
    finally:
        server.stop()
    assert not base_dir.exists()
    server.stop()  # idempotent


def test_context_manager_and_parallel_servers() -> None:
    _require_postgres()
    with PostgresServer() as a, PostgresServer() as b:
        assert a.port != b.port
        assert a.base_dir != b.base_dir
        dirs = [a.base_dir, b.base_dir]
    assert all(d is not None and not d.exists() for d in dirs)
