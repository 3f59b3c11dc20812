"""The statements of a claim and a save sent straight to the database driver.

On a busy team server the client's CPU is what caps how many saves a second go through
(issue 9). ``Connection.execute`` spends more of it than the driver does: about 0.17 ms a
statement on the 2-core bench machine for SQLAlchemy's execution context and result
set-up, against 0.1 ms for psycopg. These functions keep SQLAlchemy for what it does once
(building and compiling the statement, its types' bind and result processors) and send
each execution on the connection's own DBAPI cursor, inside the same transaction.

- :func:`run_on_driver`, for writes whose answer is at most a row of plain values (ids):
  rows come back as the driver returns them.
- :func:`read_on_driver`, for reads: named rows, each value converted by its column's
  type as ``execute`` converts it.

Columns' Python-side defaults are not filled in, so a write names every value it writes.
Listeners of ``before_cursor_execute`` (the audit-log guard, tests counting statements)
still see every statement, and errors are wrapped as ``execute`` wraps them: a value its
type refuses (a naive datetime) as ``StatementError``, driver errors as ``DBAPIError``
subclasses.
"""

from __future__ import annotations

import copy
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.selectable import SelectBase


@dataclass
class _Prepared:
    """A statement compiled for one dialect, with what each execution needs of it."""

    compiled: Compiled
    processors: dict[str, Callable[[Any], Any]]  # bind processors by parameter name
    expands: bool  # has parameters rendered at execution (expanding IN)
    returns_rows: bool
    cursor_class: Any  # None: the connection's own
    # With ``expands``: its renderings by the lengths of the list values, as they come.
    expansions: dict[tuple[int, ...], _Expansion] = field(default_factory=dict)
    # A read's row maker and its columns' result processors, found at its first rows.
    shape: tuple[Callable[[Any], Any], list[tuple[int, Callable[[Any], Any]]]] | None = None


# By (statement, dialect name). The statements handed in are built once and kept by their
# modules, so this stays small; it starts over past the bound.
_prepared: dict[tuple[ClauseElement, str], _Prepared] = {}
_BOUND = 256


def _prepare(statement: ClauseElement, conn: Connection) -> _Prepared:
    key = (statement, conn.dialect.name)
    found = _prepared.get(key)
    if found is None:
        if len(_prepared) >= _BOUND:
            _prepared.clear()
        dialect = conn.dialect
        raw = dialect.driver == "psycopg"
        compiled: Any = statement.compile(dialect=_numbered(dialect) if raw else dialect)
        found = _prepared[key] = _Prepared(
            compiled=compiled,
            processors={
                name: process
                for name, bind in compiled.binds.items()
                if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))
            },
            expands=bool(compiled.post_compile_params or compiled.literal_execute_params),
            returns_rows=bool(
                getattr(statement, "is_select", False) or getattr(compiled, "returning", None)
            ),
            cursor_class=_raw_cursor() if raw else None,
        )
    return found


def _numbered(dialect: Dialect) -> Dialect:
    """``dialect`` compiling PostgreSQL's own ``$1`` placeholders instead of ``%(name)s``.

    psycopg's raw cursor sends such a statement as it is. Its usual cursor rewrites the
    named placeholders at every execution, and caches that work only for statements up to
    4,096 characters: the one-account rescore (about 7,900) cost 0.3 ms of CPU a save.
    """
    numbered = _numbered_dialects.get(dialect)
    if numbered is None:
        numbered = copy.copy(dialect)
        numbered.paramstyle = "numeric_dollar"
        numbered.positional = True
        numbered.identifier_preparer = numbered.preparer(numbered)  # type: ignore[attr-defined]
        numbered = _numbered_dialects[dialect] = numbered
    return numbered


_numbered_dialects: weakref.WeakKeyDictionary[Dialect, Dialect] = weakref.WeakKeyDictionary()


def _raw_cursor() -> Any:
    from psycopg import RawCursor  # only with the PostgreSQL driver installed

    return RawCursor


@dataclass(frozen=True)
class _Expansion:
    """A statement with its expanding parameters rendered for lists of given lengths."""

    sql: str
    order: Sequence[str] | None
    names: dict[str, list[str]]  # each expanding parameter's names once expanded
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]


