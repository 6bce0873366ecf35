"""Time, injected: every "this week", "overdue" or "first working day" asks a Clock."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")

PeriodKind = Literal["day", "week", "month", "quarter"]


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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def day_start(day: dt.date) -> dt.datetime:
    """Midnight beginning ``day`` in Asia/Shanghai, for comparing stored moments with calendar days."""
    return dt.datetime.combine(day, dt.time(), TZ)


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
