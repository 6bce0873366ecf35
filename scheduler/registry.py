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

from bot.clock import TZ, PeriodKind

from .calendar import WorkCalendar

@dataclass
class JobContext:
    services: object  # bot.services.Services (kept untyped here: scheduler/ sits below bot's app wiring)
    at: dt.datetime  # the moment this run is for: its scheduled time, or `jobs run --at`
    period: str  # the period `at` falls in: 2026-11-19, 2026-W47, 2026-11, 2026-Q4
    session: AsyncSession  # the run's transaction; queue messages into it
    calendar: WorkCalendar

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


JOBS: dict[str, JobSpec] = {}


def job(name: str, *, period: PeriodKind, description: str) -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        if name in JOBS and JOBS[name].fn is not fn:
            raise ValueError(f"job {name!r} declared twice")
        JOBS[name] = JobSpec(name, period, description, fn)
        return fn

    return register
