"""Time, injected: every "this week", "overdue" or "first working day" asks a Clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


class Clock:
    """The real clock, in the programme's time zone (Asia/Shanghai)."""

    tz = TZ

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def today(self) -> dt.date:
        return self.now().date()


class FrozenClock(Clock):
    """A clock that only moves when told to; tests travel in time with it instead of sleeping."""

    def __init__(self, at: dt.datetime) -> None:
        self.set(at)

    def set(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=TZ)
        self._now = at.astimezone(TZ)

    def advance(self, **delta: float) -> None:
        self._now += dt.timedelta(**delta)

    def now(self) -> dt.datetime:
        return self._now


def iso_week(day: dt.date) -> str:
    """``2026-W47`` — the ISO week a date belongs to, used in reports and idempotency keys."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
