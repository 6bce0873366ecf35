"""Alembic, driven from code: ``bangdai db upgrade`` and the automatic upgrade on ``serve``."""

from __future__ import annotations

import ast
import asyncio
import sqlite3
from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Any:
    # Alembic costs a third of a second to import: only commands that migrate pay for it.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema to the newest revision. Synchronous: runs its own event loop."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def script_heads() -> set[str]:
    """The newest revisions, read from the migration files' ``revision``/``down_revision`` lines without
    Alembic (a test keeps this equal to Alembic's own answer)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, Any] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
                found[target.id] = ast.literal_eval(node.value)
        if "revision" not in found:
            continue
        revisions.add(found["revision"])
        down = found.get("down_revision")
        parents |= {down} if isinstance(down, str) else set(down or ())
    return revisions - parents


def sqlite_is_current(url: str) -> bool:
    """Whether a SQLite file's schema is already at the newest revision — asked with the standard
    library, so a one-shot CLI command on an up-to-date database never loads Alembic."""
    from sqlalchemy.engine import make_url

    path = make_url(url).database
    if not path or not Path(path).is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        current = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return current == script_heads()


def upgrade_sqlite(url: str) -> None:
    """``upgrade`` for the embedded default, skipped when there is nothing to do."""
    if not sqlite_is_current(url):
        upgrade(url)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    """The same from inside a running loop (Alembic's async env needs a loop of its own)."""
    await asyncio.to_thread(upgrade, url, revision)


def current(url: str) -> None:
    from alembic import command

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
    wanted = script_heads()
    if current == wanted:
        return set()
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    reached = set()
    for rev in current:
        reached |= {r.revision for r in script.iterate_revisions(rev, "base")}
    return wanted - reached
