"""Priority facts and scores kept in the ``debtors`` table, set-based, on SQLite and PostgreSQL.

:func:`refresh_facts` recomputes the cached facts of every debtor or of a few (after an
event) from invoices, contacts, promises and tasks; :func:`rescore` does that and stores
the score of :func:`collect_tui.domain.priority.score_account`, computed in SQL by
:func:`score_expression`. Nothing is loaded into Python to be scored.

The daily pass (``rescore(..., facts=False)``) aggregates nothing but the promises that
count today: every other fact changes only with a write (a contact, an invoice or
payment synced, a task), and every write path refreshes the facts of the debtors it
touched (``debtor_ids``) or, after a bulk write (seed, first sync, bulk cadence run),
runs the pass with ``facts=True``. Time enters through ``today`` alone, and the stored
facts are dates and instants the score compares with it, except the promise facts
("the earliest pending promise due on or after today", "broken within the lookback"),
which the daily pass recomputes for the few debtors that have them or get them.

Fact definitions (``today`` is a UTC day):

* ``open_balance`` / ``open_invoices`` / ``oldest_due_date``: sum of ``amount_due``,
  count and earliest ``due_date`` of the invoices in status ``open`` (none: 0, 0, NULL);
* ``last_contact_at``: the latest ``contacts.started_at``;
* ``promise_due_on``: the earliest ``pending`` promise due on or after ``today``;
* ``broken_promise_on``: the latest ``broken`` promise due within the lookback
  (``today - broken_lookback_days`` .. ``today``); ``installment_missed``: one of those
  belongs to a payment plan;
* ``cadence_due_at``: the earliest open ``cadence`` task; ``next_action`` /
  ``next_action_at``: ``callback`` and the earliest open ``callback`` task (else NULL).

Statements are built once per engine kind and weights and run with the day's values as
bound parameters, so an incremental rescore costs two indexed UPDATEs and no SQL
compilation. ``updated_at`` and ``version`` are left alone: refreshing caches is not an
edit (``scored_at`` tells when a row's score was last written; the PostgreSQL passes
write only the rows whose facts or score change).

The passes over every debtor rebuild the queue index instead of updating it row by row,
on both engines: on PostgreSQL that is what lets them rewrite the rows in place (HOT
updates, see :func:`_drop_queue_index_postgresql`), which takes the pass over 200k
debtors from 8-10 s of server CPU to 2-3 s (the daily pass: 1.2-1.6 s). On SQLite the
daily pass costs what rewriting every row of ``debtors`` costs: the UPDATE, the index
build and the commit (with its WAL checkpoint) take about a third each.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    Executable,
    Float,
    FromClause,
    Index,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from collect_tui.domain.aging import BUCKETS, bucket_due_date_floors
from collect_tui.domain.priority import DEFAULT_WEIGHTS, EXCLUDED_SCORE, PriorityWeights
from collect_tui.storage.driver import run_on_driver
from collect_tui.storage.models import (
    MONEY,
    PROMISE_FACTS,
    Contact,
    Debtor,
    Invoice,
    Promise,
    Task,
    UTCDateTime,
)
from collect_tui.storage.settings import read_setting, write_setting

debtors = Debtor.__table__
invoices = Invoice.__table__
contacts = Contact.__table__
promises = Promise.__table__
tasks = Task.__table__

# Settings of the daily pass on PostgreSQL, for its statements only (put back after).
POSTGRESQL_PASS_SETTINGS = {
    # The sort of the debtors and the queue index build need room: 4 MB would spill.
    "work_mem": "256MB",
    "maintenance_work_mem": "256MB",
    # The cost estimate triggers JIT compilation, which costs more (0.1-0.2 s) than it
    # saves on a pass that is mostly writes.
    "jit": "off",
}
# For the aggregates of every fact: each source is aggregated in debtor order (a
# covering debtor_id index where there is one) and merged with the debtors: hashing 200k
# groups and joining four hash tables costs about 40% more CPU.
POSTGRESQL_FACTS_SETTINGS = {"enable_hashagg": "off", "enable_hashjoin": "off"}
# For the day's promise facts: the few debtors with a promise that counts are looked up
# by id (the planner would rather read the whole table: 0.15-0.2 s at 200k debtors).
POSTGRESQL_PROMISES_SETTINGS = {"enable_hashjoin": "off", "enable_mergejoin": "off"}
# How long the daily pass waits for its lock on ``debtors`` before it runs without it.
POSTGRESQL_LOCK_WAIT = "2s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for lock_timeout

# The weights in use are stored in the database, so that every agent's app, the CLI and
# the incremental rescores all score with the same ones.
WEIGHTS_SETTING = "priority_weights"

# The page cache of a pass over every debtor on SQLite, in KiB (the previous size is
# restored after): room for every page of ``debtors`` (about 60 MB at 200k debtors).
SQLITE_CACHE_KIB = 256 * 1024
# How many ids go into one ``IN (...)`` (well below SQLite's bound-parameter limit).
ID_CHUNK = 500

# The fact columns refreshed from the source tables.
FACT_COLUMNS = (
    "open_balance",
    "open_invoices",
    "oldest_due_date",
    "last_contact_at",
    "promise_due_on",
    "broken_promise_on",
    "installment_missed",
    "cadence_due_at",
    "next_action_at",
)
# The debtor columns the score reads (``score_expression(columns=...)`` may replace any).
SCORE_INPUTS = (
    "open_balance",
    "currency",
    "oldest_due_date",
    "last_contact_at",
    "promise_due_on",
    "broken_promise_on",
    "installment_missed",
    "cadence_due_at",
    "cease_communication",
    "dispute",
    "bankruptcy",
    "deceased",
)

_scratch = MetaData()
# Per-connection scratch table of the daily pass on SQLite: the facts of each debtor.
_facts = Table(
    "prio_facts",
    _scratch,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("open_balance", MONEY),
    Column("open_invoices", Integer),
    Column("oldest_due_date", Date),
    Column("last_contact_at", UTCDateTime),
    Column("promise_due_on", Date),
    Column("broken_promise_on", Date),
    Column("installment_missed", Boolean),
    Column("cadence_due_at", UTCDateTime),
    Column("next_action_at", UTCDateTime),
    prefixes=["TEMPORARY"],
)


# --- the day's values, bound as parameters ------------------------------------------------


def _day(name: str, values: Mapping[str, Any] | None = None) -> ColumnElement[Any]:
    """The day's DATE value ``prio_<name>``, bound later or now (from ``values``)."""
    return _bound(name, Date, values)


