"""Compliance against the database: the outbound gate and the cached call block.

:func:`subject_for` gathers what :func:`~collect_tui.domain.compliance.outbound_decision`
needs about one account (flags, holds, disputes, do-not-contact addresses, its calls);
:func:`check_outbound` refuses an outbound contact that the rules block, with the reason
(:class:`ComplianceBlocked`, a :class:`~collect_tui.services.workspace.ValidationFailed`);
inbound contacts are never checked. :func:`refresh_contact_block` keeps the debtor's
``contact_blocked_until`` / ``contact_block_reason`` cache (call cap, account hold) that
the queue's "contactable now" reads. The rules are the installed configuration's
(:func:`collect_tui.services.compliance_config.active`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any, Literal, Protocol, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    CompoundSelect,
    Connection,
    Date,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from collect_tui.domain.compliance import (
    CHANNELS,
    CallEvent,
    Channel,
    CollectionHold,
    ContactSubject,
    Decision,
    DisputeInfo,
    RuleSet,
    call_frequency_decision,
    outbound_decision,
)
from collect_tui.domain.promises import FieldError
from collect_tui.domain.zones import zone_or_utc
from collect_tui.services import compliance_config
from collect_tui.services.workspace import ValidationFailed
from collect_tui.storage.models import CollectionHold as HoldRow
from collect_tui.storage.models import Contact, Debtor, Dispute, Email, Phone

# How far back calls are read: enough for any 7-day period plus a 7-day quiet period.
HISTORY_DAYS = 31
# Stored as the end of an indefinite hold in the cache (a date no one will reach).
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
REASON_LIMIT = 200


class ComplianceBlocked(ValidationFailed):
    """An outbound contact the compliance rules do not allow; ``decision`` says why."""

    def __init__(self, decision: Decision, channel: str) -> None:
        self.decision = decision
        when = ""
        if decision.next_allowed_at is not None:
            when = f" (allowed again from {decision.next_allowed_at:%Y-%m-%d %H:%M} UTC)"
        super().__init__(
            [FieldError("channel", f"outbound {channel} not allowed: {decision.reason}{when}")]
        )


class DebtorColumns(Protocol):
    """What the checks read of an account: a loaded ``Debtor``, or a row of its columns
    (the save on PostgreSQL reads one without loading the ORM object)."""

    @property
    def id(self) -> int: ...
    @property
    def country(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def time_zone(self) -> str | None: ...
    @property
    def cease_communication(self) -> bool: ...
    @property
    def dispute(self) -> bool: ...
    @property
    def bankruptcy(self) -> bool: ...
    @property
    def deceased(self) -> bool: ...
    @property
    def time_barred(self) -> bool: ...
    @property
    def validation_notice_on(self) -> date | None: ...


def _zone_name(name: str | None) -> str:
    return zone_or_utc(name).key


def rules_for(debtor: DebtorColumns) -> RuleSet:
    """The effective rules of the debtor's jurisdiction, from the installed configuration."""
    return compliance_config.active().rules_for(debtor.country or "US", debtor.region)


def _recent_calls() -> list[ColumnElement[bool]]:
    """SQL conditions: the calls and texts of the debtor ``debtor_id`` since ``since``."""
    contacts = Contact.__table__.c
    return [
        contacts.debtor_id == bindparam("debtor_id", type_=Integer),
        contacts.channel.in_(("call", "sms")),
        contacts.started_at >= bindparam("since", type_=contacts.started_at.type),
    ]


