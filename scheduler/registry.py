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
from typing import Awaitable, Callable, Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import TZ, iso_week, week_start

from .calendar import WorkCalendar

PeriodKind = Literal["day", "week", "month", "quarter"]


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


def period_bounds(kind: PeriodKind, day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the period of ``kind`` that contains ``day``."""
    if kind == "day":
        return day, day
    if kind == "week":
        first = week_start(day)
        return first, first + dt.timedelta(days=6)
    if kind == "month":
        first = day.replace(day=1)
    else:
        first = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    months = 1 if kind == "month" else 3
    nxt = dt.date(first.year + (first.month + months - 1) // 12, (first.month + months - 1) % 12 + 1, 1)
    return first, nxt - dt.timedelta(days=1)


def period_name(kind: PeriodKind, day: dt.date) -> str:
    if kind == "day":
        return day.isoformat()
    if kind == "week":
        return iso_week(day)
    if kind == "month":
        return f"{day.year}-{day.month:02d}"
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
