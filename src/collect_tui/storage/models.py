"""SQLAlchemy 2.0 typed ORM models for the whole collections domain.

Money is ``Numeric(18, 2)`` (``Decimal`` in Python); every timestamp is stored in UTC
through :class:`UTCDateTime`. Rows that people edit carry a ``version`` column that
SQLAlchemy checks on update, so no change is silently overwritten.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MONEY = Numeric(18, 2)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always returned timezone-aware (UTC).

    SQLite has no time zone type, so storing naive UTC everywhere keeps both engines
    identical; a naive value handed in is refused rather than guessed.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite text storage read through raw SQL paths
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Agent(Base):
    """A person who signs in: an agent, a supervisor or an admin."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="agent")  # agent|supervisor|admin
    team: Mapped[str | None] = mapped_column(String(64))
    settlement_limit: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    capacity: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


# A debtor with a due callback (the callbacks index holds only those).
HAS_CALLBACK = "next_action_at IS NOT NULL"

# A debtor with a promise fact: due (today or later), broken lately, or an installment
# missed. The same text is the partial index's condition and a term of the queue's
# "promise due" filter, so that SQLite sees the index serves the filter.
PROMISE_FACTS = "promise_due_on IS NOT NULL OR broken_promise_on IS NOT NULL OR installment_missed"


class Debtor(Base):
    """A customer who owes money, with the queue's cached aggregates and score.

    ``open_balance``, ``oldest_due_date``, ``last_contact_at`` and the priority columns
    are caches refreshed on every event that touches the account and by the daily
    set-based pass; days past due and the aging bucket are derived from
    ``oldest_due_date`` at read time, never stored.
    """

    __tablename__ = "debtors"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_company: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_person: Mapped[str | None] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2), default="US")
    region: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(8), default="en")
    preferred_channel: Mapped[str] = mapped_column(String(16), default="call")
    segment: Mapped[str] = mapped_column(String(32), default="standard")
    currency: Mapped[str] = mapped_column(String(3), default="USD")

    cease_communication: Mapped[bool] = mapped_column(Boolean, default=False)
    dispute: Mapped[bool] = mapped_column(Boolean, default=False)
    bankruptcy: Mapped[bool] = mapped_column(Boolean, default=False)
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)
    time_barred: Mapped[bool] = mapped_column(Boolean, default=False)
    validation_notice_on: Mapped[date | None] = mapped_column(Date)

    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))

    open_balance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    open_invoices: Mapped[int] = mapped_column(Integer, default=0)
    oldest_due_date: Mapped[date | None] = mapped_column(Date)
    last_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action: Mapped[str | None] = mapped_column(String(64))
    # Facts the priority score is computed from, kept current by events and the daily pass.
    promise_due_on: Mapped[date | None] = mapped_column(Date)
    broken_promise_on: Mapped[date | None] = mapped_column(Date)
    installment_missed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cadence_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_block_reason: Mapped[str | None] = mapped_column(String(200))
    priority_score: Mapped[float] = mapped_column(Float, default=0.0)
    priority_reason: Mapped[str | None] = mapped_column(String(200))
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_debtors_name", "name"),
        # Partial: only due-callback queries use it, and rows without a callback then
        # cost no entry when the daily rescore rewrites them (migration 0007).
        Index(
            "ix_debtors_callbacks",
            "assigned_agent_id",
            "next_action_at",
            sqlite_where=text(HAS_CALLBACK),
        ),
        Index("ix_debtors_jurisdiction", "country", "region", "time_zone"),
    )


# The queue in its own order, best score first and then by id (migration 0011): a queue
# page and the claim's candidates read it in order and stop at the first accounts they
# need. (Ordered by the score alone, PostgreSQL sorted by id in groups of at least 32
# rows: a claim read 33 accounts to take one.)
Index("ix_debtors_queue", Debtor.assigned_agent_id, Debtor.priority_score.desc(), Debtor.id)
# Indexes for the queue's filters that few accounts match (migration 0010): such a filter
# takes its accounts from one of these and sorts them, instead of walking the whole queue.
Index("ix_debtors_due_date", Debtor.assigned_agent_id, Debtor.oldest_due_date)
Index("ix_debtors_promises", Debtor.assigned_agent_id, sqlite_where=text(PROMISE_FACTS))

# The partial indexes' conditions. Here they are declared for SQLite only: naming a
# ``postgresql_`` option at import loads SQLAlchemy's whole PostgreSQL dialect (0.1 s of
# every start, SQLite ones included). A PostgreSQL engine attaches them when it is made
# (:func:`declare_postgresql_conditions`); the migrations create them on both.
PARTIAL_INDEXES = {"ix_debtors_callbacks": HAS_CALLBACK, "ix_debtors_promises": PROMISE_FACTS}


def declare_postgresql_conditions() -> None:
    """Give the partial indexes their condition on PostgreSQL as well (``Index.create``)."""
    for index in Debtor.__table__.indexes:
        condition = PARTIAL_INDEXES.get(str(index.name))
        if condition is not None:
            index.dialect_options["postgresql"]["where"] = text(condition)


