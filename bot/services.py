"""The services a running Bangdai holds, handed explicitly to the gateway, jobs and channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from storage.db import Database

from .clock import Clock
from .config import Config
from .render import Renderer
from .router import Router


@dataclass
class Services:
    config: Config
    db: Database
    clock: Clock
    renderer: Renderer
    router: Router
    outbox: Any = None  # scheduler.outbox.Outbox once built; typed loosely to keep bot/ below scheduler/
    extras: dict[str, Any] = field(default_factory=dict)
    # Callables returning operator warnings (API quota nearly used, no holiday data…), shown to staff
    # in the weekly digest and on /healthz.
    warning_sources: list[Callable[[], list[str]]] = field(default_factory=list)
    # Each channel's way to fetch the files people send it (bot.inbound.Fetch), by channel name.
    fetchers: dict[str, Any] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        return [w for source in self.warning_sources for w in source()]