def _instant(name: str, values: Mapping[str, Any] | None = None) -> ColumnElement[Any]:
    """The day's UTC TIMESTAMP value ``prio_<name>``, bound later or now."""
    return _bound(name, UTCDateTime, values)


def _bound(name: str, type_: Any, values: Mapping[str, Any] | None) -> ColumnElement[Any]:
    key = f"prio_{name}"
    if values is None:
        return bindparam(key, type_=type_)
    return bindparam(key, values[key], type_=type_)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _julian_day(day: date) -> float:
    """SQLite's ``julianday()`` of a date (at midnight)."""
    return day.toordinal() + 1721424.5


def day_params(today: date, weights: PriorityWeights | None = None) -> dict[str, Any]:
    """The bound values the statements of this module need for ``today``."""
    w = weights or DEFAULT_WEIGHTS
    params: dict[str, Any] = {
        "prio_today": today,
        "prio_julian_today": _julian_day(today),
        "prio_today_start": _midnight(today),
        "prio_tomorrow_start": _midnight(today + timedelta(days=1)),
        "prio_broken_floor": today - timedelta(days=w.broken_lookback_days),
        "prio_late_cap_floor": today - timedelta(days=w.days_past_due_cap),
        # A contact before this instant is at least ``no_contact_cap`` UTC days old.
        "prio_contact_cap_start": _midnight(today - timedelta(days=w.no_contact_cap - 1)),
    }
    for index, (_, floor) in enumerate(bucket_due_date_floors(today)):
        if floor is not None:
            params[f"prio_bucket_{index}"] = floor
    return params


# --- the score in SQL -------------------------------------------------------------------


def _points(value: float) -> ColumnElement[Any]:
    """A weight as a constant in the SQL text, not a bound parameter.

    Statements are cached per set of weights (:func:`_cached`), so nothing is lost; and
    with few parameters psycopg caches the conversion of the statement instead of
    re-parsing its text on every execution (it stops caching past 50 parameters).
    """
    return cast(literal_column(repr(float(value))), Float)


def _text_constant(value: str) -> ColumnElement[Any]:
    """A string as a quoted constant in the SQL text (see :func:`_points`)."""
    return literal_column("'" + value.replace("'", "''") + "'")


def _days_to_today(
    dialect: str, column: ColumnElement[Any], values: Mapping[str, Any] | None
) -> ColumnElement[Any]:
    """Whole days from a DATE column to today."""
    if dialect == "sqlite":
        return _bound("julian_today", Float, values) - func.julianday(column)
    return _day("today", values) - column


def _utc_days_to_today(
    dialect: str, column: ColumnElement[Any], values: Mapping[str, Any] | None
) -> ColumnElement[Any]:
    """Whole days from the UTC day of a (naive UTC) TIMESTAMP column to today."""
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
        return _bound("julian_today", Float, values) - func.julianday(func.substr(column, 1, 10))
    return _day("today", values) - cast(column, Date)


