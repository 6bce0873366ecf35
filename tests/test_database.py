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
