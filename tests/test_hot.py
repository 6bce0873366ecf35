"""Hot statements (storage/hot.py): compiled once and run on the session's own driver connection, they
must read and write exactly what the same statement through SQLAlchemy does, inside the session's
transaction, and fail the way SQLAlchemy fails."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Integer, bindparam, insert, text
from sqlmodel import col, select
from sqlalchemy.exc import IntegrityError


from storage import db as db_module
from storage.hot import Hot
from storage.models import ContactLog, Pairing, ProcessedMessage

pytestmark = pytest.mark.usefixtures("seeded")

T = ProcessedMessage.__table__  # type: ignore[attr-defined]
REMEMBER = Hot(insert(T), keys=("channel", "sender_id", "msg_id", "received_at", "replies"))
READ_BACK = Hot(select(T.c.msg_id, T.c.received_at, T.c.replies)
                .where(col(T.c.msg_id).in_(bindparam("ids", expanding=True))).order_by(T.c.msg_id))
WHEN = dt.datetime(2026, 11, 19, 8, 30, 15, 123456, tzinfo=dt.timezone.utc)


def _message(msg_id: str, when: dt.datetime = WHEN) -> dict:
    return {"channel": "local", "sender_id": "u1", "msg_id": msg_id, "received_at": when,
            "replies": [{"text": "已记录：**11月19日** 面谈", "format": "markdown"}]}


async def test_rows_read_and_written_are_those_of_sqlalchemy(services):
    db = services.db
    async with db.transaction() as session:
        for n in range(3):
            await REMEMBER.rows(session, _message(f"m{n}", WHEN + dt.timedelta(days=n)))
    async with db.transaction() as session:
        # the same rows through the ORM session, and through the hot statement for lists of each length
        expected = (await session.exec(select(T.c.msg_id, T.c.received_at, T.c.replies).order_by(T.c.msg_id))).all()
        assert [tuple(r) for r in expected][0][2] == _message("m0")["replies"]
        for ids in (["m0", "m1", "m2"], ["m1"], ["m2", "m0"], [], ["m0", "m1", "m2"]):
            rows = await READ_BACK.rows(session, {"ids": ids})
            assert [tuple(r) for r in rows] == [tuple(r) for r in expected if r.msg_id in ids]
        row = (await READ_BACK.rows(session, {"ids": ["m1"]}))[0]
        assert (row.msg_id, row.replies[0]["format"]) == ("m1", "markdown")  # named like SQLAlchemy's rows
        assert row.received_at.replace(tzinfo=None) == (WHEN + dt.timedelta(days=1)).replace(tzinfo=None)


async def test_a_hot_write_belongs_to_the_session_transaction(services):
    db = services.db
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await REMEMBER.rows(session, _message("gone"))
            assert await READ_BACK.rows(session, {"ids": ["gone"]})  # seen inside its transaction
            raise RuntimeError("the handler failed")
    async with db.transaction() as session:
        assert await READ_BACK.rows(session, {"ids": ["gone"]}) == []
        assert (await session.exec(select(T.c.msg_id).where(T.c.msg_id == "gone"))).first() is None


async def test_a_duplicate_fails_as_sqlalchemy_integrity_error(services):
    """The gateway answers a redelivered message from the first copy's record when its record's insert
    fails on the primary key: it catches SQLAlchemy's IntegrityError."""
    db = services.db
    async with db.transaction() as session:
        await REMEMBER.rows(session, _message("twice"))
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await REMEMBER.rows(session, _message("twice"))
    async with db.transaction() as session:  # the connection is usable after the failure
        assert len(await READ_BACK.rows(session, {"ids": ["twice"]})) == 1


async def test_pending_orm_changes_are_flushed_before_a_hot_read(services):
    db = services.db
    count = Hot(select(ContactLog.id).where(ContactLog.note == bindparam("note")))
    async with db.transaction() as session:
        pairing = (await session.exec(select(Pairing).limit(1))).one()
        session.add(ContactLog(pairing_id=pairing.id, author_id=pairing.mentee_id, day=dt.date(2026, 11, 19), mode="面谈",
                               note="只在会话里", created_at=WHEN))
        assert len(await count.rows(session, {"note": "只在会话里"})) == 1
        await session.rollback()


async def test_an_idle_postgresql_connection_the_server_dropped_is_replaced(services, monkeypatch):
    db = services.db
    if db.dialect != "postgresql":
        pytest.skip("a PostgreSQL connection pool")
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)  # every checked-in connection counts as idle
    async with db.transaction() as session:
        await session.exec(text("SELECT 1"))
    other = db_module.Database(services.config.database.url)
    try:  # the server (a restart, an administrator, a dropped link) ends every other connection
        async with other.transaction() as session:
            await session.exec(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await other.close()
    async with db.transaction() as session:
        assert (await session.exec(text("SELECT 1"))).scalar() == 1


async def test_a_value_rendered_into_the_sql_is_rendered_at_each_run(services):
    """A literal_execute parameter (some dialects render LIMIT so) is part of the SQL: not cached by shape."""
    db = services.db
    async with db.transaction() as session:
        for n in range(4):
            await REMEMBER.rows(session, _message(f"r{n}"))
        first = Hot(select(T.c.msg_id).where(col(T.c.msg_id).in_(bindparam("ids", expanding=True)))
                    .order_by(T.c.msg_id).limit(bindparam("n", type_=Integer, literal_execute=True)))
        ids = ["r0", "r1", "r2", "r3"]
        assert [r.msg_id for r in await first.rows(session, {"ids": ids, "n": 1})] == ["r0"]
        assert [r.msg_id for r in await first.rows(session, {"ids": ids, "n": 3})] == ["r0", "r1", "r2"]
