"""Set-based storage of what the sync engine pulls and pushes, on SQLite and PostgreSQL.

Every write takes a :class:`~sqlalchemy.Connection` inside the caller's transaction, so that the
engine commits a page's records, its quarantined records and its cursor together. Upserts are
``INSERT ... ON CONFLICT (external_id) DO UPDATE`` in one statement per page; an update
never moves a row back to an older version of the source record (``source_updated_at``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, and_, func, select, update

from collect_tui.storage.engine import insert_for
from collect_tui.storage.models import (
    AuditEntry,
    Debtor,
    Email,
    Invoice,
    OutboxMessage,
    Payment,
    Phone,
    Promise,
    QuarantinedRecord,
    SyncCursor,
    SyncRun,
    Task,
)
from collect_tui.storage.settings import read_setting, write_setting

debtors: Table = Debtor.__table__  # type: ignore[assignment]
invoices: Table = Invoice.__table__  # type: ignore[assignment]
payments: Table = Payment.__table__  # type: ignore[assignment]
phones: Table = Phone.__table__  # type: ignore[assignment]
emails: Table = Email.__table__  # type: ignore[assignment]
promises: Table = Promise.__table__  # type: ignore[assignment]
tasks: Table = Task.__table__  # type: ignore[assignment]
audit_log: Table = AuditEntry.__table__  # type: ignore[assignment]
cursors: Table = SyncCursor.__table__  # type: ignore[assignment]
runs: Table = SyncRun.__table__  # type: ignore[assignment]
outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
quarantine: Table = QuarantinedRecord.__table__  # type: ignore[assignment]

ID_CHUNK = 500
SYNC_ACTOR = "sync"

# Country names as accounting systems write them, and the zone a new account starts in.
_COUNTRY_NAMES = {
    "new zealand": "NZ",
    "australia": "AU",
    "united kingdom": "GB",
    "great britain": "GB",
    "england": "GB",
    "united states": "US",
    "united states of america": "US",
    "usa": "US",
    "canada": "CA",
    "brazil": "BR",
    "ireland": "IE",
    "south africa": "ZA",
}
_ZONES = {
    "NZ": "Pacific/Auckland",
    "AU": "Australia/Sydney",
    "GB": "Europe/London",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "BR": "America/Sao_Paulo",
    "IE": "Europe/Dublin",
    "ZA": "Africa/Johannesburg",
}


def country_code(value: str | None) -> str | None:
    """A two-letter country code for a name or code as the source wrote it (else ``None``)."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 2 and text.isascii() and text.isalpha():
        return text.upper()
    return _COUNTRY_NAMES.get(text.casefold())


_CURRENCIES = {
    "NZ": "NZD",
    "AU": "AUD",
    "GB": "GBP",
    "US": "USD",
    "CA": "CAD",
    "BR": "BRL",
    "IE": "EUR",
    "ZA": "ZAR",
}


def currency_for(country: str) -> str:
    """The currency of a new account in ``country`` when the source names none."""
    return _CURRENCIES.get(country, "USD")


def zone_for(country: str) -> str:
    """The time zone a new account in ``country`` starts with (agents may change it)."""
    return _ZONES.get(country, "UTC")


def _insert(conn: Connection, table: Table) -> Any:
    """An INSERT of this engine's dialect, which can say ON CONFLICT."""
    return insert_for(conn.dialect.name)(table)


