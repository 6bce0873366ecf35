"""The storage layer's own promises: SQLite writers take turns in arrival order, never "database is locked"."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from storage.db import Database, NestedTransaction


@pytest.fixture
async def sqlite_db(tmp_path):
    # A busy_timeout far shorter than the queue below: SQLite's own busy handler alone would fail most writers.
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/turns.db", busy_timeout_ms=50)
    async with db.transaction() as session:
        await session.exec(text("CREATE TABLE t (i INTEGER)"))
    yield db
    await db.close()


async def test_sqlite_writers_queue_in_order_longer_than_busy_timeout(sqlite_db):
    async def write(i: int) -> None:
        async with sqlite_db.transaction() as session:
            await session.exec(text("INSERT INTO t VALUES (:i)").bindparams(i=i))
            await asyncio.sleep(0.03)  # the write lock is held while the handler works

    await asyncio.gather(*(write(i) for i in range(12)))  # ~360 ms of queue against a 50 ms busy_timeout
    async with sqlite_db.transaction() as session:
        rows = (await session.exec(text("SELECT i FROM t ORDER BY rowid"))).scalars().all()
    assert rows == list(range(12))


async def test_a_transaction_inside_another_fails_at_once_instead_of_waiting_forever(sqlite_db):
    with pytest.raises(NestedTransaction):
        async with sqlite_db.transaction():
            async with sqlite_db.transaction():
                pass  # pragma: no cover
    async with sqlite_db.transaction() as session:  # the turn was given back
        await session.exec(text("INSERT INTO t VALUES (1)"))


async def test_sqlite_statements_run_off_the_event_loop(sqlite_db):
    """A long statement (a big export, a job over every pair) must not stall acks and heartbeats."""
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
            "SELECT count(*) FROM n")
    async with sqlite_db.transaction() as session:
        before = ticks
        assert (await session.exec(text(slow))).scalar() == 300000
        during = ticks - before
    running = False
    await task
    assert during >= 3  # the loop went on while SQLite counted


async def test_the_sqlite_connection_answers_like_the_dbapi(sqlite_db):
    async with sqlite_db.transaction() as session:
        conn = await session.connection()
        result = await conn.exec_driver_sql("INSERT INTO t VALUES (?)", (7,))
        assert result.rowcount == 1 and result.lastrowid is not None
        many = await conn.exec_driver_sql("INSERT INTO t VALUES (?)", [(8,), (9,)])
        assert many.rowcount == 2
        rows = (await conn.exec_driver_sql("SELECT i FROM t ORDER BY i")).all()
        assert [r[0] for r in rows] == [7, 8, 9]
        streamed = await conn.stream(text("SELECT i FROM t ORDER BY i"))
        assert [r[0] async for r in streamed] == [7, 8, 9]


async def test_a_big_result_is_read_in_full_and_streamed_in_order(sqlite_db):
    from storage.sqlite_driver import BATCH

    n = 2 * BATCH + 7
    async with sqlite_db.transaction() as session:
        conn = await session.connection()
        await conn.exec_driver_sql("INSERT INTO t VALUES (?)", [(i,) for i in range(n)])
        assert [r[0] for r in (await conn.exec_driver_sql("SELECT i FROM t ORDER BY i")).all()] == list(range(n))
        streamed = await conn.stream(text("SELECT i FROM t ORDER BY i"))
        chunks = [len(c) async for c in streamed.partitions(300)]
        assert sum(chunks) == n and set(chunks[:-1]) == {300}
        # a statement run while a big result is still open reads on independently
        first = await conn.stream(text("SELECT i FROM t ORDER BY i"))
        assert (await first.fetchmany(5)) and (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == n
        await first.close()


async def test_rowcount_of_a_big_returning_statement(sqlite_db):
    """Found in review: a DML … RETURNING result is read whole, so its rowcount is right."""
    from storage.sqlite_driver import BATCH

    n = BATCH + 500
    async with sqlite_db.transaction() as session:
        conn = await session.connection()
        await conn.exec_driver_sql("INSERT INTO t VALUES (?)", [(i,) for i in range(n)])
        result = await conn.exec_driver_sql("UPDATE t SET i = i + 1 RETURNING i")
        assert result.rowcount == n and len(result.all()) == n


async def test_a_connection_that_cannot_be_set_up_leaves_no_thread(tmp_path):
    import threading

    from storage import sqlite_driver

    before = {t.name for t in threading.enumerate()}
    create = sqlite_driver.connector(str(tmp_path / "x.db"), ("PRAGMA no_such_thing = (",))
    with pytest.raises(Exception):
        await create()
    await asyncio.sleep(0.05)
    assert {t.name for t in threading.enumerate() if t.name.startswith("sqlite")} <= before


async def test_short_statements_run_on_the_loop_and_long_reads_move_to_the_thread(sqlite_db):
    """A hop to SQLite's thread cost more CPU than a chat message's statements (docs/benchmarks.md)."""
    import threading

    async with sqlite_db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        await driver.create_function("thread_id", 0, threading.get_ident)
        here = (await conn.execute(text("SELECT thread_id()"))).scalar()
        assert here == threading.get_ident()
        slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
                "SELECT count(*), thread_id() FROM n")
        count, there = (await conn.execute(text(slow))).one()
        assert count == 300000 and there != threading.get_ident() and driver.moved == 1


async def test_a_database_locked_by_another_process_is_waited_for_without_stalling_the_loop(tmp_path):
    import sqlite3

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/locked.db", busy_timeout_ms=2000)
    async with db.transaction() as session:
        await session.exec(text("CREATE TABLE t (i INTEGER)"))
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (an import, the CLI) writes for a while

    async def release() -> None:  # runs on the loop: only if waiting for the lock leaves the loop free
        await asyncio.sleep(0.3)
        other.execute("COMMIT")

    try:
        releasing = asyncio.create_task(release())
        async with db.transaction() as session:
            await session.exec(text("INSERT INTO t VALUES (1)"))
        await releasing
        other.execute("BEGIN IMMEDIATE")  # and held past the timeout: the usual error, not a hang
        with pytest.raises(Exception, match="locked"):
            async with db.transaction() as session:
                await session.exec(text("INSERT INTO t VALUES (2)"))
        other.execute("COMMIT")
    finally:
        other.close()
        await db.close()
