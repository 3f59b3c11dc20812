"""Delivering cadence messages: templates, email over SMTP, SMS through a provider.

Templates are plain text files the admin can review: ``<name>.txt`` in the configured
``delivery.templates_dir`` (first) or the package's ``templates/`` folder. An email
template starts with a ``Subject: ...`` line and a blank line. They are rendered with
Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` (a template cannot reach Python
internals) and undefined names are errors. Every rendered message must name the
creditor with its address and tax id (consumer codes such as Brazil's CDC art. 42-A
require it): one that does not is refused, not sent.

Senders: :class:`SmtpEmailSender` (``smtplib``; STARTTLS, implicit TLS or plain; login
when a user name is configured, password from the environment) and the SMS providers
:class:`FileSmsSink` (default: appends JSON lines to a file) and :class:`HttpSmsProvider`
(an example: POSTs JSON with a bearer token). Failures raise :class:`DeliveryError`.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from collect_tui.domain.money import format_money
from collect_tui.logsafe import redact_secrets

if TYPE_CHECKING:
    from collect_tui.domain.cadence import CadenceStep
    from collect_tui.services.compliance_config import ComplianceConfig, SmsConfig, SmtpConfig
    from collect_tui.storage.models import Debtor, Invoice

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class DeliveryError(Exception):
    """A message could not be rendered or handed to its channel."""


@dataclass(frozen=True)
class Message:
    """One rendered message for one step."""

    channel: str  # email|sms
    to: str
    subject: str
    body: str
    debtor_id: int
    invoice_id: int | None
    step_key: str
    task_id: int


class EmailSender(Protocol):
    """Hands an email to a server; returns a reference (the Message-ID)."""

    def send(self, message: Message) -> str:
        """Send ``message``; raise :class:`DeliveryError` on failure."""
        ...


class SmsProvider(Protocol):
    """Hands a text message to a provider; returns the provider's reference."""

    def send(self, message: Message) -> str:
        """Send ``message``; raise :class:`DeliveryError` on failure."""
        ...


# --- templates ------------------------------------------------------------------------------


class TemplateRenderer:
    """Renders step templates in a sandbox, with the creditor, debtor, invoice and step."""

    def __init__(self, config: ComplianceConfig) -> None:
        self.config = config
        folders = []
        if config.delivery.templates_dir is not None:
            folders.append(str(config.delivery.templates_dir.expanduser()))
        folders.append(str(PACKAGE_TEMPLATES))
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(folders),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def source_of(self, name: str) -> str:
        """The file a template name resolves to (for messages and the README)."""
        try:
            _, filename, _ = self.env.loader.get_source(self.env, f"{name}.txt")  # type: ignore[union-attr]
        except TemplateNotFound:
            raise DeliveryError(f"no template file {name}.txt") from None
        return filename or name

    def render_text(self, name: str, context: dict[str, Any]) -> str:
        """Render ``<name>.txt`` with ``context``."""
        try:
            return self.env.get_template(f"{name}.txt").render(**context).strip() + "\n"
        except TemplateNotFound:
            raise DeliveryError(
                f"no template file {name}.txt in {self.env.loader.searchpath}"  # type: ignore[union-attr]
            ) from None
        except TemplateError as exc:
            raise DeliveryError(f"template {name}.txt: {exc}") from None

    def render(
        self,
        step: CadenceStep,
        *,
        channel: str,
        to: str,
        debtor: Debtor,
        invoice: Invoice,
        creditor: Any,
        now: datetime,
        task_id: int,
    ) -> Message:
        """The message of ``step`` about ``invoice``; refuses one that omits the creditor."""
        if not step.template:
            raise DeliveryError(f"step {step.key} has no template")
        context = {
            "creditor": creditor,
            "debtor": {
                "name": debtor.name,
                "contact_person": debtor.contact_person,
                "greeting_name": debtor.contact_person or debtor.name,
            },
            "invoice": {
                "number": invoice.number,
                "issue_date": invoice.issue_date.isoformat(),
                "due_date": invoice.due_date.isoformat(),
                "amount_due": format_money(invoice.amount_due, invoice.currency),
                "total": format_money(invoice.total, invoice.currency),
                "currency": invoice.currency,
            },
            "step": {"key": step.key, "label": step.label, "offset_days": step.offset_days},
            "today": now.astimezone(UTC).date().isoformat(),
        }
        text = self.render_text(step.template, context)
        subject = ""
        body = text
        if channel == "email":
            first, _, rest = text.partition("\n")
            if not first.lower().startswith("subject:"):
                raise DeliveryError(
                    f"template {step.template}.txt: an email template starts with 'Subject: ...'"
                )
            subject = first.split(":", 1)[1].strip()
            body = rest.lstrip("\n")
        missing = [
            label
            for label, value in (
                ("name", creditor.name),
                ("address", creditor.address),
                ("tax id", creditor.tax_id),
            )
            if value and value not in text
        ]
        if missing:
            raise DeliveryError(
                f"template {step.template}.txt does not name the creditor's "
                f"{', '.join(missing)} (required in every message)"
            )
        return Message(
            channel=channel,
            to=to,
            subject=subject,
            body=body,
            debtor_id=debtor.id,
            invoice_id=invoice.id,
            step_key=step.key,
            task_id=task_id,
        )


