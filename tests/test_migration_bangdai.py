"""Migration 0012 carries a database filled by the previous schema over to one 帮带 per mentee without
losing a contact, a plan item or a 季评 (SPEC §3a), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import os

from sqlalchemy import text

from storage.migrate import upgrade
from storage.models import metadata

PG_URL = os.environ.get("BANGDAI_TEST_DATABASE_URL", "")
# asyncpg wants a datetime; SQLite stores what the app's type would: naive UTC text.
NOW = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc) if PG_URL else "2026-11-01 08:00:00.000000"

# The old shape: 李娜 re-paired twice (张伟、王芳 → 王芳 after 张伟 was dismissed → 刘强), 赵强 once.
OLD_ROWS = [
    "INSERT INTO person (id, name, phone, title, active, created_at) VALUES "
    "(1, '张伟', '1', '', true, :now), (2, '王芳', '2', '', true, :now), (3, '李娜', '3', '', true, :now), "
    "(4, '赵强', '4', '', true, :now), (5, '刘强', '5', '', true, :now)",
    "INSERT INTO pairing (id, mentee_id, start_date, agreement_date, active, ended_on, end_reason, created_at) VALUES "
    "(1, 3, '2026-03-01', '2026-03-05', false, '2026-06-01', '导师 张伟 清退：不到位', :now), "
    "(2, 4, '2026-03-01', NULL, true, NULL, '', :now), "
    "(3, 3, '2026-06-01', '2026-03-05', false, '2026-09-01', '性格不匹配', :now), "
    "(4, 3, '2026-09-01', NULL, true, NULL, '', :now)",
    "INSERT INTO pairingmentor (pairing_id, person_id, is_lead) VALUES "
    "(1, 1, true), (1, 2, false), (2, 1, true), (3, 2, true), (4, 5, true)",
    "INSERT INTO contactlog (id, pairing_id, author_id, counterpart_id, day, mode, note, created_at) VALUES "
    "(1, 1, 1, 3, '2026-04-02', '面谈', 'a', :now), (2, 1, 3, NULL, '2026-04-09', '电话', 'b', :now), "
    "(3, 3, 3, 2, '2026-07-01', '面谈', 'c', :now), (4, 4, 5, 3, '2026-10-08', '面谈', 'd', :now), "
    "(5, 2, 4, 1, '2026-10-09', '视频', 'e', :now)",
    "INSERT INTO planitem (id, pairing_id, seq, text, created_by, created_at, done_at, done_by) VALUES "
    "(1, 1, 1, '熟悉信访', 1, :now, :now, 1), (2, 1, 2, '走访村社', 2, :now, NULL, NULL), "
    "(3, 3, 1, '招商', 2, :now, NULL, NULL), (4, 4, 1, '基层党建', 5, :now, NULL, NULL)",
    "INSERT INTO pairreview (id, pairing_id, quarter, rating, comment, reviewer_id, created_at) VALUES "
    "(1, 1, '2026-Q2', '较好', 'x', NULL, '2026-05-01 08:00:00'), "
    "(2, 3, '2026-Q2', '好', 'later', NULL, '2026-06-20 08:00:00'), "
    "(3, 3, '2026-Q3', '一般', 'y', NULL, '2026-08-01 08:00:00')",
    "INSERT INTO auditlog (at, actor_label, action, target, detail) VALUES (:now, 'cli', 'pairing.start', 'pairing:3', '{}')",
]


async def _fresh_pg_database(name: str) -> str:
    """An empty database beside the test one (PostgreSQL cannot go back to 0009 inside a used one)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


async def _run(url: str, statements: list[str]) -> None:
    from storage.db import Database

    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            for sql in statements:
                await conn.execute(text(sql), {"now": NOW})
    finally:
        await db.close()


def _plain(value):
    """Raw rows read alike on both databases (SQLite hands back dates as text and booleans as 0/1)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


async def _rows(url: str, sql: str) -> list[tuple]:
    from storage.db import Database

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return [tuple(_plain(v) for v in r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await db.close()


async def test_existing_pairs_become_one_bangdai_per_mentee_losing_nothing(tmp_path):
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.db import Database

    url = await _fresh_pg_database("bangdai_migration_0012") if PG_URL else f"sqlite+aiosqlite:///{tmp_path}/old.db"
    await asyncio.to_thread(upgrade, url, "0009_directory_commit")
    await _run(url, OLD_ROWS)
    await asyncio.to_thread(upgrade, url, "heads")

    assert await _rows(url, "SELECT id, mentee_id, start_date, active FROM pairing ORDER BY id") == [
        (1, 3, '2026-03-01', 1), (2, 4, '2026-03-01', 1)]
    terms = await _rows(url, "SELECT pairing_id, person_id, start_date, end_date, dismissed FROM pairingmentor "
                             "ORDER BY pairing_id, start_date, person_id")
    assert terms == [
        (1, 1, '2026-03-01', '2026-06-01', 1),  # 张伟, ended by 清退
        (1, 2, '2026-03-01', '2026-09-01', 0),  # 王芳 stayed on: one term
        (1, 5, '2026-09-01', None, 0),
        (2, 1, '2026-03-01', None, 0),
    ]
    # every contact is still there, on the 帮带, with the mentors who took part
    assert await _rows(url, "SELECT id, pairing_id FROM contactlog ORDER BY id") == [
        (1, 1), (2, 1), (3, 1), (4, 1), (5, 2)]
    assert await _rows(url, "SELECT contact_id, person_id FROM contactmentor ORDER BY contact_id, person_id") == [
        (1, 1), (2, 1), (2, 2), (3, 2), (4, 5), (5, 1)]
    # plan items: all four, numbered one after another in the 帮带
    assert await _rows(url, "SELECT id, pairing_id, seq FROM planitem ORDER BY pairing_id, seq") == [
        (1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 1, 4)]
    # 季评: one per quarter, the later one of Q2 kept
    assert await _rows(url, "SELECT pairing_id, quarter, rating FROM pairreview ORDER BY quarter") == [
        (1, "2026-Q2", "好"), (1, "2026-Q3", "一般")]
    assert await _rows(url, "SELECT target FROM auditlog") == [("pairing:1",)]

    db = Database(url)
    try:
        async with db.engine.connect() as conn:  # the schema is the models'
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        assert diff == [], repr(diff)[:500]
        async with db.engine.begin() as conn:  # the rebuilt directory table bumps the version again
            before = (await conn.execute(text("SELECT value FROM directoryversion"))).scalar()
            await conn.execute(text("UPDATE pairingmentor SET is_lead = is_lead"))
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT value FROM directoryversion"))).scalar() > before
    finally:
        await db.close()
