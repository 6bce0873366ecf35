"""When jobs run: schedules from config, moved by the working-day calendar, driven by APScheduler,
with catch-up after downtime and one leader among several processes.

APScheduler (3.x) only keeps time here. Which moment belongs to which period, and where a run moves
when its day is a holiday, is decided by :class:`Schedule`, which APScheduler asks through
:class:`PlannedTrigger`. Whether a period has been run is the database's ``jobrun`` table, not
APScheduler's memory, so a restart neither loses nor repeats a run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import text

from bot.clock import TZ, PeriodKind, period_bounds, period_name

from bot.calendar import WorkCalendar
from .registry import JOBS
from .runner import has_run, installed_on, last_runs, load_jobs, run_job

log = logging.getLogger(__name__)

_WORKDAY_FORM = re.compile(r"^(first-working-day|first-working-day-of-quarter|last-working-day)\s+(\d{1,2}):(\d{2})$")
LEADER_LOCK_ID = 0x62616E67  # "bang": the advisory lock held by the process that runs the scheduler


class ScheduleError(ValueError):
    pass


class Schedule:
    """The planned run of one job in each period.

    ``spec`` is a cron line (``0 16 * * thu``) or ``first-working-day HH:MM``,
    ``first-working-day-of-quarter HH:MM``, ``last-working-day HH:MM``. A cron time that falls on a
    day off moves to the next working day inside the same period, or the period is skipped.
    """

    def __init__(self, spec: str, kind: PeriodKind, calendar: WorkCalendar) -> None:
        self.spec, self.kind, self.calendar = spec.strip(), kind, calendar
        m = _WORKDAY_FORM.match(self.spec)
        if m:
            self.form = m.group(1)
            self.time = dt.time(int(m.group(2)), int(m.group(3)))
            if self.form == "first-working-day-of-quarter":
                self.kind = "quarter"
            self.cron = None
        else:
            self.form = "cron"
            try:
                self.cron = CronTrigger.from_crontab(self.spec, timezone=TZ)
            except ValueError as exc:
                raise ScheduleError(f"无法理解的时间表“{spec}”：{exc}") from None

    def planned(self, day: dt.date) -> dt.datetime | None:
        """The run time of the period that contains ``day``, or None when the period has none."""
        first, last = period_bounds(self.kind, day)
        if self.cron is not None:
            start = dt.datetime.combine(first, dt.time(0), TZ)
            nominal = self.cron.get_next_fire_time(None, start)
            if nominal is None or nominal.date() > last:
                return None
            run_day = self.calendar.next_workday(nominal.date(), last)
            return None if run_day is None else dt.datetime.combine(run_day, nominal.timetz().replace(tzinfo=None), TZ)
        if self.form == "last-working-day":
            run_day = self.calendar.last_workday(first, last)
        else:
            run_day = self.calendar.next_workday(first, last)
        return None if run_day is None else dt.datetime.combine(run_day, self.time, TZ)

    def next_at_or_after(self, moment: dt.datetime, periods: int = 60) -> dt.datetime | None:
        day = moment.astimezone(TZ).date()
        for _ in range(periods):
            planned = self.planned(day)
            if planned is not None and planned >= moment:
                return planned
            day = period_bounds(self.kind, day)[1] + dt.timedelta(days=1)
        return None

    def period_of(self, moment: dt.datetime) -> str:
        """The run's own period (the label of what it reports on is ``JobSpec.label``)."""
        return period_name(self.kind, moment.astimezone(TZ).date())


