"""The debtor workspace: one account as the agent sees it, and what the agent logs on it.

Reads (:func:`load_account`, :func:`load_timeline`, :func:`preview_plan`) return frozen
dataclasses. Every write is ONE transaction through :meth:`Database.session`: permission
check, version check of the debtor row, the change, its audit rows, its outbox rows and
the incremental rescore of the account. Any error leaves nothing half-written.

Concurrency: each write takes the ``expected_version`` of the debtor row the agent opened
and bumps it (``UPDATE ... WHERE version = expected``, as SQLAlchemy's ``version_id_col``
does), so of two people saving on the same version the second gets :class:`StaleEdit`
instead of silently overwriting.

The hot path (:func:`log_contact`, run by every agent many times an hour) writes its rows
in Core with statements built once, and reads what it needs in few round trips; the rarer
parts (promises, callbacks, flags) use the ORM as the other writes do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, Literal, NamedTuple, TypeVar, get_args
from uuid import uuid4

from sqlalchemy import (
    Boolean,
    CompoundSelect,
    Date,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from collect_tui import clock
from collect_tui.domain.aging import BUCKETS, aging_bucket, days_past_due
from collect_tui.domain.dispositions import (
    DEFAULT,
    DispositionSet,
    check_channel,
    is_conversation,
)
from collect_tui.domain.money import format_money, to_money
from collect_tui.domain.plans import (
    Frequency,
    Installment,
    describe_plan,
    generate_installments,
)
from collect_tui.domain.priority import PriorityWeights
from collect_tui.domain.promises import (
    DEFAULT_GRACE_DAYS,
    FieldError,
    evaluate_installments,
    evaluate_promise,
    validate_promise,
)
from collect_tui.domain.zones import zone_or_utc
from collect_tui.services import audit
from collect_tui.services.agents import AgentInfo, SignInRevoked, is_supervisor_now
from collect_tui.services.database import Database
from collect_tui.storage.driver import read_on_driver, run_on_driver
from collect_tui.storage.models import (
    MONEY,
    Agent,
    Assignment,
    AuditEntry,
    Contact,
    Debtor,
    Dispute,
    Email,
    Invoice,
    OutboxMessage,
    Payment,
    PaymentPlan,
    Phone,
    Promise,
    Setting,
    Settlement,
    Task,
    utcnow,
)
from collect_tui.storage.scoring import WEIGHTS_SETTING, rescore, weights_from_text
from collect_tui.storage.sync_store import account_synced_at, last_complete_pull

T = TypeVar("T")

TimelineKind = Literal[
    "contact",
    "promise",
    "plan",
    "installment",
    "settlement",
    "dispute",
    "reassignment",
    "payment",
    "sync",
    "callback",
]
TIMELINE_KINDS: tuple[str, ...] = get_args(TimelineKind)

NOTE_LIMIT = 250  # characters of an outbox history note / dispute details
RECENT_PAYMENTS = 20
PLAN_START_HORIZON_DAYS = 30
SETTLEMENT_HORIZON_DAYS = 30
# A logged contact completes the open callbacks due up to this long after it.
CALLBACK_EARLY = timedelta(minutes=30)
OPEN_DISPUTE = ("open", "verified")
LIVE_SETTLEMENT = ("awaiting_approval", "approved")
SYSTEM = audit.SYSTEM_ACTOR
_ID_CHUNK = 500


# --- errors and inputs -------------------------------------------------------------------


class AccessDenied(Exception):
    """The agent may not see or change this account."""


class AccountNotFound(LookupError):
    """No debtor with that id."""


class StaleEdit(Exception):
    """The account changed since the agent opened it; the change was not saved."""

    def __init__(
        self,
        debtor_id: int,
        *,
        changed_by: str | None = None,
        changed_at: datetime | None = None,
        current_version: int | None = None,
    ) -> None:
        self.debtor_id = debtor_id
        self.changed_by = changed_by
        self.changed_at = changed_at
        self.current_version = current_version
        who = changed_by or "someone else"
        when = f" at {changed_at.astimezone().strftime('%H:%M')}" if changed_at else ""
        super().__init__(
            f"This account changed since you opened it (by {who}{when}); reload to see the change."
        )


class ValidationFailed(ValueError):
    """The input was refused; ``errors`` says what is wrong with which field."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(error.message for error in self.errors))


@dataclass(frozen=True)
class Callback:
    """A callback at a date and time on the DEBTOR's clock."""

    local_date: date
    local_time: time
    note: str | None = None


@dataclass(frozen=True)
class PromiseInput:
    """A promise to pay taken during a contact."""

    amount: Decimal
    due_date: date
    invoice_id: int | None = None


# --- views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneView:
    """A phone number and whether it may be called."""

    id: int
    number: str
    kind: str
    do_not_call: bool
    sms_consent: bool


@dataclass(frozen=True)
class EmailView:
    """An email address and whether it may be written to."""

    id: int
    address: str
    do_not_email: bool


@dataclass(frozen=True)
class DebtorView:
    """Who the debtor is and how to reach them."""

    id: int
    external_id: str | None
    name: str
    is_company: bool
    contact_person: str | None
    time_zone: str
    local_time: datetime
    phones: tuple[PhoneView, ...]
    emails: tuple[EmailView, ...]
    preferred_channel: str
    flags: tuple[str, ...]
    address: str | None
    country: str
    region: str | None
    language: str
    currency: str
    segment: str
    assigned_agent_id: int | None
    assigned_agent: str | None
    next_action: str | None
    next_action_at: datetime | None
    priority_score: float
    priority_reason: str | None


@dataclass(frozen=True)
class InvoiceView:
    """One open invoice, aged on the day it was loaded."""

    id: int
    external_id: str | None
    number: str
    issue_date: date
    due_date: date
    days_past_due: int
    bucket: str
    total: Decimal
    amount_due: Decimal
    currency: str
    expected_payment_date: date | None
    disputed: bool


@dataclass(frozen=True)
class PaymentView:
    """A payment received."""

    id: int
    paid_on: date
    amount: Decimal
    currency: str
    invoice_number: str | None
    applied: bool
    received_at: datetime


@dataclass(frozen=True)
class PromiseView:
    """A pending promise or installment."""

    id: int
    amount: Decimal
    currency: str
    due_date: date
    status: str
    amount_paid: Decimal
    plan_id: int | None
    installment_no: int | None


@dataclass(frozen=True)
class PlanView:
    """The active payment plan and its installments."""

    id: int
    total: Decimal
    currency: str
    frequency: str
    first_date: date
    status: str
    installments: tuple[PromiseView, ...]


@dataclass(frozen=True)
class SettlementView:
    """A live settlement offer (awaiting approval or approved)."""

    id: int
    amount: Decimal
    balance_at_offer: Decimal
    currency: str
    due_date: date
    status: str


@dataclass(frozen=True)
class DisputeView:
    """An open dispute."""

    id: int
    invoice_id: int | None
    invoice_number: str | None
    reason: str
    status: str
    received_on: date


@dataclass(frozen=True)
class CallbackView:
    """An open callback, in UTC and on the debtor's clock."""

    id: int
    due_at: datetime
    local_due_at: datetime
    note: str | None


@dataclass(frozen=True)
class Freshness:
    """How current the account's data from the accounting system is."""

    debtor_synced_at: datetime | None
    invoices_synced_at: datetime | None
    unapplied_payments: int
    unapplied_amount: Decimal


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the account's history."""

    at: datetime
    kind: TimelineKind
    title: str
    detail: str
    ref: str = ""


@dataclass(frozen=True)
class AccountView:
    """Everything the workspace shows about one account."""

    debtor: DebtorView
    version: int
    balance: Decimal
    invoices: tuple[InvoiceView, ...]
    totals_by_bucket: dict[str, Decimal]
    payments: tuple[PaymentView, ...]
    promises: tuple[PromiseView, ...]
    plan: PlanView | None
    settlements: tuple[SettlementView, ...]
    disputes: tuple[DisputeView, ...]
    callbacks: tuple[CallbackView, ...]
    freshness: Freshness
    timeline: tuple[TimelineEntry, ...]
    loaded_at: datetime


# --- small helpers -----------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return clock.now()
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now; attach a time zone")
    return now


def _local_today(debtor: Debtor, now: datetime) -> date:
    """Today on the debtor's calendar (promise and plan dates are theirs)."""
    return now.astimezone(zone_or_utc(debtor.time_zone)).date()


