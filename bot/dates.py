"""The dates people type: 今天/昨天/前天, 2026-11-19, 11-19, 11月19日 (and a few obvious variants)."""

from __future__ import annotations

import datetime as dt
import re

from .clock import TZ
from .text import Reasoned, fold

_RELATIVE = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2, "大前天": 3, "明天": -1, "后天": -2,
             "today": 0, "yesterday": 1}
_WEEKDAY_NAMES = "一二三四五六日天"
# 周五 / 星期五 / 礼拜五: the latest such day up to today; 上周五: that day of last week; 本周五 / 这周五.
_WEEKDAY = re.compile(r"^(上上|上|本|这)?(?:周|星期|礼拜)([一二三四五六日天1-7])$")
_FULL = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_SHORT = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})日?$")


class DateError(Reasoned):
    """A date that was recognised but cannot be used; its reason template (``errors/dates/…``) says why."""


def parse_day(token: str, today: dt.date) -> dt.date | None:
    """The date a token names, or None when the token is not a date at all.

    A token shaped like a date but impossible (2026-02-30) raises DateError. A month-day with no year
    is taken in the current year, or last year when that would be in the future (typed in early January).
    """
    token = fold(token).strip()
    if token.lower() in _RELATIVE:
        return today - dt.timedelta(days=_RELATIVE[token.lower()])
    if m := _WEEKDAY.match(token):
        which, name = m.groups()
        weekday = int(name) - 1 if name.isdigit() else min(_WEEKDAY_NAMES.index(name), 6)
        monday = today - dt.timedelta(days=today.weekday())
        if which in ("上", "上上"):
            return monday - dt.timedelta(weeks=len(which)) + dt.timedelta(days=weekday)
        if which in ("本", "这"):
            return monday + dt.timedelta(days=weekday)
        day = monday + dt.timedelta(days=weekday)
        return day if day <= today else day - dt.timedelta(weeks=1)
    if m := _FULL.match(token):
        year, month, day = map(int, m.groups())
    elif m := _SHORT.match(token):
        month, day = map(int, m.groups())
        year = today.year
        try:
            if dt.date(year, month, day) > today:
                year -= 1
        except ValueError:
            pass
    else:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise DateError("errors/dates/no_such_day", token=token) from None


def check_recent(day: dt.date, today: dt.date, max_days_back: int) -> None:
    """Contacts are logged for today or the recent past: refuse the future and the distant past."""
    if day > today:
        raise DateError("errors/dates/future", day=day)
    if (today - day).days > max_days_back:
        raise DateError("errors/dates/too_old", day=day, days=max_days_back)


_LEADING_DAY = re.compile(
    r"^(?:大前天|今天|今日|昨天|昨日|前天|明天|后天|yesterday\b|today\b|(?:上上|上|本|这)?(?:周|星期|礼拜)[一二三四五六日天1-7]"
    r"|\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{1,2}[-/.月]\d{1,2}日?)")


def split_leading_day(text: str) -> tuple[str, str] | None:
    """A date written at the start of ``text`` with more words glued on ("今天电话…", "11月19日面谈"):
    (the date as written, the rest), or None."""
    m = _LEADING_DAY.match(fold(text).lower())
    if not m:
        return None
    return text[:m.end()], text[m.end():]


def beijing(value: dt.date | dt.datetime) -> dt.date | dt.datetime:
    """What a person reads: a stored moment (kept in UTC) in the programme's time zone; a date as is.
    Every date or time the bot shows goes through here (the ``cn_date``/``cn_time`` filters, the export),
    so a plan item done at 03:00 Beijing time reads as that day, not the UTC one before it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(TZ)
    return value


def beijing_day(value: dt.date | dt.datetime) -> dt.date:
    local = beijing(value)
    return local.date() if isinstance(local, dt.datetime) else local
