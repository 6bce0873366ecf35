"""Scheduled jobs declare themselves here, each with the kind of period one run belongs to.

A job is a plain async function that gets a :class:`JobContext` and queues messages through the
outbox in the context's transaction; it returns how many messages were newly queued::

    @job("weekly_reminder", period="week", description="周联提醒：本周还没有面谈的师徒")
    async def weekly_reminder(ctx: JobContext) -> int: ...

Running a job twice for one period sends nothing new, because every message it queues carries an
idempotency key that names the period (``weekly-reminder:<person>:<ISO week>``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import TZ, PeriodKind, period_bounds, period_name

from bot.calendar import WorkCalendar
from bot.notify import Notifier
from bot.services import Services

@dataclass
class JobContext:
    services: Services
    at: dt.datetime  # the moment this run is for: its scheduled time, or `jobs run --at`
    period: str  # the period `at` falls in: 2026-11-19, 2026-W47, 2026-11, 2026-Q4
    session: AsyncSession  # the run's transaction; queue messages into it
    calendar: WorkCalendar

    @property
    def notify(self) -> Notifier:
        """The one way a job writes to people: render an Answer and queue it in this run's transaction."""
        return self.services.notify

    @property
    def today(self) -> dt.date:
        return self.at.astimezone(TZ).date()


JobFn = Callable[[JobContext], Awaitable[int]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    period: PeriodKind
    description: str
    fn: JobFn
    # "previous": a run reports on the period before its own (the Monday digest on last week, the
    # quarterly summary on last quarter); its label everywhere (message, jobrun, /healthz, jobs list)
    # is the period it reports on.
    reports: str = "current"

    def reported_bounds(self, day: dt.date) -> tuple[dt.date, dt.date]:
        first, last = period_bounds(self.period, day)
        if self.reports == "previous":
            return period_bounds(self.period, first - dt.timedelta(days=1))
        return first, last

    def label(self, day: dt.date) -> str:
        """``2026-Q3`` for the quarterly summary run on 2026-10-08: the period the run is about."""
        return period_name(self.period, self.reported_bounds(day)[0])


JOBS: dict[str, JobSpec] = {}


def job(name: str, *, period: PeriodKind, description: str, reports: str = "current") -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        if name in JOBS and JOBS[name].fn is not fn:
            raise ValueError(f"job {name!r} declared twice")
        JOBS[name] = JobSpec(name, period, description, fn, reports)
        return fn

    return register
