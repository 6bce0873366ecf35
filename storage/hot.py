"""Statements every chat message runs, compiled once and sent straight to the session's own driver
connection.

Through the async session a statement costs 0.1–0.2 ms of CPU in SQLAlchemy alone on our 2-core VM
(execution context, result set-up, two greenlet switches), against ~20 µs for the statement itself in
SQLite: on a 本周 that was most of its 1.5 ms. A :class:`Hot` statement is an ordinary Core statement,
compiled once per dialect; each run binds the values through the column types' own processors (so a
date or a JSON value is stored exactly as SQLAlchemy would store it), executes on the connection the
session already holds — inside its transaction, so commit and rollback are the session's as before —
and reads the rows back through the types' result processors into plain named tuples.

What it leaves out, on purpose: the ORM (no autoflush — pending ORM changes are flushed first — no
identity map, no ``do_orm_execute`` hooks, so no hot statement may write a directory table), the
engine's events but ``before_cursor_execute`` (sent only when someone listens, with no cursor or
context), and Python-side column defaults (an INSERT names every column it fills). Driver errors are raised as SQLAlchemy's (``IntegrityError`` …),
as the callers expect.

SQLite runs through ``storage.sqlite_driver`` (on the loop, long reads moved to its thread); PostgreSQL
on the asyncpg connection under SQLAlchemy's adapter, which begins the transaction as it would, and
asyncpg prepares each statement once per connection.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from typing import Any, Iterable, Sequence

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession as _SAAsyncSession

_KEY = "bangdai.hot"


class _Plan:
    """One statement compiled for one dialect: its SQL, how to bind its values and read its rows."""

    __slots__ = ("compiled", "sql", "binds", "fixed", "expanding", "lists", "by_length", "row", "readers")

    def __init__(self, statement: Any, dialect: Any, keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        self.compiled = compiled
        self.sql = compiled.string
        self.expanding = bool(compiled.literal_execute_params or compiled.post_compile_params)
        # ``IN`` lists (expanding parameters): the SQL depends only on each list's length, so it is
        # expanded once per length. A value rendered into the SQL (literal_execute) is expanded each time.
        self.lists = None if compiled.literal_execute_params else [p.key for p in compiled.post_compile_params]
        self.by_length: dict[tuple[int, ...], tuple[str, list, dict]] = {}
        processors = compiled._bind_processors
        # Values the statement holds itself (``id == 1``); a value computed at each run falls back to
        # SQLAlchemy's construct_params.
        computed = any(b.callable is not None for b in compiled.binds.values())
        self.fixed = None if computed else compiled.construct_params({}, escape_names=False, _check=False)
        self.binds = [(name, processors.get(name)) for name in (compiled.positiontup or ())]
        columns = compiled._result_columns
        self.row = namedtuple("Row", [c[0] for c in columns], rename=True) if columns else None  # type: ignore[misc]
        readers = [(i, c[3]._cached_result_processor(dialect, None)) for i, c in enumerate(columns)]
        self.readers = [(i, fn) for i, fn in readers if fn is not None]

    def bind(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        compiled = self.compiled
        if self.fixed is None:
            values = compiled.construct_params(params, escape_names=False, _check=False)
        else:
            values = {**self.fixed, **params}
        if not self.expanding:
            return self.sql, [fn(values[name]) if fn else values[name] for name, fn in self.binds]
        if self.lists is None:
            expanded = compiled._process_parameters_for_postcompile(values)
            processors = {**compiled._bind_processors, **expanded.processors}
            order = [(n, processors.get(n)) for n in expanded.positiontup or ()]
            return expanded.statement, [fn(expanded.parameters[n]) if fn else expanded.parameters[n] for n, fn in order]
        key = tuple(len(values[name]) for name in self.lists)
        shape = self.by_length.get(key)
        if shape is None:
            expanded = compiled._process_parameters_for_postcompile(dict(values))  # it takes the lists out
            processors = {**compiled._bind_processors, **expanded.processors}
            shape = self.by_length[key] = (expanded.statement,
                                           [(n, processors.get(n)) for n in expanded.positiontup or ()],
                                           dict(expanded.parameter_expansion))
        sql, order, expansion = shape
        flat = dict(values)
        for name, names in expansion.items():
            flat.update(zip(names, values[name]))
        return sql, [fn(flat[n]) if fn else flat[n] for n, fn in order]

    def rows(self, raw: Iterable[Sequence[Any]]) -> list[Any]:
        make, readers = self.row, self.readers
        if make is None:
            return []
        if not readers:
            return [make(*r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, fn in readers:
                values[i] = fn(values[i])
            out.append(make(*values))
        return out


class Hot:
    """A Core statement run on the session's driver connection (see the module's docstring).
    ``keys``: for an ``insert(table)`` without values, the columns each run gives."""

    __slots__ = ("statement", "keys", "_plans")

    def __init__(self, statement: Any, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = tuple(keys) if keys is not None else None
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Any) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _Plan(self.statement, dialect, self.keys)
        return plan

    async def rows(self, session: _SAAsyncSession, params: dict[str, Any] | None = None) -> list[Any]:
        """The statement's rows (RETURNING's, for a write) as named tuples; [] when it returns none."""
        connection, driver = await _driver(session)
        dialect = connection.dialect
        plan = self._plan(dialect)
        sql, args = plan.bind(params or {})
        if connection._has_events or connection.engine._has_events:  # someone watches the statements
            connection.dispatch.before_cursor_execute(connection, None, sql, args, None, False)
        return plan.rows(await driver(sql, args, dialect))

    async def first(self, session: _SAAsyncSession, params: dict[str, Any] | None = None) -> Any:
        rows = await self.rows(session, params)
        return rows[0] if rows else None

    async def scalar(self, session: _SAAsyncSession, params: dict[str, Any] | None = None) -> Any:
        row = await self.first(session, params)
        return None if row is None else row[0]

    async def run_each(self, session: _SAAsyncSession, params: Iterable[dict[str, Any]]) -> None:
        """The statement once for each set of values, in this transaction (a handful: not a bulk load)."""
        for values in params:
            await self.rows(session, values)


async def _driver(session: _SAAsyncSession) -> tuple[Any, Any]:
    """(connection, run) for the connection this session's transaction holds, found once per transaction."""
    sync = session.sync_session
    if not sync._is_clean():  # (new, dirty or deleted objects, without building those sets)
        await session.flush()  # what the ORM holds reaches the database before a statement reads it
    transaction = sync.get_transaction()
    held = sync.info.get(_KEY)
    if held is not None and transaction is not None and held[0] is transaction:
        return held[1], held[2]
    connection = (await session.connection()).sync_connection
    dialect = connection.dialect
    proxied = connection.connection
    if dialect.name == "sqlite":
        run = _sqlite(proxied.driver_connection)
    elif dialect.driver == "asyncpg":
        run = _asyncpg(proxied.dbapi_connection)
    else:  # pragma: no cover - only SQLite and asyncpg are configured (storage.db)
        raise NotImplementedError(f"hot statements on {dialect.name}+{dialect.driver}")
    sync.info[_KEY] = (sync.get_transaction(), connection, run)
    return connection, run


