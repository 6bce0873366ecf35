"""The per-process memo of senders and pairs (storage/directory.py): read once while the directory is
unchanged, and never stale — whoever changes it, in this process or another, in the ORM or in raw SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from storage.db import Database

pytestmark = pytest.mark.usefixtures("seeded")


class Statements:
    """The SQL statements the service's engine runs, as text."""

    def __init__(self, db: Database) -> None:
        self.seen: list[str] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, _params, _context, _many) -> None:
        self.seen.append(" ".join(statement.split()).lower())

    def reading(self, table: str) -> list[str]:
        return [s for s in self.seen if s.startswith("select") and f"from {table}" in s]


async def test_sender_and_pairs_are_read_once_while_the_directory_is_unchanged(chat, services):
    statements = Statements(services.db)
    first = await chat.say("u2", "本周")
    assert "导师 张伟、王芳" in first
    assert statements.reading("person") and statements.reading("pairing")
    statements.seen.clear()
    assert await chat.say("u2", "本周") == first
    assert "已记录" in await chat.say("u2", "记录 面谈 谈谈调研方法")
    assert statements.reading("person") == [] and statements.reading("pairing") == []
    assert services.db.directory.hits >= 4


async def test_a_change_made_elsewhere_in_raw_sql_is_seen_by_the_next_message(chat, services):
    assert "导师 张伟" in await chat.say("u4", "本周")
    # Another process (the CLI, a second serve, an operator's SQL console) deactivates 赵强 in plain
    # SQL; only the database triggers can tell this process's memo.
    other = Database(services.config.database.url)
    try:
        async with other.transaction() as session:
            await session.exec(text("UPDATE person SET active = false WHERE name = '赵强'"))  # type: ignore[call-overload]
    finally:
        await other.close()
    assert "您已不在帮带助手的花名册中" in await chat.say("u4", "本周")  # no longer an active roster person


async def test_staff_changes_in_chat_reach_the_mentee_at_once(chat):
    assert "导师 张伟、王芳" in await chat.say("u2", "本周")
    assert "张伟" in await chat.say("u2", "记录 张伟 面谈 汇报近况")
    assert "改为 王芳" in await chat.say("u5", "结对 李娜 王芳 工作调整")
    week = await chat.say("u2", "本周")
    assert "与导师 王芳**" in week
    assert "“张伟”不是您的导师" in await chat.say("u2", "记录 张伟 面谈 再次汇报")


async def test_a_refused_message_does_not_spoil_what_it_read(chat):
    # The pairs are first read by a message that is then refused and rolled back.
    assert "已记录" not in await chat.say("u2", "记录 周敏 面谈 不是我的导师")
    week = await chat.say("u2", "本周")
    assert "导师 张伟、王芳" in week
    assert "已记录" in await chat.say("u2", "记录 王芳 面谈 谈谈调研方法")


async def test_a_bind_is_recognised_by_the_next_message(chat, services):
    assert "绑定 姓名 手机后四位" in await chat.say("phone-2", "本周")  # nobody yet, and remembered so
    other = Database(services.config.database.url)  # 周敏's old account is removed elsewhere
    try:
        async with other.transaction() as session:
            await session.exec(text("DELETE FROM chatidentity WHERE platform_user_id = 'u6'"))  # type: ignore[call-overload]
    finally:
        await other.close()
    assert "绑定成功" in await chat.say("phone-2", "绑定 周敏 6789")
    after = await chat.say("phone-2", "本周")
    assert "绑定 姓名 手机后四位" not in after and "结对" in after


async def test_a_transaction_that_changes_the_directory_reads_its_own_changes(services):
    from sqlmodel import delete

    from bot.identity import resolve_sender
    from storage.models import ChatIdentity, PersonRole, Role

    db = services.db

    async def remembered() -> None:
        async with db.transaction() as session:
            await db.directory.begin(session)
            assert (await resolve_sender(session, "local", "u2")).roles == {Role.MENTEE}
            assert await resolve_sender(session, "local", "u4") is not None

    await remembered()
    async with db.transaction() as session:
        await db.directory.begin(session)
        await session.exec(delete(ChatIdentity).where(ChatIdentity.platform_user_id == "u4"))  # a bulk statement
        assert await resolve_sender(session, "local", "u4") is None
        await session.rollback()
    await remembered()
    async with db.transaction() as session:
        await db.directory.begin(session)
        sender = await resolve_sender(session, "local", "u2")  # from the memo
        session.add(PersonRole(person_id=sender.id, role=Role.RETIRED))  # an ORM write
        await session.flush()
        assert (await resolve_sender(session, "local", "u2")).roles == {Role.MENTEE, Role.RETIRED}