def subject_branches(with_calls: bool, *padding: ColumnElement[Any]) -> list[Select[Any]]:
    """The branches of :func:`_subject_statement`, each followed by the ``padding``
    columns (typed NULLs), so that a caller can add branches of its own to the same read
    (:func:`subject_and_calls_from` then leaves their rows out)."""
    holds, disputes = HoldRow.__table__.c, Dispute.__table__.c
    phones, emails = Phone.__table__.c, Email.__table__.c
    contacts = Contact.__table__.c
    debtor_id = bindparam("debtor_id", type_=Integer)
    # Typed NULLs (an untyped one would make PostgreSQL guess text for the column).
    no_day, no_invoice = sql_cast(null(), Date), sql_cast(null(), Integer)
    no_call = (
        sql_cast(null(), contacts.started_at.type), sql_cast(null(), Boolean),
        sql_cast(null(), String), sql_cast(null(), String),
    )  # fmt: skip
    branches = [
        select(
            literal("h"), holds.reason, holds.until, holds.invoice_id, holds.id, *no_call,
            *padding,
        ).where(holds.debtor_id == debtor_id),
        select(
            literal("d"), disputes.status, disputes.received_on,
            disputes.invoice_id, disputes.id, *no_call, *padding,
        ).where(disputes.debtor_id == debtor_id),
        select(
            literal("p"), phones.number, no_day, no_invoice, phones.id, *no_call, *padding
        ).where(phones.debtor_id == debtor_id, phones.do_not_call.is_(True)),
        select(
            literal("e"), emails.address, no_day, no_invoice, emails.id, *no_call, *padding
        ).where(emails.debtor_id == debtor_id, emails.do_not_email.is_(True)),
    ]  # fmt: skip
    if with_calls:
        branches.append(
            select(
                literal("c"), contacts.disposition, no_day, no_invoice, contacts.id,
                contacts.started_at, contacts.conversation, contacts.direction, contacts.channel,
                *padding,
            ).where(*_recent_calls())
        )  # fmt: skip
    return branches


def _subject_statement(with_calls: bool) -> CompoundSelect[Any]:
    """One read of an account's holds (``h``), disputes (``d``) and do-not-contact
    addresses (``p``, ``e``), as rows of (kind, text, day, invoice id, id, started at,
    conversation, direction, channel); ``with_calls`` adds the calls and texts since
    ``since`` (``c``, the columns of :func:`call_history`, the disposition as the text)."""
    return union_all(*subject_branches(with_calls))


_SUBJECT = _subject_statement(with_calls=False)
_SUBJECT_AND_CALLS = _subject_statement(with_calls=True)


def _read(session: Session) -> Connection:
    """The session's connection, with its pending changes flushed (as a query would)."""
    session.flush()
    return session.connection()


def subject_for(
    session: Session, debtor: DebtorColumns, invoice_ids: Collection[int] | None = None
) -> ContactSubject:
    """What the compliance rules need to know about ``debtor``.

    Disputes on the account count always, disputes on one invoice only when the contact
    is about that invoice (``invoice_ids``); the debtor's ``dispute`` flag is the open
    dispute the rest of the app pauses collection for.
    """
    rows = _read(session).execute(_SUBJECT, {"debtor_id": debtor.id}).all()
    return _subject(debtor, rows, invoice_ids)


def subject_and_calls(
    session: Session, debtor: DebtorColumns, at: datetime
) -> tuple[ContactSubject, list[tuple[datetime, CallEvent]]]:
    """:func:`subject_for` the debtor (all invoices) and :func:`call_history` at ``at``,
    each call with its start time (for :func:`history_at`), in one read."""
    since = at - timedelta(days=HISTORY_DAYS)
    rows = (
        _read(session).execute(_SUBJECT_AND_CALLS, {"debtor_id": debtor.id, "since": since}).all()
    )
    return subject_and_calls_from(debtor, rows)


def subject_and_calls_from(
    debtor: DebtorColumns, rows: Sequence[Row[Any]]
) -> tuple[ContactSubject, list[tuple[datetime, CallEvent]]]:
    """What :func:`subject_and_calls` returns, from the rows of a read made of
    :func:`subject_branches` (with calls, ``since`` as there) and of other branches whose
    kinds are not ``h``, ``d``, ``p``, ``e`` or ``c``."""
    calls = [
        (started, call_event(started, conversation, direction, disposition, channel))
        for kind, disposition, _, _, _, started, conversation, direction, channel, *_ in rows
        if kind == "c"
    ]
    return _subject(debtor, rows, None), calls


