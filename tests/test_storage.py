"""Storage: migrations, engines, UTC times, version checks, clear errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.schema import CreateIndex

from collect_tui.services.database import Database, open_database
from collect_tui.storage.driver import read_on_driver, run_on_driver
from collect_tui.storage.engine import AuditLogImmutable, StorageError, make_engine
from collect_tui.storage.migrate import (
    current_revision,
    ensure_schema,
    head_revision,
    packaged_head,
    upgrade,
)
from collect_tui.storage.models import (
    PARTIAL_INDEXES,
    Agent,
    AuditEntry,
    Base,
    Debtor,
    Invoice,
)


def test_empty_database_is_migrated_on_first_use(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert current_revision(db.engine) == head_revision()


def test_the_quick_start_check_knows_the_same_head_as_alembic() -> None:
    """Starts compare the database with the head read from the migration files."""
    assert packaged_head() == head_revision()


def test_migration_matches_models(db: Database) -> None:
    """The migrated schema has every column the models declare."""
    inspector = inspect(db.engine)
    for name, table in Base.metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert set(table.columns.keys()) == columns, name


def test_money_is_decimal_and_times_are_utc(db: Database) -> None:
    local = datetime(2026, 3, 8, 1, 30, tzinfo=timezone(timedelta(hours=-5)))
    with db.session() as session:
        debtor = Debtor(name="Ana", time_zone="America/New_York", last_contact_at=local)
        session.add(debtor)
        session.flush()
        session.add(
            Invoice(
                debtor_id=debtor.id,
                number="INV-1",
                issue_date=date(2026, 1, 1),
                due_date=date(2026, 1, 31),
                currency="USD",
                total=Decimal("1234567.89"),
                amount_due=Decimal("0.10"),
            )
        )
    with db.session() as session:
        invoice = session.scalars(select(Invoice)).one()
        assert invoice.total == Decimal("1234567.89")
        assert isinstance(invoice.amount_due, Decimal)
        debtor = session.scalars(select(Debtor)).one()
        assert debtor.last_contact_at == local
        assert debtor.last_contact_at.tzinfo == UTC


def test_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), db.session() as session:
        session.add(Debtor(name="x", last_contact_at=datetime(2026, 1, 1)))
        session.flush()


def test_concurrent_edit_is_not_silently_overwritten(db: Database) -> None:
    with db.session() as session:
        session.add(Agent(name="a", display_name="A"))
    first = db.sessions()
    second = db.sessions()
    try:
        mine = first.scalars(select(Agent)).one()
        theirs = second.scalars(select(Agent)).one()
        mine.display_name = "Mine"
        first.commit()
        theirs.display_name = "Theirs"
        with pytest.raises(StaleDataError):
            second.commit()
    finally:
        first.close()
        second.close()
    with db.session() as session:
        assert session.scalars(select(Agent)).one().display_name == "Mine"


def test_newer_schema_is_refused(db_url: str) -> None:
    database = open_database(db_url)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    database.close()
    with pytest.raises(StorageError, match="newer than this collect-tui"):
        open_database(db_url)
    engine = make_engine(db_url)
    with pytest.raises(StorageError, match="newer"):
        upgrade(engine)
    engine.dispose()


def test_unrelated_database_is_not_touched(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/other.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE stuff (x INTEGER)"))
    with pytest.raises(StorageError, match="no collect-tui schema"):
        ensure_schema(engine)
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u@h/db", "unsupported database"),
        ("sqlite:////nonexistent-dir/x.db", "does not exist"),
        ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot reach"),
    ],
)
def test_bad_urls_give_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as info:
        open_database(url)
    assert "secret" not in str(info.value)
    assert "\n" not in str(info.value)


def test_sqlite_uses_wal_and_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_older_schema_is_left_alone_until_db_upgrade(db_url: str) -> None:
    from alembic import command

    from collect_tui.storage.migrate import alembic_config

    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0001")
    with pytest.raises(StorageError, match="run: collect-tui db upgrade"):
        ensure_schema(engine)
    assert current_revision(engine) == "0001"
    before, after = upgrade(engine)
    assert (before, after) == ("0001", head_revision())
    ensure_schema(engine)
    engine.dispose()


def test_partial_indexes_keep_their_condition_on_each_engine(db: Database) -> None:
    """An index made from the models (the daily pass rebuilds some) is as partial as the
    migrations made it, on PostgreSQL too, though the models name no PostgreSQL option."""
    indexes = {str(index.name): index for index in Debtor.__table__.indexes}
    for name, condition in PARTIAL_INDEXES.items():
        ddl = str(CreateIndex(indexes[name]).compile(dialect=db.engine.dialect))
        assert ddl.endswith(f"WHERE {condition}"), ddl


def test_the_app_loads_without_the_postgresql_dialect() -> None:
    """Every start imports the app: the PostgreSQL dialect (0.1 s) only if it is used."""
    code = "import sys, collect_tui.app; print(sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "sqlalchemy.dialects.postgresql" not in loaded


@pytest.mark.postgres
def test_a_pooled_connection_that_died_while_idle_is_replaced_not_reported(
    pg_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server drops an idle pooled connection (a restart, a cut link): the next
    session gets a fresh one. A connection used moments ago goes out without a ping."""
    from collect_tui.storage import engine as engine_module

    url = pg_server.create_database("idle_ping")  # type: ignore[attr-defined]
    database = open_database(url)
    try:
        pings: list[object] = []
        real_ping = database.engine.dialect.do_ping
        monkeypatch.setattr(
            database.engine.dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn)
        )
        with database.session() as session:
            first_pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with database.session() as session:  # back in the pool a moment ago: no ping
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() == first_pid
        assert pings == []
        with make_engine(url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
            other.commit()
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)  # it has sat idle
        with database.session() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != first_pid
        assert len(pings) == 1
    finally:
        database.close()