def _chunks(values: Sequence[Any], size: int = ID_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- lookups ---------------------------------------------------------------------------------


def debtor_ids(conn: Connection, external_ids: Iterable[str]) -> dict[str, int]:
    """``external_id -> debtors.id`` for the ids that exist."""
    wanted = sorted(set(external_ids))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        rows = conn.execute(
            select(debtors.c.external_id, debtors.c.id).where(debtors.c.external_id.in_(chunk))
        )
        found.update({external: id_ for external, id_ in rows})
    return found


@dataclass(frozen=True, slots=True)
class InvoiceRef:
    """What the engine needs to know about a stored invoice."""

    id: int
    debtor_id: int
    source_updated_at: datetime | None
    status: str


def invoice_refs(conn: Connection, external_ids: Iterable[str]) -> dict[str, InvoiceRef]:
    """``external_id -> InvoiceRef`` for the invoices that exist."""
    wanted = sorted(set(external_ids))
    found: dict[str, InvoiceRef] = {}
    columns = (
        invoices.c.external_id,
        invoices.c.id,
        invoices.c.debtor_id,
        invoices.c.source_updated_at,
        invoices.c.status,
    )
    for chunk in _chunks(wanted):
        for external, id_, debtor, stamp, status in conn.execute(
            select(*columns).where(invoices.c.external_id.in_(chunk))
        ):
            found[external] = InvoiceRef(id_, debtor, stamp, status)
    return found


def all_invoice_refs(conn: Connection) -> dict[str, InvoiceRef]:
    """Every synced invoice's ``InvoiceRef`` (for a large pull, instead of per-page lookups)."""
    rows = conn.execute(
        select(
            invoices.c.external_id,
            invoices.c.id,
            invoices.c.debtor_id,
            invoices.c.source_updated_at,
            invoices.c.status,
        ).where(invoices.c.external_id.is_not(None))
    )
    return {e: InvoiceRef(i, d, t, s) for e, i, d, t, s in rows}


def all_payment_ids(conn: Connection) -> set[str]:
    """Every synced payment's external id."""
    return set(
        conn.scalars(select(payments.c.external_id).where(payments.c.external_id.is_not(None)))
    )


def existing_payments(conn: Connection, external_ids: Iterable[str]) -> set[str]:
    """The payment external ids already stored."""
    wanted = sorted(set(external_ids))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(
            conn.scalars(select(payments.c.external_id).where(payments.c.external_id.in_(chunk)))
        )
    return found


# --- upserts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Values:
    """Converters to the driver's own parameter types, chosen once per dialect.

    The upserts go straight to the driver's ``executemany`` (SQLAlchemy's per-row parameter
    processing costs more than SQLite's own work); these produce what SQLAlchemy itself
    would store: naive-UTC timestamps, ISO dates and decimal strings on SQLite.
    """

    sqlite: bool

    def ts(self, value: datetime | None) -> Any:
        """A timestamp column value."""
        if value is None:
            return None
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # isoformat: SQLAlchemy's own SQLite format (zero-padded, microseconds), and faster.
        return naive.isoformat(" ", "microseconds") if self.sqlite else naive

    def day(self, value: date | None) -> Any:
        """A date column value."""
        if value is None:
            return None
        return value.isoformat() if self.sqlite else value

    def money(self, value: Decimal) -> Any:
        """A money column value."""
        return str(value) if self.sqlite else value

    def flag(self, value: bool) -> Any:
        """A boolean column value."""
        return int(value) if self.sqlite else value


def values_for(conn: Connection) -> Values:
    """The converters for ``conn``'s dialect."""
    return Values(conn.dialect.name == "sqlite")


def _upsert_many(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    conflict: Sequence[str],
    updates: Mapping[str, str],
    rows: Sequence[Sequence[Any]],
    where: str | None = None,
    *,
    do_nothing: bool = False,
) -> None:
    """``INSERT ... ON CONFLICT (...) DO UPDATE`` for many rows through the driver."""
    if not rows:
        return
    tail = f" ON CONFLICT ({', '.join(conflict)}) "
    if do_nothing:
        tail += "DO NOTHING"
    else:
        tail += "DO UPDATE SET " + ", ".join(f"{c} = {e}" for c, e in updates.items())
        if where:
            tail += f" WHERE {where}"
    _insert_many(conn, table, columns, rows, tail)


SQLITE_BULK_OVER = 20
"""Rows above which SQLite inserts go as one JSON array (see ``_insert_many``)."""


def _insert_many(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    tail: str = "",
) -> None:
    """``INSERT INTO table (columns) <rows> <tail>`` through the driver.

    On SQLite a batch goes as ONE statement that reads the rows from a JSON array
    (``json_each``): one call into SQLite instead of one per row, which keeps the driver from
    handing the interpreter lock back and forth per row while the next page is parsed in
    another thread. The values are the driver's own (text, integers, reals, NULL), so what is
    stored is the same as with ``executemany``.
    """
    if not rows:
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(columns)
    if conn.dialect.name != "sqlite":
        marks = ", ".join("%s" for _ in columns)
        with raw.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){tail}", rows)
        return
    if len(rows) <= SQLITE_BULK_OVER:
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){tail}", rows)
        return
    picks = ", ".join(f"value ->> {i}" for i in range(len(columns)))
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    sql = f"INSERT INTO {table} ({names}) SELECT {picks} FROM json_each(?) WHERE true{tail}"
    raw.execute(sql, (_ENCODER.encode(rows).decode(),))


