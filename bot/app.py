"""App wiring: services, gateway, channels, HTTP server, and (later issues) scheduler and outbox."""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import json
import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from handlers import build_router
from storage.db import Database

from .channels.base import Channel
from .channels.local import LocalChannel
from .clock import Clock
from .config import Config, enabled_channels
from .console.auth import console_base
from .console.web import Console
from .gateway import Gateway
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