def _subject(
    debtor: DebtorColumns, rows: Sequence[Row[Any]], invoice_ids: Collection[int] | None
) -> ContactSubject:
    """The :class:`ContactSubject` from rows of :func:`_subject_statement`."""
    holds = tuple(
        CollectionHold(reason=text, until=day, invoice_id=invoice_id)
        for kind, text, day, invoice_id, *_ in rows
        if kind == "h"
    )
    wanted = set(invoice_ids or ())
    disputes = tuple(
        DisputeInfo(received_on=day, verified=text == "verified", resolved=text == "resolved")
        for kind, text, day, invoice_id, *_ in rows
        if kind == "d" and (invoice_id is None or invoice_id in wanted)
    )
    banned = {text for kind, text, *_ in rows if kind in ("p", "e")}
    return ContactSubject(
        time_zone=_zone_name(debtor.time_zone),
        country=debtor.country or "US",
        region=debtor.region,
        cease_communication=bool(debtor.cease_communication),
        dispute_open=bool(debtor.dispute),
        bankruptcy=bool(debtor.bankruptcy),
        deceased=bool(debtor.deceased),
        time_barred=bool(debtor.time_barred),
        holds=holds,
        do_not_contact=frozenset(banned),
        validation_notice_sent_on=debtor.validation_notice_on,
        disputes=disputes,
    )


_CALLS = select(
    Contact.__table__.c.started_at,
    Contact.__table__.c.conversation,
    Contact.__table__.c.direction,
    Contact.__table__.c.disposition,
    Contact.__table__.c.channel,
).where(*_recent_calls())


def call_history(session: Session, debtor_id: int, at: datetime) -> list[CallEvent]:
    """The debtor's calls and texts of the last :data:`HISTORY_DAYS` days as call events.

    A left voicemail counts as an attempt; a wrong number does not; inbound calls only
    start the quiet period when there was a conversation.
    """
    since = at - timedelta(days=HISTORY_DAYS)
    rows = _read(session).execute(_CALLS, {"debtor_id": debtor_id, "since": since})
    return [call_event(*row) for row in rows]


def history_at(calls: list[tuple[datetime, CallEvent]], at: datetime) -> list[CallEvent]:
    """The events of ``calls`` (read by :func:`subject_and_calls` at or before ``at``) that
    :func:`call_history` at ``at`` would read."""
    since = at - timedelta(days=HISTORY_DAYS)
    return [event for started, event in calls if started >= since]


def call_event(
    started: datetime, conversation: bool | None, direction: str, disposition: str, channel: str
) -> CallEvent:
    """A logged call or text (the columns of :func:`call_history`) as the rules count it."""
    return CallEvent(
        at=started if started.tzinfo else started.replace(tzinfo=UTC),
        conversation=bool(conversation),
        direction="inbound" if direction == "inbound" else "outbound",
        voicemail=disposition == "left_message",
        wrong_number=disposition == "wrong_number",
        medium=cast(Literal["call", "sms"], channel),
    )