class Phone(Base):
    """A phone number of a debtor, with its own do-not-call mark."""

    __tablename__ = "phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="mobile")  # mobile|home|work
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)


class Email(Base):
    """An email address of a debtor, with its own do-not-contact mark."""

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), index=True)
    do_not_email: Mapped[bool] = mapped_column(Boolean, default=False)


class Invoice(Base):
    """An invoice pulled from the accounting system."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(64), index=True)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(MONEY)
    amount_due: Mapped[Decimal] = mapped_column(MONEY)
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|paid|voided|deleted
    expected_payment_date: Mapped[date | None] = mapped_column(Date)
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_invoices_debtor_status", "debtor_id", "status", "due_date", "amount_due"),
        # The cadence reads the open invoices due in a step's window.
        Index("ix_invoices_status_due", "status", "due_date"),
    )


class Payment(Base):
    """A payment received, as the accounting system reports it."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|deleted


class Contact(Base):
    """One contact attempt or conversation with a debtor."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    channel: Mapped[str] = mapped_column(String(16))  # call|email|sms|letter|visit
    direction: Mapped[str] = mapped_column(String(8), default="outbound")  # outbound|inbound
    address: Mapped[str | None] = mapped_column(String(254))  # number or address used
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disposition: Mapped[str] = mapped_column(String(32))
    conversation: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_contacts_debtor_started", "debtor_id", "started_at"),
        Index("ix_contacts_started", "started_at"),
    )


class PaymentPlan(Base):
    """A payment plan; its installments are :class:`Promise` rows pointing at it."""

    __tablename__ = "payment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    total: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    frequency: Mapped[str] = mapped_column(String(16))  # weekly|biweekly|monthly
    first_date: Mapped[date] = mapped_column(Date)
    installment_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(16), default="active"
    )  # active|completed|broken|cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Promise(Base):
    """A promise to pay, or one installment of a payment plan (``plan_id`` set)."""

    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("payment_plans.id"), index=True)
    installment_no: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    # pending|kept|partially_kept|broken|cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_promises_debtor", "debtor_id", "due_date"),
        Index("ix_promises_status_due", "status", "due_date"),
    )


class Settlement(Base):
    """A discounted payoff; above the agent's authority it awaits a supervisor."""

    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    balance_at_offer: Mapped[Decimal] = mapped_column(MONEY)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    # awaiting_approval|approved|rejected|paid|cancelled
    status: Mapped[str] = mapped_column(String(24), default="approved", index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Dispute(Base):
    """A dispute on an account or one invoice; open disputes pause collection."""

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|verified|resolved
    received_on: Mapped[date] = mapped_column(Date)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class CollectionHold(Base):
    """A supervisor's hold on an account or one invoice, with reason and end date."""

    __tablename__ = "collection_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[date | None] = mapped_column(Date)
    placed_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Task(Base):
    """A next action: a callback at a time, or a due step of the collection rule."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    kind: Mapped[str] = mapped_column(String(16))  # callback|cadence|review
    step_key: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|done|cancelled
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_tasks_debtor_status", "debtor_id", "status", "due_at"),
        Index("ix_tasks_status_due", "status", "due_at"),
        Index("ix_tasks_invoice", "invoice_id"),  # the cadence closes steps of paid invoices
        # A cadence step is turned into a task once per debtor and invoice.
        UniqueConstraint("debtor_id", "invoice_id", "step_key", name="uq_tasks_step"),
    )


class Assignment(Base):
    """Assignment history: every move of an account between agents or the pool."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    from_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    to_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    by_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Claim(Base):
    """An account being worked right now by one app session (``n`` takes it).

    Other sessions' ``n`` skips an account while its claim is live; the claim expires at
    ``expires_at`` unless the session renews it, so an idle agent does not keep it.
    """

    __tablename__ = "claims"

    debtor_id: Mapped[int] = mapped_column(
        ForeignKey("debtors.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who changed what, when, with the values before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    debtor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SyncCursor(Base):
    """The bookmark of one stream of one source, advanced only after its page commits."""

    __tablename__ = "sync_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str] = mapped_column(String(64), default="")
    stream: Mapped[str] = mapped_column(String(32))
    cursor: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "tenant", "stream", name="uq_sync_cursors_stream"),
    )


class SyncRun(Base):
    """One sync run and its counts."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """An outcome to push to the accounting system, written with the change itself."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # history_note|expected_payment_date|dispute
    debtor_id: Mapped[int | None] = mapped_column(ForeignKey("debtors.id", ondelete="SET NULL"))
    invoice_external_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class QuarantinedRecord(Base):
    """A malformed record from the source, kept with its reason instead of crashing a sync."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    stream: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)


class Setting(Base):
    """Small key/value facts about the database (e.g. the day of the last rescore)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
