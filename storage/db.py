"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite gets the settings PLATFORMS.md measured as both atomic and free of "database is locked" under
concurrent writers: WAL, synchronous=NORMAL, busy_timeout, foreign keys, driver autocommit and
``BEGIN IMMEDIATE`` for every transaction. Inside one process, transactions on SQLite also take turns
on an asyncio lock: SQLite has one writer, and writers queued in its busy handler are served in no
order (some wait past ``busy_timeout`` and fail with "database is locked" under sustained load), while
the lock serves them first come, first served. Other processes still meet ``busy_timeout``.
SQLite connections come from ``storage.sqlite_driver`` (short statements on the loop, long reads in a
thread, a locked database waited for with ``asyncio.sleep`` instead of SQLite's busy handler).
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.util.concurrency import await_, greenlet_spawn
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from . import sqlite_driver
from .directory import DirectoryCache


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (relative ones against the working directory), or None."""
    if not is_sqlite(url):
        return None
    path = make_url(url).database
    if not path or path == ":memory:":
        return None
    return Path(path).absolute()


def create_engine(url: str, echo: bool = False, busy_timeout_ms: int = 5000) -> AsyncEngine:
    if is_sqlite(url):
        path = make_url(url).database
        if not path or path == ":memory:" or "?" in url:
            raise ValueError(f"SQLite needs a database file, without URL options: {url}")
        pragmas = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                   f"PRAGMA busy_timeout={int(busy_timeout_ms)}", "PRAGMA foreign_keys=ON")
        engine = create_async_engine(url, echo=echo, async_creator=sqlite_driver.connector(
            path, pragmas, busy_timeout_ms=busy_timeout_ms))

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn):  # pragma: no cover - exercised by every test
            # Straight to the driver (storage.sqlite_driver: a locked database is waited for off the
            # loop): through exec_driver_sql this one word cost as much CPU as a hot statement.
            await_(conn.connection.driver_connection.begin_immediate())
    else:
        # At most 30 connections, as before (10 + 20 overflow), but all kept once opened: an overflow
        # connection was closed whenever it came back to a full pool and opened again moments later
        # under a varying load (a connect, type set-up, the hot statements prepared again each time).
        engine = create_async_engine(url, echo=echo, pool_size=30, max_overflow=0)
        _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection idle longer than this is pinged before use (seconds).
PING_AFTER_IDLE = 10.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for a connection that sat idle: a server restart or a
    dropped link is still found before a transaction uses the connection (the pool then opens a new
    one), while a busy service does not pay the ping on every message — with asyncpg it is three round
    trips (BEGIN, a ping, ROLLBACK), as many as the rest of a 本周 together."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # a new connection, or one in steady use
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("idle connection did not answer") from exc  # the pool opens another


class NestedTransaction(RuntimeError):
    """A task opened a transaction while holding one: on SQLite the second would wait for the first forever."""


class Database:
    """One engine and its session factory. ``async with db.transaction() as s`` is the usual way in."""

    # How long a transaction waits for its turn on SQLite before giving up (then it fails like a
    # "database is locked" would, and the gateway answers that the message was not handled).
    TURN_TIMEOUT = 30.0

    def __init__(self, url: str, echo: bool = False, busy_timeout_ms: int = 5000) -> None:
        self.url = url
        self.engine = create_engine(url, echo, busy_timeout_ms)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._turn = asyncio.Lock() if is_sqlite(url) else None
        self._turn_holder: asyncio.Task | None = None
        self.directory = DirectoryCache()  # this process's memo of senders and pairs (storage.directory)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """This process's turn to write (SQLite); nothing to wait for on PostgreSQL. Every transaction
        takes it; so does anything else that writes through its own session (the spreadsheet imports)."""
        if self._turn is None:
            yield
            return
        task = asyncio.current_task()
        if task is not None and self._turn_holder is task:
            raise NestedTransaction("a transaction was opened inside another one on SQLite")
        async with asyncio.timeout(self.TURN_TIMEOUT):
            await self._turn.acquire()
        self._turn_holder = task
        try:
            yield
        finally:
            self._turn_holder = None
            self._turn.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """``async with self.turn(), self.sessions() as session, session.begin()``, for less: this is set
        up and torn down for every message, and was a third of the CPU of a 本周 in process."""
        async with self.turn():
            session = self.sessions()
            try:
                # The sync session's ``with session.begin()``, entered here: the ORM transaction takes
                # its connection on first use, so beginning it does no I/O (AsyncSession.begin() spends
                # a greenlet on it for after_transaction_create hooks that might; none here do).
                # Leaving it commits or rolls back, in a greenlet as AsyncSessionTransaction does.
                begun = session.sync_session.begin()
                begun.__enter__()
                try:
                    yield session
                except BaseException as exc:
                    await greenlet_spawn(begun.__exit__, type(exc), exc, exc.__traceback__)
                    raise
                await greenlet_spawn(begun.__exit__, None, None, None)
            except BaseException:
                await session.__aexit__(*sys.exc_info())  # as ``async with session`` would
                raise
            if session.sync_session.in_transaction():  # not after the commit; kept to be safe
                await session.__aexit__(None, None, None)
            else:
                # ``async with session`` closes it in a task of its own, shielded from cancellation: a
                # task, a turn of the loop and a greenlet for every message. After the commit the
                # session holds no connection, and closing it only forgets its objects, with no I/O.
                session.sync_session.close()

    async def ping(self) -> bool:
        try:  # in turn: on SQLite every transaction, even this one, begins IMMEDIATE
            async with self.turn(), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()
