"""App wiring: services, gateway, channels, HTTP server, and (later issues) scheduler and outbox."""

from __future__ import annotations

import asyncio
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
from .config import Config
from .gateway import Gateway
from .render import Renderer
from .services import Services

log = logging.getLogger(__name__)


def build_services(config: Config, clock: Clock | None = None, db: Database | None = None) -> Services:
    return Services(
        config=config,
        db=db or Database(config.database.url, config.database.echo),
        clock=clock or Clock(),
        renderer=Renderer(config.programme.templates_dir),
        router=build_router(),
    )


class Bangdai:
    """One running service: the HTTP server's app, the gateway and the enabled channels."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.gateway = Gateway(services)
        self.channels: dict[str, Channel] = {}
        config = services.config
        if config.local.enabled:
            self.channels["local"] = LocalChannel(services.db, services.clock, self.gateway.handle,
                                                  token=config.local.token.reveal())
        self.background: list[Any] = []  # things with async start()/stop(): scheduler, dispatchers

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        for channel in self.channels.values():
            channel.routes(app)
        app.on_startup.append(lambda _app: self.start())
        app.on_cleanup.append(lambda _app: self.stop())
        return app

    async def start(self) -> None:
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
        for part in self.background:
            if hasattr(part, "health"):
                body.update(part.health())
        warnings = [w for c in body["channels"].values() for w in c.get("warnings", [])] + body.get("warnings", [])
        if warnings:
            body["warnings"] = warnings
            if body["status"] == "ok":
                body["status"] = "degraded"
        return body

    async def healthz(self, _request: web.Request) -> web.Response:
        body = await self.health()
        return web.json_response(body, status=200 if body["database"]["ok"] else 503,
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
