"""Running the collection rule: due steps become tasks, automatic ones are delivered.

:func:`run_cadence` is one pass (``collect-tui cadence`` and the app at start):

1. **Tasks, set-based.** In one transaction, for every segment and step, one
   ``INSERT ... SELECT`` turns the open invoices whose *current* step (see
   :mod:`collect_tui.domain.cadence`) has no task yet into ``cadence`` tasks, skipping
   invoices the step is suspended for (pending promise, open dispute, collection hold;
   contact steps also for accounts flagged cease communication, bankruptcy or deceased).
   A few ``UPDATE`` statements then close open cadence tasks of invoices no longer open
   ("invoice paid"), supersede a step when the invoice's next one was created, suspend
   or resume tasks as promises and disputes come and go, and complete call and letter
   tasks an agent logged the matching outbound contact for. The priority facts and
   scores are then refreshed (``cadence_due_at`` feeds the "cadence step due" reason).
   The ``(debtor, invoice, step)`` unique key means a step is never repeated.
2. **Delivery.** Each open email or SMS task due by now is checked again (invoice still
   open, an address that may be used, :func:`~collect_tui.domain.compliance.outbound_decision`
   allows it now, creditor named), rendered, marked ``sending`` and committed, sent, then
   marked ``done`` with a contact row on the timeline in a second transaction. A crash
   between the two leaves it ``sending``: it is reported, never sent again (at most once).
   A block that passes (contact window, call cap, hold with an end) leaves the task open
   for a later run; a lasting one (cease, dispute, do-not-contact, no address) cancels it
   with the reason.

``dry_run`` does the same work in a transaction that is rolled back and sends nothing;
the report lists the messages that would go out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.orm import Session, aliased

from collect_tui import clock
from collect_tui.domain.cadence import CONTACT_ACTIONS, DEFAULT_SEGMENT, Cadence, CadenceStep
from collect_tui.services import audit, compliance_config
from collect_tui.services.compliance import outbound_decision_for
from collect_tui.services.compliance_config import ComplianceConfig
from collect_tui.services.daily import cadence_needed, last_cadence_run, record_cadence_run
from collect_tui.services.database import Database
from collect_tui.services.delivery import (
    DeliveryError,
    EmailSender,
    Message,
    SmsProvider,
    TemplateRenderer,
    email_sender_for,
    sms_provider_for,
)
from collect_tui.storage.models import (
    CollectionHold,
    Contact,
    Debtor,
    Dispute,
    Email,
    Invoice,
    Phone,
    Promise,
    Task,
)
from collect_tui.storage.scoring import rescore

ACTOR = "cadence"
SENT_DISPOSITION = "message_sent"
# Block codes that pass with time: the task stays open for a later run.
PASSING_BLOCKS = frozenset({"contact_window", "call_frequency", "hold"})
# Above this many changed tasks the whole portfolio is rescored in one pass.
FULL_RESCORE_THRESHOLD = 20_000
# Contacts logged this long before the previous run are looked at again (late logging).
RECENT_CONTACT_MARGIN = timedelta(days=3)
# Invoice statuses that end an invoice's cadence.
CLOSED_INVOICE_STATUSES = ("paid", "voided", "deleted")
NOTE_LIMIT = 500

tasks = Task.__table__
invoices = Invoice.__table__
debtors = Debtor.__table__


@dataclass(frozen=True)
class MessageOutcome:
    """What happened (or would happen) to one automatic step."""

    task_id: int
    debtor_id: int
    channel: str
    step_key: str
    outcome: str  # sent|would_send|waiting|cancelled|failed
    to: str | None = None
    subject: str = ""
    reason: str = ""
    body: str = ""


@dataclass
class CadenceReport:
    """The counts of one run and the messages it sent or would send."""

    now: datetime
    dry_run: bool
    created: Counter[str] = field(default_factory=Counter)
    superseded: int = 0
    closed_not_open: int = 0
    suspended: int = 0
    resumed: int = 0
    completed: int = 0
    rescored: int = 0
    messages: list[MessageOutcome] = field(default_factory=list)
    stuck_sending: int = 0
    task_seconds: float = 0.0
    delivery_seconds: float = 0.0

    @property
    def created_total(self) -> int:
        """Tasks created, all steps."""
        return sum(self.created.values())

    def count(self, outcome: str) -> int:
        """How many messages had ``outcome``."""
        return sum(1 for m in self.messages if m.outcome == outcome)

    def summary(self) -> str:
        """A few lines for the command line."""
        verb = "would create" if self.dry_run else "created"
        steps = ", ".join(f"{key} {n:,}" for key, n in sorted(self.created.items())) or "none"
        lines = [
            f"cadence {self.now:%Y-%m-%d %H:%M} UTC"
            + (" (dry run: nothing saved or sent)" if self.dry_run else ""),
            f"tasks: {verb} {self.created_total:,} ({steps}); superseded {self.superseded:,}; "
            f"closed (invoice not open) {self.closed_not_open:,}; suspended {self.suspended:,}; "
            f"resumed {self.resumed:,}; completed by logged contacts {self.completed:,}",
            f"messages: sent {self.count('sent'):,}, would send {self.count('would_send'):,}, "
            f"waiting {self.count('waiting'):,}, cancelled {self.count('cancelled'):,}, "
            f"failed {self.count('failed'):,}"
            + (
                f"; {self.stuck_sending} left 'sending' by an earlier crash"
                if self.stuck_sending
                else ""
            ),
            f"time: tasks {self.task_seconds:.2f}s, delivery {self.delivery_seconds:.2f}s",
        ]
        return "\n".join(lines)


# --- SQL pieces ----------------------------------------------------------------------------


def _step_day(dialect: str, offset: int) -> ColumnElement[Any]:
    """``invoices.due_date + offset`` days at 00:00 UTC, in the storage format of each engine."""
    if dialect == "sqlite":  # UTCDateTime text: 'YYYY-MM-DD HH:MM:SS.ffffff'
        return func.datetime(invoices.c.due_date, f"{offset:+d} days").concat(".000000")
    return cast(invoices.c.due_date + literal(offset), DateTime)


def _segment_clause(segment: str, configured: Sequence[str]) -> ColumnElement[bool]:
    """Debtors whose cadence is ``segment``'s (the standard one takes every other segment)."""
    if segment != DEFAULT_SEGMENT:
        return debtors.c.segment == segment
    others = [s for s in configured if s != DEFAULT_SEGMENT]
    return debtors.c.segment.not_in(others) if others else true()


