"""App wiring: services, gateway, channels, HTTP server, and (later issues) scheduler and outbox."""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import func
from aiohttp import web
from sqlmodel import select
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from handlers import build_router
from storage.db import Database
from storage.models import Person

from .channels.base import Channel
from .channels.local import LocalChannel
from .clock import Clock
from .config import REPO_ROOT, Config, enabled_channels
from .console.auth import console_base
from .console.web import Console
from .gateway import Gateway
from .identity import find_person
from .inbound import InboundMessage
from .render import Renderer
from .services import Services
from .text import load_pinyin
from scheduler.outbox import Dispatcher, Outbox
from scheduler.service import Scheduler

log = logging.getLogger(__name__)


# Platform channels are loaded only when enabled: module path and class, built as cls(services, gateway).
PLATFORM_CHANNELS = {
    "dingtalk": "bot.channels.dingtalk:DingTalkChannel",
    "wecom": "bot.channels.wecom:WeComChannel",
}


HEALTHY_STATES = {"ok", "connected"}


def local_channel_exposed(config: Config) -> str | None:
    """Why ``serve`` must not start, or None. The local channel believes the user id it is told, so on
    a host others can reach (``0.0.0.0``, as a WeCom callback needs) it hands anyone anyone's rights
    unless a token guards it (issue 11). The channel also refuses non-local requests without a token;
    this stops the misconfiguration before it is served at all."""
    if not config.local.enabled or config.local.token.reveal():
        return None
    host = config.server.host.strip()
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name, "" or "0.0.0.0"-like: reachable from elsewhere
    return (f"[server] host = \"{host}\" 可被其他机器访问，但本地渠道 [local] 没有设置令牌，任何人都能冒充任何用户。"
            "请设置 [local] token（或环境变量 BANGDAI_LOCAL__TOKEN），或关闭本地渠道 [local] enabled = false，"
            "或把 [server] host 改回 127.0.0.1。"
            f" / [server] host = \"{host}\" is reachable from other machines and the local channel has no token: "
            "set [local] token (or BANGDAI_LOCAL__TOKEN), or set [local] enabled = false, or serve on 127.0.0.1.")


def build_services(config: Config, clock: Clock | None = None, db: Database | None = None) -> Services:
    clock = clock or Clock()
    db = db or Database(config.database.url, config.database.echo)
    return Services(
        config=config,
        db=db,
        clock=clock,
        renderer=Renderer(config.programme.templates_dir),
        router=build_router(),
        outbox=Outbox(db, clock, config, enabled_channels(config)),
    )


