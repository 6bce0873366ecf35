"""开放型课堂: announce (staff or mentor), sign up, check in with the code said at the class, the
reminder the day before, and check-ins counted as the host's 辅导次数 and on the mentee's record."""

import datetime as dt
import re

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.clock import TZ
from handlers.sheets.export import export_workbook
from scheduler.runner import run_job
from storage.models import ClassSignUp, OpenClass, OutboxMessage

pytestmark = pytest.mark.usefixtures("seeded")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def test_class_from_announcement_to_check_in(chat, services, clock, tmp_path):
    reply = await chat.say("u1", "课堂 新建 12月5日 14:30 湖镇镇现场教学点 基层信访工作方法")
    assert "已新建开放型课堂 #1：12月5日 14:30 湖镇镇现场教学点" in reply
    code = re.search(r"签到码 (\d{4})", reply).group(1)
    [c] = await rows(services, OpenClass)
    assert (c.host_id, c.code, c.starts_at) == (1, code, at(2026, 12, 5, 14, 30))
    listing = await chat.say("u2", "课堂")
    assert "#1 12月5日 14:30 湖镇镇现场教学点：基层信访工作方法（张伟）" in listing and code not in listing
    assert "已报名课堂 #1" in await chat.say("u2", "课堂 报名 #1")
    assert "您已报名过" in await chat.say("u2", "课堂 报名 1")
    assert "✅ 已报名" in await chat.say("u2", "课堂")
    assert code not in await chat.say("u4", "课堂 #1")  # the code is said at the class, not shown to mentees
    assert f"签到码：{code}；报名 1 人，已签到 0 人：李娜" in await chat.say("u5", "课堂 #1")
    # the day before: the signed-up mentee and the host are reminded, once
    clock.set(at(2026, 12, 4, 10))
    assert (await run_job(services, "class_reminder", clock.now())).queued == 2
    assert (await run_job(services, "class_reminder", at(2026, 12, 4, 10, 5))).queued == 0
    reminders = {m.person_id: m.body for m in await rows(services, OutboxMessage, OutboxMessage.source == "class_reminder")}
    assert set(reminders) == {1, 3} and code in reminders[1] and code not in reminders[3]
    assert "明天 12月5日 14:30" in reminders[3]
    assert "签到只在上课当天" in await chat.say("u2", f"课堂 签到 #1 {code}")
    clock.set(at(2026, 12, 5, 14, 40))
    assert "签到码不对" in await chat.say("u2", "课堂 签到 #1 0000" if code != "0000" else "课堂 签到 #1 1111")
    assert "签到成功" in await chat.say("u2", f"课堂 签到 #1 {code}")
    assert "签到成功" in await chat.say("u4", f"课堂 签到 #1 {code}")  # came without signing up: counts too
    assert "您已签到过" in await chat.say("u4", f"课堂 签到 #1 {code}")
    assert len([s for s in await rows(services, ClassSignUp) if s.attended_at]) == 2
    # 2 check-ins = 2 辅导 of 张伟; the mentees' records show the class
    assessment = await chat.say("u5", "考核")
    assert "张伟：待定" in assessment and "辅导 2 次（含开放课堂 2 人次）" in assessment
    assert "您本季度已参加开放课堂 1 次" in await chat.say("u2", "课堂")
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, clock)
    row = [c.value for c in load_workbook(path)["开放课堂"][2]]
    assert row[:4] == [1, "2026-12-05 14:30", "湖镇镇现场教学点", "基层信访工作方法"] and row[4:7] == ["张伟", 2, 2]


@pytest.mark.parametrize("user,text,expect", [
    ("u2", "课堂 新建 12月5日 14:30 教学点 主题", "“课堂 新建”仅限导师、管理员、组工干部使用"),
    ("u6", "课堂", "仅限"),
    ("u1", "课堂 新建", "请按 日期 时间 地点 主题 的顺序写"),
    ("u1", "课堂 新建 12月5日 湖镇镇 主题", "请按 日期 时间 地点 主题 的顺序写"),
    ("u1", "课堂 新建 下周 14:30 湖镇镇 主题", "请写上课日期"),
    ("u1", "课堂 新建 2月30日 14:30 湖镇镇 主题", "日期 2月30日 不存在"),
    ("u1", "课堂 新建 12月5日 25:30 湖镇镇 主题", "时间 25:30 不对"),
    ("u1", "课堂 新建 2026-11-01 14:30 湖镇镇 主题", "已经过去"),
    ("u1", "课堂 新建 今天 08:00 湖镇镇 主题", "这个时间已经过去"),
    ("u5", "课堂 报名 #1", "“课堂 报名”仅限徒弟使用"),
    ("u2", "课堂 报名", "请写上课堂编号"),
    ("u2", "课堂 报名 #9", "没有编号为 #9 的课堂"),
    ("u2", "课堂 签到 #9 1234", "没有编号为 #9 的课堂"),
    ("u2", "课堂 签到 #1", "请写上课堂编号和老师在课上说的签到码"),
    ("u2", "课堂 第一节", "请写上课堂编号"),
])
async def test_class_wrong_forms(chat, services, user, text, expect):
    assert expect in await chat.say(user, text)
    assert await rows(services, OpenClass) == [] and await rows(services, ClassSignUp) == []


async def test_a_month_day_already_past_is_next_year_and_signing_up_closes_at_the_start(chat, services, clock):
    assert "已新建开放型课堂 #1：1月8日 09:00" in await chat.say("u5", "课堂 新建 1月8日 9点00 县委党校 年轻干部座谈")
    [c] = await rows(services, OpenClass)
    assert c.starts_at == at(2027, 1, 8, 9, 0) and c.host_id == 5
    clock.set(at(2027, 1, 8, 9, 30))
    assert "已经开始或结束，不能再报名" in await chat.say("u2", "课堂 报名 #1")
    assert "近期没有开放型课堂" not in await chat.say("u2", "课堂")  # still today's