def _clip(text: str, limit: int = NOTE_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _money(amount: Decimal, currency: str) -> str:
    return format_money(amount, currency)


# The debtor and the agent's role now, in one read (the agent matched by id and name).
_ACCESS = (
    select(Debtor, Agent.role, Agent.active)
    .outerjoin(
        Agent,
        and_(
            Agent.id == bindparam("agent_id", type_=Agent.id.type),
            Agent.name == bindparam("agent_name", type_=Agent.name.type),
        ),
    )
    .where(Debtor.id == bindparam("debtor_id", type_=Debtor.id.type))
)


def check_access(session: Session, agent: AgentInfo, debtor_id: int) -> Debtor:
    """The debtor, if ``agent`` may work it: their own accounts; supervisors and admins all.

    Raises :class:`AccountNotFound` or :class:`AccessDenied`.
    """
    found = session.execute(
        _ACCESS, {"agent_id": agent.id, "agent_name": agent.name, "debtor_id": debtor_id}
    ).first()
    debtor: Debtor = _access_verdict(session, agent, debtor_id, found, found and found[0])
    return debtor


# The same read with the debtor's columns as a plain row: what the save on PostgreSQL
# checks and reads before it writes, without loading an ORM object.
_ACCESS_ROW = _ACCESS.with_only_columns(
    *Debtor.__table__.c, Agent.__table__.c.role, Agent.__table__.c.active
)


def _access_verdict(
    session: Session, agent: AgentInfo, debtor_id: int, found: Any, debtor: Any
) -> Any:
    """``debtor`` if the access row ``found`` (the account with the caller's ``role`` and
    ``active``, or None) lets ``agent`` work it; else :class:`AccountNotFound` or
    :class:`AccessDenied`."""
    if found is None or not found.active:  # the sign-in check comes first, as it did
        try:
            is_supervisor_now(session, agent)  # the role now, not at sign-in
        except SignInRevoked as exc:
            raise AccessDenied(str(exc)) from None
        if found is None:
            raise AccountNotFound(f"there is no account {debtor_id}")
    supervisor = found.role in ("supervisor", "admin")
    if not supervisor and debtor.assigned_agent_id != agent.id:
        raise AccessDenied(
            f"account {debtor_id} is not assigned to you; ask a supervisor to move it to you"
        )
    return debtor


_OPEN_INVOICE_REFS = (
    select(Invoice.__table__.c.id, Invoice.__table__.c.external_id, Invoice.__table__.c.amount_due)
    .where(
        Invoice.__table__.c.debtor_id == bindparam("debtor_id", type_=Invoice.debtor_id.type),
        Invoice.__table__.c.status == "open",
    )
    .order_by(Invoice.__table__.c.due_date, Invoice.__table__.c.id)
)


def _open_invoice_refs(session: Session, debtor_id: int) -> list[Row[Any]]:
    """The open invoices as :func:`_open_invoices` orders them: id, external id, amount due."""
    session.flush()
    return list(session.connection().execute(_OPEN_INVOICE_REFS, {"debtor_id": debtor_id}))


def _open_invoices(session: Session, debtor_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == "open")
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def _balance(invoices: Iterable[Invoice | Row[Any] | _InvoiceRef]) -> Decimal:
    return to_money(sum((invoice.amount_due for invoice in invoices), Decimal("0")))


_OUTBOX_INSERT = insert(OutboxMessage.__table__)


def _outbox_row(
    kind: str,
    debtor_id: int,
    invoice: Invoice | Row[Any] | _InvoiceRef | None,
    payload: dict[str, Any],
) -> dict[str, Any] | None:
    """The outbox row queuing an outcome for the accounting system (None without an
    external invoice to attach it to)."""
    if invoice is None or not invoice.external_id:
        return None
    queued_at = utcnow()
    return {
        "idempotency_key": uuid4().hex,
        "kind": kind,
        "debtor_id": debtor_id,
        "invoice_external_id": invoice.external_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": queued_at,
        "created_at": queued_at,
    }


def _outbox(
    session: Session,
    kind: str,
    debtor_id: int,
    invoice: Invoice | Row[Any] | _InvoiceRef | None,
    payload: dict[str, Any],
) -> None:
    """Queue an outcome for the accounting system (skipped without an external invoice)."""
    row = _outbox_row(kind, debtor_id, invoice, payload)
    if row is not None:
        session.connection().execute(_OUTBOX_INSERT, row)


def _history_note_row(
    debtor_id: int, invoice: Invoice | Row[Any] | _InvoiceRef | None, text: str
) -> dict[str, Any] | None:
    return _outbox_row("history_note", debtor_id, invoice, {"details": _clip(text)})


def _history_note(
    session: Session, debtor_id: int, invoice: Invoice | Row[Any] | _InvoiceRef | None, text: str
) -> None:
    _outbox(session, "history_note", debtor_id, invoice, {"details": _clip(text)})


def _rescore(
    session: Session,
    debtor_ids: Sequence[int],
    now: datetime,
    weights: PriorityWeights | None = None,
) -> None:
    """Refresh the accounts' cached facts and priority score in this transaction
    (``weights``: the stored ones, if the caller has read them already)."""
    session.flush()
    rescore(
        session.connection(),
        today=now.astimezone(UTC).date(),
        now=now,
        weights=weights,
        debtor_ids=list(debtor_ids),
    )


class _VersionMismatch(Exception):
    pass


_debtors = Debtor.__table__.c
_bumps: dict[frozenset[str], Any] = {}


def _bump_statement(columns: frozenset[str]) -> Any:
    """UPDATE debtors SET ``columns``, version = version + 1 WHERE id and version match
    (built once per set of columns)."""
    statement = _bumps.get(columns)
    if statement is None:
        statement = (
            update(Debtor.__table__)
            .where(
                _debtors.id == bindparam("b_id", type_=_debtors.id.type),
                _debtors.version == bindparam("b_version", type_=_debtors.version.type),
            )
            .values(
                version=_debtors.version + 1,
                **{name: bindparam(name, type_=_debtors[name].type) for name in sorted(columns)},
            )
        )
        _bumps[columns] = statement
    return statement


def _bump_version(session: Session, debtor: Debtor, **values: Any) -> None:
    """One versioned UPDATE of the debtor row, as the ORM's flush of ``values`` would write
    it (``version`` + 1, ``updated_at`` now by the column's onupdate), in Core."""
    version = debtor.version
    values.setdefault("updated_at", utcnow())
    result = session.connection().execute(
        _bump_statement(frozenset(values)), {"b_id": debtor.id, "b_version": version, **values}
    )
    if result.rowcount != 1:
        raise _VersionMismatch
    for key, value in values.items():
        set_committed_value(debtor, key, value)
    set_committed_value(debtor, "version", version + 1)


_CONTACT_COLUMNS = (
    "agent_id", "channel", "direction", "address", "started_at", "disposition",
    "conversation", "notes", "created_at",
)  # fmt: skip
# The audit row's columns but its entity id (the contact's, known in the statement).
_AUDIT_COLUMNS = tuple(name for name in audit.COLUMNS if name != "entity_id")
_NOTE_COLUMNS = (
    "idempotency_key", "kind", "invoice_external_id", "payload", "status", "attempts",
    "next_attempt_at", "created_at",
)  # fmt: skip


@cache
def _contact_write(columns: frozenset[str], note: bool) -> Select[Any]:
    """PostgreSQL: the debtor's versioned UPDATE (see :func:`_bump_statement`), the
    contact, its audit row and, with ``note``, the history note's outbox row, as one
    statement (built once per shape). It returns the contact's id, or no row (and writes
    nothing) when the debtor is no longer at the expected version.

    One statement instead of four: on a busy team server each statement costs the
    client more CPU than the server spends running it. Parameters: the bump's, then
    ``c_``, ``a_`` and ``o_`` plus each table's column name."""
    tables = (Contact.__table__, AuditEntry.__table__, OutboxMessage.__table__)

    def params(table: Any, prefix: str, names: Sequence[str]) -> list[Any]:
        return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names]

    bumped = _bump_statement(columns).returning(_debtors.id).cte("bumped")
    contact = (
        insert(tables[0])
        .from_select(
            ["debtor_id", *_CONTACT_COLUMNS],
            select(bumped.c.id, *params(tables[0], "c_", _CONTACT_COLUMNS)),
            include_defaults=False,
        )
        .returning(tables[0].c.id)
        .cte("contact")
    )
    logged = insert(tables[1]).from_select(
        [*_AUDIT_COLUMNS, "entity_id"],
        select(
            *params(tables[1], "a_", _AUDIT_COLUMNS), cast(contact.c.id, tables[1].c.entity_id.type)
        ),
        include_defaults=False,
    )
    statement = select(contact.c.id).add_cte(logged.cte("logged"))
    if note:
        noted = insert(tables[2]).from_select(
            ["debtor_id", *_NOTE_COLUMNS],
            select(bumped.c.id, *params(tables[2], "o_", _NOTE_COLUMNS)),
            include_defaults=False,
        )
        statement = statement.add_cte(noted.cte("noted"))
    return statement


def _checked(session: Session, agent: AgentInfo, debtor_id: int, expected_version: int) -> Debtor:
    """The account, if ``agent`` may change it and it is still at ``expected_version``."""
    debtor = check_access(session, agent, debtor_id)
    if debtor.version != expected_version:
        raise _VersionMismatch
    return debtor


def _checked_row(session: Session, agent: AgentInfo, debtor_id: int, expected_version: int) -> Any:
    """:func:`_checked`, with the account as a plain row of its columns read on the
    driver instead of a loaded ``Debtor``."""
    found = read_on_driver(
        session.connection(), _ACCESS_ROW,
        {"agent_id": agent.id, "agent_name": agent.name, "debtor_id": debtor_id},
    )  # fmt: skip
    row = found[0] if found else None
    record = _access_verdict(session, agent, debtor_id, row, row)
    if record.version != expected_version:
        raise _VersionMismatch
    return record


def _claim(
    session: Session, agent: AgentInfo, debtor_id: int, expected_version: int, now: datetime
) -> Debtor:
    """Check access and version, then bump the version (UPDATE ... WHERE version = ...)."""
    debtor = _checked(session, agent, debtor_id, expected_version)
    # A concurrent save that won the race leaves no row at the expected version.
    _bump_version(session, debtor, updated_at=now)
    return debtor


@dataclass(frozen=True)
class LatestChange:
    """What the open account screen polls: the account's version and last sync now, and
    who made the last audited change (None when the version did not move)."""

    version: int
    synced_at: datetime | None
    actor: str | None