def _promise_pending(debtor_id: Any, invoice_id: Any) -> ColumnElement[bool]:
    p = Promise.__table__
    return exists().where(
        p.c.debtor_id == debtor_id,
        p.c.status == "pending",
        or_(p.c.invoice_id.is_(None), p.c.invoice_id == invoice_id),
    )


def _dispute_open(debtor_id: Any, invoice_id: Any) -> ColumnElement[bool]:
    d = Dispute.__table__
    me = debtors.alias("dispute_flag")
    return or_(
        exists().where(me.c.id == debtor_id, me.c.dispute.is_(True)),
        exists().where(
            d.c.debtor_id == debtor_id,
            d.c.status == "open",
            or_(d.c.invoice_id.is_(None), d.c.invoice_id == invoice_id),
        ),
    )


def _hold_active(debtor_id: Any, invoice_id: Any, today: date) -> ColumnElement[bool]:
    h = CollectionHold.__table__
    return exists().where(
        h.c.debtor_id == debtor_id,
        or_(h.c.invoice_id.is_(None), h.c.invoice_id == invoice_id),
        or_(h.c.until.is_(None), h.c.until >= today),
    )


def _flags_block(debtor_id: Any) -> ColumnElement[bool]:
    me = debtors.alias("contact_flags")
    return exists().where(
        me.c.id == debtor_id,
        or_(
            me.c.cease_communication.is_(True),
            me.c.bankruptcy.is_(True),
            me.c.deceased.is_(True),
        ),
    )


def _suspended(
    step: CadenceStep, debtor_id: Any, invoice_id: Any, today: date
) -> ColumnElement[bool]:
    """SQL: ``step`` is suspended for this debtor and invoice today."""
    conditions: list[ColumnElement[bool]] = [_hold_active(debtor_id, invoice_id, today)]
    if "promise" in step.suspend_on:
        conditions.append(_promise_pending(debtor_id, invoice_id))
    if "dispute" in step.suspend_on:
        conditions.append(_dispute_open(debtor_id, invoice_id))
    if step.action in CONTACT_ACTIONS:
        conditions.append(_flags_block(debtor_id))
    return or_(*conditions)


