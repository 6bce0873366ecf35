"""Test fixtures: a real database (a SQLite file, or PostgreSQL when BANGDAI_TEST_DATABASE_URL is set),
a frozen clock, the real service behind a real HTTP server on loopback, and a chat helper that speaks
the local channel's HTTP API."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.app import Bangdai, build_services
from bot.clock import TZ, FrozenClock
from bot.config import Config
from storage.db import Database
from storage.migrate import upgrade
from storage.models import metadata

from fakes.dingtalk_fixtures import dingtalk, dingtalk_fake  # noqa: F401  (fixtures: a loopback DingTalk)

PG_URL = os.environ.get("BANGDAI_TEST_DATABASE_URL", "")
# Thursday of ISO week 47, 2026: a working day, mid-quarter, far from holidays.
DEFAULT_NOW = dt.datetime(2026, 11, 19, 10, 0, tzinfo=TZ)

ROSTER_CSV = """\
姓名,手机,单位,职务,角色,本地ID,出生年份
张伟,13800001234,县委组织部,原副部长,导师,u1,1962
王芳,13800002345,县发改局,原局长,导师,u3,1963
李娜,13900003456,华埠镇,镇长,徒弟,u2,1986
赵强,13900004567,城关街道,主任,徒弟,u4,1988
陈静,13700005678,县委组织部,干部科科长,组工干部,u5,1981
周敏,13700006789,县人社局,科员,,u6,1990
"""
PAIRS_CSV = """\
徒弟,导师,牵头导师,开始日期,协议签订日期
李娜,张伟、王芳,张伟,2026-03-01,2026-03-05
赵强,张伟,,2026-03-01,
"""


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrated once per run; each test gets a fresh copy (SQLite) or truncated tables (PostgreSQL)."""
    if PG_URL:
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    import sqlite3

    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE installation SET created_at = ?", (INSTALLED,))
    return str(path)


_counter = itertools.count()


# The tests' programme runs in 2026 on the frozen clock; its database counts as made before that
# (jobs never run for a period that ended before the database was created: SPEC §3a).
INSTALLED = "2026-01-01 00:00:00.000000"


async def reset_postgres() -> str:
    """Empty every table of the PostgreSQL test database (a test starts from nothing) and record it as
    created on 2026-01-01, before the frozen clock, so jobs may run for the test's periods."""
    db = Database(PG_URL)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await conn.execute(text("INSERT INTO installation (id, created_at) VALUES (1, :at)"),
                           {"at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    await db.close()
    return PG_URL


@pytest.fixture
async def db_url(template_db: str, tmp_path: Path) -> str:
    if PG_URL:
        return await reset_postgres()
    path = tmp_path / f"test{next(_counter)}.db"
    shutil.copy(template_db, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(DEFAULT_NOW)


@pytest.fixture
def config(db_url: str) -> Config:
    config = Config()
    config.database.url = db_url
    # Tests drive jobs and deliveries step by step; the tests of the running service turn these on.
    config.schedule.enabled = False
    config.outbox.dispatch = False
    return config


@pytest.fixture
async def services(config: Config, clock: FrozenClock):
    services = build_services(config, clock)
    yield services
    await services.db.close()


@pytest.fixture
async def bangdai(services) -> Bangdai:
    return Bangdai(services)


class Chat:
    """Talks to the service exactly as the local channel's users do: over HTTP."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def post(self, body: Any) -> tuple[int, Any]:
        resp = await self.client.post("/api/local/messages", json=body)
        return resp.status, await resp.json()

    async def replies(self, user: str, text: str, **extra: Any) -> list[dict]:
        status, body = await self.post({"user": user, "text": text, **extra})
        assert status == 200, body
        return body["replies"]

    async def say(self, user: str, text: str, **extra: Any) -> str:
        return "\n".join(r["text"] for r in await self.replies(user, text, **extra))

    async def inbox(self, user: str) -> list[dict]:
        resp = await self.client.get(f"/api/local/inbox/{user}")
        assert resp.status == 200
        return (await resp.json())["messages"]


@pytest.fixture
async def client(bangdai: Bangdai):
    client = TestClient(TestServer(bangdai.web_app()))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def chat(client: TestClient) -> Chat:
    return Chat(client)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


@pytest.fixture
async def seeded(services, tmp_path: Path):
    """The standard test programme: two mentors, two mentees (one 导师团 pair, one 1:1), one staff member
    and one person with no role, all with local ids u1–u6 already linked."""
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster

    now = services.clock.now()
    r = await import_roster(services.db, write(tmp_path, "roster.csv", ROSTER_CSV), now=now)
    p = await import_pairs(services.db, write(tmp_path, "pairs.csv", PAIRS_CSV), now=now)
    assert r.ok and p.ok, (r.lines(), p.lines())
    return services
