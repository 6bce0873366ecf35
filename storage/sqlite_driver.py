"""SQLite for the async engine with one thread hop per statement.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives aiosqlite, which sends every DB-API call to its
thread: create the cursor, execute, fetch the rows, close the cursor — four round trips per statement,
each a queue hand-off and a wake-up of the event loop. On our 2-core machine that cost 0.64 ms of CPU
per ``SELECT 1`` against 0.05 ms for the same statement on plain ``sqlite3`` (docs/benchmarks.md), and
a chat message runs about eight statements. This module gives the same dialect a connection whose
statements run in one hop: the worker thread executes and fetches every row, the cursor lives on the
loop's side. SQLite itself (and its busy handler) still never runs on the event loop.

It is plugged in through ``create_async_engine(..., async_creator=...)`` (storage.db), so SQLAlchemy's
own aiosqlite dialect, types and SQL stay as they are; only the connection object differs. It covers the
calls that adapter makes (``AsyncAdapt_aiosqlite_connection`` / ``AsyncAdapt_dbapi_cursor``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Sequence


class Cursor:
    """A cursor whose ``execute`` runs the statement and fetches all its rows in one trip to the thread."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _run(self, raw: sqlite3.Connection, method: str, operation: str, parameters: Any) -> tuple:
        cursor = raw.cursor()
        try:
            getattr(cursor, method)(operation, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.description, cursor.rowcount, cursor.lastrowid, rows
        finally:
            cursor.close()

    async def execute(self, operation: str, parameters: Sequence[Any] | dict | None = None) -> Cursor:
        self.description, self.rowcount, self.lastrowid, self._rows = await self._connection.run(
            self._run, "execute", operation, () if parameters is None else parameters)
        return self

    async def executemany(self, operation: str, seq_of_parameters: Any) -> Cursor:
        self.description, self.rowcount, self.lastrowid, self._rows = await self._connection.run(
            self._run, "executemany", operation, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def nextset(self) -> None:
        return None

    async def close(self) -> None:
        self._rows = []


class Connection:
    """One sqlite3 connection owned by one worker thread; every call on it is made in that thread."""

    def __init__(self, raw: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection: sqlite3.Connection | None = raw  # SQLAlchemy's adapter tests this attribute
        self._executor = executor

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        raw = self._connection
        if raw is None:
            raise ValueError("Connection closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, raw, *args))

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level if self._connection else None

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        await self.run(sqlite3.Connection.commit)

    async def rollback(self) -> None:
        await self.run(sqlite3.Connection.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        await self.run(lambda raw: raw.create_function(*args, **kwargs))

    async def close(self) -> None:
        if self._connection is None:
            return
        try:
            await self.run(sqlite3.Connection.close)
        finally:
            self._connection = None
            self._executor.shutdown(wait=False)

    def stop(self) -> None:
        """Forced close (SQLAlchemy's terminate when the loop is going away)."""
        raw, self._connection = self._connection, None
        if raw is not None:
            self._executor.submit(raw.close)
            self._executor.shutdown(wait=False)


def connector(path: str, pragmas: Sequence[str], timeout: float = 30.0) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: opens ``path`` in a fresh worker thread, in
    autocommit mode (transactions are begun explicitly), and runs ``pragmas`` on it."""

    def open_raw() -> sqlite3.Connection:
        raw = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        for pragma in pragmas:
            raw.execute(pragma)
        return raw

    async def create() -> Connection:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        raw = await asyncio.get_running_loop().run_in_executor(executor, open_raw)
        return Connection(raw, executor)

    return create