class PlannedTrigger(BaseTrigger):
    """An APScheduler trigger that asks a :class:`Schedule` for the next run."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time, now):  # noqa: D401 - APScheduler's signature
        start = previous_fire_time + dt.timedelta(microseconds=1) if previous_fire_time else now
        return self.schedule.next_at_or_after(start)

    def __str__(self) -> str:
        return f"planned[{self.schedule.spec}]"


def load_schedules(config, calendar: WorkCalendar) -> dict[str, Schedule]:
    """One Schedule per declared job, from ``[schedule]`` in the config (``bot.config.Config``)."""
    load_jobs()
    config = config.schedule
    out = {}
    for name, spec in JOBS.items():
        raw = getattr(config, name, None)
        if raw is None:
            raise ScheduleError(f"[schedule] 缺少任务 {name} 的时间表")
        out[name] = Schedule(raw, spec.period, calendar)
    return out


class Scheduler:
    """The scheduler part of ``bangdai serve``: leader election, catch-up, then APScheduler."""

    def __init__(self, services, calendar: WorkCalendar | None = None) -> None:
        self.services = services
        self.calendar = calendar or services.calendar
        self.schedules = load_schedules(services.config, self.calendar)
        self.aps: AsyncIOScheduler | None = None
        self.leader = False
        self.leading = asyncio.Event()  # set while this process runs the jobs (tests and /healthz wait on it)
        self._leader_conn: Any = None
        self._leader_task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self.last_runs: dict[str, str] = {}

    async def catch_up(self) -> list[str]:
        """Run each job whose current period's planned time has passed without a recorded run — unless
        the period the run would report on ended before this database was created (a new install
        sends no summary of a quarter it never saw)."""
        now = self.services.clock.now()
        ran = []
        for name, schedule in self.schedules.items():
            planned = schedule.planned(now.date())
            if planned is None or planned > now:
                continue
            if await has_run(self.services, name, JOBS[name].label(now.date())):
                continue
            if await self._before_installation(name, now):
                log.info("catch-up: %s for %s skipped: the period ended before this database was created",
                         name, JOBS[name].label(now.date()))
                continue
            log.info("catch-up: %s missed its run at %s", name, planned.isoformat())
            await self._run(name, "catch-up")
            ran.append(name)
        return ran

    async def _before_installation(self, name: str, now: dt.datetime) -> bool:
        installed = await installed_on(self.services)
        return installed is not None and JOBS[name].reported_bounds(now.astimezone(TZ).date())[1] < installed

    async def _run(self, name: str, trigger: str) -> None:
        now = self.services.clock.now()
        if trigger == "schedule" and await has_run(self.services, name, JOBS[name].label(now.astimezone(TZ).date())):
            return  # already run for this period (by catch-up, or by another leader before us)
        if trigger == "schedule" and await self._before_installation(name, now):
            return
        try:
            result = await run_job(self.services, name, now, trigger=trigger, calendar=self.calendar)
            self.last_runs[name] = f"{result.period} ({result.queued}, {trigger})"
        except Exception:
            log.exception("job %s failed", name)

    async def refresh(self) -> None:
        """Before /healthz answers: runs recorded by anyone (the CLI too) count as last runs."""
        try:
            self.last_runs.update(await last_runs(self.services))
        except Exception:
            log.exception("reading the job runs failed")

    async def _fire(self, name: str) -> None:
        await self._run(name, "schedule")

    async def _acquire_leadership(self) -> bool:
        db = self.services.db
        if db.dialect != "postgresql":
            return True  # SQLite: one process per database file
        conn = await db.engine.connect()
        try:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_ID})).scalar()
            await conn.commit()
        except BaseException:
            await conn.close()
            raise
        if got:
            self._leader_conn = conn  # the lock lives as long as this connection
            return True
        await conn.close()
        return False

    async def _try_lead(self) -> bool:
        try:
            return await self._acquire_leadership()
        except Exception:  # the database is unreachable for now: try again later, like a standby
            log.warning("could not ask for the scheduler's lock; trying again", exc_info=True)
            return False

    async def _still_leader(self) -> bool:
        """Whether the connection that holds the lock still works. When it broke, the database let the
        lock go with it, and another process may lead already."""
        if self._leader_conn is None:
            return True  # SQLite
        try:
            await self._leader_conn.execute(text("SELECT 1"))
            await self._leader_conn.commit()
            return True
        except Exception:
            log.warning("the scheduler's lock connection broke: no longer leading")
            return False

    async def _step_down(self) -> None:
        if self.aps is not None and self.aps.running:
            self.aps.shutdown(wait=False)
        self.aps = None
        self.leader = False
        self.leading.clear()
        if self._leader_conn is not None:
            conn, self._leader_conn = self._leader_conn, None
            try:
                await conn.invalidate()  # never back to the pool: it may still hold the lock's session
            except Exception:
                pass

    async def _become_leader(self) -> None:
        """Lead, or wait for the leader to go (a crashed process's lock goes with its connection), and
        check every ``leader_retry_seconds`` both ways: a standby tries the lock, the leader its connection."""
        every = max(0.5, float(self.services.config.schedule.leader_retry_seconds))
        while True:
            while not await self._try_lead():
                await asyncio.sleep(every)
            self.leader = True
            log.info("this process runs the scheduler")
            await self.catch_up()
            self.aps = AsyncIOScheduler(timezone=TZ)
            for name, schedule in self.schedules.items():
                self.aps.add_job(self._fire, PlannedTrigger(schedule), args=[name], id=name, name=name,
                                 misfire_grace_time=6 * 3600, coalesce=True, max_instances=1, replace_existing=True)
            self.aps.start()
            self.leading.set()
            if self._leader_conn is None:
                return  # SQLite: nobody to hand over to
            while await self._still_leader():
                await asyncio.sleep(every)
            await self._step_down()

    async def start(self) -> None:
        if not self.services.config.schedule.enabled:
            log.info("scheduler disabled by [schedule] enabled = false")
            return
        self._leader_task = asyncio.create_task(self._become_leader(), name="scheduler-leader")

    async def stop(self) -> None:
        if self._leader_task and not self._leader_task.done():
            self._leader_task.cancel()
            try:
                await self._leader_task
            except (asyncio.CancelledError, Exception):
                pass
        if self.aps is not None and self.aps.running:
            self.aps.shutdown(wait=False)
        if self._leader_conn is not None:
            # The lock belongs to the database session, and close() only returns the connection to the
            # pool: release it explicitly so another process can lead at once.
            conn, self._leader_conn = self._leader_conn, None
            try:
                await conn.rollback()  # the leader task may have been cancelled mid-statement
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_ID})
                await conn.commit()
                await conn.close()
            except Exception:
                await conn.invalidate()  # closing the database session frees its lock too
        self.leader = False
        self.leading.clear()

    def next_runs(self) -> dict[str, dt.datetime | None]:
        now = self.services.clock.now()
        return {name: s.next_at_or_after(now) for name, s in self.schedules.items()}

    def upcoming(self) -> list[tuple[dt.datetime, str, str]]:
        """(next run, job name, what the job does), soonest first: what the console's 概览 lists."""
        runs = sorted(((at, name) for name, at in self.next_runs().items() if at), key=lambda x: x[0])
        return [(at, name, JOBS[name].description) for at, name in runs]

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scheduler": {
                "enabled": self.services.config.schedule.enabled,
                "leader": self.leader,
                "next_runs": {k: v.isoformat() if v else None for k, v in self.next_runs().items()},
                "next_periods": {k: JOBS[k].label(v.date()) if v else None for k, v in self.next_runs().items()},
                "last_runs": dict(self.last_runs),
            }
        }
        if self.calendar.warnings():
            body["warnings"] = self.calendar.warnings()
        return body
