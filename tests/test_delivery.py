"""Delivery: a real SMTP server on 127.0.0.1 (aiosmtpd), the SMS providers, the templates."""

from __future__ import annotations

import email
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message as MimeMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from test_cadence_helpers import Recorder, add_debtor, at, config

from collect_tui.domain.cadence import CadenceStep
from collect_tui.services.cadence import run_cadence
from collect_tui.services.compliance_config import SmtpConfig
from collect_tui.services.database import Database
from collect_tui.services.delivery import (
    DeliveryError,
    FileSmsSink,
    HttpSmsProvider,
    Message,
    SmtpEmailSender,
    TemplateRenderer,
)
from collect_tui.storage.models import AuditEntry, Contact, Task

DUE = __import__("datetime").date(2026, 3, 2)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], MimeMessage]] = []
        self.reject = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.reject:
            return "554 5.7.1 rejected for the test"
        parsed = email.message_from_bytes(envelope.original_content, policy=default_policy)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, _Inbox, list[tuple[str, str]]]]:
    """A real SMTP server on 127.0.0.1 that requires a login and keeps what it receives."""
    inbox = _Inbox()
    logins: list[tuple[str, str]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            logins.append((user, password))
            return AuthResult(success=password == "s3cret")
        return AuthResult(success=False)

    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield port, inbox, logins
    finally:
        controller.stop()


def _smtp_section(port: int) -> str:
    return f"""
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
username = "collections"
password_env = "TEST_SMTP_PASSWORD"
from = "Acme Collections <collections@acme.example>"
reply_to = "billing@acme.example"
"""


def test_cadence_delivers_email_to_a_real_smtp_server(
    db: Database,
    smtp_server: tuple[int, _Inbox, list[tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    port, inbox, logins = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    cfg = config(_smtp_section(port), tmp_path)
    debtor_id, _ = add_debtor(db, due_dates=[DUE], name="Jane Doe")
    report = run_cadence(db, now=at(DUE - timedelta(days=5)), config=cfg)
    assert [m.outcome for m in report.messages] == ["sent"]
    assert logins == [("collections", "s3cret")]
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == ["jane@example.com"]
    assert message["From"] == "Acme Collections <collections@acme.example>"
    assert message["Reply-To"] == "billing@acme.example"
    assert message["Subject"].startswith("Friendly reminder: invoice INV-")
    body = message.get_content()
    for text in ("Dear Jane Doe", "USD 120.50", "Acme Supplies Ltd", "EIN 12-3456789",
                 "1 Main Street, Springfield, IL 62701, USA"):  # fmt: skip
        assert text in body
    for word in ("lawsuit", "legal action", "arrest"):
        assert word not in body.lower()
    # The same run again, and the next days: never a second email for the step.
    for day in range(-5, -1):
        run_cadence(db, now=at(DUE + timedelta(days=day)), config=cfg)
    assert len(inbox.messages) == 1
    with db.session() as s:
        contact = s.scalar(select(Contact).where(Contact.debtor_id == debtor_id))
        assert contact is not None
        assert (contact.channel, contact.direction, contact.address) == (
            "email",
            "outbound",
            "jane@example.com",
        )
        assert s.scalar(select(Task.note).where(Task.debtor_id == debtor_id)).find("sent <") > 0  # type: ignore[union-attr]
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.debtor_id == debtor_id)) == (
            "cadence.message_sent"
        )


def test_a_refused_message_fails_and_leaves_the_task_open(
    db: Database,
    smtp_server: tuple[int, _Inbox, list[tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    port, inbox, _ = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    inbox.reject = True
    cfg = config(_smtp_section(port), tmp_path)
    debtor_id, _ = add_debtor(db, due_dates=[DUE])
    report = run_cadence(db, now=at(DUE - timedelta(days=5)), config=cfg)
    assert [m.outcome for m in report.messages] == ["failed"]
    assert "SMTP 127.0.0.1" in report.messages[0].reason
    assert inbox.messages == []
    with db.session() as s:
        assert s.scalar(select(Task.status).where(Task.debtor_id == debtor_id)) == "open"
        assert s.scalar(select(Contact.id).where(Contact.debtor_id == debtor_id)) is None
    inbox.reject = False
    run_cadence(db, now=at(DUE - timedelta(days=4)), config=cfg)
    assert len(inbox.messages) == 1


def test_no_smtp_server_configured_is_a_clear_failure(db: Database, tmp_path: Path) -> None:
    cfg = config("", tmp_path)
    add_debtor(db, due_dates=[DUE])
    report = run_cadence(db, now=at(DUE - timedelta(days=5)), config=cfg)
    assert [(m.outcome, m.reason) for m in report.messages] == [
        ("failed", "no SMTP server configured ([smtp] in the rules file)")
    ]


def test_sms_goes_to_the_file_sink(db: Database, tmp_path: Path) -> None:
    cfg = config("", tmp_path)
    add_debtor(db, due_dates=[DUE])
    run_cadence(db, now=at(DUE), config=cfg)
    lines = (tmp_path / "sms.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["to"] == "+1 617 555 0100"
    assert record["step"] == "d0-sms"
    assert "Acme Supplies Ltd" in record["body"] and "EIN 12-3456789" in record["body"]
    assert "due today" in record["body"]


def _message() -> Message:
    return Message("sms", "+15550100", "", "hello", 1, 2, "d0-sms", 7)


def test_http_sms_provider_posts_json_with_a_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "msg-42"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    provider = HttpSmsProvider(
        "https://sms.example/v1/messages", token="tok", sender="ACME", client=client
    )
    assert provider.send(_message()) == "msg-42"
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert json.loads(seen[0].content) == {
        "from": "ACME",
        "to": "+15550100",
        "text": "hello",
        "reference": "task-7",
    }


def test_http_sms_provider_error_is_a_delivery_error() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500, text="x")))
    provider = HttpSmsProvider("https://sms.example/v1", token=None, client=client)
    with pytest.raises(DeliveryError, match="answered 500"):
        provider.send(_message())


def test_file_sink_error_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeliveryError, match="file sink"):
        FileSmsSink(blocker / "sms.jsonl").send(_message())


def test_smtp_connection_refused_is_a_delivery_error() -> None:
    settings = SmtpConfig.model_validate(
        {"host": "127.0.0.1", "port": _free_port(), "security": "none", "from": "a@b.example"}
    )
    with pytest.raises(DeliveryError, match="SMTP 127.0.0.1"):
        SmtpEmailSender(settings).send(Message("email", "x@y.example", "s", "b", 1, 2, "k", 3))


# --- templates -------------------------------------------------------------------------------


class _Row:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _render(tmp_path: Path, template: str, extra: str = "") -> Message:
    (tmp_path / "custom.txt").write_text(template)
    cfg = config(f'\n[delivery]\ntemplates_dir = "{tmp_path}"\n' + extra)
    from datetime import date
    from decimal import Decimal

    debtor = _Row(id=1, name="Jane", contact_person=None)
    invoice = _Row(
        id=2,
        number="INV-1",
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 2, 1),
        amount_due=Decimal("10"),
        total=Decimal("10"),
        currency="USD",
    )
    step = CadenceStep(key="x", offset_days=0, action="sms", template="custom")
    return TemplateRenderer(cfg).render(
        step, channel="sms", to="+1", debtor=debtor, invoice=invoice,  # type: ignore[arg-type]
        creditor=cfg.creditor, now=at(DUE), task_id=1,
    )  # fmt: skip


def test_template_without_the_creditor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="does not name the creditor's address, tax id"):
        _render(tmp_path, "{{ creditor.name }}: invoice {{ invoice.number }} is due.")