# --- email ------------------------------------------------------------------------------------


class SmtpEmailSender:
    """Sends through an SMTP server (one connection per message: runs are small)."""

    def __init__(self, settings: SmtpConfig) -> None:
        self.settings = settings

    def build(self, message: Message) -> EmailMessage:
        """The MIME message."""
        s = self.settings
        email = EmailMessage()
        email["From"] = s.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(datetime.now(UTC))
        domain = s.sender.rsplit("@", 1)[-1].strip("> ") or None
        email["Message-ID"] = make_msgid(idstring=f"task{message.task_id}", domain=domain)
        if s.reply_to:
            email["Reply-To"] = s.reply_to
        email.set_content(message.body)
        return email

    def send(self, message: Message) -> str:
        """Send one email; returns its Message-ID."""
        s = self.settings
        email = self.build(message)
        try:
            if s.security == "tls":
                server: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                server = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            with server:
                if s.security == "starttls":
                    server.starttls(context=ssl.create_default_context())
                if s.username:
                    server.login(s.username, s.password or "")
                server.send_message(email)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                redact_secrets(f"SMTP {s.host}:{s.port}: {exc}", [s.password])
            ) from exc
        return str(email["Message-ID"])


class NoEmailServer:
    """Used when no ``[smtp]`` is configured: every email fails with a clear reason."""

    def send(self, message: Message) -> str:
        """Always fails."""
        raise DeliveryError("no SMTP server configured ([smtp] in the rules file)")


# --- SMS --------------------------------------------------------------------------------------


class FileSmsSink:
    """Appends each text message as a JSON line to a file (the default provider)."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: Message) -> str:
        """Append the message; returns ``file:<path>#<task id>``."""
        record = {
            "at": datetime.now(UTC).isoformat(),
            "to": message.to,
            "body": message.body,
            "debtor_id": message.debtor_id,
            "step": message.step_key,
            "task_id": message.task_id,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as sink:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise DeliveryError(f"SMS file sink {self.path}: {exc}") from exc
        return f"file:{self.path}#{message.task_id}"


class HttpSmsProvider:
    """An example HTTP provider: ``POST url`` with ``{"from", "to", "text", "reference"}``,
    a bearer token from the environment; the response's ``id`` is the reference.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        sender: str = "",
        timeout: float = 15.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.sender = sender
        self.client = client or httpx.Client(timeout=timeout)

    def send(self, message: Message) -> str:
        """POST the message; returns the provider's id."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        payload = {
            "from": self.sender,
            "to": message.to,
            "text": message.body,
            "reference": f"task-{message.task_id}",
        }
        try:
            response = self.client.post(self.url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                redact_secrets(f"SMS provider {self.url}: {exc}", [self.token])
            ) from exc
        if response.status_code >= 300:
            raise DeliveryError(
                redact_secrets(
                    f"SMS provider {self.url} answered {response.status_code}: "
                    f"{response.text[:200]}",
                    [self.token],
                )
            )
        try:
            data = response.json()
        except ValueError:
            data = {}
        return str(data.get("id") or f"http:{response.status_code}")


def email_sender_for(config: ComplianceConfig) -> EmailSender:
    """The configured SMTP sender (or one that explains none is configured)."""
    return SmtpEmailSender(config.smtp) if config.smtp is not None else NoEmailServer()


def sms_provider_for(config: ComplianceConfig) -> SmsProvider:
    """The configured SMS provider."""
    sms: SmsConfig = config.sms
    if sms.provider == "http":
        import os

        if not sms.url:
            raise DeliveryError("[sms] provider = 'http' needs a url")
        return HttpSmsProvider(
            sms.url,
            token=os.environ.get(sms.token_env),
            sender=sms.sender,
            timeout=sms.timeout_seconds,
        )
    return FileSmsSink(sms.sink_path())
