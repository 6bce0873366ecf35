"""The services a running Bangdai holds, handed explicitly to the gateway, jobs and channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from storage.db import Database

from .calendar import WorkCalendar, calendar_for
from .clock import Clock
from .config import Config
from .inbound import Fetch, OutboxService
from .notify import Notifier
from .render import Renderer
from .router import Router


@dataclass
class Services:
    config: Config
    db: Database
    clock: Clock
    renderer: Renderer
    router: Router
    # scheduler.outbox.Outbox in a running service; seen here through its contract (bot/inbound.py), so
    # nothing below the app's wiring imports the scheduler.
    outbox: OutboxService = None  # type: ignore[assignment]
    # The working days of the config's ``[calendar]`` (built from it when not given): handlers name
    # ``calendar`` like ``clock``, jobs get it in their JobContext, the export and the console use it too.
    calendar: WorkCalendar = None  # type: ignore[assignment]
    extras: dict[str, Any] = field(default_factory=dict)
    # Callables returning operator warnings (API quota nearly used, no holiday data…), shown to staff
    # in the weekly digest and on /healthz.
    warning_sources: list[Callable[[], list[str]]] = field(default_factory=list)
    # Each channel's way to fetch the files people send it (bot.inbound.Fetch), by channel name.
    fetchers: dict[str, Fetch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.calendar is None:
            self.calendar = calendar_for(self.config)

    @property
    def notify(self) -> Notifier:
        """Render an answer for someone else and queue it (handlers name ``notify``; jobs have ``ctx.notify``)."""
        return Notifier(self.renderer, self.outbox)

    def warnings(self) -> list[str]:
        return [w for source in self.warning_sources for w in source()]
