"""Working days by the Chinese statutory calendar (chinese-calendar), make-up working days included.

chinese-calendar knows a year only once the State Council's notice for it is out (it covers 2004–2026
in 1.11). For a later year, in order:

- ``[calendar] holidays`` / ``workdays`` in the config: the days the operator entered from the notice
  (bridging days off, make-up working days) on top of the statutory holidays below; they also
  override the package for any year, should a notice be amended;
- otherwise the holidays the law itself fixes (《全国年节及纪念日放假办法》 as amended in 2024: 元旦
  1 Jan; 春节 除夕 to 初三; 清明; 劳动节 1–2 May; 端午; 中秋; 国庆 1–3 Oct), computed with the lunar
  calendar. The make-up working days (调休) and the bridging days are only known from the notice, so
  that year gets a warning (logged, on /healthz, in the staff digest) naming it.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from typing import Any, Iterable

import chinese_calendar

log = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> frozenset[dt.date]:
    """The public holidays the law fixes for ``year``, whatever the yearly notice adds around them."""
    from lunar_python import Lunar

    def lunar(month: int, day: int) -> dt.date:
        solar = Lunar.fromYmd(year, month, day).getSolar()
        return dt.date(solar.getYear(), solar.getMonth(), solar.getDay())

    new_year = lunar(1, 1)  # 春节: 除夕 (the day before) to 初三
    spring = {new_year + dt.timedelta(days=n) for n in range(-1, 3)}
    qingming_solar = Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]
    qingming = dt.date(qingming_solar.getYear(), qingming_solar.getMonth(), qingming_solar.getDay())
    days = {dt.date(year, 1, 1), qingming, dt.date(year, 5, 1), dt.date(year, 5, 2),
            lunar(5, 5), lunar(8, 15), dt.date(year, 10, 1), dt.date(year, 10, 2), dt.date(year, 10, 3)}
    return frozenset(d for d in days | spring if d.year == year)


def _dates(values: Iterable[Any], key: str) -> frozenset[dt.date]:
    out = set()
    for value in values or ():
        if isinstance(value, dt.datetime):
            value = value.date()
        if not isinstance(value, dt.date):
            try:
                value = dt.date.fromisoformat(str(value).strip())
            except ValueError:
                raise ValueError(f"[calendar] {key} 中的“{value}”不是日期，请写成 2027-01-01") from None
        out.add(value)
    return frozenset(out)


class WorkCalendar:
    def __init__(self, holidays: Iterable[Any] = (), workdays: Iterable[Any] = ()) -> None:
        self.holidays = _dates(holidays, "holidays")
        self.workdays = _dates(workdays, "workdays")
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"[calendar] holidays 和 workdays 都有 {min(both)}")
        self.configured_years = {d.year for d in self.holidays | self.workdays}
        self.fallback_years: set[int] = set()

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if day.year in self.configured_years:
            # The operator entered the notice's extra days off and make-up days; the holidays the law
            # fixes are off whatever the notice says around them.
            return day.weekday() < 5 and day not in statutory_holidays(day.year)
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in self.fallback_years:
                self.fallback_years.add(day.year)
                log.warning("no holiday data for %s: statutory holidays computed, make-up working days unknown",
                            day.year)
            return day.weekday() < 5 and day not in statutory_holidays(day.year)

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
        return [f"{y} 年没有国务院放假通知的数据：已按法定节假日（元旦、春节、清明、劳动节、端午、中秋、国庆）"
                f"排除休息日，但调休上班日和连休安排未知；通知发布后请在配置 [calendar] holidays / workdays "
                f"中填写，或升级 chinese-calendar" for y in sorted(self.fallback_years)]


def calendar_for(config: Any) -> WorkCalendar:
    """The calendar of a config's ``[calendar]`` section: one per config object, so the years that fell
    back to the statutory rule gather in one place for /healthz and the digest."""
    calendar = getattr(config, "_work_calendar", None)
    if calendar is None:
        section = getattr(config, "calendar", None)
        calendar = WorkCalendar(getattr(section, "holidays", ()), getattr(section, "workdays", ()))
        config._work_calendar = calendar
    return calendar