def _expanded(
    prepared: _Prepared, params: Mapping[str, Any]
) -> tuple[dict[str, Any], Sequence[str] | None, str, Iterable[tuple[str, Any]]]:
    """The values, order, SQL and extra processors of a statement with expanding ``IN``
    parameters. Rendering them rewrites the whole statement text, so the rendering is kept
    by the lengths of the lists (a save's rescore is for one account every time)."""
    compiled: Any = prepared.compiled
    if compiled.literal_execute_params:  # values rendered in the text: nothing to keep
        state = compiled.construct_expanded_state(params)
        return dict(state.parameters), state.positiontup, state.statement, state.processors.items()
    values = compiled.construct_params(params)
    # The lengths of the list values: those of the expanding parameters among them.
    lengths = tuple(len(value) for value in values.values() if isinstance(value, list | tuple))
    expansion = prepared.expansions.get(lengths)
    if expansion is None:
        state = compiled.construct_expanded_state(params)
        expansion = _Expansion(
            state.statement, state.positiontup, dict(state.parameter_expansion),
            tuple(state.processors.items()),
        )  # fmt: skip
        if len(prepared.expansions) >= _BOUND:
            prepared.expansions.clear()
        prepared.expansions[lengths] = expansion
    for name, expanded in expansion.names.items():
        items = values.pop(name)
        if len(expanded) != len(items):  # a tuple IN: a name for each member of each tuple
            items = [member for item in items for member in item]
        values.update(zip(expanded, items, strict=True))
    return values, expansion.order, expansion.sql, expansion.processors


def run_on_driver(
    conn: Connection, statement: ClauseElement, params: Mapping[str, Any]
) -> list[Sequence[Any]]:
    """Execute ``statement`` with ``params`` on ``conn``'s DBAPI cursor, in its current
    transaction, and return the rows it returns as the driver gives them (none for a
    statement returning nothing)."""
    rows, _description = _execute(conn, _prepare(statement, conn), params, describe=False)
    return rows


def read_on_driver(conn: Connection, query: SelectBase, params: Mapping[str, Any]) -> list[Any]:
    """Run ``query`` as :func:`run_on_driver` does and return its rows as named tuples
    (the query's column keys, as ``Row`` has them), each value converted by its column's
    type as ``execute`` converts it (aware UTC datetimes, Decimal money)."""
    prepared = _prepare(query, conn)
    shape = prepared.shape
    rows, description = _execute(conn, prepared, params, describe=shape is None)
    if not rows:
        return []
    if shape is None:
        columns = list(query.selected_columns)
        make = namedtuple("DriverRow", query.selected_columns.keys(), rename=True)._make  # type: ignore[misc]  # noqa: PYI024
        processors = [
            column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, info[1])
            for column, info in zip(columns, description, strict=True)
        ]
        shape = prepared.shape = (make, [(i, f) for i, f in enumerate(processors) if f])
    make, convert = shape
    if not convert:
        return [make(row) for row in rows]
    converted = []
    for row in rows:
        values = list(row)
        for i, process in convert:
            values[i] = process(values[i])
        converted.append(make(values))
    return converted


def _execute(
    conn: Connection, prepared: _Prepared, params: Mapping[str, Any], describe: bool
) -> tuple[list[Sequence[Any]], Any]:
    """The rows, and with ``describe`` the cursor's description (psycopg builds it afresh
    at each access, a column object per column)."""
    compiled: Any = prepared.compiled
    processors: Iterable[tuple[str, Callable[[Any], Any]]] = prepared.processors.items()
    if prepared.expands:
        values, order, sql, more = _expanded(prepared, params)
        processors = (*processors, *more)
    else:
        values, order, sql = (
            compiled.construct_params(params),
            compiled.positiontup,
            compiled.string,
        )
    try:
        for name, process in processors:
            if name in values:
                values[name] = process(values[name])
    except Exception as exc:  # as ``execute`` reports a value its type refuses
        raise StatementError(str(exc), compiled.string, params, exc) from exc
    args: Any = values if order is None else [values[name] for name in order]
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    if prepared.cursor_class is None:
        cursor = dbapi_connection.cursor()
    else:
        cursor = prepared.cursor_class(dbapi_connection)
    try:
        for listener in conn.dispatch.before_cursor_execute:
            sql, args = listener(conn, cursor, sql, args, None, False)
        try:
            cursor.execute(sql, args)
            if not prepared.returns_rows:
                return [], None
            return cursor.fetchall(), cursor.description if describe else None
        except conn.dialect.loaded_dbapi.Error as exc:
            if conn.dialect.is_disconnect(exc, dbapi_connection, cursor):
                conn.invalidate(exc)
            raise DBAPIError.instance(
                sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from exc
    finally:
        cursor.close()