@pytest.mark.postgres
def test_a_statement_run_again_on_a_connection_is_prepared_on_the_server(
    pg_server: object,
) -> None:
    """The second run of a statement on a connection prepares it, so PostgreSQL stops
    planning it afresh each time (psycopg alone waits for the sixth run)."""
    url = pg_server.create_database("prepared")  # type: ignore[attr-defined]
    database = open_database(url)
    statement = select(Debtor.id).where(Debtor.id == 1)
    prepared = text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE :text")
    like = {"text": "%FROM debtors%debtors.id = $1%"}
    try:
        with database.engine.connect() as conn:
            conn.execute(statement).all()
            assert conn.execute(prepared, like).scalar_one() == 0  # once: not yet
            conn.execute(statement).all()
            assert conn.execute(prepared, like).scalar_one() == 1
    finally:
        database.close()


def test_statements_sent_straight_to_the_driver_convert_check_and_report_as_execute_does(
    db: Database,
) -> None:
    agents = Agent.__table__
    add = agents.insert().values(
        name=bindparam("name"), display_name="Ana", role="agent", settlement_limit=0,
        active=True, version=1, created_at=bindparam("at"),
    )  # fmt: skip
    local = datetime(2026, 3, 8, 1, 30, tzinfo=timezone(timedelta(hours=-5)))
    with db.engine.begin() as conn:
        assert run_on_driver(conn, add.returning(agents.c.id), {"name": "ana", "at": local})
        run_on_driver(conn, add, {"name": "bea", "at": local})
        named = select(agents.c.name).where(agents.c.name.in_(bindparam("names", expanding=True)))
        for names, expected in (
            (["ana", "bea", "cid"], ["ana", "bea"]),
            (["bea"], ["bea"]),
            (["cid", "ana"], ["ana"]),
            (["cid", "bea"], ["bea"]),  # the same length again: new values, same rendering
        ):
            found = run_on_driver(conn, named, {"names": names})
            assert sorted(row[0] for row in found) == expected
    with db.engine.begin() as conn:
        (ana,) = read_on_driver(
            conn,
            select(agents.c.created_at, agents.c.settlement_limit).where(agents.c.name == "ana"),
            {},
        )
    assert ana.created_at == local and ana.created_at.tzinfo == UTC  # as execute reads it
    assert ana.settlement_limit == 0 and isinstance(ana.settlement_limit, Decimal)
    with pytest.raises(StatementError, match="naive datetime"), db.engine.begin() as conn:
        run_on_driver(conn, add, {"name": "cid", "at": datetime(2026, 1, 1)})
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        run_on_driver(conn, add, {"name": "ana", "at": local})
    with pytest.raises(AuditLogImmutable), db.engine.begin() as conn:
        run_on_driver(conn, AuditEntry.__table__.delete(), {})