async def test_a_familiar_sender_costs_few_statements(chat, services):
    """What a repeated 本周 runs: the version, this week's contacts, plan progress and the record of the
    message (a copy of a message is caught by that record's primary key, not by a look-up first)."""
    await chat.say("u2", "本周")
    statements = Statements(services.db)
    await chat.say("u2", "本周", msg_id="m-1")
    reads = [s for s in statements.seen if s.startswith("select")]
    assert len(reads) == 3, reads
    assert not statements.reading("processedmessage")
    assert [s for s in statements.seen if s.startswith("insert")] == [
        s for s in statements.seen if s.startswith("insert into processedmessage")]


@pytest.mark.parametrize("how", ["core", "text"])
async def test_what_a_rolled_back_transaction_read_is_never_kept(services, chat, how):
    """Found in review: a directory write the ORM events cannot see (Core on the connection), read back
    and rolled back, must not leave its uncommitted rows in the memo."""
    from sqlalchemy import update

    from bot.identity import resolve_sender
    from storage.models import Person

    db = services.db
    assert "导师" in await chat.say("u4", "本周")
    async with db.transaction() as session:
        await db.directory.begin(session)
        if how == "core":
            connection = await session.connection()
            await connection.execute(update(Person.__table__).where(Person.__table__.c.name == "李娜").values(active=False))
        else:
            await session.exec(text("UPDATE person SET active = false WHERE name = '李娜'"))  # type: ignore[call-overload]
        assert not (await resolve_sender(session, "local", "u2")).active  # its own write, read back
        await session.rollback()
    assert "导师 张伟、王芳" in await chat.say("u2", "本周")


async def test_a_pending_directory_change_is_seen_by_its_own_session(services):
    from bot.identity import resolve_sender
    from storage.models import PersonRole, Role

    db = services.db
    async with db.transaction() as session:
        await db.directory.begin(session)
        sender = await resolve_sender(session, "local", "u2")
    async with db.transaction() as session:
        await db.directory.begin(session)
        session.add(PersonRole(person_id=sender.id, role=Role.RETIRED))  # pending, not flushed
        assert Role.RETIRED in (await resolve_sender(session, "local", "u2")).roles
        await session.rollback()


class _VersionOnly:
    """Just enough of a session for DirectoryCache.use and memo, as of directory version ``version``."""

    class _Sync:
        def __init__(self) -> None:
            self.info: dict = {}
            self.new = self.dirty = self.deleted = ()

        def __contains__(self, _obj: object) -> bool:
            return False

    def __init__(self, version: int) -> None:
        self.version = version
        self.sync_session = self._Sync()


async def test_the_memo_never_goes_back_to_an_older_version():
    """Found in review: on PostgreSQL two messages' version reads can finish out of order; the one that
    read the older version must neither fill nor lower what the newer one relies on."""
    from storage.directory import DirectoryCache, _after_commit, memo

    async def value(v: str):
        return v

    cache = DirectoryCache()
    cache.use(_VersionOnly(5), 5)  # type: ignore[arg-type]
    newer = _VersionOnly(6)
    cache.use(newer, 6)  # type: ignore[arg-type]
    older = _VersionOnly(5)
    cache.use(older, 5)  # type: ignore[arg-type]  # its read started before the change committed and arrived last
    assert cache.version == 6
    assert await memo(older, "k", lambda: value("OLD"), lambda v: []) == "OLD"
    _after_commit(older.sync_session)  # type: ignore[arg-type]
    assert await memo(newer, "k", lambda: value("NEW"), lambda v: []) == "NEW"
    _after_commit(newer.sync_session)  # type: ignore[arg-type]
    assert cache.entries == {"k": "NEW"}


async def test_postgresql_writers_of_different_people_do_not_wait_on_the_version(services):
    """Found in review: the counter row's lock was taken at the first directory write and held to commit,
    so two transactions writing different people waited on each other (and could deadlock)."""
    import asyncio

    from sqlmodel import select, update

    from storage.models import DirectoryVersion, Person

    db = services.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite runs one writer at a time by design")
    async with db.transaction() as session:
        before = (await session.exec(select(DirectoryVersion.value))).one()
    async with db.transaction() as first:
        await first.exec(update(Person).where(Person.name == "李娜").values(title="甲"))  # type: ignore[call-overload]
        await first.exec(update(Person).where(Person.name == "李娜").values(title="乙"))  # type: ignore[call-overload]

        async def second() -> None:
            async with db.transaction() as session:
                await session.exec(update(Person).where(Person.name == "赵强").values(title="丙"))  # type: ignore[call-overload]

        await asyncio.wait_for(second(), timeout=10)  # used to wait for `first` to commit: never, here
    async with db.transaction() as session:
        assert (await session.exec(select(DirectoryVersion.value))).one() == before + 2  # once per transaction
