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