def _create_statement(
    dialect: str,
    step: CadenceStep,
    start: int,
    end: int | None,
    segment_clause: ColumnElement[bool],
    today: date,
    now: datetime,
) -> Any:
    existing = aliased(Task)
    due = invoices.c.due_date
    query = (
        select(
            invoices.c.debtor_id,
            invoices.c.id,
            null() if step.action == "escalate" else debtors.c.assigned_agent_id,
            literal("cadence"),
            literal(step.key),
            _step_day(dialect, step.offset_days),
            literal("open"),
            literal(_note(step)),
            literal(now, type_=Task.__table__.c.created_at.type),
            literal(1),
        )
        .select_from(invoices.join(debtors, debtors.c.id == invoices.c.debtor_id))
        .where(
            invoices.c.status == "open",
            invoices.c.amount_due > 0,
            due <= today - timedelta(days=start),
            segment_clause,
            ~exists().where(
                existing.debtor_id == invoices.c.debtor_id,
                existing.invoice_id == invoices.c.id,
                existing.step_key == step.key,
            ),
            ~_suspended(step, invoices.c.debtor_id, invoices.c.id, today),
        )
    )
    if end is not None:
        query = query.where(due > today - timedelta(days=end))
    columns = [
        "debtor_id",
        "invoice_id",
        "agent_id",
        "kind",
        "step_key",
        "due_at",
        "status",
        "note",
        "created_at",
        "version",
    ]
    return insert(tasks).from_select(columns, query)


def _note(step: CadenceStep) -> str:
    text = f"cadence {step.label}"
    if step.description:
        text += f": {step.description}"
    if step.action == "escalate":
        text += " (escalate to a supervisor)"
    return text


def _open_cadence() -> ColumnElement[bool]:
    return and_(tasks.c.kind == "cadence", tasks.c.status.in_(("open", "suspended")))


def _closed(status: str, note: str, now: datetime) -> dict[Any, Any]:
    return {
        tasks.c.status: status,
        tasks.c.note: note,
        tasks.c.done_at: now,
        tasks.c.version: tasks.c.version + 1,
    }


