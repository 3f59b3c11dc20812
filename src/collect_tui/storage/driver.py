"""A claim's and a save's writes sent straight to the database driver.

On a busy team server the client's CPU is what caps how many saves a second go through
(issue 9). ``Connection.execute`` spends more of it than the driver does: about 0.17 ms a
statement on the 2-core bench machine for SQLAlchemy's execution context and result
set-up, against 0.1 ms for psycopg. :func:`run_on_driver` keeps SQLAlchemy for what it
does once (building and compiling the statement, its types' bind processors) and sends
each execution on the connection's own DBAPI cursor, inside the same transaction.

It is for the hot writes whose answer is at most a row of plain values (ids, counts):
rows come back as the driver returns them, with no result types applied, and columns'
Python-side defaults are not filled in, so such a statement names every value it writes.
Listeners of ``before_cursor_execute`` (the audit-log guard, tests counting statements)
still see every statement, and errors are wrapped as ``execute`` wraps them: a value its
type refuses (a naive datetime) as ``StatementError``, driver errors as ``DBAPIError``
subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled

# Compiled statements and their parameters' bind processors, by (statement, dialect
# name). The statements handed in are built once and kept by their modules, so this stays
# small; it starts over past the bound.
_Processors = dict[str, Callable[[Any], Any]]
_compiled: dict[tuple[ClauseElement, str], tuple[Compiled, _Processors]] = {}
_COMPILED_BOUND = 256


def _compile(statement: ClauseElement, conn: Connection) -> tuple[Compiled, _Processors]:
    key = (statement, conn.dialect.name)
    found = _compiled.get(key)
    if found is None:
        if len(_compiled) >= _COMPILED_BOUND:
            _compiled.clear()
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect)
        processors = {
            name: process
            for name, bind in compiled.binds.items()  # type: ignore[attr-defined]
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        found = _compiled[key] = (compiled, processors)
    return found


def run_on_driver(
    conn: Connection, statement: ClauseElement, params: Mapping[str, Any]
) -> list[Sequence[Any]]:
    """Execute ``statement`` with ``params`` on ``conn``'s DBAPI cursor, in its current
    transaction, and return the rows it returns (none for a statement returning nothing)."""
    compiled, processors = _compile(statement, conn)
    state = compiled.construct_expanded_state(params)  # type: ignore[attr-defined]
    values = dict(state.parameters)
    # An expanded parameter's values are named apart and processed by its own processors.
    try:
        for name, process in (*processors.items(), *state.processors.items()):
            if name in values:
                values[name] = process(values[name])
    except Exception as exc:  # as ``execute`` reports a value its type refuses
        raise StatementError(str(exc), compiled.string, params, exc) from exc
    args: Any = values if state.positiontup is None else [values[n] for n in state.positiontup]
    sql: str = state.statement
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        for listener in conn.dispatch.before_cursor_execute:
            sql, args = listener(conn, cursor, sql, args, None, False)
        try:
            cursor.execute(sql, args)
            return cursor.fetchall() if cursor.description is not None else []
        except conn.dialect.loaded_dbapi.Error as exc:
            if conn.dialect.is_disconnect(exc, dbapi_connection, cursor):
                conn.invalidate(exc)
            raise DBAPIError.instance(
                sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from exc
    finally:
        cursor.close()
