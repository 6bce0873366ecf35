"""The schema comes from migrations, and the migrations match the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import Database
from storage.migrate import heads, pending, upgrade_async
from storage.models import metadata


async def test_migrations_match_the_models(db_url):
    db = Database(db_url)
    try:
        assert await pending(db) == set()
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        assert diff == [], "models changed without a migration: " + repr(diff)[:500]
    finally:
        await db.close()


async def test_an_empty_database_is_reported_as_pending(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    try:
        assert await pending(db) == heads()
    finally:
        await db.close()
    await upgrade_async(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    try:
        assert await pending(db) == set()
    finally:
        await db.close()


async def test_every_directory_table_has_its_version_trigger(db_url):
    """The memo of senders and pairs trusts these triggers; a batch migration on SQLite that recreates a
    table drops them silently, so their presence is checked here for every directory table."""
    from sqlalchemy import text

    from storage.directory import DIRECTORY_TABLES

    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            if db.dialect == "sqlite":
                rows = (await conn.execute(text(
                    "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'directory_version_%'"))).all()
                have = {(t, n.rsplit("_", 1)[1]) for t, n in rows}
                assert have == {(t, op) for t in DIRECTORY_TABLES for op in ("insert", "update", "delete")}
            else:
                rows = (await conn.execute(text(
                    "SELECT c.relname, t.tgname, t.tgdeferrable FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE t.tgname LIKE 'directory_version%' AND NOT t.tgisinternal"))).all()
                assert {(r[0], r[1]) for r in rows} == {(t, n) for t in DIRECTORY_TABLES
                                                        for n in ("directory_version", "directory_version_truncate")}
                assert all(r[2] for r in rows if r[1] == "directory_version")  # bumped at commit
    finally:
        await db.close()


def test_the_quick_head_reading_agrees_with_alembic():
    """The CLI skips Alembic on an up-to-date SQLite file by reading the migration files itself."""
    from storage.migrate import script_heads

    assert script_heads() == heads()


async def test_sqlite_is_current_only_at_the_newest_revision(tmp_path):
    import sqlite3

    from storage.migrate import sqlite_is_current

    url = f"sqlite+aiosqlite:///{tmp_path}/q.db"
    assert not sqlite_is_current(url)  # no file
    sqlite3.connect(tmp_path / "q.db").close()
    assert not sqlite_is_current(url)  # no alembic_version table
    await upgrade_async(url)
    assert sqlite_is_current(url)
    with sqlite3.connect(tmp_path / "q.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0008_directory'")
    assert not sqlite_is_current(url)