def _in_segment(segment_clause: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(debtors.c.id == tasks.c.debtor_id, segment_clause)


# --- phase 1: tasks -----------------------------------------------------------------------


def _segments(config: ComplianceConfig) -> list[tuple[str, Cadence]]:
    return sorted(config.cadences.items())


def _unindexed(column: ColumnElement[str]) -> ColumnElement[str]:
    """``column || ''``: the same value, but the planner will not pick an index on it (the
    status index would read every open task; the selective condition next to it should
    drive instead)."""
    return column.concat("")


def _suspect_debtors(today: date) -> Any:
    """Debtors any step may be suspended for (a small set: drives the suspend updates)."""
    p, d, h = Promise.__table__, Dispute.__table__, CollectionHold.__table__
    return union(
        select(p.c.debtor_id).where(p.c.status == "pending"),
        select(d.c.debtor_id).where(d.c.status == "open"),
        select(h.c.debtor_id).where(or_(h.c.until.is_(None), h.c.until >= today)),
        select(debtors.c.id).where(
            or_(
                debtors.c.dispute.is_(True),
                debtors.c.cease_communication.is_(True),
                debtors.c.bankruptcy.is_(True),
                debtors.c.deceased.is_(True),
            )
        ),
    )


def update_tasks(
    session: Session,
    config: ComplianceConfig,
    now: datetime,
    report: CadenceReport,
    *,
    rescore_after: bool = True,
) -> None:
    """Phase 1 in the session's transaction (see the module docstring).

    The updates are driven by small sets where they can be: suspensions by the debtors
    with a pending promise, open dispute, hold or flag; completions by the contacts
    logged since the previous run (and the new tasks); supersession by the new tasks.
    """
    conn = session.connection()
    dialect = conn.dialect.name
    today = now.astimezone(UTC).date()
    configured = [segment for segment, _ in _segments(config)]
    touched: set[int] = set()
    previous = last_cadence_run(session)
    first_new = (conn.execute(select(func.max(tasks.c.id))).scalar() or 0) + 1
    new_task_debtors = select(tasks.c.debtor_id).where(tasks.c.id >= first_new)

    def run(stmt: Any) -> int:
        rows = conn.execute(stmt.returning(tasks.c.debtor_id)).all()
        touched.update(r[0] for r in rows)
        return len(rows)

    # Invoices paid, voided or deleted: their open steps are over.
    # (An open invoice with nothing due gets no new step and no message; it closes when
    # the accounting system marks it paid.)
    closed = select(invoices.c.id).where(invoices.c.status.in_(CLOSED_INVOICE_STATUSES))
    report.closed_not_open += run(
        update(tasks)
        .where(tasks.c.invoice_id.in_(closed), _open_cadence())
        .values(_closed("cancelled", "invoice no longer open (paid, voided or deleted)", now))
    )

    for segment, cadence in _segments(config):
        in_segment = _segment_clause(segment, configured)
        for step, start, end in cadence.windows():
            created = run(_create_statement(dialect, step, start, end, in_segment, today, now))
            if created:
                report.created[step.key] += created
            suspended = _suspended(step, tasks.c.debtor_id, tasks.c.invoice_id, today)
            mine = and_(
                tasks.c.kind == "cadence", tasks.c.step_key == step.key, _in_segment(in_segment)
            )
            report.suspended += run(
                update(tasks)
                .where(
                    _unindexed(tasks.c.status) == "open",
                    tasks.c.debtor_id.in_(_suspect_debtors(today)),
                    mine,
                    suspended,
                )
                .values({tasks.c.status: "suspended", tasks.c.version: tasks.c.version + 1})
            )
            report.resumed += run(
                update(tasks)
                .where(tasks.c.status == "suspended", mine, ~suspended)
                .values({tasks.c.status: "open", tasks.c.version: tasks.c.version + 1})
            )
            if step.action in ("call", "letter"):
                c = Contact.__table__
                logged = exists().where(
                    c.c.debtor_id == tasks.c.debtor_id,
                    c.c.channel == step.action,
                    c.c.direction == "outbound",
                    c.c.started_at >= tasks.c.due_at,
                )
                # Only new tasks and the debtors with a contact since the previous run
                # can have changed (two statements: each reads its own index).
                candidates: list[ColumnElement[bool]] = [true()]
                if previous is not None:
                    recent = select(c.c.debtor_id).where(
                        c.c.started_at >= previous - RECENT_CONTACT_MARGIN,
                        c.c.channel == step.action,
                    )
                    candidates = [tasks.c.id >= first_new, tasks.c.debtor_id.in_(recent)]
                for candidate in candidates:
                    report.completed += run(
                        update(tasks)
                        .where(candidate, _unindexed(tasks.c.status) == "open", mine, logged)
                        .values(
                            {
                                tasks.c.status: "done",
                                tasks.c.done_at: now,
                                tasks.c.version: tasks.c.version + 1,
                            }
                        )
                    )

    # A step is over once the invoice's next step has its task (only new tasks do that).
    later = aliased(Task)
    newer = exists().where(
        later.debtor_id == tasks.c.debtor_id,
        later.invoice_id == tasks.c.invoice_id,
        later.kind == "cadence",
        later.due_at > tasks.c.due_at,
    )
    report.superseded += run(
        update(tasks)
        .where(
            tasks.c.debtor_id.in_(new_task_debtors),
            _open_cadence(),
            tasks.c.invoice_id.is_not(None),
            newer,
        )
        .values(_closed("cancelled", "superseded by the invoice's next step", now))
    )
    report.stuck_sending = (
        conn.execute(
            select(func.count()).where(tasks.c.kind == "cadence", tasks.c.status == "sending")
        ).scalar_one()
        or 0
    )
    if touched and rescore_after:
        ids = sorted(touched)
        report.rescored = (
            rescore(conn, today=today, now=now)
            if len(ids) > FULL_RESCORE_THRESHOLD
            else rescore(conn, today=today, now=now, debtor_ids=ids)
        )
    record_cadence_run(session, now)


# --- phase 2: delivery ----------------------------------------------------------------------


@dataclass
class _Candidate:
    task_id: int
    debtor_id: int
    invoice_id: int | None
    step: CadenceStep


def _due_automatic(session: Session, config: ComplianceConfig, now: datetime) -> list[_Candidate]:
    keys = {
        step.key for _, cadence in _segments(config) for step in cadence.steps if step.automatic
    }
    if not keys:
        return []
    rows = session.execute(
        select(Task.id, Task.debtor_id, Task.invoice_id, Task.step_key, Debtor.segment)
        .join(Debtor, Debtor.id == Task.debtor_id)
        .where(
            Task.kind == "cadence",
            Task.status == "open",
            Task.due_at <= now,
            Task.step_key.in_(sorted(keys)),
        )
        .order_by(Task.due_at, Task.id)
    ).all()
    found = []
    for task_id, debtor_id, invoice_id, key, segment in rows:
        cadence = config.cadences.get(segment) or config.cadences.get(DEFAULT_SEGMENT)
        step = cadence.step(key) if cadence else None
        if step is not None and step.automatic:
            found.append(_Candidate(task_id, debtor_id, invoice_id, step))
    return found


def _address(session: Session, debtor_id: int, channel: str) -> str | None:
    if channel == "email":
        return session.scalar(
            select(Email.address)
            .where(Email.debtor_id == debtor_id, Email.do_not_email.is_(False))
            .order_by(Email.id)
            .limit(1)
        )
    return session.scalar(
        select(Phone.number)
        .where(
            Phone.debtor_id == debtor_id,
            Phone.sms_consent.is_(True),
            Phone.do_not_call.is_(False),
        )
        .order_by(Phone.kind != "mobile", Phone.id)
        .limit(1)
    )


def _prepare(
    session: Session,
    candidate: _Candidate,
    config: ComplianceConfig,
    renderer: TemplateRenderer,
    now: datetime,
) -> tuple[Message | None, str, str]:
    """The message for a due step, or None with (outcome, reason)."""
    step = candidate.step
    debtor = session.get(Debtor, candidate.debtor_id)
    invoice = session.get(Invoice, candidate.invoice_id) if candidate.invoice_id else None
    if debtor is None:
        return None, "cancelled", "account no longer exists"
    if invoice is None or invoice.status != "open" or invoice.amount_due <= 0:
        return None, "cancelled", "invoice no longer open (paid, voided or deleted)"
    channel = step.action
    address = _address(session, debtor.id, channel)
    if address is None:
        what = "email address" if channel == "email" else "mobile number with SMS consent"
        return None, "cancelled", f"no usable {what} (none on file, or do-not-contact)"
    decision = outbound_decision_for(
        session, debtor, channel, address, now, invoice_ids=[invoice.id]
    )
    if not decision.allowed:
        if decision.code in PASSING_BLOCKS and decision.next_allowed_at is not None:
            return None, "waiting", decision.reason
        return None, "cancelled", decision.reason
    try:
        message = renderer.render(
            step,
            channel=channel,
            to=address,
            debtor=debtor,
            invoice=invoice,
            creditor=config.creditor,
            now=now,
            task_id=candidate.task_id,
        )
    except DeliveryError as exc:  # a template problem: fix the file, the step stays open
        return None, "failed", str(exc)
    return message, "ready", ""


def _set_task(session: Session, task_id: int, status: str, note: str | None, now: datetime) -> None:
    values: dict[Any, Any] = {tasks.c.status: status, tasks.c.version: tasks.c.version + 1}
    if note is not None:
        values[tasks.c.note] = note[:NOTE_LIMIT]
    if status in ("done", "cancelled"):
        values[tasks.c.done_at] = now
    session.execute(update(tasks).where(tasks.c.id == task_id).values(values))


def _claim(session: Session, task_id: int) -> bool:
    """Take the task for sending: ``open`` -> ``sending`` (False if someone else did)."""
    result = session.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == "open")
        .values({tasks.c.status: "sending", tasks.c.version: tasks.c.version + 1})
    )
    return result.rowcount == 1