_ENCODER = msgspec.json.Encoder()


DEBTOR_COLUMNS = (
    "external_id",
    "name",
    "is_company",
    "contact_person",
    "tax_id",
    "address",
    "country",
    "time_zone",
    "currency",
    "last_synced_at",
    "created_at",
    "updated_at",
    # Defaults the ORM would fill in (the upsert bypasses it).
    "language",
    "preferred_channel",
    "segment",
    "cease_communication",
    "dispute",
    "bankruptcy",
    "deceased",
    "time_barred",
    "open_balance",
    "open_invoices",
    "installment_missed",
    "priority_score",
    "version",
)


def debtor_defaults(values: Values) -> tuple[Any, ...]:
    """The trailing default columns of :data:`DEBTOR_COLUMNS` for a new account."""
    no = values.flag(False)
    return ("en", "call", "standard", no, no, no, no, no, values.money(Decimal("0")), 0, no, 0.0, 1)


def upsert_debtors(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert or update debtors by ``external_id`` (rows in :data:`DEBTOR_COLUMNS` order).

    On update the name and mailing fields follow the source; country, zone, flags,
    assignment, scores and the agent's edits stay as they are.
    """
    _upsert_many(
        conn,
        "debtors",
        DEBTOR_COLUMNS,
        ["external_id"],
        {
            "name": "excluded.name",
            "is_company": "excluded.is_company",
            "contact_person": "COALESCE(excluded.contact_person, debtors.contact_person)",
            "tax_id": "COALESCE(excluded.tax_id, debtors.tax_id)",
            "address": "COALESCE(excluded.address, debtors.address)",
            "last_synced_at": "excluded.last_synced_at",
        },
        rows,
    )


def create_stub_debtors(conn: Connection, external_ids: Iterable[str], now: datetime) -> None:
    """Placeholder accounts for contacts not pulled yet; the contact's pull fills them in."""
    values = values_for(conn)
    stamp = values.ts(now)
    rows = [
        (
            external,
            f"Contact {external[:8]}",
            values.flag(False),
            None,
            None,
            None,
            "US",
            "UTC",
            "USD",
            stamp,
            stamp,
            stamp,
            *debtor_defaults(values),
        )
        for external in sorted(set(external_ids))
    ]
    _upsert_many(conn, "debtors", DEBTOR_COLUMNS, ["external_id"], {}, rows, do_nothing=True)


def add_contact_points(
    conn: Connection,
    phone_rows: Sequence[tuple[int, str, str]],
    email_rows: Sequence[tuple[int, str]],
) -> None:
    """Add phones ``(debtor_id, number, kind)`` and emails not yet on the accounts.

    Nothing is removed: an agent's do-not-call marks and added numbers are kept.
    """
    owners = sorted({row[0] for row in phone_rows} | {row[0] for row in email_rows})
    known_phones: set[tuple[int, str]] = set()
    known_emails: set[tuple[int, str]] = set()
    for chunk in _chunks(owners):
        known_phones.update(
            (d, n)
            for d, n in conn.execute(
                select(phones.c.debtor_id, phones.c.number).where(phones.c.debtor_id.in_(chunk))
            )
        )
        known_emails.update(
            (d, a.casefold())
            for d, a in conn.execute(
                select(emails.c.debtor_id, emails.c.address).where(emails.c.debtor_id.in_(chunk))
            )
        )
    values = values_for(conn)
    no = values.flag(False)
    new_phones = []
    for debtor_id, number, kind in phone_rows:
        if (debtor_id, number) not in known_phones:
            known_phones.add((debtor_id, number))
            new_phones.append((debtor_id, number, kind, no, no))
    new_emails = []
    for debtor_id, address in email_rows:
        if (debtor_id, address.casefold()) not in known_emails:
            known_emails.add((debtor_id, address.casefold()))
            new_emails.append((debtor_id, address, no))
    _insert_many(
        conn, "phones", ("debtor_id", "number", "kind", "do_not_call", "sms_consent"), new_phones
    )
    _insert_many(conn, "emails", ("debtor_id", "address", "do_not_email"), new_emails)


INVOICE_COLUMNS = (
    "external_id",
    "debtor_id",
    "number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "amount_due",
    "amount_paid",
    "status",
    "expected_payment_date",
    "source_updated_at",
    "synced_at",
    "version",
)


def upsert_invoices(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert or update invoices by ``external_id``; an older source version never wins.

    Rows are in :data:`INVOICE_COLUMNS` order (``version`` 1 for a new row).
    """
    updates = {c: f"excluded.{c}" for c in INVOICE_COLUMNS if c not in ("external_id", "version")}
    updates["version"] = "invoices.version + 1"
    _upsert_many(
        conn,
        "invoices",
        INVOICE_COLUMNS,
        ["external_id"],
        updates,
        rows,
        where="invoices.source_updated_at IS NULL "
        "OR invoices.source_updated_at <= excluded.source_updated_at",
    )


PAYMENT_COLUMNS = (
    "external_id",
    "debtor_id",
    "invoice_id",
    "amount",
    "currency",
    "paid_on",
    "received_at",
    "applied",
    "status",
)


def upsert_payments(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert or update payments by ``external_id`` (rows in :data:`PAYMENT_COLUMNS` order).

    Amount, date, status and the invoice follow the source; ``received_at`` stays the time
    the payment was first seen.
    """
    _upsert_many(
        conn,
        "payments",
        PAYMENT_COLUMNS,
        ["external_id"],
        {c: f"excluded.{c}" for c in ("amount", "paid_on", "status", "invoice_id", "debtor_id")},
        rows,
    )


def apply_payments(conn: Connection, invoice_ids: Sequence[int], now: datetime) -> None:
    """Bring invoice balances up to the payments stored for them.

    An invoice whose source figures do not yet include a payment we hold (its stored
    ``amount_paid`` is below the sum of its active payments) gets the difference taken off
    ``amount_due``, and is paid when nothing is left. When the source's figures already include
    every payment nothing changes, and the next pull of the invoice overwrites these figures
    with the source's own, so a payment is never counted twice.
    """
    paid = (
        select(func.coalesce(func.sum(payments.c.amount), 0))
        .where(payments.c.invoice_id == invoices.c.id, payments.c.status == "active")
        .scalar_subquery()
    )
    least = func.max if conn.dialect.name == "sqlite" else func.greatest
    for chunk in _chunks(sorted(set(invoice_ids))):
        conn.execute(
            update(invoices)
            .where(
                invoices.c.id.in_(chunk),
                invoices.c.status == "open",
                paid - invoices.c.amount_paid > 0.005,
            )
            .values(
                amount_due=least(invoices.c.amount_due - (paid - invoices.c.amount_paid), 0),
                amount_paid=paid,
                synced_at=now,
                version=invoices.c.version + 1,
            )
        )
        conn.execute(
            update(invoices)
            .where(
                invoices.c.id.in_(chunk),
                invoices.c.status == "open",
                invoices.c.amount_due <= 0,
            )
            .values(status="paid")
        )


def close_followups(conn: Connection, invoice_ids: Sequence[int], now: datetime) -> int:
    """Stop chasing closed invoices: cancel open cadence tasks and pending promises on them.

    Promises on a paid invoice are left for promise evaluation (they were kept); promises on
    a voided or deleted invoice are cancelled, with an audit row. Returns promises cancelled.
    """
    cancelled = 0
    for chunk in _chunks(list(invoice_ids)):
        conn.execute(
            update(tasks)
            .where(
                tasks.c.invoice_id.in_(chunk),
                tasks.c.status == "open",
                tasks.c.kind == "cadence",
            )
            .values(status="cancelled", done_at=now, version=tasks.c.version + 1)
        )
        doomed = conn.execute(
            select(promises.c.id, promises.c.debtor_id, invoices.c.status)
            .join(invoices, invoices.c.id == promises.c.invoice_id)
            .where(
                promises.c.invoice_id.in_(chunk),
                promises.c.status == "pending",
                invoices.c.status.in_(("voided", "deleted")),
            )
        ).all()
        if not doomed:
            continue
        conn.execute(
            update(promises)
            .where(promises.c.id.in_([row[0] for row in doomed]))
            .values(status="cancelled", evaluated_at=now, version=promises.c.version + 1)
        )
        conn.execute(
            audit_log.insert(),
            [
                {
                    "at": now,
                    "actor": SYNC_ACTOR,
                    "action": "promise.cancelled",
                    "entity": "promise",
                    "entity_id": str(promise_id),
                    "debtor_id": debtor_id,
                    "before": {"status": "pending"},
                    "after": {
                        "status": "cancelled",
                        "reason": f"invoice {status} in the accounting system",
                    },
                }
                for promise_id, debtor_id, status in doomed
            ],
        )
        cancelled += len(doomed)
    return cancelled


def touch_debtors(conn: Connection, ids: Iterable[int], now: datetime) -> None:
    """Record that these accounts' data was just synced (``updated_at`` is left alone)."""
    wanted = sorted(set(ids))
    for chunk in _chunks(wanted):
        conn.execute(
            update(debtors)
            .where(debtors.c.id.in_(chunk))
            .values(last_synced_at=now, updated_at=debtors.c.updated_at)
        )


COMPLETE_PULL_SETTING = "sync:complete_pull_at"


def mark_all_synced(conn: Connection, now: datetime) -> None:
    """After a complete pull every account from the source is current as of ``now``.

    One stamp in ``settings``, not a write to every synced account: that rewrote (and
    locked) the whole portfolio on every run while agents were saving on it.
    """
    write_setting(conn, COMPLETE_PULL_SETTING, now.astimezone(UTC).isoformat())


def last_complete_pull(conn: Connection) -> datetime | None:
    """When the last complete pull finished (see :func:`mark_all_synced`), if ever."""
    value = read_setting(conn, COMPLETE_PULL_SETTING)
    return datetime.fromisoformat(value) if value else None


def account_synced_at(
    last_synced_at: datetime | None, external_id: str | None, complete_pull: datetime | None
) -> datetime | None:
    """How current an account's data from the source is: its own last change pulled, or
    the last complete pull if the account comes from the source."""
    stamps = [last_synced_at, complete_pull if external_id else None]
    known = [s for s in stamps if s is not None]
    return max(known) if known else None


# --- quarantine ------------------------------------------------------------------------------


def quarantine_records(
    conn: Connection,
    source: str,
    records: Sequence[tuple[str, str | None, str, Mapping[str, Any]]],
    now: datetime,
) -> None:
    """Keep malformed records ``(stream, external_id, reason, raw)``, replacing older copies."""
    if not records:
        return
    texts = [json.dumps(raw, default=str, sort_keys=True) for _, _, _, raw in records]
    for (stream, external, _, _), text in zip(records, texts, strict=True):
        if not external:  # no id to know it by: the same content is the same record
            conn.execute(
                quarantine.delete().where(
                    quarantine.c.source == source,
                    quarantine.c.stream == stream,
                    quarantine.c.resolved.is_(False),
                    quarantine.c.external_id.is_(None),
                    quarantine.c.payload == text,
                )
            )
    for stream in {r[0] for r in records}:
        ids = [r[1] for r in records if r[0] == stream and r[1]]
        for chunk in _chunks(ids):
            conn.execute(
                quarantine.delete().where(
                    quarantine.c.source == source,
                    quarantine.c.stream == stream,
                    quarantine.c.resolved.is_(False),
                    quarantine.c.external_id.in_(chunk),
                )
            )
    conn.execute(
        quarantine.insert(),
        [
            {
                "source": source,
                "stream": stream,
                "external_id": external[:64] if external else None,
                "reason": reason,
                "payload": text,
                "received_at": now,
                "resolved": False,
            }
            for (stream, external, reason, _), text in zip(records, texts, strict=True)
        ],
    )


def open_quarantine_count(conn: Connection, source: str | None = None) -> int:
    """How many quarantined records are unresolved."""
    query = select(func.count()).select_from(quarantine).where(quarantine.c.resolved.is_(False))
    if source is not None:
        query = query.where(quarantine.c.source == source)
    return conn.execute(query).scalar_one()


def resolve_quarantine(
    conn: Connection, source: str, stream: str, external_ids: Sequence[str]
) -> None:
    """Records that now arrived well-formed are no longer in quarantine."""
    for chunk in _chunks(list(external_ids)):
        conn.execute(
            update(quarantine)
            .where(
                quarantine.c.source == source,
                quarantine.c.stream == stream,
                quarantine.c.resolved.is_(False),
                quarantine.c.external_id.in_(chunk),
            )
            .values(resolved=True)
        )


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """One quarantined record."""

    id: int
    source: str
    stream: str
    external_id: str | None
    reason: str
    received_at: datetime
    payload: str


def list_quarantine(conn: Connection, *, limit: int = 200) -> list[QuarantineRow]:
    """Unresolved quarantined records, newest first."""
    rows = conn.execute(
        select(
            quarantine.c.id,
            quarantine.c.source,
            quarantine.c.stream,
            quarantine.c.external_id,
            quarantine.c.reason,
            quarantine.c.received_at,
            quarantine.c.payload,
        )
        .where(quarantine.c.resolved.is_(False))
        .order_by(quarantine.c.id.desc())
        .limit(limit)
    )
    return [QuarantineRow(*row) for row in rows]


# --- cursors, runs -----------------------------------------------------------------


def get_cursor(conn: Connection, source: str, tenant: str, stream: str) -> datetime | None:
    """The saved resume point of one stream, or ``None`` (pull everything)."""
    value = conn.execute(
        select(cursors.c.cursor).where(
            cursors.c.source == source, cursors.c.tenant == tenant, cursors.c.stream == stream
        )
    ).scalar_one_or_none()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def set_cursor(
    conn: Connection, source: str, tenant: str, stream: str, value: datetime, now: datetime
) -> None:
    """Save the resume point of one stream (in the page's transaction)."""
    stmt = _insert(conn, cursors).values(
        source=source,
        tenant=tenant,
        stream=stream,
        cursor=value.astimezone(UTC).isoformat(),
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[cursors.c.source, cursors.c.tenant, cursors.c.stream],
        set_={"cursor": stmt.excluded.cursor, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt)


def start_run(conn: Connection, source: str, now: datetime) -> int:
    """Record a sync run as running; returns its id."""
    result = conn.execute(
        runs.insert().values(source=source, started_at=now, status="running").returning(runs.c.id)
    )
    return int(result.scalar_one())


def finish_run(
    conn: Connection,
    run_id: int,
    status: str,
    stats: Mapping[str, Any],
    error: str | None,
    now: datetime,
) -> None:
    """Record how a sync run ended."""
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, stats=dict(stats), error=error, finished_at=now)
    )


def interrupted_runs(conn: Connection, source: str, before_id: int) -> list[int]:
    """Runs of ``source`` still marked running that started before ``before_id``."""
    return list(
        conn.scalars(
            select(runs.c.id).where(
                runs.c.source == source, runs.c.status == "running", runs.c.id < before_id
            )
        )
    )


def mark_interrupted(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Runs that never finished (the process died) are recorded as interrupted."""
    if ids:
        conn.execute(
            update(runs)
            .where(runs.c.id.in_(list(ids)))
            .values(status="interrupted", error="the sync process stopped mid-run")
        )


@dataclass(frozen=True, slots=True)
class RunRow:
    """One recorded sync run."""

    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    stats: dict[str, Any]
    error: str | None


def list_runs(conn: Connection, *, limit: int = 20) -> list[RunRow]:
    """The latest sync runs, newest first."""
    rows = conn.execute(
        select(
            runs.c.id,
            runs.c.source,
            runs.c.started_at,
            runs.c.finished_at,
            runs.c.status,
            runs.c.stats,
            runs.c.error,
        )
        .order_by(runs.c.id.desc())
        .limit(limit)
    )
    return [
        RunRow(id_, source, started, finished, status, dict(stats or {}), error)
        for id_, source, started, finished, status, stats, error in rows
    ]


# --- outbox ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outcome waiting for (or done with) delivery."""

    id: int
    idempotency_key: str
    kind: str
    debtor_id: int | None
    invoice_external_id: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


_OUTBOX_COLUMNS = (
    outbox.c.id,
    outbox.c.idempotency_key,
    outbox.c.kind,
    outbox.c.debtor_id,
    outbox.c.invoice_external_id,
    outbox.c.payload,
    outbox.c.status,
    outbox.c.attempts,
    outbox.c.next_attempt_at,
    outbox.c.last_error,
    outbox.c.created_at,
)


def due_outbox(
    conn: Connection, now: datetime, *, after_id: int = 0, limit: int = 100
) -> list[OutboxRow]:
    """Pending outcomes due for an attempt, oldest first, with ids above ``after_id``."""
    rows = conn.execute(
        select(*_OUTBOX_COLUMNS)
        .where(
            outbox.c.status == "pending",
            outbox.c.next_attempt_at <= now,
            outbox.c.id > after_id,
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [OutboxRow(*row) for row in rows]


def list_outbox(conn: Connection, *, status: str = "pending", limit: int = 200) -> list[OutboxRow]:
    """Outcomes in one status, oldest first."""
    rows = conn.execute(
        select(*_OUTBOX_COLUMNS).where(outbox.c.status == status).order_by(outbox.c.id).limit(limit)
    )
    return [OutboxRow(*row) for row in rows]


def outbox_counts(conn: Connection) -> dict[str, int]:
    """Outcomes by status (``pending``, ``delivered``, ``failed``)."""
    counts = {
        status: count
        for status, count in conn.execute(
            select(outbox.c.status, func.count()).group_by(outbox.c.status)
        )
    }
    return {status: counts.get(status, 0) for status in ("pending", "delivered", "failed")}


def outbox_delivered(conn: Connection, row_id: int, now: datetime) -> None:
    """The outcome arrived: never send it again."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status == "pending")
        .values(
            status="delivered",
            delivered_at=now,
            attempts=outbox.c.attempts + 1,
            last_error=None,
        )
    )


def outbox_retry_later(conn: Connection, row_id: int, when: datetime, reason: str) -> None:
    """A transient failure: try again at ``when``."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status == "pending")
        .values(attempts=outbox.c.attempts + 1, next_attempt_at=when, last_error=reason[:500])
    )


def outbox_failed(conn: Connection, row_id: int, reason: str) -> None:
    """A permanent failure: kept with its reason, not retried."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status == "pending")
        .values(status="failed", attempts=outbox.c.attempts + 1, last_error=reason[:500])
    )


def retry_failed_outbox(conn: Connection, now: datetime) -> int:
    """Put every failed outcome back in the queue (after the cause was fixed)."""
    result = conn.execute(
        update(outbox)
        .where(outbox.c.status == "failed")
        .values(status="pending", next_attempt_at=now, attempts=0)
    )
    return result.rowcount or 0


def invoice_open(conn: Connection, external_ids: Sequence[str]) -> dict[str, str]:
    """``external_id -> status`` of stored invoices."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        found.update(
            (external, status)
            for external, status in conn.execute(
                select(invoices.c.external_id, invoices.c.status).where(
                    invoices.c.external_id.in_(chunk)
                )
            )
        )
    return found


def debtors_with_pending_promises(conn: Connection, ids: Iterable[int]) -> list[int]:
    """The accounts among ``ids`` with a pending promise or installment."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for chunk in _chunks(wanted):
        found.update(
            conn.scalars(
                select(promises.c.debtor_id)
                .where(and_(promises.c.debtor_id.in_(chunk), promises.c.status == "pending"))
                .distinct()
            )
        )
    return sorted(found)


def as_date(value: Any) -> date | None:
    """A ``date`` from a date or an ISO string (outbox payloads are JSON)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


__all__ = [
    "ID_CHUNK",
    "InvoiceRef",
    "OutboxRow",
    "QuarantineRow",
    "RunRow",
    "add_contact_points",
    "all_invoice_refs",
    "all_payment_ids",
    "apply_payments",
    "close_followups",
    "country_code",
    "create_stub_debtors",
    "debtor_ids",
    "debtors_with_pending_promises",
    "due_outbox",
    "existing_payments",
    "finish_run",
    "get_cursor",
    "interrupted_runs",
    "invoice_open",
    "invoice_refs",
    "list_outbox",
    "list_quarantine",
    "list_runs",
    "account_synced_at",
    "last_complete_pull",
    "mark_all_synced",
    "mark_interrupted",
    "open_quarantine_count",
    "outbox_counts",
    "outbox_delivered",
    "outbox_failed",
    "outbox_retry_later",
    "quarantine_records",
    "resolve_quarantine",
    "retry_failed_outbox",
    "set_cursor",
    "start_run",
    "touch_debtors",
    "upsert_debtors",
    "upsert_invoices",
    "upsert_payments",
    "values_for",
    "Values",
    "DEBTOR_COLUMNS",
    "INVOICE_COLUMNS",
    "PAYMENT_COLUMNS",
    "debtor_defaults",
    "zone_for",
    "currency_for",
]