def _last_audited(
    session: Session, debtor_id: int, *, people_only: bool = False
) -> tuple[str, datetime] | None:
    """Who made the last audited change to the account, and when (``people_only``
    leaves out the system's own changes)."""
    query = select(AuditEntry.actor, AuditEntry.at).where(AuditEntry.debtor_id == debtor_id)
    if people_only:
        query = query.where(AuditEntry.actor != SYSTEM)
    row = session.execute(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def latest_change(db: Database, debtor_id: int, shown_version: int) -> LatestChange | None:
    """The account's version and last sync time now, and, if the version moved past
    ``shown_version``, the actor of its last audited change; None if there is no such
    account. Cheap enough to poll every few seconds: one indexed read when unchanged."""
    with db.session() as session:
        current = session.execute(
            select(Debtor.version, Debtor.last_synced_at).where(Debtor.id == debtor_id)
        ).first()
        if current is None:
            return None
        last = _last_audited(session, debtor_id) if current[0] != shown_version else None
    return LatestChange(current[0], current[1], last[0] if last else None)


def _stale_edit(db: Database, debtor_id: int) -> StaleEdit:
    with db.session() as session:
        version = session.scalar(select(Debtor.version).where(Debtor.id == debtor_id))
        last = _last_audited(session, debtor_id, people_only=True)
    return StaleEdit(
        debtor_id,
        changed_by=last[0] if last else None,
        changed_at=last[1] if last else None,
        current_version=version,
    )


def _write(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    now: datetime,
    change: Callable[[Session, Debtor], T],
) -> T:
    """Run ``change`` as one versioned, audited, rescored transaction on one account."""
    try:
        with db.session() as session:
            debtor = _claim(session, agent, debtor_id, expected_version, now)
            result = change(session, debtor)
            _rescore(session, [debtor_id], now)
            return result
    except (_VersionMismatch, StaleDataError):
        raise _stale_edit(db, debtor_id) from None


# --- reading -----------------------------------------------------------------------------


_FLAGS = ("cease_communication", "dispute", "bankruptcy", "deceased", "time_barred")


def _invoice_numbers(session: Session, debtor_id: int) -> dict[int, str]:
    rows = session.connection().execute(_reads()["numbers"], {"debtor_id": debtor_id})
    return {invoice_id: number for invoice_id, number in rows}


def _agent_names(session: Session) -> dict[int, str]:
    return {agent_id: name for agent_id, name in session.connection().execute(_reads()["agents"])}


def _debtor_param(column: Any) -> Any:
    return column == bindparam("debtor_id", type_=column.type)


@cache
def _reads() -> dict[str, Any]:
    """The statements :func:`load_account` runs, built once (on first use, not at import).

    Run in Core on the session's connection: building a statement and loading ORM
    objects for each of these small reads cost four times what the database did.
    """
    t = {name: model.__table__.c for name, model in (
        ("phone", Phone), ("email", Email), ("invoice", Invoice), ("dispute", Dispute),
        ("payment", Payment), ("promise", Promise), ("plan", PaymentPlan),
        ("settlement", Settlement), ("task", Task),
    )}  # fmt: skip
    phone, email, invoice, dispute = t["phone"], t["email"], t["invoice"], t["dispute"]
    payment, promise, plan, settlement, task = (
        t["payment"], t["promise"], t["plan"], t["settlement"], t["task"]
    )  # fmt: skip
    active_payment = (_debtor_param(payment.debtor_id), payment.status == "active")
    return {
        "agents": select(Agent.__table__.c.id, Agent.__table__.c.name),
        "numbers": select(invoice.id, invoice.number).where(_debtor_param(invoice.debtor_id)),
        "phones": select(Phone.__table__).where(_debtor_param(phone.debtor_id)).order_by(phone.id),
        "emails": select(Email.__table__).where(_debtor_param(email.debtor_id)).order_by(email.id),
        "invoices": select(Invoice.__table__)
        .where(_debtor_param(invoice.debtor_id), invoice.status == "open")
        .order_by(invoice.due_date, invoice.id),
        "disputes": select(Dispute.__table__)
        .where(_debtor_param(dispute.debtor_id), dispute.status.in_(OPEN_DISPUTE))
        .order_by(dispute.received_on, dispute.id),
        "payments": select(Payment.__table__)
        .where(*active_payment)
        .order_by(payment.paid_on.desc(), payment.id.desc())
        .limit(RECENT_PAYMENTS),
        "unapplied": select(func.count(), func.coalesce(func.sum(payment.amount), 0)).where(
            *active_payment, payment.applied.is_(False)
        ),
        "synced": select(func.max(invoice.synced_at)).where(_debtor_param(invoice.debtor_id)),
        "pending": select(Promise.__table__)
        .where(_debtor_param(promise.debtor_id), promise.status == "pending")
        .order_by(promise.due_date, promise.id),
        "plan": select(PaymentPlan.__table__)
        .where(_debtor_param(plan.debtor_id), plan.status == "active")
        .order_by(plan.id.desc())
        .limit(1),
        "installments": select(Promise.__table__)
        .where(promise.plan_id == bindparam("plan_id", type_=promise.plan_id.type))
        .order_by(promise.installment_no, promise.id),
        "settlements": select(Settlement.__table__)
        .where(_debtor_param(settlement.debtor_id), settlement.status.in_(LIVE_SETTLEMENT))
        .order_by(settlement.id.desc()),
        "callbacks": select(Task.__table__)
        .where(_debtor_param(task.debtor_id), task.kind == "callback", task.status == "open")
        .order_by(task.due_at, task.id),
    }


def load_account(
    db: Database, agent: AgentInfo, debtor_id: int, *, now: datetime | None = None
) -> AccountView:
    """The whole account as the workspace shows it (first page of the timeline included)."""
    now = _now(now)
    today = now.astimezone(UTC).date()
    reads = _reads()
    with db.session() as session:
        debtor = check_access(session, agent, debtor_id)
        conn = session.connection()
        by_debtor = {"debtor_id": debtor_id}

        def rows(name: str) -> list[Row[Any]]:
            return list(conn.execute(reads[name], by_debtor))

        names = _agent_names(session)
        zone = zone_or_utc(debtor.time_zone)
        phones = tuple(
            PhoneView(p.id, p.number, p.kind, p.do_not_call, p.sms_consent) for p in rows("phones")
        )
        emails = tuple(EmailView(e.id, e.address, e.do_not_email) for e in rows("emails"))
        who = DebtorView(
            id=debtor.id,
            external_id=debtor.external_id,
            name=debtor.name,
            is_company=debtor.is_company,
            contact_person=debtor.contact_person,
            time_zone=debtor.time_zone,
            local_time=now.astimezone(zone),
            phones=phones,
            emails=emails,
            preferred_channel=debtor.preferred_channel,
            flags=tuple(flag for flag in _FLAGS if getattr(debtor, flag)),
            address=debtor.address,
            country=debtor.country,
            region=debtor.region,
            language=debtor.language,
            currency=debtor.currency,
            segment=debtor.segment,
            assigned_agent_id=debtor.assigned_agent_id,
            assigned_agent=names.get(debtor.assigned_agent_id)
            if debtor.assigned_agent_id
            else None,
            next_action=debtor.next_action,
            next_action_at=debtor.next_action_at,
            priority_score=debtor.priority_score,
            priority_reason=debtor.priority_reason,
        )

        open_invoices = rows("invoices")
        disputes = rows("disputes")
        disputed_ids = {d.invoice_id for d in disputes}
        invoices = []
        totals = dict.fromkeys(BUCKETS, Decimal("0.00"))
        for inv in open_invoices:
            days = days_past_due(inv.due_date, today)
            bucket = aging_bucket(days)
            totals[bucket] = to_money(totals[bucket] + inv.amount_due)
            invoices.append(
                InvoiceView(
                    id=inv.id,
                    external_id=inv.external_id,
                    number=inv.number,
                    issue_date=inv.issue_date,
                    due_date=inv.due_date,
                    days_past_due=days,
                    bucket=bucket,
                    total=inv.total,
                    amount_due=inv.amount_due,
                    currency=inv.currency,
                    expected_payment_date=inv.expected_payment_date,
                    disputed=inv.id in disputed_ids,
                )
            )
        numbers = _invoice_numbers(session, debtor_id)

        payments = tuple(
            PaymentView(
                p.id,
                p.paid_on,
                p.amount,
                p.currency,
                numbers.get(p.invoice_id or -1),
                p.applied,
                p.received_at,
            )
            for p in rows("payments")
        )
        unapplied_count, unapplied_sum = conn.execute(reads["unapplied"], by_debtor).one()
        invoices_synced_at = conn.execute(reads["synced"], by_debtor).scalar()

        pending = [_promise_view(p) for p in rows("pending")]
        plan_row = conn.execute(reads["plan"], by_debtor).first()
        plan = None
        if plan_row is not None:
            installments = tuple(
                _promise_view(p)
                for p in conn.execute(reads["installments"], {"plan_id": plan_row.id})
            )
            plan = PlanView(
                plan_row.id,
                plan_row.total,
                plan_row.currency,
                plan_row.frequency,
                plan_row.first_date,
                plan_row.status,
                installments,
            )
        settlements = tuple(
            SettlementView(s.id, s.amount, s.balance_at_offer, s.currency, s.due_date, s.status)
            for s in rows("settlements")
        )
        callbacks = tuple(
            CallbackView(t.id, t.due_at, t.due_at.astimezone(zone), t.note)
            for t in rows("callbacks")
        )
        complete_pull = last_complete_pull(conn)
        timeline = _timeline(
            session,
            debtor,
            names,
            numbers,
            kinds=None,
            before=None,
            limit=100,
            known=(invoices_synced_at, complete_pull),
        )
        return AccountView(
            debtor=who,
            version=debtor.version,
            balance=_balance(open_invoices),
            invoices=tuple(invoices),
            totals_by_bucket=totals,
            payments=payments,
            promises=tuple(pending),
            plan=plan,
            settlements=settlements,
            disputes=tuple(
                DisputeView(
                    d.id,
                    d.invoice_id,
                    numbers.get(d.invoice_id or -1),
                    d.reason,
                    d.status,
                    d.received_on,
                )
                for d in disputes
            ),
            callbacks=callbacks,
            freshness=Freshness(
                debtor_synced_at=account_synced_at(
                    debtor.last_synced_at, debtor.external_id, complete_pull
                ),
                invoices_synced_at=invoices_synced_at,
                unapplied_payments=int(unapplied_count),
                unapplied_amount=to_money(Decimal(str(unapplied_sum))),
            ),
            timeline=tuple(timeline),
            loaded_at=now,
        )


def _promise_view(p: Promise | Row[Any]) -> PromiseView:
    return PromiseView(
        p.id,
        p.amount,
        p.currency,
        p.due_date,
        p.status,
        p.amount_paid,
        p.plan_id,
        p.installment_no,
    )


def load_timeline(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    *,
    kinds: set[str] | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> list[TimelineEntry]:
    """The account's history newest first: ``limit`` entries older than ``before``.

    ``kinds`` keeps only those kinds (see :data:`TIMELINE_KINDS`). Page with ``before`` =
    the ``at`` of the last entry of the previous page.
    """
    if kinds is not None and not set(kinds) <= set(TIMELINE_KINDS):
        unknown = ", ".join(sorted(set(kinds) - set(TIMELINE_KINDS)))
        raise ValueError(f"unknown timeline kinds: {unknown}")
    if before is not None and before.tzinfo is None:
        raise ValueError("naive datetime given as before; attach a time zone")
    if limit < 1:
        return []
    with db.session() as session:
        debtor = check_access(session, agent, debtor_id)
        numbers = _invoice_numbers(session, debtor_id)
        return _timeline(
            session,
            debtor,
            _agent_names(session),
            numbers,
            kinds=kinds,
            before=before,
            limit=limit,
        )


_KIND_ORDER = {kind: index for index, kind in enumerate(TIMELINE_KINDS)}
_CHANNEL_LABELS = {
    "call": "Call",
    "email": "Email",
    "sms": "SMS",
    "letter": "Letter",
    "visit": "Visit",
}


def _timeline(
    session: Session,
    debtor: Debtor,
    names: dict[int, str],
    numbers: dict[int, str],
    *,
    kinds: set[str] | None,
    before: datetime | None,
    limit: int,
    known: tuple[datetime | None, datetime | None] | None = None,
) -> list[TimelineEntry]:
    """Merge the newest ``limit`` events of each source, then keep the newest ``limit``.

    ``known``: the invoices' last sync and the last complete pull, if already read.
    """
    entries: list[TimelineEntry] = []
    wanted = set(TIMELINE_KINDS) if kinds is None else set(kinds)
    source = _TimelineSource(session, debtor, names, numbers, before, limit, known)
    for kind in TIMELINE_KINDS:
        if kind in wanted:
            entries.extend(getattr(source, kind)())
    entries.sort(key=lambda e: (e.at, -_KIND_ORDER[e.kind], e.ref), reverse=True)
    return entries[:limit]


def _timeline_sources() -> dict[str, tuple[Any, Any, tuple[Any, ...]]]:
    """Each timeline query: its table, its time column and its own conditions."""
    contact, promise, plan = Contact.__table__, Promise.__table__, PaymentPlan.__table__
    settlement, dispute, assignment = Settlement.__table__, Dispute.__table__, Assignment.__table__
    payment, task = Payment.__table__, Task.__table__
    settled = ("kept", "partially_kept", "broken")
    return {
        "contact": (contact, contact.c.started_at, ()),
        "promise": (promise, promise.c.created_at, (promise.c.plan_id.is_(None),)),
        "plan": (plan, plan.c.created_at, ()),
        "installment": (
            promise,
            promise.c.evaluated_at,
            (promise.c.plan_id.is_not(None), promise.c.status.in_(settled)),
        ),
        "settlement": (settlement, settlement.c.created_at, ()),
        "dispute": (dispute, dispute.c.created_at, ()),
        "dispute_resolved": (dispute, dispute.c.resolved_at, ()),
        "reassignment": (assignment, assignment.c.at, ()),
        "payment": (payment, payment.c.received_at, ()),
        "callback": (task, task.c.created_at, (task.c.kind == "callback",)),
    }


@cache
def _timeline_query(source: str, before: bool, limit: int) -> Any:
    """The newest ``limit`` rows of ``source`` for ``:debtor_id`` (older than ``:before``
    if ``before``), built once per shape."""
    table, at, conditions = _timeline_sources()[source]
    query = select(table).where(_debtor_param(table.c.debtor_id), at.is_not(None), *conditions)
    if before:
        query = query.where(at < bindparam("before", type_=at.type))
    return query.order_by(at.desc(), table.c.id.desc()).limit(limit)


class _TimelineSource:
    """The queries behind the timeline, one method per kind, each newest first."""

    def __init__(
        self,
        session: Session,
        debtor: Debtor,
        names: dict[int, str],
        numbers: dict[int, str],
        before: datetime | None,
        limit: int,
        known: tuple[datetime | None, datetime | None] | None = None,
    ) -> None:
        self.session = session
        self.debtor = debtor
        self.names = names
        self.numbers = numbers
        self.before = before
        self.limit = limit
        self.currency = debtor.currency
        self.known = known

    def _rows(self, source: str) -> list[Any]:
        """The newest rows of ``source`` (see :func:`_timeline_query`), read in Core."""
        query = _timeline_query(source, self.before is not None, self.limit)
        params = {"debtor_id": self.debtor.id, "before": self.before}
        return list(self.session.connection().execute(query, params))

    def _who(self, agent_id: int | None) -> str:
        return self.names.get(agent_id, "?") if agent_id is not None else "system"

    def _invoice(self, invoice_id: int | None) -> str:
        return self.numbers.get(invoice_id, "") if invoice_id is not None else ""

    def contact(self) -> list[TimelineEntry]:
        result = []
        for c in self._rows("contact"):
            label = DEFAULT.get(c.disposition).label if c.disposition in DEFAULT else c.disposition
            parts = [self._who(c.agent_id)]
            if c.address:
                parts.append(c.address)
            if c.notes:
                parts.append(c.notes)
            result.append(
                TimelineEntry(
                    c.started_at,
                    "contact",
                    f"{_CHANNEL_LABELS.get(c.channel, c.channel)} {c.direction}: {label}",
                    " · ".join(parts),
                    f"contact:{c.id}",
                )
            )
        return result

    def promise(self) -> list[TimelineEntry]:
        return [
            TimelineEntry(
                p.created_at,
                "promise",
                f"Promise {_money(p.amount, p.currency)} by {p.due_date.isoformat()}: "
                f"{p.status.replace('_', ' ')}",
                f"{self._who(p.agent_id)} · paid {_money(p.amount_paid, p.currency)}",
                f"promise:{p.id}",
            )
            for p in self._rows("promise")
        ]

    def plan(self) -> list[TimelineEntry]:
        result = []
        for plan in self._rows("plan"):
            result.append(
                TimelineEntry(
                    plan.created_at,
                    "plan",
                    f"Payment plan {_money(plan.total, plan.currency)}: "
                    f"{plan.installment_count} {plan.frequency} installments from "
                    f"{plan.first_date.isoformat()}",
                    f"{self._who(plan.agent_id)} · {plan.status}",
                    f"plan:{plan.id}",
                )
            )
        return result

    def installment(self) -> list[TimelineEntry]:
        rows = self._rows("installment")
        return [
            TimelineEntry(
                p.evaluated_at,
                "installment",
                f"Installment {p.installment_no} {p.status.replace('_', ' ')}: "
                f"{_money(p.amount, p.currency)} due {p.due_date.isoformat()}",
                f"paid {_money(p.amount_paid, p.currency)}",
                f"installment:{p.id}",
            )
            for p in rows
        ]

    def settlement(self) -> list[TimelineEntry]:
        result = []
        for s in self._rows("settlement"):
            detail = [self._who(s.agent_id), f"balance {_money(s.balance_at_offer, s.currency)}"]
            if s.decided_by_id is not None:
                detail.append(f"decided by {self._who(s.decided_by_id)}")
            if s.decision_note:
                detail.append(s.decision_note)
            result.append(
                TimelineEntry(
                    s.created_at,
                    "settlement",
                    f"Settlement {_money(s.amount, s.currency)} by {s.due_date.isoformat()}: "
                    f"{s.status.replace('_', ' ')}",
                    " · ".join(detail),
                    f"settlement:{s.id}",
                )
            )
        return result

    def dispute(self) -> list[TimelineEntry]:
        result = [
            TimelineEntry(
                d.created_at,
                "dispute",
                f"Dispute opened {self._invoice(d.invoice_id)}".rstrip(),
                f"{self._who(d.agent_id)} · {d.reason}",
                f"dispute:{d.id}",
            )
            for d in self._rows("dispute")
        ]
        result += [
            TimelineEntry(
                d.resolved_at,
                "dispute",
                f"Dispute resolved {self._invoice(d.invoice_id)}".rstrip(),
                d.reason,
                f"dispute:{d.id}:resolved",
            )
            for d in self._rows("dispute_resolved")
        ]
        return result

    def reassignment(self) -> list[TimelineEntry]:
        result = []
        for a in self._rows("reassignment"):
            to = self.names.get(a.to_agent_id, "?") if a.to_agent_id else "the pool"
            title = f"Assigned to {to}"
            if a.from_agent_id:
                title += f" (from {self.names.get(a.from_agent_id, '?')})"
            detail = [f"by {self._who(a.by_agent_id)}"]
            if a.reason:
                detail.append(a.reason)
            result.append(
                TimelineEntry(a.at, "reassignment", title, " · ".join(detail), f"assignment:{a.id}")
            )
        return result

    def payment(self) -> list[TimelineEntry]:
        result = []
        for p in self._rows("payment"):
            detail = [f"paid on {p.paid_on.isoformat()}"]
            if not p.applied:
                detail.append("not applied yet")
            if p.status != "active":
                detail.append(p.status)
            title = f"Payment {_money(p.amount, p.currency)}"
            if p.invoice_id is not None:
                title += f" on {self._invoice(p.invoice_id)}"
            result.append(
                TimelineEntry(
                    p.received_at, "payment", title, " · ".join(detail), f"payment:{p.id}"
                )
            )
        return result

    def sync(self) -> list[TimelineEntry]:
        if self.known is not None:
            synced, complete_pull = self.known
        else:
            conn = self.session.connection()
            synced = conn.execute(_reads()["synced"], {"debtor_id": self.debtor.id}).scalar()
            complete_pull = last_complete_pull(conn)
        own = account_synced_at(self.debtor.last_synced_at, self.debtor.external_id, complete_pull)
        stamps = [s for s in (own, synced) if s is not None]
        if not stamps:
            return []
        at = max(stamps)
        if self.before is not None and at >= self.before:
            return []
        return [TimelineEntry(at, "sync", "Synced from the accounting system", "", "sync:last")]

    def callback(self) -> list[TimelineEntry]:
        zone = zone_or_utc(self.debtor.time_zone)
        result = []
        for t in self._rows("callback"):
            local = t.due_at.astimezone(zone)
            detail = [self._who(t.agent_id), t.status]
            if t.note:
                detail.append(t.note)
            result.append(
                TimelineEntry(
                    t.created_at,
                    "callback",
                    f"Callback {local:%Y-%m-%d %H:%M} ({self.debtor.time_zone})",
                    " · ".join(detail),
                    f"callback:{t.id}",
                )
            )
        return result


# --- writing: pieces shared by the writes ------------------------------------------------

_CONTACT_FIELDS = (
    "channel",
    "direction",
    "address",
    "started_at",
    "disposition",
    "conversation",
    "notes",
    "agent_id",
)
_PROMISE_FIELDS = (
    "amount",
    "currency",
    "due_date",
    "status",
    "invoice_id",
    "contact_id",
    "plan_id",
    "installment_no",
    "amount_paid",
)
_TASK_FIELDS = ("kind", "due_at", "status", "note", "agent_id")
_SETTLEMENT_FIELDS = (
    "amount",
    "balance_at_offer",
    "currency",
    "due_date",
    "status",
    "decided_by_id",
    "decided_at",
    "decision_note",
)
_DISPUTE_FIELDS = ("invoice_id", "reason", "status", "received_on", "resolved_at")


def _set_status(
    session: Session,
    actor: AgentInfo | str,
    row: Promise | Task | Settlement | PaymentPlan | Dispute,
    entity: str,
    status: str,
    debtor_id: int,
    now: datetime,
    **extra: Any,
) -> None:
    before = {"status": row.status, **{key: getattr(row, key) for key in extra}}
    row.status = status
    for key, value in extra.items():
        setattr(row, key, value)
    after = {"status": status, **extra}
    audit.record(
        session, actor, f"{entity}.{status}", entity, row.id, before, after, debtor_id, at=now
    )


def _cancel_pending_promises(
    session: Session, agent: AgentInfo, debtor: Debtor, now: datetime
) -> None:
    """A new promise or plan replaces the standalone promises still pending."""
    for old in session.scalars(
        select(Promise).where(
            Promise.debtor_id == debtor.id, Promise.status == "pending", Promise.plan_id.is_(None)
        )
    ):
        _set_status(session, agent, old, "promise", "cancelled", debtor.id, now)


def _add_promise(
    session: Session,
    agent: AgentInfo,
    debtor: Debtor,
    promise: PromiseInput,
    *,
    contact_id: int | None,
    now: datetime,
    history_note: bool,
    invoices: Sequence[Row[Any] | _InvoiceRef] | None = None,
) -> Promise:
    if invoices is None:
        invoices = _open_invoice_refs(session, debtor.id)
    errors = validate_promise(
        promise.amount, promise.due_date, _balance(invoices), _local_today(debtor, now)
    )
    target = invoices[0] if invoices else None
    if promise.invoice_id is not None:
        target = next((inv for inv in invoices if inv.id == promise.invoice_id), None)
        if target is None:
            errors.append(FieldError("invoice_id", "that invoice is not open on this account"))
    if errors:
        raise ValidationFailed(errors)
    _cancel_pending_promises(session, agent, debtor, now)
    row = Promise(
        debtor_id=debtor.id,
        invoice_id=target.id if target else None,
        agent_id=agent.id,
        contact_id=contact_id,
        amount=to_money(promise.amount),
        currency=debtor.currency,
        due_date=promise.due_date,
        status="pending",
        amount_paid=Decimal("0"),
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        agent,
        "promise.created",
        "promise",
        row.id,
        None,
        audit.snapshot(row, _PROMISE_FIELDS),
        debtor.id,
        at=now,
    )
    _outbox(
        session, "expected_payment_date", debtor.id, target, {"date": promise.due_date.isoformat()}
    )
    if history_note:
        _history_note(
            session,
            debtor.id,
            target,
            f"Promise to pay {_money(row.amount, row.currency)} by "
            f"{promise.due_date.isoformat()} (taken by {agent.display_name})",
        )
    return row


def _callback_utc(debtor: Debtor, local_date: date, local_time: time, now: datetime) -> datetime:
    """The UTC instant of a time on the debtor's clock; refuses gaps and the past."""
    zone = zone_or_utc(debtor.time_zone)
    naive = datetime.combine(local_date, local_time.replace(tzinfo=None))
    local = naive.replace(tzinfo=zone)  # fold=0: the first of a repeated (autumn) hour
    due = local.astimezone(UTC)
    if due.astimezone(zone).replace(tzinfo=None) != naive:
        raise ValidationFailed(
            [
                FieldError(
                    "local_time",
                    f"{naive:%H:%M} does not exist on {local_date.isoformat()} "
                    f"in {debtor.time_zone} (the clocks change); pick another time",
                )
            ]
        )
    if due <= now:
        raise ValidationFailed([FieldError("local_time", "the callback time is in the past")])
    return due


def _add_callback(
    session: Session, agent: AgentInfo, debtor: Debtor, callback: Callback, now: datetime
) -> Task:
    """A callback task, replacing the account's other open callbacks."""
    due = _callback_utc(debtor, callback.local_date, callback.local_time, now)
    for old in session.scalars(
        select(Task).where(
            Task.debtor_id == debtor.id, Task.kind == "callback", Task.status == "open"
        )
    ):
        _set_status(session, agent, old, "task", "cancelled", debtor.id, now, done_at=now)
    task = Task(
        debtor_id=debtor.id,
        agent_id=agent.id,
        kind="callback",
        due_at=due,
        status="open",
        note=callback.note,
        created_at=now,
    )
    session.add(task)
    session.flush()
    before = {"next_action": debtor.next_action, "next_action_at": debtor.next_action_at}
    debtor.next_action = "callback"
    debtor.next_action_at = due
    audit.record(
        session,
        agent,
        "task.created",
        "task",
        task.id,
        None,
        audit.snapshot(task, _TASK_FIELDS),
        debtor.id,
        at=now,
    )
    audit.record(
        session,
        agent,
        "debtor.next_action",
        "debtor",
        debtor.id,
        before,
        {"next_action": "callback", "next_action_at": due},
        debtor.id,
        at=now,
    )
    return task


_tasks = Task.__table__.c
_DUE_CALLBACKS = select(_tasks.id).where(
    _tasks.debtor_id == bindparam("debtor_id", type_=_tasks.debtor_id.type),
    _tasks.kind == "callback",
    _tasks.status == "open",
    _tasks.due_at <= bindparam("until", type_=_tasks.due_at.type),
)


def _complete_due_callbacks(
    session: Session,
    agent: AgentInfo,
    debtor: Debtor,
    now: datetime,
    due_ids: list[int] | None = None,
) -> None:
    """A contact made when a callback is due (or nearly) fulfils that callback
    (``due_ids``: the ones the caller read, if it did)."""
    if due_ids is None:
        session.flush()
        due = session.connection().execute(
            _DUE_CALLBACKS, {"debtor_id": debtor.id, "until": now + CALLBACK_EARLY}
        )
        due_ids = [task_id for (task_id,) in due]
    ids = due_ids
    if not ids:  # the usual case: read in Core, no task loaded
        return
    for task in session.scalars(select(Task).where(Task.id.in_(ids))):
        _set_status(session, agent, task, "task", "done", debtor.id, now, done_at=now)


def _set_flag(
    session: Session, agent: AgentInfo, debtor: Debtor, flag: str, value: bool, now: datetime
) -> None:
    old = getattr(debtor, flag)
    if old == value:
        return
    setattr(debtor, flag, value)
    audit.record(
        session,
        agent,
        "debtor.flag",
        "debtor",
        debtor.id,
        {flag: old},
        {flag: value},
        debtor.id,
        at=now,
    )


# --- writing: the public writes ----------------------------------------------------------


_CONTACT_INSERT = insert(Contact.__table__).returning(Contact.__table__.c.id)


def log_contact(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    channel: str,
    direction: str = "outbound",
    address: str | None = None,
    disposition: str,
    notes: str = "",
    next_action: Callback | None = None,
    promise: PromiseInput | None = None,
    started_at: datetime | None = None,
    now: datetime | None = None,
    dispositions: DispositionSet = DEFAULT,
) -> int:
    """Log a contact attempt or conversation; returns the contact id.

    A ``promise`` disposition needs ``promise`` (created in the same transaction);
    ``callback_requested`` needs ``next_action``; any contact may schedule one. The
    contact completes callbacks due by now, and sets the flag its disposition implies
    (cease communication, deceased). A history note goes to the oldest open invoice.
    """
    now = _now(now)
    check_channel(channel, direction)
    code = dispositions.get(disposition)
    if not code.allowed_on(channel):
        raise ValueError(f"'{code.label}' does not apply to a {channel}")
    errors = []
    if code.needs_promise and promise is None:
        errors.append(FieldError("promise", "a promise to pay needs its amount and date"))
    if promise is not None and not code.needs_promise:
        errors.append(FieldError("promise", f"'{code.label}' does not take a promise"))
    if code.needs_callback and next_action is None:
        errors.append(FieldError("next_action", "a callback request needs the callback's time"))
    started = _now(started_at) if started_at is not None else now
    if started > now + timedelta(minutes=1):
        errors.append(FieldError("started_at", "the contact cannot start in the future"))
    if errors:
        raise ValidationFailed(errors)
    values = {
        "channel": channel,
        "direction": direction,
        "address": address[:254] if address else None,
        "started_at": started,
        "disposition": code.code,
        "conversation": is_conversation(code, channel),
        "notes": notes.strip() or None,
        "agent_id": agent.id,
    }
    try:
        with db.session() as session:
            return _save_contact(
                session, agent, debtor_id, expected_version, code, values, now,
                next_action=next_action, promise=promise,
            )  # fmt: skip
    except (_VersionMismatch, StaleDataError):
        raise _stale_edit(db, debtor_id) from None


@cache
def _save_reads() -> CompoundSelect[Any]:
    """What :func:`_save_contact` reads about the account besides the account itself, in
    one round trip, built once (at first use): the compliance subject and calls
    (:func:`~collect_tui.services.compliance.subject_branches`, kinds ``h d p e c``), the
    open invoices (``i``: external id as the text, due date as the day, amount due last),
    the callbacks a contact now completes (``t``, see :data:`_DUE_CALLBACKS`) and the
    stored priority weights (``w``)."""
    from collect_tui.services.compliance import subject_branches

    invoices, settings = Invoice.__table__.c, Setting.__table__.c
    no_money, no_int, no_day = cast(null(), MONEY), cast(null(), Integer), cast(null(), Date)
    no_call = (
        cast(null(), Contact.__table__.c.started_at.type), cast(null(), Boolean),
        cast(null(), String), cast(null(), String),
    )  # fmt: skip
    return union_all(
        *subject_branches(True, no_money),
        select(
            literal("i"), invoices.external_id, invoices.due_date, no_int, invoices.id,
            *no_call, invoices.amount_due,
        ).where(*_OPEN_INVOICE_REFS.whereclause.clauses),
        select(
            literal("t"), cast(null(), String), no_day, no_int, _tasks.id, *no_call, no_money
        ).where(*_DUE_CALLBACKS.whereclause.clauses),
        select(
            literal("w"), settings.value, no_day, no_int, no_int, *no_call, no_money
        ).where(settings.key == WEIGHTS_SETTING),
    )  # fmt: skip


class _InvoiceRef(NamedTuple):
    """An open invoice as :func:`_open_invoice_refs` reads it."""

    id: int
    external_id: str | None
    amount_due: Decimal


def _save_contact(
    session: Session,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    code: Any,
    values: dict[str, Any],
    now: datetime,
    *,
    next_action: Callback | None,
    promise: PromiseInput | None,
) -> int:
    """:func:`log_contact`'s transaction: what :func:`_write` does around a change (access,
    version, rescore), with what the save reads besides the account in one round trip
    (:func:`_save_reads`): the checks run before the first write, and the call block
    joins the version's UPDATE."""
    from collect_tui.services.compliance import (
        HISTORY_DAYS,
        call_event,
        check_outbound,
        contact_block,
        history_at,
        subject_and_calls_from,
    )

    conn = session.connection()
    debtor: Debtor | None = None
    if conn.dialect.name == "postgresql":
        # A plain row: the ORM object is loaded later, only if a write needs it.
        record = _checked_row(session, agent, debtor_id, expected_version)
    else:
        record = debtor = _checked(session, agent, debtor_id, expected_version)
    started: datetime = values["started_at"]
    channel, direction = values["channel"], values["direction"]
    # Holds, disputes and do-not-contact marks: read once for the check and the block;
    # the calls too, from the earlier of the two instants they are judged at.
    since = min(started, now) - timedelta(days=HISTORY_DAYS)
    rows = read_on_driver(
        conn, _save_reads(), {"debtor_id": debtor_id, "since": since, "until": now + CALLBACK_EARLY}
    )
    subject, calls = subject_and_calls_from(record, rows)
    if direction == "outbound":  # inbound contacts are always loggable
        check_outbound(
            session, record, channel, values["address"], started, subject=subject,
            history=history_at(calls, started),
        )  # fmt: skip
    if channel in ("call", "sms"):  # the contact about to be logged counts for the block
        calls.append(
            (started, call_event(started, values["conversation"], direction, code.code,
                                  channel))
        )  # fmt: skip
    until, reason = contact_block(session, record, now, subject, history_at(calls, now))
    block: dict[str, Any] = {}
    if record.contact_blocked_until != until:
        block["contact_blocked_until"] = until
    if record.contact_block_reason != (reason or None):
        block["contact_block_reason"] = reason or None
    invoice_rows = sorted(
        (row for row in rows if row[0] == "i"), key=lambda row: (row[2] is None, row[2], row[4])
    )
    invoices = [_InvoiceRef(row[4], row[1], row[-1]) for row in invoice_rows]
    due_callbacks = [row[4] for row in rows if row[0] == "t"]
    weights = weights_from_text(next((row[1] for row in rows if row[0] == "w"), None))
    text = f"{code.label} ({channel} {direction}, {agent.display_name})"
    notes_suffix = f": {values['notes']}" if values["notes"] else ""
    # The history note goes out with the contact unless a promise adds to its text.
    note_now = promise is None and bool(invoices) and bool(invoices[0].external_id)
    if promise is None:
        text += notes_suffix
    # The version check and bump (a concurrent save that won leaves no row at the
    # expected version), with the call block's cache columns; then the contact.
    audited = {name: audit.to_jsonable(values[name]) for name in _CONTACT_FIELDS}
    bump = {"updated_at": now, **block}
    if debtor is None:  # PostgreSQL
        params = {"b_id": debtor_id, "b_version": expected_version, **bump}
        params |= {f"c_{name}": value for name, value in values.items()}
        params["c_created_at"] = now
        logged = audit.row_values(agent, "contact.logged", "contact", None, None, audited,
                                  debtor_id, now)  # fmt: skip
        params |= {f"a_{name}": logged[name] for name in _AUDIT_COLUMNS}
        note = _history_note_row(debtor_id, invoices[0], text) if note_now else None
        if note is not None:
            params |= {f"o_{name}": note[name] for name in _NOTE_COLUMNS}
        written = run_on_driver(conn, _contact_write(frozenset(bump), note_now), params)
        if not written:
            raise _VersionMismatch
        contact_id: int = written[0][0]
    else:
        _bump_version(session, debtor, **bump)
        contact_id = conn.execute(
            _CONTACT_INSERT, {"debtor_id": debtor_id, "created_at": now, **values}
        ).scalar_one()
        audit.write(conn, agent, "contact.logged", "contact", contact_id, None, audited,
                    debtor_id, at=now)  # fmt: skip
        if note_now:
            _history_note(session, debtor_id, invoices[0], text)
    if promise is not None or due_callbacks or next_action is not None or code.sets_flag:
        if debtor is None:  # PostgreSQL: read after the write, so with its bump
            debtor = session.get_one(Debtor, debtor_id)
        if promise is not None:
            row = _add_promise(
                session, agent, debtor, promise, contact_id=contact_id, now=now,
                history_note=False, invoices=invoices,
            )  # fmt: skip
            text += f"; promised {_money(row.amount, row.currency)} by {row.due_date.isoformat()}"
            session.flush()  # its audit row goes in now, as it did before the open invoices
            text += notes_suffix
            _history_note(session, debtor_id, invoices[0] if invoices else None, text)
        _complete_due_callbacks(session, agent, debtor, now, due_callbacks)
        if next_action is not None:
            _add_callback(session, agent, debtor, next_action, now)
        if code.sets_flag:
            _set_flag(session, agent, debtor, code.sets_flag, True, now)
    _rescore(session, [debtor_id], now, weights)
    return contact_id


def make_promise(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    amount: Decimal,
    due_date: date,
    invoice_id: int | None = None,
    contact_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Record a promise to pay; returns its id.

    Validated by :func:`~collect_tui.domain.promises.validate_promise` (date not past nor
    beyond 30 days, amount within the balance); replaces pending standalone promises.
    Outbox: the expected payment date and a history note on the invoice (the oldest
    open one unless ``invoice_id`` is given).
    """
    now = _now(now)

    def change(session: Session, debtor: Debtor) -> int:
        if contact_id is not None:
            owner = session.scalar(select(Contact.debtor_id).where(Contact.id == contact_id))
            if owner != debtor.id:
                raise ValidationFailed([FieldError("contact_id", "not a contact of this account")])
        row = _add_promise(
            session,
            agent,
            debtor,
            PromiseInput(amount, due_date, invoice_id),
            contact_id=contact_id,
            now=now,
            history_note=True,
        )
        return row.id

    return _write(db, agent, debtor_id, expected_version, now, change)


def _plan_installments(
    debtor: Debtor,
    invoices: list[Invoice],
    *,
    first_date: date,
    frequency: Frequency,
    count: int | None,
    amount: Decimal | None,
    total: Decimal | None,
    now: datetime,
) -> tuple[Decimal, list[Installment]]:
    balance = _balance(invoices)
    total = balance if total is None else total
    today = _local_today(debtor, now)
    errors = []
    if first_date < today:
        errors.append(FieldError("first_date", "the first installment date is in the past"))
    elif first_date > today + timedelta(days=PLAN_START_HORIZON_DAYS):
        errors.append(
            FieldError(
                "first_date",
                f"the first installment is more than {PLAN_START_HORIZON_DAYS} days ahead",
            )
        )
    if total > balance:
        errors.append(
            FieldError(
                "total",
                f"the plan total is more than the balance ({_money(balance, debtor.currency)})",
            )
        )
    if errors:
        raise ValidationFailed(errors)
    try:
        installments = generate_installments(
            total, first_date, frequency, count=count, amount=amount
        )
    except ValueError as exc:
        raise ValidationFailed([FieldError("plan", str(exc))]) from None
    return to_money(total), installments


def preview_plan(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    *,
    first_date: date,
    frequency: Frequency,
    count: int | None = None,
    amount: Decimal | None = None,
    total: Decimal | None = None,
    now: datetime | None = None,
) -> list[Installment]:
    """The installments :func:`create_plan` would save with these inputs (nothing saved).

    ``total`` defaults to the open balance; raises :class:`ValidationFailed`.
    """
    now = _now(now)
    with db.session() as session:
        debtor = check_access(session, agent, debtor_id)
        _, installments = _plan_installments(
            debtor,
            _open_invoices(session, debtor_id),
            first_date=first_date,
            frequency=frequency,
            count=count,
            amount=amount,
            total=total,
            now=now,
        )
        return installments


def create_plan(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    first_date: date,
    frequency: Frequency,
    count: int | None = None,
    amount: Decimal | None = None,
    total: Decimal | None = None,
    contact_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Create a payment plan (installments are promises); returns the plan id.

    Replaces the active plan and the pending standalone promises. Outbox: the first
    installment's date as the expected payment date and a history note.
    """
    now = _now(now)

    def change(session: Session, debtor: Debtor) -> int:
        if contact_id is not None:
            owner = session.scalar(select(Contact.debtor_id).where(Contact.id == contact_id))
            if owner != debtor.id:
                raise ValidationFailed([FieldError("contact_id", "not a contact of this account")])
        invoices = _open_invoices(session, debtor.id)
        plan_total, installments = _plan_installments(
            debtor,
            invoices,
            first_date=first_date,
            frequency=frequency,
            count=count,
            amount=amount,
            total=total,
            now=now,
        )
        for old in session.scalars(
            select(PaymentPlan).where(
                PaymentPlan.debtor_id == debtor.id, PaymentPlan.status == "active"
            )
        ):
            _set_status(session, agent, old, "plan", "cancelled", debtor.id, now)
            for item in session.scalars(
                select(Promise).where(Promise.plan_id == old.id, Promise.status == "pending")
            ):
                _set_status(session, agent, item, "promise", "cancelled", debtor.id, now)
        _cancel_pending_promises(session, agent, debtor, now)
        target = invoices[0] if invoices else None
        plan = PaymentPlan(
            debtor_id=debtor.id,
            agent_id=agent.id,
            total=plan_total,
            currency=debtor.currency,
            frequency=frequency,
            first_date=first_date,
            installment_count=len(installments),
            status="active",
            created_at=now,
        )
        session.add(plan)
        session.flush()
        session.add_all(
            Promise(
                debtor_id=debtor.id,
                invoice_id=target.id if target else None,
                agent_id=agent.id,
                contact_id=contact_id,
                plan_id=plan.id,
                installment_no=item.no,
                amount=item.amount,
                currency=debtor.currency,
                due_date=item.due_date,
                status="pending",
                amount_paid=Decimal("0"),
                created_at=now,
            )
            for item in installments
        )
        after = {
            "total": plan_total,
            "currency": debtor.currency,
            "frequency": frequency,
            "first_date": first_date,
            "installments": [[i.no, i.due_date, i.amount] for i in installments],
        }
        audit.record(
            session, agent, "plan.created", "plan", plan.id, None, after, debtor.id, at=now
        )
        description = describe_plan(installments, frequency, debtor.currency)
        _outbox(
            session,
            "expected_payment_date",
            debtor.id,
            target,
            {"date": installments[0].due_date.isoformat()},
        )
        _history_note(
            session,
            debtor.id,
            target,
            f"Payment plan {_money(plan_total, debtor.currency)}: {description} "
            f"(agreed with {agent.display_name})",
        )
        return plan.id

    return _write(db, agent, debtor_id, expected_version, now, change)


def propose_settlement(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    amount: Decimal,
    due_date: date,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """Offer a discounted payoff below the balance; returns the settlement id.

    Within the agent's ``settlement_limit`` (the largest discount they may give) it is
    ``approved``; above it ``awaiting_approval`` by a supervisor. Never applied to the
    invoices automatically. Replaces the account's other live offers.
    """
    now = _now(now)

    def change(session: Session, debtor: Debtor) -> int:
        balance = _balance(_open_invoices(session, debtor.id))
        today = _local_today(debtor, now)
        errors = []
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            errors.append(FieldError("amount", "the amount must be more than zero"))
        elif amount != to_money(amount):
            errors.append(FieldError("amount", "the amount must be in whole cents"))
        elif amount >= balance:
            errors.append(
                FieldError(
                    "amount",
                    "a settlement must be less than the balance "
                    f"({_money(balance, debtor.currency)})",
                )
            )
        if due_date < today:
            errors.append(FieldError("due_date", "the settlement date is in the past"))
        elif due_date > today + timedelta(days=SETTLEMENT_HORIZON_DAYS):
            errors.append(
                FieldError(
                    "due_date",
                    f"the settlement date is more than {SETTLEMENT_HORIZON_DAYS} days ahead",
                )
            )
        if errors:
            raise ValidationFailed(errors)
        limit = session.scalar(select(Agent.settlement_limit).where(Agent.id == agent.id))
        limit = agent.settlement_limit if limit is None else limit
        discount = balance - amount
        approved = discount <= limit
        for old in session.scalars(
            select(Settlement).where(
                Settlement.debtor_id == debtor.id, Settlement.status.in_(LIVE_SETTLEMENT)
            )
        ):
            _set_status(session, agent, old, "settlement", "cancelled", debtor.id, now)
        row = Settlement(
            debtor_id=debtor.id,
            agent_id=agent.id,
            balance_at_offer=balance,
            amount=to_money(amount),
            currency=debtor.currency,
            due_date=due_date,
            status="approved" if approved else "awaiting_approval",
            decided_by_id=agent.id if approved else None,
            decided_at=now if approved else None,
            decision_note=("within the agent's authority" if approved else note),
            created_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            agent,
            "settlement.proposed",
            "settlement",
            row.id,
            None,
            audit.snapshot(row, _SETTLEMENT_FIELDS),
            debtor.id,
            at=now,
        )
        if approved:
            _settlement_note(session, debtor, row)
        return row.id

    return _write(db, agent, debtor_id, expected_version, now, change)


def _settlement_note(session: Session, debtor: Debtor, row: Settlement) -> None:
    invoices = _open_invoices(session, debtor.id)
    _history_note(
        session,
        debtor.id,
        invoices[0] if invoices else None,
        f"Settlement agreed: {_money(row.amount, row.currency)} by {row.due_date.isoformat()} "
        f"settles the balance of {_money(row.balance_at_offer, row.currency)}",
    )


def decide_settlement(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    settlement_id: int,
    approve: bool,
    note: str | None = None,
    now: datetime | None = None,
) -> None:
    """A supervisor approves or rejects a settlement awaiting approval."""
    now = _now(now)
    if not agent.is_supervisor:
        raise AccessDenied("only a supervisor may approve or reject a settlement")

    def change(session: Session, debtor: Debtor) -> None:
        if not is_supervisor_now(session, agent):  # demoted since signing in
            raise AccessDenied("only a supervisor may approve or reject a settlement")
        row = session.get(Settlement, settlement_id)
        if row is None or row.debtor_id != debtor.id:
            raise ValidationFailed([FieldError("settlement_id", "no such settlement here")])
        if row.status != "awaiting_approval":
            raise ValidationFailed(
                [FieldError("settlement_id", f"the settlement is {row.status.replace('_', ' ')}")]
            )
        _set_status(
            session,
            agent,
            row,
            "settlement",
            "approved" if approve else "rejected",
            debtor.id,
            now,
            decided_by_id=agent.id,
            decided_at=now,
            decision_note=note,
        )
        if approve:
            _settlement_note(session, debtor, row)

    _write(db, agent, debtor_id, expected_version, now, change)


def open_dispute(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    invoice_ids: list[int],
    reason: str,
    now: datetime | None = None,
) -> list[int]:
    """Open a dispute on each invoice (pauses collection); returns the dispute ids.

    Sets the debtor's dispute flag; outbox: a ``dispute`` message per invoice.
    """
    now = _now(now)
    reason = reason.strip()
    errors = []
    if not invoice_ids:
        errors.append(FieldError("invoice_ids", "pick at least one invoice"))
    if not reason:
        errors.append(FieldError("reason", "say why the debtor disputes"))
    if errors:
        raise ValidationFailed(errors)

    def change(session: Session, debtor: Debtor) -> list[int]:
        invoices = {inv.id: inv for inv in _open_invoices(session, debtor.id)}
        missing = [i for i in invoice_ids if i not in invoices]
        if missing:
            raise ValidationFailed(
                [FieldError("invoice_ids", f"not open invoices of this account: {missing}")]
            )
        already = set(
            session.scalars(
                select(Dispute.invoice_id).where(
                    Dispute.debtor_id == debtor.id,
                    Dispute.invoice_id.in_(invoice_ids),
                    Dispute.status.in_(OPEN_DISPUTE),
                )
            )
        )
        if already:
            numbers = ", ".join(invoices[i].number for i in sorted(already))
            raise ValidationFailed([FieldError("invoice_ids", f"already disputed: {numbers}")])
        ids = []
        for invoice_id in dict.fromkeys(invoice_ids):
            row = Dispute(
                debtor_id=debtor.id,
                invoice_id=invoice_id,
                agent_id=agent.id,
                reason=reason,
                status="open",
                received_on=_local_today(debtor, now),
                created_at=now,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
            audit.record(
                session,
                agent,
                "dispute.opened",
                "dispute",
                row.id,
                None,
                audit.snapshot(row, _DISPUTE_FIELDS),
                debtor.id,
                at=now,
            )
            _outbox(
                session,
                "dispute",
                debtor.id,
                invoices[invoice_id],
                {"details": _clip(f"Disputed: {reason}")},
            )
        _set_flag(session, agent, debtor, "dispute", True, now)
        return ids

    return _write(db, agent, debtor_id, expected_version, now, change)


def resolve_dispute(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    dispute_id: int,
    resolution: str,
    now: datetime | None = None,
) -> None:
    """Resolve an open dispute; the dispute flag clears when none is left open."""
    now = _now(now)
    resolution = resolution.strip()
    if not resolution:
        raise ValidationFailed([FieldError("resolution", "say how the dispute was resolved")])

    def change(session: Session, debtor: Debtor) -> None:
        row = session.get(Dispute, dispute_id)
        if row is None or row.debtor_id != debtor.id:
            raise ValidationFailed([FieldError("dispute_id", "no such dispute on this account")])
        if row.status not in OPEN_DISPUTE:
            raise ValidationFailed([FieldError("dispute_id", "the dispute is already resolved")])
        before = {"status": row.status, "resolved_at": None}
        row.status = "resolved"
        row.resolved_at = now
        after = {"status": "resolved", "resolved_at": now, "resolution": resolution}
        audit.record(
            session, agent, "dispute.resolved", "dispute", row.id, before, after, debtor.id, at=now
        )
        session.flush()
        still_open = session.scalar(
            select(func.count()).where(
                Dispute.debtor_id == debtor.id, Dispute.status.in_(OPEN_DISPUTE)
            )
        )
        if not still_open:
            _set_flag(session, agent, debtor, "dispute", False, now)
        invoice = session.get(Invoice, row.invoice_id) if row.invoice_id else None
        _history_note(session, debtor.id, invoice, f"Dispute resolved: {resolution}")

    _write(db, agent, debtor_id, expected_version, now, change)


def schedule_callback(
    db: Database,
    agent: AgentInfo,
    debtor_id: int,
    expected_version: int,
    *,
    local_date: date,
    local_time: time,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """Schedule a callback at a date and time on the DEBTOR's clock; returns the task id.

    Stored in UTC; a time in the past, or one the clocks skip, is refused. It replaces
    the account's other open callbacks and becomes the debtor's next action.
    """
    now = _now(now)

    def change(session: Session, debtor: Debtor) -> int:
        return _add_callback(session, agent, debtor, Callback(local_date, local_time, note), now).id

    return _write(db, agent, debtor_id, expected_version, now, change)


# --- promise evaluation (a system job) ---------------------------------------------------


def evaluate_promises(
    db: Database,
    *,
    today: date,
    debtor_ids: Sequence[int] | None = None,
    grace_days: int = DEFAULT_GRACE_DAYS,
    now: datetime | None = None,
) -> int:
    """Set the status of pending promises and installments from the payments received.

    Each changed promise is audited (actor ``system``); a plan is ``completed`` when all
    its installments are kept and ``broken`` when one is broken. The accounts touched
    are rescored (a broken promise raises priority). Does not bump the debtors'
    version: agents with the account open are not forced to reload. Returns the number
    of promises whose status changed.
    """
    now = _now(now)
    changed = 0
    with db.session() as session:
        query = select(Promise.debtor_id).where(Promise.status == "pending").distinct()
        if debtor_ids is not None:
            candidates = sorted(set(debtor_ids))
        else:
            candidates = sorted(session.scalars(query))
        touched: list[int] = []
        for start in range(0, len(candidates), _ID_CHUNK):
            chunk = candidates[start : start + _ID_CHUNK]
            count, debtors_changed = _evaluate_chunk(session, chunk, today, grace_days, now)
            changed += count
            touched += debtors_changed
        if touched:
            _rescore(session, touched, now)
    return changed


def _evaluate_chunk(
    session: Session, debtor_ids: list[int], today: date, grace_days: int, now: datetime
) -> tuple[int, list[int]]:
    pending = list(
        session.scalars(
            select(Promise).where(Promise.debtor_id.in_(debtor_ids), Promise.status == "pending")
        )
    )
    if not pending:
        return 0, []
    payments: dict[int, list[tuple[date, Decimal]]] = {}
    for debtor_id, paid_on, amount in session.execute(
        select(Payment.debtor_id, Payment.paid_on, Payment.amount).where(
            Payment.debtor_id.in_({p.debtor_id for p in pending}), Payment.status == "active"
        )
    ):
        payments.setdefault(debtor_id, []).append((paid_on, amount))

    results: dict[int, tuple[str, Decimal]] = {}
    for p in pending:
        if p.plan_id is None:
            outcome = evaluate_promise(
                p.amount,
                p.due_date,
                payments.get(p.debtor_id, []),
                today=today,
                grace_days=grace_days,
                created_on=p.created_at.astimezone(UTC).date(),
            )
            results[p.id] = (outcome.status, outcome.paid)
    plan_ids = {p.plan_id for p in pending if p.plan_id is not None}
    plans = {
        plan.id: plan
        for plan in session.scalars(select(PaymentPlan).where(PaymentPlan.id.in_(plan_ids)))
    }
    installments: dict[int, list[Promise]] = {}
    if plan_ids:
        for item in session.scalars(
            select(Promise)
            .where(Promise.plan_id.in_(plan_ids), Promise.status != "cancelled")
            .order_by(Promise.plan_id, Promise.installment_no, Promise.id)
        ):
            installments.setdefault(item.plan_id or 0, []).append(item)
    for plan_id, items in installments.items():
        plan = plans[plan_id]
        outcomes = evaluate_installments(
            [(i.amount, i.due_date) for i in items],
            payments.get(plan.debtor_id, []),
            today=today,
            grace_days=grace_days,
            created_on=plan.created_at.astimezone(UTC).date(),
        )
        for item, outcome in zip(items, outcomes, strict=True):
            if item.status == "pending":
                results[item.id] = (outcome.status, outcome.paid)

    changed = 0
    touched: set[int] = set()
    for p in pending:
        status, paid = results[p.id]
        paid = to_money(paid)
        if status == p.status and paid == p.amount_paid:
            continue
        if status != p.status:
            changed += 1
            touched.add(p.debtor_id)
            _set_status(
                session,
                SYSTEM,
                p,
                "promise",
                status,
                p.debtor_id,
                now,
                amount_paid=paid,
                evaluated_at=now,
            )
        else:
            p.amount_paid = paid
            p.evaluated_at = now
    for plan_id, items in installments.items():
        plan = plans[plan_id]
        statuses = {i.status for i in items}
        new = plan.status
        if "broken" in statuses:
            new = "broken"
        elif statuses == {"kept"}:
            new = "completed"
        if new != plan.status and plan.status == "active":
            _set_status(session, SYSTEM, plan, "plan", new, plan.debtor_id, now)
            touched.add(plan.debtor_id)
    return changed, sorted(touched)


__all__ = [
    "TIMELINE_KINDS",
    "AccessDenied",
    "AccountNotFound",
    "LatestChange",
    "AccountView",
    "Callback",
    "CallbackView",
    "DebtorView",
    "DisputeView",
    "EmailView",
    "Freshness",
    "InvoiceView",
    "PaymentView",
    "PhoneView",
    "PlanView",
    "PromiseInput",
    "PromiseView",
    "SettlementView",
    "StaleEdit",
    "TimelineEntry",
    "TimelineKind",
    "ValidationFailed",
    "check_access",
    "create_plan",
    "decide_settlement",
    "evaluate_promises",
    "latest_change",
    "load_account",
    "load_timeline",
    "log_contact",
    "make_promise",
    "open_dispute",
    "preview_plan",
    "propose_settlement",
    "resolve_dispute",
    "schedule_callback",
]
