"""Running a job for a period: one transaction for the job's messages and the record of the run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlmodel import select

from bot.clock import TZ, period_name
from storage.models import JobRun

from .calendar import WorkCalendar, calendar_for
from .registry import JOBS, JobContext

log = logging.getLogger(__name__)


class UnknownJob(KeyError):
    def __str__(self) -> str:
        return f"没有名为 {self.args[0]} 的任务，可用：{', '.join(sorted(JOBS))}"


@dataclass
class RunResult:
    job: str
    period: str
    queued: int
    first_run: bool  # False when this period had already been run (nothing new should have gone out)


def load_jobs() -> None:
    """Import the modules that declare jobs, so JOBS is complete."""
    import scheduler.jobs  # noqa: F401


async def run_job(services, name: str, at: dt.datetime, *, trigger: str = "manual",
                  calendar: WorkCalendar | None = None) -> RunResult:
    load_jobs()
    if name not in JOBS:
        raise UnknownJob(name)
    spec = JOBS[name]
    at = at.astimezone(TZ)
    period = period_name(spec.period, at.date())
    calendar = calendar or calendar_for(services.config)
    async with services.db.transaction() as session:
        prior = (await session.exec(select(JobRun).where(JobRun.job == name, JobRun.period == period))).first()
        queued = await spec.fn(JobContext(services, at, period, session, calendar))
        now = services.clock.now()
        if prior is None:
            session.add(JobRun(job=name, period=period, started_at=now, finished_at=now, queued=queued, trigger=trigger))
        else:
            prior.finished_at, prior.queued = now, prior.queued + queued
            session.add(prior)
    log.info("job %s for %s (%s): %d message(s) queued", name, period, trigger, queued)
    return RunResult(name, period, queued, prior is None)


async def has_run(services, name: str, period: str) -> bool:
    async with services.db.transaction() as session:
        return (await session.exec(select(JobRun.id).where(JobRun.job == name, JobRun.period == period))).first() is not None