def outbound_decision_for(
    session: Session,
    debtor: DebtorColumns,
    channel: str,
    address: str | None,
    at: datetime,
    *,
    invoice_ids: Collection[int] | None = None,
    subject: ContactSubject | None = None,
    history: list[CallEvent] | None = None,
) -> Decision:
    """The compliance decision on an outbound ``channel`` contact with ``debtor`` at ``at``.

    ``subject`` is :func:`subject_for` the same debtor and invoices, and ``history``
    :func:`call_history` at ``at``, if already read.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    subject = subject or subject_for(session, debtor, invoice_ids)
    if channel not in ("call", "sms"):
        history = []
    elif history is None:
        history = call_history(session, debtor.id, at)
    return outbound_decision(
        subject,
        cast(Channel, channel),
        address,
        at,
        history,
        rules_for(debtor),
        invoice_ids=invoice_ids,
    )


def check_outbound(
    session: Session,
    debtor: DebtorColumns,
    channel: str,
    address: str | None,
    at: datetime,
    *,
    invoice_ids: Collection[int] | None = None,
    subject: ContactSubject | None = None,
    history: list[CallEvent] | None = None,
) -> Decision:
    """Refuse (:class:`ComplianceBlocked`) an outbound contact the rules block.

    Returns the allowing decision (its ``warnings``, e.g. a time-barred debt, are for
    the agent). Inbound contacts need no check: do not call this for them.
    """
    decision = outbound_decision_for(
        session, debtor, channel, address, at, invoice_ids=invoice_ids, subject=subject,
        history=history,
    )  # fmt: skip
    if not decision.allowed:
        raise ComplianceBlocked(decision, channel)
    return decision


def contact_block(
    session: Session,
    debtor: DebtorColumns,
    now: datetime,
    subject: ContactSubject | None = None,
    history: list[CallEvent] | None = None,
) -> tuple[datetime | None, str]:
    """Until when the account may not be called whatever the hour, and why.

    The call-frequency cap and account-wide collection holds (the contact window and
    the flags are checked by the queue itself). ``(None, "")`` when nothing blocks.
    ``subject`` is :func:`subject_for` the debtor (all invoices), and ``history``
    :func:`call_history` at ``now``, if already read.
    """
    subject = subject or subject_for(session, debtor)
    zone = subject.zone
    until: datetime | None = None
    reason = ""
    for hold in subject.holds:
        if hold.invoice_id is None and hold.active(now, zone):
            end = hold.ends_at(zone) or FOREVER
            if until is None or end > until:
                until, reason = end, hold.describe()
    rules = rules_for(debtor)
    if history is None:
        history = call_history(session, debtor.id, now)
    decision = call_frequency_decision(history, now, rules.call_frequency, tz=zone)
    if not decision.allowed:
        end = decision.next_allowed_at or FOREVER
        if until is None or end > until:
            until, reason = end, decision.reason
    return until, reason[:REASON_LIMIT]


def refresh_contact_block(
    session: Session, debtor: Debtor, now: datetime, subject: ContactSubject | None = None
) -> None:
    """Store :func:`contact_block` in the debtor's cache columns (after a logged contact)."""
    session.flush()
    until, reason = contact_block(session, debtor, now, subject)
    if debtor.contact_blocked_until != until:
        debtor.contact_blocked_until = until
    new_reason = reason or None
    if debtor.contact_block_reason != new_reason:
        debtor.contact_block_reason = new_reason


def block_recently_called(conn: Connection, now: datetime) -> int:
    """Set the call-cap block of every debtor whose recent calls forbid a call at ``now``.

    Set-based, for bulk loads (the seed) that write contacts without going through
    :func:`refresh_contact_block`: one read of the last :data:`HISTORY_DAYS` days of
    calls and texts, the rules run per debtor in memory, one batched UPDATE. Returns how
    many accounts are blocked.
    """
    config = compliance_config.active()
    rows = conn.execute(
        select(
            Contact.debtor_id, Contact.started_at, Contact.conversation, Contact.direction,
            Contact.disposition, Contact.channel, Debtor.country, Debtor.region,
            Debtor.time_zone,
        )
        .join(Debtor, Debtor.id == Contact.debtor_id)
        .where(
            Contact.channel.in_(("call", "sms")),
            Contact.started_at >= now - timedelta(days=HISTORY_DAYS),
            Contact.started_at <= now,
        )
        .order_by(Contact.debtor_id)
    )  # fmt: skip
    blocks = []
    rules_by_place: dict[tuple[str, str | None], RuleSet] = {}
    for debtor_id, group in groupby(rows, key=itemgetter(0)):
        calls = list(group)
        _, _, _, _, _, _, country, region, zone = calls[0]
        history = [call_event(*call[1:6]) for call in calls]
        place = (country or "US", region)
        if place not in rules_by_place:
            rules_by_place[place] = config.rules_for(*place)
        decision = call_frequency_decision(
            history, now, rules_by_place[place].call_frequency, tz=zone_or_utc(zone)
        )
        if not decision.allowed:
            blocks.append(
                {
                    "b_id": debtor_id,
                    "until": decision.next_allowed_at or FOREVER,
                    "reason": decision.reason[:REASON_LIMIT],
                }
            )
    debtors = Debtor.__table__
    for start in range(0, len(blocks), 5000):
        conn.execute(
            update(debtors)
            .where(debtors.c.id == bindparam("b_id"))
            .values(
                contact_blocked_until=bindparam("until"), contact_block_reason=bindparam("reason")
            ),
            blocks[start : start + 5000],
        )
    return len(blocks)
