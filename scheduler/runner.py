"""Running a job for a period: one transaction for the job's messages and the record of the run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace

from sqlmodel import select

from bot.clock import TZ, period_name
from storage.models import JobRun

from bot.calendar import WorkCalendar
from .registry import JOBS, JobContext

log = logging.getLogger(__name__)


class UnknownJob(KeyError):
    def __str__(self) -> str:
        return f"没有名为 {self.args[0]} 的任务，可用：{', '.join(sorted(JOBS))}"


@dataclass
class RunResult:
    job: str
    period: str  # the period the run is about (JobSpec.label): the same in messages, jobrun and /healthz
    queued: int
    first_run: bool  # False when this period had already been run (nothing new should have gone out)
    would_send: list = field(default_factory=list)  # dry run: the messages it would have queued

    @property
    def people(self) -> int:
        """How many people (or groups) the run reaches."""
        return len({m.person_id or m.group or m.account for m in self.would_send})


class _DryRun(Exception):
    """Raised inside a dry run's transaction so nothing it wrote is kept."""


class _RecordingOutbox:
    """Stands in for the outbox in a dry run: keeps what would be queued, queues nothing."""

    def __init__(self, real) -> None:
        self.real, self.messages = real, []

    async def enqueue_many(self, session, messages) -> int:
        from sqlmodel import col

        from storage.models import OutboxMessage

        keys = [m.key for m in messages]
        already = set()
        for start in range(0, len(keys), 500):
            already |= set((await session.exec(
                select(OutboxMessage.key).where(col(OutboxMessage.key).in_(keys[start:start + 500])))).all())
        new = [m for m in messages if m.key not in already]
        self.messages.extend(new)
        return len(new)

    async def enqueue(self, session, message) -> bool:
        return await self.enqueue_many(session, [message]) == 1

    def __getattr__(self, name):
        return getattr(self.real, name)


def load_jobs() -> None:
    """Import the modules that declare jobs, so JOBS is complete."""
    import scheduler.jobs  # noqa: F401


async def run_job(services, name: str, at: dt.datetime, *, trigger: str = "manual",
                  calendar: WorkCalendar | None = None, dry_run: bool = False) -> RunResult:
    """Run ``name`` for the period ``at`` falls in. ``dry_run``: the job runs in a transaction that is
    rolled back, with an outbox that only records — nothing is queued and the period is not used up."""
    load_jobs()
    if name not in JOBS:
        raise UnknownJob(name)
    spec = JOBS[name]
    at = at.astimezone(TZ)
    period = period_name(spec.period, at.date())
    label = spec.label(at.date())
    calendar = calendar or services.calendar
    if dry_run:
        recorder = _RecordingOutbox(services.outbox)
        fake = replace(services, outbox=recorder)
        try:
            async with services.db.transaction() as session:
                prior = (await session.exec(select(JobRun).where(JobRun.job == name, JobRun.period == label))).first()
                queued = await spec.fn(JobContext(fake, at, period, session, calendar))
                raise _DryRun
        except _DryRun:
            pass
        return RunResult(name, label, queued, prior is None, recorder.messages)
    async with services.db.transaction() as session:
        prior = (await session.exec(select(JobRun).where(JobRun.job == name, JobRun.period == label))).first()
        queued = await spec.fn(JobContext(services, at, period, session, calendar))
        now = services.clock.now()
        if prior is None:
            session.add(JobRun(job=name, period=label, started_at=now, finished_at=now, queued=queued, trigger=trigger))
        else:
            prior.finished_at, prior.queued = now, prior.queued + queued
            session.add(prior)
    log.info("job %s for %s (%s): %d message(s) queued", name, label, trigger, queued)
    return RunResult(name, label, queued, prior is None)


async def installed_on(services) -> dt.date | None:
    """The Beijing day this database was created (SPEC §3a: no job runs for a period ended before it)."""
    from storage.models import Installation

    async with services.db.transaction() as session:
        row = await session.get(Installation, 1)
    return None if row is None else row.created_at.astimezone(TZ).date()


async def last_runs(services) -> dict[str, str]:
    """The latest recorded run of each job, whoever made it (schedule, catch-up or the CLI)."""
    async with services.db.transaction() as session:
        rows = (await session.exec(select(JobRun).order_by(JobRun.finished_at, JobRun.id))).all()
    return {r.job: f"{r.period} ({r.queued}, {r.trigger})" for r in rows}


async def has_run(services, name: str, period: str) -> bool:
    async with services.db.transaction() as session:
        return (await session.exec(select(JobRun.id).where(JobRun.job == name, JobRun.period == period))).first() is not None
