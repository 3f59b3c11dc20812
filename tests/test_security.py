"""Security: logs masked, secrets out of messages, the audit log append-only (both engines)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from collect_tui import cli, logsafe
from collect_tui.logsafe import MaskingFilter, MaskingFormatter, mask, redact_secrets
from collect_tui.services import audit
from collect_tui.services.audit import AuditLogImmutable
from collect_tui.services.database import Database, open_database
from collect_tui.services.sync import load_overview, run_sync
from collect_tui.storage.engine import StorageError, describe_db_error
from collect_tui.storage.models import AuditEntry
from collect_tui.sync.config import SyncTarget
from collect_tui.sync.protocol import ConnectorError
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import XeroConnector

PHONE = "+1 555 201 3344"
EMAIL = "jane.debtor@example.com"
DB_PASSWORD = "Pg-s3cret-pw"
DB_URL = f"postgresql://collector:{DB_PASSWORD}@db.internal:5432/collect"
BEARER = "eyJhbGciOiJIUzI1NiJ9.tok3n"
CLIENT_SECRET = "cl1ent-s3cret-value"
CLEAR = (PHONE, "555 201 3344", EMAIL, DB_PASSWORD, BEARER, CLIENT_SECRET)


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    yield
    logsafe._forget_secrets()


def _assert_clean(output: str) -> None:
    for value in CLEAR:
        assert value not in output, f"{value!r} leaked into {output!r}"


# --- logs -------------------------------------------------------------------------------


def _capture_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(MaskingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_a_log_record_is_masked_in_message_and_args() -> None:
    logger, stream = _capture_logger("collect_tui.test.masked")
    logger.info("called %s at %s", "Jane Debtor", PHONE)
    logger.info(f"mailed {EMAIL} about invoice INV-0042")
    logger.warning("connecting to %s", DB_URL)
    logger.warning("sent headers %r", {"Authorization": f"Bearer {BEARER}"})
    logger.error("token request: client_id=abc&client_secret=%s&grant=x", CLIENT_SECRET)
    logger.error('token answer {"access_token": "%s", "expires_in": 1800}', BEARER)
    try:
        raise RuntimeError(f"cannot reach {DB_URL} for {EMAIL}")
    except RuntimeError:
        logger.exception("sync failed")
    output = stream.getvalue()
    _assert_clean(output)
    assert "<phone>" in output and "<email>" in output
    assert "postgresql://collector:***@db.internal:5432/collect" in output
    assert "INV-0042" in output and "RuntimeError" in output  # the rest is kept


def test_mask_keeps_dates_amounts_and_ids() -> None:
    line = "run 12 at 2026-12-02 12:21:10 took 1.50 s: 1,234 rows, USD 1234567.89, id 1234567"
    assert mask(line) == line


@pytest.mark.parametrize(
    "secret_text",
    [
        f"Authorization: Bearer {BEARER}",
        f"Bearer {BEARER}",
        f"client_secret={CLIENT_SECRET}",
        f"XERO_CLIENT_SECRET={CLIENT_SECRET}",
        f"password={DB_PASSWORD} host=db",
        DB_URL,
        f"postgresql+psycopg://collector:{DB_PASSWORD}@/collect?host=/run/pg",
        f'{{"refresh_token": "{CLIENT_SECRET}"}}',
    ],
)
def test_secrets_are_redacted(secret_text: str) -> None:
    _assert_clean(redact_secrets(secret_text))


def test_registered_secrets_are_hidden_anywhere() -> None:
    logsafe.register_environment_secrets(
        {"XERO_CLIENT_SECRET": CLIENT_SECRET, "COLLECT_TUI_DB": DB_URL}
    )
    assert redact_secrets(f"the server said: bad {CLIENT_SECRET} / {DB_PASSWORD}") == (
        "the server said: bad *** / ***"
    )


def test_configure_logging_masks_every_logger_and_tracebacks(tmp_path: Path) -> None:
    """In a fresh interpreter: any library's logger, a file log, and an uncaught error."""
    log_file = tmp_path / "collect.log"
    code = (
        "import logging\n"
        "from collect_tui.logsafe import configure_logging\n"
        "configure_logging()\n"
        f"logging.getLogger('httpx').warning('POST %s Authorization: Bearer %s', {DB_URL!r}, "
        f"{BEARER!r})\n"
        f"logging.getLogger('collect_tui.sync').error('debtor %s %s', {PHONE!r}, {EMAIL!r})\n"
        f"raise SystemError('client_secret={CLIENT_SECRET} ' + {DB_URL!r})\n"
    )
    env = {**os.environ, "COLLECT_TUI_LOG_FILE": str(log_file), "COLLECT_TUI_LOG_LEVEL": "INFO"}
    to_file = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert to_file.returncode == 1
    logged = log_file.read_text()
    assert "WARNING httpx" in logged and "ERROR collect_tui.sync" in logged
    _assert_clean(logged)
    _assert_clean(to_file.stderr)
    assert "SystemError" in to_file.stderr  # the traceback is still there, redacted
    env.pop("COLLECT_TUI_LOG_FILE")
    env.pop("COLLECT_TUI_LOG_LEVEL")
    to_stderr = subprocess.run(  # no log file: warnings reach stderr (Python's last resort)
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert "POST postgresql://collector:***@db.internal" in to_stderr.stderr
    assert "debtor <phone> <email>" in to_stderr.stderr
    _assert_clean(to_stderr.stderr)


def test_the_cli_installs_the_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(logsafe, "configure_logging", lambda **kw: calls.append(kw))
    assert cli.main(["agent", "list", "--db", "mysql://u:x@h/db"]) == 2
    assert calls == [{}]


def test_our_own_log_calls_do_not_log_debtor_fields() -> None:
    """No log call in the package names a debtor's name, phone, e-mail or address."""
    package = Path(cli.__file__).parent
    debtor_field = re.compile(r"\.(name|phones?|emails?|address|number|notes)\b")
    calls = 0
    for path in package.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if re.match(r"(log|logger|logging)\.(debug|info|warning|error|exception)\(", stripped):
                calls += 1
                assert not debtor_field.search(stripped), f"{path}:{number}: {stripped}"
    assert calls  # the check looked at something


# --- the database URL and API secrets in messages ----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://collector:{DB_PASSWORD}@127.0.0.1:1/collect",
        f"postgresql://collector:{DB_PASSWORD}@127.0.0.1:notaport/collect",
        f"postgresql://collector:{DB_PASSWORD}@127.0.0.1:1/collect?bogus_option=1",
        f"postgresql://collector:{DB_PASSWORD}@/collect?host=/nonexistent",
        f"mysql://collector:{DB_PASSWORD}@127.0.0.1/collect",
    ],
)
def test_a_bad_database_url_never_shows_its_password(url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collect_tui.cli", "report", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLLECT_TUI_DB": ""},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("collect-tui: error: ")
    assert DB_PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_the_password_from_the_environment_is_hidden_too() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "collect_tui.cli", "agent", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLLECT_TUI_DB": f"postgresql://c:{DB_PASSWORD}@127.0.0.1:1/x"},
    )
    assert result.returncode == 2
    assert "c:***@127.0.0.1:1" in result.stderr and DB_PASSWORD not in result.stderr