def _least(dialect: str, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """The smaller of two non-NULL values (SQLite's scalar min(), PostgreSQL's LEAST)."""
    return func.min(a, b) if dialect == "sqlite" else func.least(a, b)


def _score_template(
    dialect: str,
    weights: PriorityWeights,
    columns: Mapping[str, ColumnElement[Any]] | None = None,
    values: Mapping[str, Any] | None = None,
) -> ColumnElement[float]:
    """The score with the day's values as parameters (see :func:`day_params`).

    Without ``values`` the parameters are bound at execution; with them, now.
    """
    w = weights
    v = values
    col: dict[str, ColumnElement[Any]] = {name: debtors.c[name] for name in SCORE_INPUTS}
    col.update(columns or {})
    zero = _points(0.0)

    promise = case(
        (col["promise_due_on"] == _day("today", v), _points(w.promise_due_today)), else_=zero
    )
    broken = case(
        (
            col["broken_promise_on"].between(_day("broken_floor", v), _day("today", v)),
            _points(w.broken_promise),
        ),
        else_=zero,
    )
    installment = case((col["installment_missed"], _points(w.installment_missed)), else_=zero)
    cadence = case(
        (col["cadence_due_at"] < _instant("tomorrow_start", v), _points(w.cadence_due)),
        else_=zero,
    )

    rates = [
        (col["currency"] == _text_constant(currency), _points(float(rate)))
        for currency, rate in w.fx_to_base.items()
    ]
    rate = case(*rates, else_=_points(1.0)) if rates else _points(1.0)
    base = cast(col["open_balance"], Float) * rate
    balance = _least(dialect, base, _points(float(w.balance_cap))) * _points(w.balance_per_unit)

    oldest = col["oldest_due_date"]
    late_days = case(
        (oldest.is_(None), zero),
        (oldest >= _day("today", v), zero),
        (oldest <= _day("late_cap_floor", v), _points(w.days_past_due_cap)),
        else_=_days_to_today(dialect, oldest, v),
    )
    steps: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [(oldest.is_(None), zero)]
    for index in range(len(BUCKETS) - 1):
        steps.append((oldest >= _day(f"bucket_{index}", v), _points(index * w.aging_bucket_step)))
    bucket = case(*steps, else_=_points((len(BUCKETS) - 1) * w.aging_bucket_step))
    lateness = late_days * _points(w.days_past_due) + bucket

    last = col["last_contact_at"]
    contact_days = case(
        (last.is_(None), _points(w.no_contact_cap)),
        (last >= _instant("today_start", v), zero),
        (last < _instant("contact_cap_start", v), _points(w.no_contact_cap)),
        else_=_utc_days_to_today(dialect, last, v),
    )
    contact = contact_days * _points(w.no_contact)

    total = promise + broken + installment + cadence + balance + lateness + contact
    excluded = or_(
        col["dispute"],
        col["cease_communication"],
        col["bankruptcy"],
        col["deceased"],
        col["open_balance"] <= 0,
    )
    return case((excluded, _points(EXCLUDED_SCORE)), else_=total)


def score_expression(
    dialect_name: str,
    *,
    today: date,
    weights: PriorityWeights | None = None,
    columns: Mapping[str, ColumnElement[Any]] | None = None,
) -> ColumnElement[float]:
    """The score of ``score_account`` on ``today`` as a SQL expression over ``debtors``.

    ``columns`` replaces some inputs (named like the debtor columns, see
    :data:`SCORE_INPUTS`), e.g. with freshly aggregated facts. Only core SQL is used
    (no SQLite math functions); day arithmetic is ``julianday()`` on SQLite and date
    subtraction on PostgreSQL.
    """
    w = weights or DEFAULT_WEIGHTS
    return _score_template(dialect_name, w, columns, day_params(today, w))


# --- the facts from their source tables ---------------------------------------------------


def _as_bool(expr: ColumnElement[Any]) -> ColumnElement[bool]:
    """A 1/0/NULL aggregate as a boolean (NULL is false), the same on both engines."""
    return func.coalesce(expr, 0) == 1


def _invoice_facts(dialect: str) -> list[ColumnElement[Any]]:
    total = func.sum(invoices.c.amount_due)
    if dialect == "sqlite":  # REAL arithmetic: back to cents
        total = func.round(total, 2)
    return [func.coalesce(total, 0), func.count(), func.min(invoices.c.due_date)]


def _promise_filter() -> ColumnElement[bool]:
    return or_(
        and_(promises.c.status == "pending", promises.c.due_date >= _day("today")),
        and_(
            promises.c.status == "broken",
            promises.c.due_date.between(_day("broken_floor"), _day("today")),
        ),
    )


def _promise_facts() -> list[ColumnElement[Any]]:
    pending = promises.c.status == "pending"
    broken = promises.c.status == "broken"
    return [
        func.min(case((pending, promises.c.due_date))),
        func.max(case((broken, promises.c.due_date))),
        _as_bool(func.max(case((and_(broken, promises.c.plan_id.is_not(None)), 1), else_=0))),
    ]


def _task_filter() -> ColumnElement[bool]:
    return and_(tasks.c.status == "open", tasks.c.kind.in_(("cadence", "callback")))


def _task_facts() -> list[ColumnElement[Any]]:
    return [
        func.min(case((tasks.c.kind == "cadence", tasks.c.due_at))),
        func.min(case((tasks.c.kind == "callback", tasks.c.due_at))),
    ]


def _callback_name(next_action_at: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((next_action_at.is_not(None), literal("callback")), else_=null())


def _unchanged() -> dict[Any, Any]:
    return {debtors.c.updated_at: debtors.c.updated_at}


def _refresh_some_statement(dialect: str) -> Executable:
    """UPDATE the facts of the debtors in ``prio_ids`` with correlated aggregates."""
    me = debtors.c.id
    inv = select(*_invoice_facts(dialect)).where(
        invoices.c.debtor_id == me, invoices.c.status == "open"
    )
    last = select(func.max(contacts.c.started_at)).where(contacts.c.debtor_id == me)
    prom = select(*_promise_facts()).where(promises.c.debtor_id == me, _promise_filter())
    callback_at = _task_facts()[1]
    task = select(*_task_facts(), _callback_name(callback_at)).where(
        tasks.c.debtor_id == me, _task_filter()
    )
    d = debtors.c
    return (
        update(debtors)
        .where(me.in_(bindparam("prio_ids", expanding=True)))
        .values(
            {
                tuple_(d.open_balance, d.open_invoices, d.oldest_due_date): inv.scalar_subquery(),
                d.last_contact_at: last.scalar_subquery(),
                tuple_(
                    d.promise_due_on, d.broken_promise_on, d.installment_missed
                ): prom.scalar_subquery(),
                tuple_(d.cadence_due_at, d.next_action_at, d.next_action): task.scalar_subquery(),
                **_unchanged(),
            }
        )
    )


def _score_some_statement(dialect: str, weights: PriorityWeights) -> Executable:
    """UPDATE the stored score of the debtors in ``prio_ids`` from their columns."""
    return (
        update(debtors)
        .where(debtors.c.id.in_(bindparam("prio_ids", expanding=True)))
        .values(
            {
                debtors.c.priority_score: _score_template(dialect, weights),
                debtors.c.scored_at: _instant("now"),
                **_unchanged(),
            }
        )
    )


def _upsert(columns: Sequence[str], query: Select[Any]) -> Executable:
    """Merge ``query`` rows (id first, then ``columns``) into the scratch facts table."""
    stmt = sqlite_insert(_facts).from_select(["id", *columns], query)
    return stmt.on_conflict_do_update(
        index_elements=[_facts.c.id], set_={name: stmt.excluded[name] for name in columns}
    )


def _fill_scratch_statements() -> list[Executable]:
    """Aggregate every source table once, in index order, into the scratch table."""
    return [
        _facts.insert().from_select(
            ["id", "open_balance", "open_invoices", "oldest_due_date"],
            select(invoices.c.debtor_id, *_invoice_facts("sqlite"))
            # "+status" keeps SQLite off the (status, due_date) index, whose rows would
            # need sorting by debtor: the covering debtor index is read in order instead.
            .where(text("+invoices.status = 'open'"))
            .group_by(invoices.c.debtor_id),
        ),
        _upsert(
            ["last_contact_at"],
            select(contacts.c.debtor_id, func.max(contacts.c.started_at))
            .where(contacts.c.debtor_id.is_not(None))
            .group_by(contacts.c.debtor_id),
        ),
        _upsert(
            ["promise_due_on", "broken_promise_on", "installment_missed"],
            select(promises.c.debtor_id, *_promise_facts())
            .where(_promise_filter())
            .group_by(promises.c.debtor_id),
        ),
        _upsert(
            ["cadence_due_at", "next_action_at"],
            select(tasks.c.debtor_id, *_task_facts())
            .where(_task_filter())
            .group_by(tasks.c.debtor_id),
        ),
    ]


def _fresh_facts(row: FromClause) -> dict[str, ColumnElement[Any]]:
    """New fact values from an outer-joined facts row (none: nothing owed, no events)."""
    return {
        "open_balance": func.coalesce(row.c.open_balance, 0),
        "open_invoices": func.coalesce(row.c.open_invoices, 0),
        "oldest_due_date": row.c.oldest_due_date,
        "last_contact_at": row.c.last_contact_at,
        "promise_due_on": row.c.promise_due_on,
        "broken_promise_on": row.c.broken_promise_on,
        "installment_missed": func.coalesce(row.c.installment_missed, false()),
        "cadence_due_at": row.c.cadence_due_at,
        "next_action_at": row.c.next_action_at,
    }


def _apply_all_sqlite_statements(weights: PriorityWeights | None) -> list[Executable]:
    """Copy the scratch facts (and the score) onto every debtor in one pass over the table.

    Each debtor reads its facts with one primary-key lookup. The callback columns are
    written apart and only where they change, so the callback index is not rewritten.
    """
    one = select(literal(1).label("one")).subquery("one")
    joined = one.outerjoin(_facts, _facts.c.id == debtors.c.id)
    fresh = _fresh_facts(_facts)
    names = [name for name in FACT_COLUMNS if name != "next_action_at"]
    targets = [debtors.c[name] for name in names]
    values = [fresh[name] for name in names]
    if weights is not None:
        targets += [debtors.c.priority_score, debtors.c.scored_at]
        values += [_score_template("sqlite", weights, fresh), _instant("now")]
    facts = update(debtors).values(
        {tuple_(*targets): select(*values).select_from(joined).scalar_subquery(), **_unchanged()}
    )
    callback = select(fresh["next_action_at"], _callback_name(fresh["next_action_at"]))
    changed = or_(
        debtors.c.next_action_at.is_not(None),
        debtors.c.next_action.is_not(None),
        debtors.c.id.in_(select(_facts.c.id).where(_facts.c.next_action_at.is_not(None))),
    )
    callbacks = (
        update(debtors)
        .where(changed)
        .values(
            {
                tuple_(debtors.c.next_action_at, debtors.c.next_action): callback.select_from(
                    joined
                ).scalar_subquery(),
                **_unchanged(),
            }
        )
    )
    return [facts, callbacks]


# The debtor columns the pass with fresh facts writes (besides the score).
_REFRESHED = (*FACT_COLUMNS, "next_action")
# The facts that change with the day alone (a promise falls due, or out of the lookback).
_PROMISE_COLUMNS = ("promise_due_on", "broken_promise_on", "installment_missed")


def _some_ids(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """``column`` is one of the ids in ``prio_ids``.

    Bound one parameter an id (not as one array): PostgreSQL estimates ``= ANY($1)`` at
    ten ids, so it would plan every execution afresh rather than keep the generic plan
    of the prepared statement; one id is ``IN ($1)``, which it does keep.
    """
    return column.in_(bindparam("prio_ids", expanding=True))


def _all_facts_postgresql(some: bool = False) -> Select[Any]:
    """Every debtor's id, stored columns (``old_<name>``) and fresh facts, in one query
    (``some``: only the debtors in ``prio_ids``, see :func:`_some_ids`).

    The stored columns are those the pass writes and the inputs of the score.
    """

    def only(table: Table) -> list[ColumnElement[bool]]:
        return [_some_ids(table.c.debtor_id)] if some else []

    def labelled(exprs: list[ColumnElement[Any]], *names: str) -> list[ColumnElement[Any]]:
        return [expr.label(name) for expr, name in zip(exprs, names, strict=True)]

    inv = (
        select(
            invoices.c.debtor_id,
            *labelled(
                _invoice_facts("postgresql"), "open_balance", "open_invoices", "oldest_due_date"
            ),
        )
        .where(invoices.c.status == "open", *only(invoices))
        .group_by(invoices.c.debtor_id)
        .subquery("inv")
    )
    con = (
        select(contacts.c.debtor_id, func.max(contacts.c.started_at).label("last_contact_at"))
        .where(*only(contacts))
        .group_by(contacts.c.debtor_id)
        .subquery("con")
    )
    prom = (
        select(
            promises.c.debtor_id,
            *labelled(
                _promise_facts(), "promise_due_on", "broken_promise_on", "installment_missed"
            ),
        )
        .where(_promise_filter(), *only(promises))
        .group_by(promises.c.debtor_id)
        .subquery("prom")
    )
    task = (
        select(tasks.c.debtor_id, *labelled(_task_facts(), "cadence_due_at", "next_action_at"))
        .where(_task_filter(), *only(tasks))
        .group_by(tasks.c.debtor_id)
        .subquery("task")
    )
    d = debtors.alias("d")
    stored = dict.fromkeys((*_REFRESHED, "priority_score", *SCORE_INPUTS))
    query = select(
        d.c.id,
        *[d.c[name].label(f"old_{name}") for name in stored],
        inv.c.open_balance,
        inv.c.open_invoices,
        inv.c.oldest_due_date,
        con.c.last_contact_at,
        prom.c.promise_due_on,
        prom.c.broken_promise_on,
        prom.c.installment_missed,
        task.c.cadence_due_at,
        task.c.next_action_at,
    ).select_from(
        d.outerjoin(inv, inv.c.debtor_id == d.c.id)
        .outerjoin(con, con.c.debtor_id == d.c.id)
        .outerjoin(prom, prom.c.debtor_id == d.c.id)
        .outerjoin(task, task.c.debtor_id == d.c.id)
    )
    return query.where(_some_ids(d.c.id)) if some else query


def _apply_all_postgresql_statement(
    weights: PriorityWeights | None, some: bool = False
) -> Executable:
    """One UPDATE ... FROM of the fresh facts (and score) of the debtors where they differ
    (``some``: of the debtors in ``prio_ids``; one statement and one new row version per
    debtor, where refreshing the facts and then the score would write two).

    Rows whose facts and score stay the same are not written. The fresh values are
    computed once per debtor, in a subquery that ``OFFSET 0`` keeps apart (merged into
    the UPDATE, the score would be evaluated once for the comparison and again for SET);
    it comes out in debtor order, so it is merged with the rows to write without a sort.
    """
    raw = _all_facts_postgresql(some).subquery("raw")
    fresh = _fresh_facts(raw)
    new: dict[str, ColumnElement[Any]] = {name: fresh[name] for name in FACT_COLUMNS}
    new["next_action"] = _callback_name(fresh["next_action_at"])
    if weights is not None:
        inputs = {
            name: fresh[name] if name in FACT_COLUMNS else raw.c[f"old_{name}"]
            for name in SCORE_INPUTS
        }
        new["priority_score"] = _score_template("postgresql", weights, inputs)
    f = (
        select(
            raw.c.id,
            *[raw.c[f"old_{name}"] for name in new],
            *[value.label(f"new_{name}") for name, value in new.items()],
        )
        .order_by(raw.c.id)
        .offset(0)
        .subquery("f")
    )
    changed = or_(*[f.c[f"old_{name}"].is_distinct_from(f.c[f"new_{name}"]) for name in new])
    values: dict[Any, Any] = {debtors.c[name]: f.c[f"new_{name}"] for name in new}
    if weights is not None:
        values[debtors.c.scored_at] = _instant("now")
    values.update(_unchanged())
    return update(debtors).where(debtors.c.id == f.c.id, changed).values(values)


def _daily_promises_statements() -> list[Executable]:
    """UPDATE the promise facts of the debtors whose promise facts differ today.

    Only two kinds of debtors can have other promise facts today than at their last
    refresh: those with a promise that counts today (:func:`_promise_filter`, found by
    the promises' status index), whose facts are aggregated and written where they
    differ, and those whose stored promise facts are set (``PROMISE_FACTS``, the
    condition of the partial index ``ix_debtors_promises``, which finds them) without
    such a promise, which get NULL, NULL, false. The rest keep NULL, NULL, false.
    """
    d = debtors.c
    prom = (
        select(
            promises.c.debtor_id,
            *[
                expr.label(name)
                for expr, name in zip(_promise_facts(), _PROMISE_COLUMNS, strict=True)
            ],
        )
        .where(_promise_filter())
        .group_by(promises.c.debtor_id)
        .subquery("prom")
    )
    recompute = (
        update(debtors)
        .where(
            d.id == prom.c.debtor_id,
            or_(*[d[name].is_distinct_from(prom.c[name]) for name in _PROMISE_COLUMNS]),
        )
        .values({**{d[name]: prom.c[name] for name in _PROMISE_COLUMNS}, **_unchanged()})
    )
    counting = select(promises.c.debtor_id).where(_promise_filter())
    clear = (
        update(debtors)
        .where(text(f"({PROMISE_FACTS})"), d.id.not_in(counting))
        .values(
            {
                d.promise_due_on: null(),
                d.broken_promise_on: null(),
                d.installment_missed: false(),
                **_unchanged(),
            }
        )
    )
    return [recompute, clear]


def _score_all_statement(dialect: str, weights: PriorityWeights) -> Executable:
    """UPDATE the stored score of every debtor from its columns.

    On PostgreSQL only the rows whose score changes are written (a written row is a new
    row version there); SQLite rewrites every row in place, which costs less than
    computing the score twice.
    """
    score = _score_template(dialect, weights)
    stmt = update(debtors).values(
        {debtors.c.priority_score: score, debtors.c.scored_at: _instant("now"), **_unchanged()}
    )
    if dialect == "postgresql":
        stmt = stmt.where(debtors.c.priority_score.is_distinct_from(score))
    return stmt


# Built statements by (purpose, engine, weights as JSON): the day comes in as parameters.
_statements: dict[tuple[str, str, str], Any] = {}


def _cached(purpose: str, dialect: str, weights: PriorityWeights | None, build: Any) -> Any:
    key = (purpose, dialect, weights.model_dump_json() if weights is not None else "")
    found = _statements.get(key)
    if found is None:
        if len(_statements) > 64:  # many weight settings over time: start over
            _statements.clear()
        found = _statements[key] = build()
    return found


# --- running it -------------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), ID_CHUNK):
        yield unique[start : start + ID_CHUNK]


def _in_transaction(conn: Connection) -> bool:
    """True when the SQLite connection has really begun a transaction (DDL then rolls back)."""
    raw = conn.connection.driver_connection
    return bool(getattr(raw, "in_transaction", False))


def _sqlite_cache_size(conn: Connection) -> int | None:
    value = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    return value if isinstance(value, int) else None


def _cache_kib(conn: Connection, cache_size: int) -> int:
    """A ``cache_size`` setting in KiB (negative: KiB already; positive: pages)."""
    if cache_size < 0:
        return -cache_size
    page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
    return cache_size * int(page_size or 4096) // 1024


def _queue_index() -> Index | None:
    """The model's index that orders a queue by score."""
    for index in debtors.indexes:
        if "priority_score" in index.columns:
            return index
    return None


@contextmanager
def _sqlite_pass(conn: Connection) -> Iterator[None]:
    """The frame of a pass over every debtor on SQLite: write lock first, a larger cache.

    The page cache is enlarged for the pass (and restored): every page of ``debtors`` is
    rewritten, and a cache smaller than the table would spill pages to the WAL mid-pass.
    """
    # Take the write lock before reading: facts read from an older snapshot could not be
    # written (SQLite refuses to upgrade a stale read) and would be stale anyway.
    conn.execute(
        update(debtors)
        .where(debtors.c.id.is_(None))
        .values({debtors.c.id: debtors.c.id, **_unchanged()})
    )
    cache_size = _sqlite_cache_size(conn)
    grow = cache_size is not None and _cache_kib(conn, cache_size) < SQLITE_CACHE_KIB
    if grow:
        conn.exec_driver_sql(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        if grow:
            conn.exec_driver_sql(f"PRAGMA cache_size={cache_size}")


@contextmanager
def _without_queue_index_sqlite(conn: Connection, scoring: bool) -> Iterator[None]:
    """When scores are written, drop the queue index and build it once after.

    Only inside a transaction (SQLite DDL is transactional); the index is recreated even
    when the pass fails. Dropping an index also deletes its planner statistics
    (``sqlite_stat1``); they are put back, or the planner, knowing nothing of the new
    index, prefers it to the filters' own indexes (a filter's first read then walks the
    whole queue: 70 ms instead of a few at 200k debtors).
    """
    queue_index = _queue_index() if scoring and _in_transaction(conn) else None
    stats: list[Any] = []
    if queue_index is not None:
        if conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).first():
            stats = list(
                conn.exec_driver_sql(
                    "SELECT tbl, idx, stat FROM sqlite_stat1 WHERE idx = ?", (queue_index.name,)
                )
            )
        queue_index.drop(conn)
    try:
        yield
    finally:
        if queue_index is not None:
            queue_index.create(conn, checkfirst=True)
            for row in stats:
                conn.exec_driver_sql(
                    "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", tuple(row)
                )


def _all_sqlite(conn: Connection, params: dict[str, Any], weights: PriorityWeights | None) -> int:
    """The pass with fresh facts on SQLite: aggregate into a scratch table, then one pass
    over debtors (the queue index rebuilt once when scores change)."""
    with _sqlite_pass(conn):
        try:
            conn.exec_driver_sql("DROP TABLE IF EXISTS temp.prio_facts")
            _facts.create(conn)
            for stmt in _cached("fill", "sqlite", None, _fill_scratch_statements):
                conn.execute(stmt, params)
            with _without_queue_index_sqlite(conn, weights is not None):
                facts, callbacks = _cached(
                    "apply", "sqlite", weights, lambda: _apply_all_sqlite_statements(weights)
                )
                count = conn.execute(facts, params).rowcount
                conn.execute(callbacks, params)
            return count
        finally:
            conn.exec_driver_sql("DROP TABLE IF EXISTS temp.prio_facts")


def _daily_sqlite(conn: Connection, params: dict[str, Any], weights: PriorityWeights) -> int:
    """The daily pass on SQLite: the day's promise facts, then every score from its row."""
    with _sqlite_pass(conn):
        for stmt in _cached("daily_promises", "sqlite", None, _daily_promises_statements):
            conn.execute(stmt, params)
        with _without_queue_index_sqlite(conn, True):
            stmt = _cached(
                "score_all", "sqlite", weights, lambda: _score_all_statement("sqlite", weights)
            )
            return conn.execute(stmt, params).rowcount


def _set_local(conn: Connection, settings: Mapping[str, str]) -> dict[str, str]:
    """Set PostgreSQL ``settings`` for the rest of the transaction; returns the old values."""
    names = list(settings)
    old = conn.execute(select(*[func.current_setting(name) for name in names])).one()
    conn.execute(select(*[func.set_config(name, value, True) for name, value in settings.items()]))
    return dict(zip(names, old, strict=True))


def _drop_queue_index_postgresql(conn: Connection) -> Index | None:
    """Drop the queue index for the pass if ``debtors`` can be locked soon; else None.

    A pass gives most rows a new score, and the score is in the queue index: with that
    index in place no update is HOT, so each written row costs a new entry in every
    index on ``debtors`` (about 40 us a row: most of the pass). Without it the rows are
    rewritten in place (the table keeps room for that: fillfactor, migration 0008) and
    the index is built once, from scratch. Dropping it takes an ACCESS EXCLUSIVE lock
    until the caller commits: readers of ``debtors`` wait for the pass (a second or two)
    instead of reading around it, writers and claims wait as they did for the rows the
    pass locked. The lock is waited for ``POSTGRESQL_LOCK_WAIT`` at most (a transaction
    left open after reading ``debtors`` holds it off); then the pass runs with the index
    in place. Only inside a transaction, which brings the index back if the pass fails.
    """
    index = _queue_index()
    if index is None or getattr(conn.connection.driver_connection, "autocommit", True):
        return None
    try:
        with conn.begin_nested():
            old = _set_local(conn, {"lock_timeout": POSTGRESQL_LOCK_WAIT})
            conn.execute(text(f"LOCK TABLE {debtors.name} IN ACCESS EXCLUSIVE MODE"))
            index.drop(conn)
            _set_local(conn, old)
    except OperationalError as exc:  # the savepoint is rolled back, lock_timeout with it
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return None
    return index


def _all_postgresql(
    conn: Connection, params: dict[str, Any], weights: PriorityWeights | None, facts: bool
) -> int:
    """The pass on PostgreSQL: with ``facts``, one UPDATE ... FROM of merged aggregates.

    Without ``facts`` (the daily pass, ``weights`` given) only the day's promise facts
    are refreshed, then every score that changes is written. When scores are written,
    the queue index is dropped first and built again after (see
    :func:`_drop_queue_index_postgresql`). Each step runs with its planner settings,
    undone after.
    """
    steps: list[tuple[Mapping[str, str], Executable]]
    if facts:
        apply = _cached(
            "apply", "postgresql", weights, lambda: _apply_all_postgresql_statement(weights)
        )
        steps = [(POSTGRESQL_FACTS_SETTINGS, apply)]
    else:
        assert weights is not None
        promises_ = _cached("daily_promises", "postgresql", None, _daily_promises_statements)
        score = _cached(
            "score_all", "postgresql", weights, lambda: _score_all_statement("postgresql", weights)
        )
        steps = [(POSTGRESQL_PROMISES_SETTINGS, stmt) for stmt in promises_]
        steps.append(({}, score))
    queue_index = _drop_queue_index_postgresql(conn) if weights is not None else None
    old = _set_local(conn, POSTGRESQL_PASS_SETTINGS)
    for settings_, stmt in steps:  # each writes only the rows that change
        undo = _set_local(conn, settings_) if settings_ else {}
        conn.execute(stmt, params)
        if undo:
            _set_local(conn, undo)
    if queue_index is not None:  # if the pass fails, the rollback brings the index back
        queue_index.create(conn)
    _set_local(conn, old)
    return conn.execute(select(func.count()).select_from(debtors)).scalar_one()


def _run(
    conn: Connection,
    *,
    today: date,
    now: datetime,
    debtor_ids: Sequence[int] | None,
    weights: PriorityWeights,
    score: bool,
    facts: bool = True,
) -> int:
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now; attach a time zone")
    dialect = conn.dialect.name
    params = day_params(today, weights)
    params["prio_now"] = now
    scoring = weights if score else None
    if debtor_ids is not None and dialect == "postgresql":
        apply = _cached(
            "apply_some", dialect, scoring, lambda: _apply_all_postgresql_statement(scoring, True)
        )
        count = 0
        for ids in _chunks(debtor_ids):  # rows whose facts and score stay are not written
            run_on_driver(conn, apply, {**params, "prio_ids": ids})
            count += len(ids)
        return count
    if debtor_ids is not None:
        refresh = _cached("refresh_some", dialect, None, lambda: _refresh_some_statement(dialect))
        rescore_ = (
            _cached("score_some", dialect, weights, lambda: _score_some_statement(dialect, weights))
            if score
            else None
        )
        count = 0
        for ids in _chunks(debtor_ids):
            chunk = {**params, "prio_ids": ids}
            conn.execute(refresh, chunk)
            if rescore_ is not None:
                conn.execute(rescore_, chunk)
            count += len(ids)
        return count
    if dialect == "sqlite":
        if not facts:
            return _daily_sqlite(conn, params, weights)
        return _all_sqlite(conn, params, scoring)
    return _all_postgresql(conn, params, scoring, facts)


def refresh_facts(
    conn: Connection,
    *,
    today: date,
    now: datetime,
    debtor_ids: Sequence[int] | None = None,
    weights: PriorityWeights | None = None,
) -> int:
    """Recompute the cached priority facts of every debtor, or of ``debtor_ids``.

    ``weights`` only supplies the broken-promise lookback. Runs in the caller's
    transaction; returns the number of debtors, or of distinct ``debtor_ids``.
    """
    return _run(
        conn,
        today=today,
        now=now,
        debtor_ids=debtor_ids,
        weights=weights or DEFAULT_WEIGHTS,
        score=False,
    )


@lru_cache(maxsize=8)
def weights_from_text(text: str | None) -> PriorityWeights:
    """The weights as stored under :data:`WEIGHTS_SETTING` (``None``: none stored, the
    defaults), parsed once per text."""
    return DEFAULT_WEIGHTS if text is None else PriorityWeights.model_validate_json(text)


def stored_weights(conn: Connection) -> PriorityWeights:
    """The weights saved in the database (the defaults until someone sets them)."""
    return weights_from_text(read_setting(conn, WEIGHTS_SETTING))


def store_weights(conn: Connection, weights: PriorityWeights) -> None:
    """Save ``weights`` as the ones every rescore uses (run a full rescore after)."""
    write_setting(conn, WEIGHTS_SETTING, weights.model_dump_json())


def rescore(
    conn: Connection,
    *,
    today: date,
    now: datetime,
    weights: PriorityWeights | None = None,
    debtor_ids: Sequence[int] | None = None,
    facts: bool = True,
) -> int:
    """Refresh the facts, then store ``priority_score`` and ``scored_at`` (all or some).

    The pass over every debtor (no ``debtor_ids``) writes facts and score in the same
    pass over the table. ``facts=False`` makes it the daily pass: the facts that events
    keep current (:func:`rescore` with ``debtor_ids`` after each write) are trusted, only
    the promise facts, which change with the day alone, are refreshed, and every score is
    computed from its row. Passes after writes that refresh nothing themselves (a seed, a
    first sync, a bulk cadence run) keep ``facts=True``; with ``debtor_ids`` the facts
    are always refreshed. Runs in the caller's transaction; returns the number of
    debtors scored, or of distinct ``debtor_ids``.
    """
    return _run(
        conn,
        today=today,
        now=now,
        debtor_ids=debtor_ids,
        weights=weights or stored_weights(conn),
        score=True,
        facts=facts,
    )
