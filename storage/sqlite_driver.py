"""SQLite for the async engine: short statements on the event loop, long reads in a thread.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives aiosqlite, which sends every DB-API call to its
thread: create the cursor, execute, fetch the rows, close the cursor — four round trips per statement,
each a queue hand-off and a wake-up of the event loop. On our 2-core machine that cost 0.64 ms of CPU
per ``SELECT 1`` against 0.05 ms for the same statement on plain ``sqlite3`` (docs/benchmarks.md), and
a chat message runs about eight statements. This module gives the same dialect a connection whose
statements run in one hop: the worker thread executes and fetches every row, the cursor lives on the
loop's side. SQLite itself (and its busy handler) still never runs on the event loop.

A chat message's statements take microseconds in SQLite, and the hop to the thread and back cost more
than the statement (in process, 本周 took 2.9 ms of CPU with a hop per statement, 1.4 ms without). So a
statement runs on the event loop, with two guards that keep the loop free:

- a read (``SELECT``/``WITH`` without a write) runs under a progress handler that interrupts it after
  ``LOOP_BUDGET`` seconds; it then runs again, whole, in the connection's thread (an interrupted read
  changes nothing, and inside a transaction SQLite undoes only that statement);
- SQLite's busy handler would wait *on the loop* for another process's write lock, so the connection's
  ``busy_timeout`` is 0 and a statement that finds the database locked outside a transaction (``BEGIN
  IMMEDIATE``, a lone read) is tried again after an ``asyncio.sleep`` until the configured timeout.

Writes run whole on the loop: ours are small (a big enqueue is chunked by its caller).

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
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Sequence

BATCH = 1000  # rows fetched with the statement; a result this big is read on in batches of this size
LOOP_BUDGET = 0.002  # CPU seconds a read may run on the event loop before it is moved to the thread (CPU,
# not wall time: on a busy machine a preempted statement is not a long one)
_SELECT = re.compile(r"\s*select\b", re.IGNORECASE)
_READ = re.compile(r"\s*(select|with)\b", re.IGNORECASE)
_WRITE = re.compile(r"\b(insert|update|delete|replace)\b", re.IGNORECASE)


def _read_only(operation: str) -> bool:
    return bool(_READ.match(operation)) and not _WRITE.search(operation)


def _locked(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or \
        "database is locked" in str(exc)


def _begin_immediate(raw: sqlite3.Connection, _method: str, operation: str, _parameters: Any) -> None:
    raw.execute(operation)


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
        self.description, self.rowcount, self.lastrowid, rows, self._open = await self._connection.statement(
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

    def __init__(self, raw: sqlite3.Connection, executor: ThreadPoolExecutor, busy_timeout: float = 5.0) -> None:
        self._connection: sqlite3.Connection | None = raw  # SQLAlchemy's adapter tests this attribute
        self._executor = executor
        self.busy_timeout = busy_timeout  # seconds a locked database is waited for, off SQLite's busy handler
        self._deadline = 0.0
        self.moved = 0  # reads moved to the thread for taking too long on the loop (tests, curiosity)

    def _over_budget(self) -> int:
        return 1 if time.thread_time() > self._deadline else 0

    async def statement(self, fn: Callable[..., Any], method: str, operation: str, parameters: Any) -> Any:
        """Run one statement on the loop within the guards described in the module's docstring."""
        raw = self._connection
        if raw is None:
            raise ValueError("Connection closed")
        read = _read_only(operation)
        waited_until = None
        delay = 0.001
        while True:
            in_transaction = raw.in_transaction
            if read:
                self._deadline = time.thread_time() + LOOP_BUDGET
                raw.set_progress_handler(self._over_budget, 1000)
            try:
                return fn(raw, method, operation, parameters)
            except sqlite3.OperationalError as exc:
                if read and time.thread_time() > self._deadline and "interrupt" in str(exc):
                    raw.set_progress_handler(None, 0)
                    self.moved += 1
                    return await self.run(fn, method, operation, parameters)
                if not _locked(exc) or in_transaction:
                    raise
                loop = asyncio.get_running_loop()
                waited_until = waited_until or loop.time() + self.busy_timeout
                if loop.time() >= waited_until:
                    raise
            finally:
                if read:
                    raw.set_progress_handler(None, 0)
            await asyncio.sleep(delay)  # another process holds the write lock: wait without the loop
            delay = min(delay * 2, 0.05)

    async def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE``, waiting (off the loop) while another process holds the write lock."""
        await self.statement(_begin_immediate, "execute", "BEGIN IMMEDIATE", ())

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
        if self._connection is None:
            raise ValueError("Connection closed")
        self._connection.commit()

    async def rollback(self) -> None:
        if self._connection is None:
            raise ValueError("Connection closed")
        self._connection.rollback()

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


def connector(path: str, pragmas: Sequence[str], timeout: float = 30.0, busy_timeout_ms: int = 5000
              ) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: opens ``path`` in a fresh worker thread, in
    autocommit mode (transactions are begun explicitly), and runs ``pragmas`` on it. A locked database
    is waited for up to ``busy_timeout_ms`` by :meth:`Connection.statement`, not by SQLite."""

    def open_raw() -> sqlite3.Connection:
        raw = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            for pragma in pragmas:
                raw.execute(pragma)
            raw.execute("PRAGMA busy_timeout=0")  # never wait inside SQLite: it may be on the event loop
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
        return Connection(raw, executor, busy_timeout_ms / 1000)

    return create