class Bangdai:
    """One running service: the HTTP server's app, the gateway and the enabled channels."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.gateway = Gateway(services)
        self.channels: dict[str, Channel] = {}
        config = services.config
        for name in enabled_channels(config):
            if name == "local":
                channel: Channel = LocalChannel(services.db, services.clock, self.gateway.handle,
                                                token=config.local.token.reveal(),
                                                rate_per_second=config.local.rate_per_minute / 60)
            else:
                module, _, cls = PLATFORM_CHANNELS[name].partition(":")
                channel = getattr(importlib.import_module(module), cls)(services, self.gateway)
            self.channels[name] = channel
            if callable(getattr(channel, "fetch", None)):  # the channel can hand over files people send it
                services.fetchers[name] = channel.fetch  # type: ignore[attr-defined]
        self.dispatchers = {
            name: Dispatcher(services.outbox, channel, channel.rate_per_second) for name, channel in self.channels.items()
        }
        self.scheduler = Scheduler(services)
        # Things with async start()/stop() that run beside the server: dispatchers, then the scheduler.
        dispatching = list(self.dispatchers.values()) if config.outbox.dispatch else []
        self.background: list[Any] = [*dispatching, self.scheduler]

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        for channel in self.channels.values():
            channel.routes(app)
        if console_base(self.services.config) is not None:
            Console(self.services, self.gateway, self.scheduler).routes(app)
        app.on_startup.append(lambda _app: self.start())
        app.on_cleanup.append(lambda _app: self.stop())
        return app

    async def start(self) -> None:
        # The pinyin dictionaries take ~0.3 s to load: at start, not inside the first misspelt message's
        # transaction (which would hold SQLite's writer turn meanwhile).
        await asyncio.to_thread(load_pinyin)
        for channel in self.channels.values():
            await channel.start()
        for part in self.background:
            await part.start()

    async def stop(self) -> None:
        for part in reversed(self.background):
            try:
                await asyncio.wait_for(part.stop(), 5)
            except Exception:
                log.exception("stopping %r failed", part)
        for channel in self.channels.values():
            try:
                await asyncio.wait_for(channel.stop(), 5)
            except Exception:
                log.exception("stopping channel %s failed", channel.name)

    async def health(self) -> dict[str, Any]:
        database = await self.services.db.ping()
        body: dict[str, Any] = {
            "status": "ok" if database else "down",
            "database": {"ok": database, "dialect": self.services.db.dialect},
            "channels": {name: c.health() for name, c in self.channels.items()},
        }
        warnings = [w for c in body["channels"].values() for w in c.get("warnings", [])]
        for part in self.background:
            if hasattr(part, "refresh"):
                await part.refresh()
            if hasattr(part, "health"):
                extra = dict(part.health())
                warnings += extra.pop("warnings", [])
                body.update(extra)
        warnings += [w for w in self.services.warnings() if w not in warnings]
        body["outbox"] = await self.services.outbox.counts()
        if warnings:
            body["warnings"] = warnings  # things for an operator to act on; they do not change the status
        if body["status"] == "ok" and any(c.get("state") not in HEALTHY_STATES for c in body["channels"].values()):
            body["status"] = "degraded"
        return body

    async def healthz(self, _request: web.Request) -> web.Response:
        body = await self.health()
        return web.json_response(body, status=200 if body["database"]["ok"] else 503,
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


# --- ``serve --demo`` ----------------------------------------------------------------------------------
# A fictional programme to try every command on — 导师帮带 pairs (one a 导师团), 三联 links and a visit, a
# 常青藤 squad with a sign-up, a commitment and a 实绩, a 三联信箱 letter. Loaded only into an empty
# database (no people yet), so a restart keeps what was changed since. The activity is sent as chat
# messages through the gateway, as the people themselves would, so the demo is built by the same code the
# chat runs and cannot drift from it. Wiring, like the rest of this module: it calls the imports itself.

DEMO_DIR = REPO_ROOT / "data" / "demo"


async def load_demo(services: Any, directory: Path = DEMO_DIR) -> bool:
    """Load the demo unless the database already has people; True when it was loaded."""
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.liaisons import import_liaisons
    from handlers.sheets.roster import import_roster
    from handlers.sheets.squads import import_squads

    async with services.db.transaction() as session:
        people = (await session.exec(select(func.count()).select_from(Person))).one()
    if people:
        log.info("demo not loaded: the database already has %d people (it keeps what was changed)", people)
        return False
    now = services.clock.now()
    steps = ((import_roster, "roster.csv"), (import_pairs, "pairs.csv"), (import_liaisons, "liaisons.csv"),
             (import_squads, "squads.csv"))
    for fn, name in steps:
        report = await fn(services.db, directory / name, now=now, actor="demo")
        if not report.ok:
            raise RuntimeError(f"demo {name}: " + "; ".join(report.lines()))
        log.info("demo %s: %s", name, report.lines()[0])
    gateway = Gateway(services)
    lines = (directory / "activity.txt").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        who, _, text = (part.strip() for part in line.partition("|"))
        async with services.db.transaction() as session:
            person = await find_person(session, who)
        msg = InboundMessage(channel="demo", sender_id=f"person:{person.id}", conversation_id="demo", text=text,
                             msg_id=f"demo-{number}", received_at=now)
        await gateway.handle(msg, as_person=person.id)
    return True