def _record_sent(
    session: Session, candidate: _Candidate, message: Message, ref: str, now: datetime
) -> int:
    contact = Contact(
        debtor_id=candidate.debtor_id,
        agent_id=None,
        channel=message.channel,
        direction="outbound",
        address=message.to[:254],
        started_at=now,
        disposition=SENT_DISPOSITION,
        conversation=False,
        notes=f"{candidate.step.label} ({candidate.step.key}): {message.subject or message.body}"[
            :NOTE_LIMIT
        ],
        created_at=now,
    )
    session.add(contact)
    session.flush()
    _set_task(session, candidate.task_id, "done", f"{_note(candidate.step)}; sent {ref}", now)
    audit.record(
        session,
        ACTOR,
        "cadence.message_sent",
        "contact",
        contact.id,
        None,
        {
            "task_id": candidate.task_id,
            "step": candidate.step.key,
            "channel": message.channel,
            "to": message.to,
            "subject": message.subject,
            "provider_ref": ref,
        },
        candidate.debtor_id,
        at=now,
    )
    return contact.id


def deliver_due(
    db: Database,
    config: ComplianceConfig,
    now: datetime,
    report: CadenceReport,
    *,
    email_sender: EmailSender | None = None,
    sms_provider: SmsProvider | None = None,
    session: Session | None = None,
) -> None:
    """Phase 2: send every due email/SMS step (or, with ``session``, only say what would go).

    With ``session`` (the dry run's, rolled back afterwards) nothing is claimed or sent.
    """
    renderer = TemplateRenderer(config)
    if session is not None:
        for candidate in _due_automatic(session, config, now):
            message, outcome, reason = _prepare(session, candidate, config, renderer, now)
            report.messages.append(
                _outcome(candidate, message, "would_send" if message else outcome, reason)
            )
        return

    with db.session() as s:
        candidates = _due_automatic(s, config, now)
    if not candidates:
        return
    senders: dict[str, Callable[[Message], str]] = {}
    sent_to: list[int] = []
    for candidate in candidates:
        with db.session() as s:
            message, outcome, reason = _prepare(s, candidate, config, renderer, now)
            if message is None:
                if outcome == "cancelled":
                    _set_task(s, candidate.task_id, "cancelled", f"not sent: {reason}", now)
                report.messages.append(_outcome(candidate, None, outcome, reason))
                continue
            if not _claim(s, candidate.task_id):
                continue
        try:
            send = senders.get(message.channel)
            if send is None:
                send = senders[message.channel] = (
                    (email_sender or email_sender_for(config)).send
                    if message.channel == "email"
                    else (sms_provider or sms_provider_for(config)).send
                )
            ref = send(message)
        except DeliveryError as exc:
            with db.session() as s:
                _set_task(
                    s,
                    candidate.task_id,
                    "open",
                    f"{_note(candidate.step)}; last attempt failed: {exc}",
                    now,
                )
            report.messages.append(_outcome(candidate, message, "failed", str(exc)))
            continue
        with db.session() as s:
            _record_sent(s, candidate, message, ref, now)
        sent_to.append(candidate.debtor_id)
        report.messages.append(_outcome(candidate, message, "sent", ref))
    if sent_to:
        with db.session() as s:
            rescore(s.connection(), today=now.astimezone(UTC).date(), now=now, debtor_ids=sent_to)


