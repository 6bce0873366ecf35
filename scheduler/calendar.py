"""Working days by the Chinese statutory calendar (chinese-calendar), make-up working days included.

A year the package has no data for falls back to Monday–Friday; that fallback is logged and reported
on /healthz, because a holiday then passes for a working day.
"""

from __future__ import annotations

import datetime as dt
import logging

import chinese_calendar

log = logging.getLogger(__name__)


class WorkCalendar:
    def __init__(self) -> None:
        self.fallback_years: set[int] = set()

    def is_workday(self, day: dt.date) -> bool:
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in self.fallback_years:
                self.fallback_years.add(day.year)
                log.warning("no statutory holiday data for %s: treating Monday–Friday as working days", day.year)
            return day.weekday() < 5

    def next_workday(self, day: dt.date, last: dt.date) -> dt.date | None:
        """The first working day from ``day`` up to ``last`` inclusive, or None."""
        while day <= last:
            if self.is_workday(day):
                return day
            day += dt.timedelta(days=1)
        return None

    def last_workday(self, first: dt.date, last: dt.date) -> dt.date | None:
        day = last
        while day >= first:
            if self.is_workday(day):
                return day
            day -= dt.timedelta(days=1)
        return None

    def add_workdays(self, start: dt.datetime, days: int) -> dt.datetime:
        """``start`` moved forward by ``days`` whole working days (for "overdue after 3 working days")."""
        day, moved = start.date(), 0
        while moved < days:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                moved += 1
        return start.replace(year=day.year, month=day.month, day=day.day)

    def warnings(self) -> list[str]:
        return [f"{y} 年没有法定节假日数据，按周一至周五计算工作日" for y in sorted(self.fallback_years)]