def test_a_driver_message_echoing_the_password_is_redacted() -> None:
    error = RuntimeError(f'invalid dsn: password="{DB_PASSWORD}" user=collector')
    message = describe_db_error(error, f"postgresql://collector:{DB_PASSWORD}@h/db")
    assert DB_PASSWORD not in message and "***" in message
    with pytest.raises(StorageError) as info:
        open_database(f"postgresql+psycopg://collector:{DB_PASSWORD}@127.0.0.1:1/db")
    assert DB_PASSWORD not in str(info.value)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(customers=5, seed=3, token="the-right-token").start()
    yield server
    server.stop()


def test_a_refused_token_is_not_in_the_sync_error(
    sqlite_db: Database, sandbox: SandboxServer
) -> None:
    target = SyncTarget(source="xero", base_url=sandbox.base_url)
    result = run_sync(sqlite_db, target, environ={"XERO_ACCESS_TOKEN": BEARER}, timeout=10)
    assert result.status == "failed" and result.error
    assert "401" in result.error
    overview = load_overview(sqlite_db)
    for shown in (result.error, *(run.error or "" for run in overview.runs)):
        assert BEARER not in shown


def test_a_connector_error_quoting_secrets_is_redacted(
    sqlite_db: Database, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky_pull(self: XeroConnector, stream: str, since: object) -> None:
        raise ConnectorError(
            f"GET /{stream}: refused; sent Authorization: Bearer {BEARER} to "
            f"https://app:{CLIENT_SECRET}@identity.example/connect/token"
        )

    monkeypatch.setattr(XeroConnector, "pull", leaky_pull)
    target = SyncTarget(source="xero", base_url=sandbox.base_url)
    result = run_sync(sqlite_db, target, environ={"XERO_ACCESS_TOKEN": "the-right-token"})
    assert result.error and "refused" in result.error
    stored = load_overview(sqlite_db).runs[0].error or ""
    for shown in (result.error, stored):
        assert BEARER not in shown and CLIENT_SECRET not in shown


# --- the audit log is append-only ---------------------------------------------------------


def _one_audit_row(db: Database) -> int:
    with db.session() as session:
        entry = audit.record(
            session, "tester", "debtor.flag", "debtor", 1, {"dispute": False}, {"dispute": True}, 1
        )
        session.flush()
        return entry.id


def _row(db: Database, entry_id: int) -> tuple[object, ...]:
    with db.session() as session:
        row = session.get(AuditEntry, entry_id)
        assert row is not None
        return (row.actor, row.action, row.before, row.after)


def test_the_app_cannot_change_or_delete_audit_rows(db: Database) -> None:
    entry_id = _one_audit_row(db)
    original = _row(db, entry_id)
    attempts = {
        "orm update": lambda s: setattr(s.get(AuditEntry, entry_id), "actor", "someone else"),
        "orm delete": lambda s: s.delete(s.get(AuditEntry, entry_id)),
        "bulk update": lambda s: s.execute(update(AuditEntry).values(actor="x")),
        "bulk delete": lambda s: s.execute(delete(AuditEntry).where(AuditEntry.id == entry_id)),
        "core delete": lambda s: s.connection().execute(AuditEntry.__table__.delete()),
        "text update": lambda s: s.execute(text("UPDATE audit_log SET actor = 'x'")),
        "driver delete": lambda s: s.connection().exec_driver_sql("DELETE FROM audit_log"),
        "quoted": lambda s: s.connection().exec_driver_sql('delete from "audit_log"'),
    }
    for what, attempt in attempts.items():
        with pytest.raises(AuditLogImmutable, match="append-only"), db.session() as session:
            attempt(session)
            session.flush()
        assert _row(db, entry_id) == original, what
    with db.engine.connect() as conn:  # new rows are still welcome
        count = conn.execute(select(func.count()).select_from(AuditEntry)).scalar()
    _one_audit_row(db)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == (count or 0) + 1


def test_the_database_itself_refuses_changes_to_audit_rows(db: Database) -> None:
    """A client outside collect-tui (no app guards) meets the triggers of migration 0006."""
    entry_id = _one_audit_row(db)
    original = _row(db, entry_id)
    raw = create_engine(db.engine.url)  # a plain engine: none of the app's listeners
    statements = ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"]
    if db.dialect == "postgresql":
        statements.append("TRUNCATE audit_log")
    try:
        for statement in statements:
            with pytest.raises(DBAPIError, match="append-only"), raw.begin() as conn:
                conn.exec_driver_sql(statement)
        with raw.begin() as conn:
            conn.execute(
                AuditEntry.__table__.insert().values(
                    at=datetime.now(UTC), actor="other", action="x", entity="debtor"
                )
            )
    finally:
        raw.dispose()
    assert _row(db, entry_id) == original


def test_deleting_a_debtor_keeps_its_audit_rows(db: Database) -> None:
    from collect_tui.services.seed import seed_portfolio

    seed_portfolio(db.engine, debtors=3, agents=1, seed=5)
    with db.session() as session:
        debtor_id = session.scalar(text("SELECT min(id) FROM debtors"))
        audit.record(session, "tester", "note", "debtor", debtor_id, None, {"x": 1}, debtor_id)
    with db.session() as session:
        before = session.scalar(select(func.count()).where(AuditEntry.debtor_id == debtor_id))
        session.execute(text("DELETE FROM debtors WHERE id = :id"), {"id": debtor_id})
    with db.session() as session:
        after = session.scalar(select(func.count()).where(AuditEntry.debtor_id == debtor_id))
    assert before and after == before


def test_the_triggers_go_and_come_with_their_migration(db_url: str) -> None:
    from alembic import command

    from collect_tui.storage.engine import parse_db_url
    from collect_tui.storage.migrate import alembic_config

    database = open_database(db_url)
    entry_id = _one_audit_row(database)
    database.close()
    engine = create_engine(parse_db_url(db_url))
    command.downgrade(alembic_config(engine), "0005")
    with engine.begin() as conn:  # without the triggers the raw client may (that is the point)
        conn.exec_driver_sql(f"UPDATE audit_log SET actor = 'x' WHERE id = {entry_id}")
    command.upgrade(alembic_config(engine), "head")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log")
    engine.dispose()
