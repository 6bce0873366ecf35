"""The mailbox's "3 working days" in a year chinese-calendar does not know: holidays the law fixes are
not counted, and days entered under [calendar] count as the operator entered them."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import TZ

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
def config(config, request):
    """The suite's config, with ``[calendar] holidays`` from the test's parameter (read at start-up)."""
    config.calendar.holidays = getattr(request, "param", [])
    return config


async def test_new_year_2027_does_not_count_as_a_working_day_for_the_mailbox(chat, clock):
    clock.set(dt.datetime(2026, 12, 31, 10, 0, tzinfo=TZ))  # a Thursday; 元旦 2027 is the Friday
    assert "#1" in await chat.say("u2", "信箱 退出现职后的待遇如何落实？")
    clock.set(dt.datetime(2027, 1, 5, 12, 0, tzinfo=TZ))  # Mon 4 and Tue 5: two working days waited
    todo = await chat.say("u5", "信箱 待办")
    assert "已等 2 个工作日" in todo and "超期" not in todo, todo
    clock.set(dt.datetime(2027, 1, 6, 12, 0, tzinfo=TZ))
    assert "超期" in await chat.say("u5", "信箱 待办")


@pytest.mark.parametrize("config", [["2027-01-04"]], indirect=True)  # as if the notice gave Monday 4 January off
async def test_days_entered_from_the_notice_count_as_entered(chat, clock, config):
    clock.set(dt.datetime(2026, 12, 31, 10, 0, tzinfo=TZ))
    await chat.say("u2", "信箱 退出现职后的待遇如何落实？")
    clock.set(dt.datetime(2027, 1, 6, 12, 0, tzinfo=TZ))
    todo = await chat.say("u5", "信箱 待办")
    assert "已等 2 个工作日" in todo and "超期" not in todo, todo
