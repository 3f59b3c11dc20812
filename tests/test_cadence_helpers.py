"""Small builders shared by the cadence and delivery tests (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from collect_tui.services.compliance_config import ComplianceConfig, parse_config
from collect_tui.services.database import Database
from collect_tui.services.delivery import Message
from collect_tui.storage.models import Debtor, Email, Invoice, Phone

CREDITOR = """
[creditor]
name = "Acme Supplies Ltd"
address = "1 Main Street, Springfield, IL 62701, USA"
tax_id = "EIN 12-3456789"
phone = "+1 555 0100"
email = "billing@acme.example"
"""

# 15:00 UTC is 10:00 in New York: inside the default 08:00-21:00 window.
DAYTIME = time(15, 0)
NIGHT = time(5, 0)  # 00:00 in New York


def at(day: date, clock: time = DAYTIME) -> datetime:
    """An aware UTC instant on ``day``."""
    return datetime.combine(day, clock, UTC)


def config(extra: str = "", tmp: Path | None = None) -> ComplianceConfig:
    """A configuration with the test creditor (and a file SMS sink under ``tmp``)."""
    text = CREDITOR + extra
    if tmp is not None and "[sms]" not in extra:
        text += f'\n[sms]\nprovider = "file"\npath = "{tmp / "sms.jsonl"}"\n'
    return parse_config(text, "test-rules.toml", today=date(2026, 1, 1))


@dataclass
class Recorder:
    """An email sender / SMS provider that keeps what it was given."""

    sent: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> str:
        self.sent.append(message)
        return f"rec-{len(self.sent)}"


def add_debtor(
    db: Database,
    *,
    due_dates: list[date],
    name: str = "Jane Doe",
    zone: str = "America/New_York",
    email: str | None = "jane@example.com",
    phone: str | None = "+1 617 555 0100",
    sms_consent: bool = True,
    segment: str = "consumer",
    amount: str = "120.50",
    **flags: object,
) -> tuple[int, list[int]]:
    """A debtor with one open invoice per due date; returns (debtor id, invoice ids)."""
    with db.session() as s:
        debtor = Debtor(
            name=name,
            country="US",
            region="NY",
            time_zone=zone,
            segment=segment,
            currency="USD",
            **flags,
        )
        s.add(debtor)
        s.flush()
        if email:
            s.add(Email(debtor_id=debtor.id, address=email))
        if phone:
            s.add(Phone(debtor_id=debtor.id, number=phone, kind="mobile", sms_consent=sms_consent))
        ids = []
        for index, due in enumerate(due_dates):
            invoice = Invoice(
                debtor_id=debtor.id,
                number=f"INV-{debtor.id}-{index + 1}",
                issue_date=due - timedelta(days=30),
                due_date=due,
                currency="USD",
                total=Decimal(amount),
                amount_due=Decimal(amount),
            )
            s.add(invoice)
            s.flush()
            ids.append(invoice.id)
        return debtor.id, ids