def test_templates_run_in_a_sandbox(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="custom.txt"):
        _render(tmp_path, "{{ invoice.__class__.__mro__[1].__subclasses__() }}")


def test_unknown_names_in_a_template_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="undefined"):
        _render(tmp_path, "{{ creditor.name }} {{ no_such_thing }}")


def test_a_custom_template_overrides_the_packaged_one(tmp_path: Path) -> None:
    message = _render(
        tmp_path,
        "{{ creditor.name }}, {{ creditor.address }}, {{ creditor.tax_id }}: "
        "{{ invoice.amount_due }} due {{ invoice.due_date }}.",
    )
    assert message.body.startswith("Acme Supplies Ltd, 1 Main Street")
    assert "USD 10.00 due 2026-02-01." in message.body


def test_packaged_templates_exist_and_name_the_creditor() -> None:
    from collect_tui.services.delivery import PACKAGE_TEMPLATES

    names = sorted(p.name for p in PACKAGE_TEMPLATES.glob("*.txt"))
    assert names == ["due_today_sms.txt", "overdue_letter.txt", "reminder_email.txt"]
    for path in PACKAGE_TEMPLATES.glob("*.txt"):
        text = path.read_text()
        for field in ("creditor.name", "creditor.address", "creditor.tax_id"):
            assert field in text, (path.name, field)


def test_recorder_is_usable_as_both_senders() -> None:
    recorder = Recorder()
    assert recorder.send(_message()) == "rec-1"


def test_a_missing_template_fails_the_message_not_the_run(db: Database, tmp_path: Path) -> None:
    cfg = config(
        "\n[cadence.standard]\n"
        'steps = [{ key = "e", offset_days = 0, action = "email", template = "nope" }]\n',
        tmp_path,
    )
    debtor_id, _ = add_debtor(db, due_dates=[DUE])
    mail = Recorder()
    report = run_cadence(db, now=at(DUE), config=cfg, email_sender=mail)
    assert [m.outcome for m in report.messages] == ["failed"]
    assert "nope.txt" in report.messages[0].reason
    assert mail.sent == []
    with db.session() as s:
        assert s.scalar(select(Task.status).where(Task.debtor_id == debtor_id)) == "open"
