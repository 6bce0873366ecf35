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
calls that adapter makes (``AsyncAdapt_aiosqlite_connection`` / ``AsyncAdapt_dbapi_cursor``), except
changing ``isolation_level`` after connecting: connections are opened in autocommit mode and every
transaction is begun explicitly (``BEGIN IMMEDIATE``, storage.db).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Sequence

BATCH = 1000  # rows fetched with the statement; a result this big is read on in batches of this size
_SELECT = re.compile(r"\s*select\b", re.IGNORECASE)


class Cursor:
    """A cursor whose ``execute`` runs the statement and fetches its first rows in one trip to the
    thread — all of them for the usual small result; a big one (an export, ``stream()``) stays open in
    the thread and is read on in batches."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[Any] = deque()
        self._open: sqlite3.Cursor | None = None  # only ever touched in the connection's thread

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def _run(raw: sqlite3.Connection, method: str, operation: str, parameters: Any) -> tuple:
        # A big SELECT is read on in batches; DML … RETURNING is read whole, as sqlite3 counts its
        # rowcount only once every row is read.
        batched = bool(_SELECT.match(operation))
        cursor = raw.cursor()
        try:
            getattr(cursor, method)(operation, parameters)
            if cursor.description is None:
                rows = []
            else:
                rows = cursor.fetchmany(BATCH) if batched else cursor.fetchall()
        except BaseException:
            cursor.close()
            raise
        if not batched or len(rows) < BATCH:
            cursor.close()
            return cursor.description, cursor.rowcount, cursor.lastrowid, rows, None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows, cursor

    async def _start(self, method: str, operation: str, parameters: Any) -> Cursor:
        await self.close()
        self.description, self.rowcount, self.lastrowid, rows, self._open = await self._connection.run(
            self._run, method, operation, parameters)
        self._rows = deque(rows)
        return self

    async def execute(self, operation: str, parameters: Sequence[Any] | dict | None = None) -> Cursor:
        return await self._start("execute", operation, () if parameters is None else parameters)

    async def executemany(self, operation: str, seq_of_parameters: Any) -> Cursor:
        return await self._start("executemany", operation, seq_of_parameters)

    async def _more(self, size: int | None) -> None:
        """Read on from the open cursor: ``size`` more rows, or all that are left."""
        cursor = self._open
        if cursor is None:
            return

        def read(_raw: sqlite3.Connection) -> list[Any]:
            rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
            if size is None or len(rows) < size:
                cursor.close()
            return rows

        rows = await self._connection.run(read)
        if size is None or len(rows) < size:
            self._open = None
        self._rows.extend(rows)

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._more(BATCH)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        if len(self._rows) < size:
            await self._more(max(size, BATCH))
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        await self._more(None)
        rows, self._rows = list(self._rows), deque()
        return rows

    async def nextset(self) -> None:
        return None

    async def close(self) -> None:
        self._rows = deque()
        cursor, self._open = self._open, None
        if cursor is not None:
            await self._connection.run(lambda _raw: cursor.close())


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
        try:
            for pragma in pragmas:
                raw.execute(pragma)
        except BaseException:
            raw.close()
            raise
        return raw

    async def create() -> Connection:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            raw = await asyncio.get_running_loop().run_in_executor(executor, open_raw)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return Connection(raw, executor)

    return create
