"""Alembic, driven from code: ``bangdai db upgrade`` and the automatic upgrade on ``serve``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema to the newest revision. Synchronous: runs its own event loop."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    """The same from inside a running loop (Alembic's async env needs a loop of its own)."""
    await asyncio.to_thread(upgrade, url, revision)


def current(url: str) -> None:
    command.current(alembic_config(url), verbose=False)


def heads() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def pending(db) -> set[str]:
    """The newest revisions this database has not reached yet (empty when it is up to date)."""
    from sqlalchemy import text

    try:
        async with db.engine.connect() as conn:
            current = {row[0] for row in (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()}
    except Exception:
        current = set()
    wanted = heads()
    if current == wanted:
        return set()
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    reached = set()
    for rev in current:
        reached |= {r.revision for r in script.iterate_revisions(rev, "base")}
    return wanted - reached
