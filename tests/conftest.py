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
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.app import Bangdai, build_services
from bot.clock import TZ, FrozenClock
from bot.config import Config
from bot.render import Renderer
from storage.db import Database
from storage.migrate import upgrade
from storage.models import metadata

from harness import Bot

from fakes.dingtalk_fixtures import dingtalk, dingtalk_fake  # noqa: F401  (fixtures: a loopback DingTalk)

# The PostgreSQL database .ci/run made; with pytest-xdist each worker (gw0, gw1…) has its own beside it,
# made by ``template_db``, so workers never empty each other's tables.
SHARED_PG_URL = os.environ.get("BANGDAI_TEST_DATABASE_URL", "")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PG_URL = f"{SHARED_PG_URL}_{WORKER}" if SHARED_PG_URL and WORKER else SHARED_PG_URL
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
        if PG_URL != SHARED_PG_URL:
            _recreate_worker_database()
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    import sqlite3

    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE installation SET created_at = ?", (INSTALLED,))
    return str(path)


def _recreate_worker_database() -> None:
    """This xdist worker's own PostgreSQL database, new for the run."""
    import asyncio

    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = make_url(PG_URL).database

    async def run() -> None:
        engine = create_async_engine(SHARED_PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(run())


_counter = itertools.count()


# The tests' programme runs in 2026 on the frozen clock; its database counts as made before that
# (jobs never run for a period that ended before the database was created: SPEC §3a).
INSTALLED = "2026-01-01 00:00:00.000000"


async def reset_postgres(snapshot: dict | None = None) -> str:
    """Empty every table of the PostgreSQL test database (a test starts from nothing) and record it as
    created on 2026-01-01, before the frozen clock, so jobs may run for the test's periods. With a
    ``snapshot`` (:class:`SeedTemplates`), put its rows back instead: a programme of :data:`SEEDS`."""
    db = Database(PG_URL)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        if snapshot is None:
            await conn.execute(text("INSERT INTO installation (id, created_at) VALUES (1, :at)"),
                               {"at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
        else:
            for table, rows in snapshot.items():  # sorted_tables order: parents first
                if table.name == "directoryversion":  # the triggers of the tables before wrote it already
                    await conn.execute(table.delete())
                await conn.execute(table.insert(), rows)
            for table in snapshot:  # ids go on from the snapshot's, as after the import itself
                if "id" in table.c and table.c.id.autoincrement is not False:
                    await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                                            f"(SELECT max(id) FROM \"{table.name}\"))"))
    await db.close()
    return PG_URL


async def import_programme(db: Database, directory: Path, roster: str = "", pairs: str = "",
                           now: dt.datetime = DEFAULT_NOW) -> None:
    """A roster and pairs file (the standard programme's unless given), imported as an operator would."""
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster

    r = await import_roster(db, write(directory, "roster.csv", roster or ROSTER_CSV), now=now)
    p = await import_pairs(db, write(directory, "pairs.csv", pairs or PAIRS_CSV), now=now)
    assert r.ok and p.ok, (r.lines(), p.lines())


async def seed_standard(db: Database, directory: Path) -> None:
    """The standard test programme (``seeded``), imported at DEFAULT_NOW."""
    await import_programme(db, directory)


Seed = Callable[[Database, Path], Awaitable[None]]


def more_people(roster: str, links: str) -> Seed:
    """A seed that adds ``roster``'s people and ``links``' 三联 links to a programme (at DEFAULT_NOW)."""
    async def seed(db: Database, directory: Path) -> None:
        from handlers.sheets.liaisons import import_liaisons
        from handlers.sheets.roster import import_roster

        r = await import_roster(db, write(directory, "more.csv", roster), now=DEFAULT_NOW)
        added = await import_liaisons(db, write(directory, "links.csv", links), now=DEFAULT_NOW)
        assert r.ok and added.ok, (r.lines(), added.lines())

    return seed
# The programmes tests start from, by the name of the fixture that gives them: what each adds, to which
# programme. Imported once per run, then copied (SQLite) or put back (PostgreSQL) for every test that
# asks for one: the imports themselves are tested in test_imports.py and friends, and most tests need
# only their result. A support module adds its own (sanling_support: ``sanling``).
SEEDS: dict[str, tuple[str | None, Seed]] = {"seeded": (None, seed_standard)}
_APPLIED = pytest.StashKey[tuple[str, ...]]()


def seed_chain(name: str) -> list[str]:
    base, _ = SEEDS[name]
    return (seed_chain(base) if base else []) + [name]


class SeedTemplates:
    """Each programme of :data:`SEEDS`, built the first time a test asks for it."""

    def __init__(self, template_db: str, directory: Path) -> None:
        self.template_db, self.directory = template_db, directory
        self.built: dict[str, str | dict] = {}

    async def get(self, name: str) -> str | dict:
        if name not in self.built:
            self.built[name] = await self._build(name)
        return self.built[name]

    async def _build(self, name: str) -> str | dict:
        directory = self.directory / name
        directory.mkdir()
        if PG_URL:
            await reset_postgres()
            db = Database(PG_URL)
            for step in seed_chain(name):
                await SEEDS[step][1](db, directory)
            snapshot = {}
            async with db.engine.connect() as conn:
                for table in metadata.sorted_tables:
                    rows = [dict(r._mapping) for r in await conn.execute(table.select())]
                    if rows:
                        snapshot[table] = rows
            await db.close()
            return snapshot
        path = directory / "seeded.db"
        shutil.copy(self.template_db, path)
        db = Database(f"sqlite+aiosqlite:///{path}")
        for step in seed_chain(name):
            await SEEDS[step][1](db, directory)
        await db.close()
        assert not path.with_name(path.name + "-wal").exists()  # everything is in the one file copied
        return str(path)


@pytest.fixture(scope="session")
def seed_templates(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> SeedTemplates:
    return SeedTemplates(template_db, tmp_path_factory.mktemp("seeds"))


@pytest.fixture
async def db_url(template_db: str, seed_templates: SeedTemplates, tmp_path: Path,
                 request: pytest.FixtureRequest) -> str:
    """A fresh database for the test: empty, or holding the programme of the :data:`SEEDS` fixture the
    test uses (directly or through another fixture; the one that adds the most)."""
    wanted = max((n for n in SEEDS if n in request.fixturenames), key=lambda n: len(seed_chain(n)), default=None)
    request.node.stash[_APPLIED] = tuple(seed_chain(wanted)) if wanted else ()
    template = await seed_templates.get(wanted) if wanted else None
    if PG_URL:
        return await reset_postgres(template)  # type: ignore[arg-type]
    path = tmp_path / f"test{next(_counter)}.db"
    shutil.copy(template or template_db, path)  # type: ignore[arg-type]
    return f"sqlite+aiosqlite:///{path}"


async def seeded_with(name: str, request: pytest.FixtureRequest, services: Any, tmp_path: Path) -> Any:
    """For a :data:`SEEDS` fixture: the services, their database holding programme ``name`` — put there
    by ``db_url``, or (a test using two programmes that do not build on each other) imported now."""
    assert services.clock.now() == DEFAULT_NOW, "the test programmes are imported at DEFAULT_NOW"
    if name not in request.node.stash.get(_APPLIED, ()):
        await SEEDS[name][1](services.db, tmp_path)
    return services


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


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    """One renderer for the run, as a running service has one: each template is compiled once, not again
    in every test (compiling took a tenth of many tests' time)."""
    return Renderer(Config().programme.templates_dir)


@pytest.fixture
async def services(config: Config, clock: FrozenClock, renderer: Renderer):
    services = build_services(config, clock)
    if config.programme.templates_dir == Config().programme.templates_dir:
        services.renderer = renderer
    yield services
    await services.db.close()


@pytest.fixture
def bot(services) -> Bot:
    """The bot in process (tests/harness.py): ``await bot.ask("u1", "本周")`` gives the answers."""
    return Bot(services)


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
async def seeded(services, request, tmp_path: Path):
    """The standard test programme: two mentors, two mentees (one 导师团 pair, one 1:1), one staff member
    and one person with no role, all with local ids u1–u6 already linked (:func:`seed_standard`)."""
    return await seeded_with("seeded", request, services, tmp_path)