def _outcome(
    candidate: _Candidate, message: Message | None, outcome: str, reason: str
) -> MessageOutcome:
    return MessageOutcome(
        task_id=candidate.task_id,
        debtor_id=candidate.debtor_id,
        channel=candidate.step.action,
        step_key=candidate.step.key,
        outcome=outcome,
        to=message.to if message else None,
        subject=message.subject if message else "",
        reason=reason,
        body=message.body if message else "",
    )


class _DryRunDone(Exception):
    """Raised to roll the dry run's transaction back."""


def run_cadence(
    db: Database,
    *,
    now: datetime | None = None,
    config: ComplianceConfig | None = None,
    dry_run: bool = False,
    deliver: bool = True,
    email_sender: EmailSender | None = None,
    sms_provider: SmsProvider | None = None,
    rescore: bool = True,
) -> CadenceReport:
    """One cadence pass: due steps become tasks, then automatic steps are delivered.

    ``config``: default the installed one. ``deliver=False`` only creates tasks (and
    with the configuration's ``delivery.enabled = false`` nothing is sent either).
    ``rescore=False`` leaves the priority facts to a full rescore the caller runs next
    (the app's daily pass).
    """
    now = now or clock.now()
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now; attach a time zone")
    config = config or compliance_config.active()
    report = CadenceReport(now=now, dry_run=dry_run)
    deliver = deliver and config.delivery.enabled
    if dry_run:
        try:
            with db.session() as session:
                started = time.perf_counter()
                update_tasks(session, config, now, report, rescore_after=rescore)
                report.task_seconds = time.perf_counter() - started
                started = time.perf_counter()
                if deliver:
                    deliver_due(db, config, now, report, session=session)
                report.delivery_seconds = time.perf_counter() - started
                raise _DryRunDone
        except _DryRunDone:
            pass
        return report
    started = time.perf_counter()
    with db.session() as session:
        update_tasks(session, config, now, report, rescore_after=rescore)
    report.task_seconds = time.perf_counter() - started
    if deliver:
        started = time.perf_counter()
        deliver_due(db, config, now, report, email_sender=email_sender, sms_provider=sms_provider)
        report.delivery_seconds = time.perf_counter() - started
    return report


__all__ = [
    "CadenceReport",
    "cadence_needed",
    "MessageOutcome",
    "deliver_due",
    "run_cadence",
    "update_tasks",
]