def _sqlite(connection: Any):
    def execute(raw: sqlite3.Connection, _method: str, sql: str, args: Any) -> list[Any]:
        cursor = raw.execute(sql, args)
        try:
            return cursor.fetchall() if cursor.description is not None else []
        finally:
            cursor.close()

    async def run(sql: str, args: list[Any], dialect: Any) -> list[Any]:
        try:
            return await connection.statement(execute, "execute", sql, args)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, args, exc, sqlite3.Error) from exc

    return run


def _asyncpg(adapted: Any):
    async def run(sql: str, args: list[Any], dialect: Any) -> list[Any]:
        async with adapted._execute_mutex:
            try:
                if adapted._transaction is None:
                    await adapted._start_transaction()  # as SQLAlchemy's adapter does before a statement
                return await adapted._connection.fetch(sql, *args)
            except Exception as exc:
                try:
                    adapted._handle_exception(exc)  # the DB-API error SQLAlchemy's adapter would raise
                except Exception as translated:
                    raise DBAPIError.instance(sql, args, translated, dialect.loaded_dbapi.Error) from exc
                raise  # pragma: no cover - _handle_exception always raises

    return run


def forget(session: _SAAsyncSession) -> None:
    """Drop the connection remembered for this session (its transaction ended)."""
    session.sync_session.info.pop(_KEY, None)
