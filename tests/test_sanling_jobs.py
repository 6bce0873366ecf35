"""The 三零 jobs in travelled time: mailbox overdue across weekends, holidays and 调休, the monthly visit
prompt after National Day, the quarterly summary; a second run for the same period sends nothing new."""

import datetime as dt

import pytest

from bot.clock import TZ
from sanling_support import EVERYONE, STAFF, count, deliver, inboxes, sanling  # noqa: F401
from bot.calendar import WorkCalendar
from scheduler.registry import JOBS
from scheduler.runner import load_jobs, run_job
from storage.models import OutboxMessage

pytestmark = pytest.mark.usefixtures("sanling")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


async def run(services, clock, name, moment):
    clock.set(moment)
    return (await run_job(services, name, moment)).queued


def test_jobs_are_registered_with_their_periods():
    load_jobs()
    assert {n: JOBS[n].period for n in ("mailbox_overdue", "monthly_visit_prompt", "quarterly_summary")} == {
        "mailbox_overdue": "day", "monthly_visit_prompt": "month", "quarterly_summary": "quarter"}


async def test_overdue_after_three_working_days_across_a_weekend_once_a_day(chat, services, clock, bangdai):
    await chat.say("u2", "信箱 退出现职后的待遇如何落实？")  # Thu 19 Nov 10:00 -> overdue after Tue 24 Nov 10:00
    await chat.say("u4", "信箱 匿名 第二封，当天就答复")
    await chat.say("u5", "答复 #2 已答复")
    await deliver(services, bangdai)
    base = {u: len(m) for u, m in (await inboxes(chat)).items()}
    assert await run(services, clock, "mailbox_overdue", at(2026, 11, 23, 9)) == 0  # Mon: 2 working days
    assert await run(services, clock, "mailbox_overdue", at(2026, 11, 24, 9)) == 0  # Tue 09:00: not yet 3 whole days
    assert await run(services, clock, "mailbox_overdue", at(2026, 11, 25, 9)) == 2  # Wed: to both staff members
    assert await run(services, clock, "mailbox_overdue", at(2026, 11, 25, 15)) == 0  # same day again: nothing new
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    for staff in STAFF:
        [note] = boxes[staff][base[staff]:]
        assert "来信 #1" in note and "已等 4 个工作日" in note and "退出现职后的待遇如何落实" in note
        assert "李娜（华埠镇）" in note and "答复 #1" in note
    assert all(len(boxes[u]) == base[u] for u in EVERYONE if u not in STAFF)
    assert await run(services, clock, "mailbox_overdue", at(2026, 11, 28, 9)) == 0  # Saturday: a rest day
    assert await run(services, clock, "mailbox_overdue", at(2026, 11, 30, 9)) == 2  # Monday: reminded again
    keys = [m.key for m in await _outbox(services) if m.source == "mailbox_overdue"]
    assert sorted(keys) == sorted(f"mailbox-overdue:1:{day}:{pid}" for day in ("2026-11-25", "2026-11-30")
                                  for pid in (5, 7))
    await chat.say("u7", "答复 #1 已落实")
    assert await run(services, clock, "mailbox_overdue", at(2026, 12, 1, 9)) == 0  # answered: no more reminders


async def test_overdue_counts_national_day_as_rest_and_the_make_up_saturday_as_work(chat, services, clock):
    clock.set(at(2026, 9, 30, 10))  # Wed before National Day (1–7 Oct off; Sat 10 Oct is a working day)
    await chat.say("u2", "信箱 节前的来信")
    assert await run(services, clock, "mailbox_overdue", at(2026, 10, 1, 9)) == 0  # holiday: no reminder at all
    assert await run(services, clock, "mailbox_overdue", at(2026, 10, 9, 9)) == 0  # 8th and 9th: 2 working days
    assert await run(services, clock, "mailbox_overdue", at(2026, 10, 10, 9)) == 0  # 调休 Saturday, 3rd day not over
    assert await run(services, clock, "mailbox_overdue", at(2026, 10, 11, 9)) == 0  # Sunday: rest
    assert await run(services, clock, "mailbox_overdue", at(2026, 10, 12, 9)) == 2  # Monday: overdue
    [body] = {m.body for m in await _outbox(services) if m.source == "mailbox_overdue"}
    assert "9月30日收到，已等 4 个工作日" in body


async def test_monthly_visit_prompt_on_the_first_working_day_after_national_day(chat, services, clock, bangdai):
    calendar = WorkCalendar()
    assert calendar.next_workday(dt.date(2026, 10, 1), dt.date(2026, 10, 31)) == dt.date(2026, 10, 8)
    clock.set(at(2026, 9, 15, 10))
    await chat.say("u5", "走访 华埠镇 了解年轻干部思想动态")
    clock.set(at(2026, 9, 20, 10))
    await chat.say("u1", "走访 县发改局 调研项目推进")
    clock.set(at(2026, 8, 20, 10))
    await chat.say("u5", "走访 城关街道 八月的走访不算上月")
    assert await run(services, clock, "monthly_visit_prompt", at(2026, 10, 8, 9)) == 2
    assert await run(services, clock, "monthly_visit_prompt", at(2026, 10, 8, 9, 30)) == 0
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    [chen] = boxes["u5"]
    assert "陈静，您好！10月三联走访提醒" in chen and "请走访您联系的 2 个单位" in chen
    assert "华埠镇（乡镇）" in chen and "城关街道（乡镇）" in chen
    assert "上月（9月）走访情况" in chen and "华埠镇：9月15日，共 1 次" in chen and "城关街道：未走访 ⚠️" in chen
    assert "一月一汇报" in chen and "9月的走访情况" in chen and "8月" not in chen
    [zhang] = boxes["u1"]
    assert "县发改局：9月20日，共 1 次" in zhang and "招商引资专班：未走访" in zhang and "华埠镇" not in zhang
    assert all(not boxes[u] for u in EVERYONE if u not in ("u1", "u5"))
    keys = sorted(m.key for m in await _outbox(services) if m.source == "monthly_visit_prompt")
    assert keys == ["visit-prompt:1:2026-10", "visit-prompt:5:2026-10"]
    # A visit logged after the prompt shows up in next month's "last month" part.
    clock.set(at(2026, 10, 20, 10))
    await chat.say("u5", "走访 城关街道 座谈")
    assert await run(services, clock, "monthly_visit_prompt", at(2026, 11, 2, 9)) == 2
    await deliver(services, bangdai)
    november = (await chat.inbox("u5"))[-1]["text"]
    assert "11月三联走访提醒" in november and "城关街道：10月20日" in november and "华埠镇：未走访" in november


async def test_quarterly_summary_for_staff(chat, services, clock, bangdai):
    for moment, user, text in [
        (at(2026, 7, 1, 10), "u2", "信箱 七月的待遇问题"),
        (at(2026, 7, 1, 11), "u5", "答复 #1 已答复"),
        (at(2026, 7, 10, 10), "u5", "走访 华埠镇 七月走访"),
        (at(2026, 8, 3, 10), "u4", "信箱 匿名 八月自荐报名专班"),
        (at(2026, 8, 12, 10), "u5", "走访 华埠镇 八月走访"),
        (at(2026, 9, 15, 10), "u5", "走访 城关街道 九月走访"),
        (at(2026, 9, 20, 10), "u1", "走访 县发改局 九月走访"),
        (at(2026, 9, 25, 10), "u5", "季评 李娜 较好 帮带扎实"),
        (at(2026, 9, 30, 10), "u3", "信箱 九月底的来信"),
        (at(2026, 10, 8, 8), "u3", "信箱 十月的来信不算三季度"),
    ]:
        clock.set(moment)
        await chat.say(user, text)
    await deliver(services, bangdai)
    base = {u: len(m) for u, m in (await inboxes(chat)).items()}
    assert await run(services, clock, "quarterly_summary", at(2026, 10, 8, 9)) == 2
    assert await run(services, clock, "quarterly_summary", at(2026, 10, 9, 9)) == 0
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    bodies = {u: boxes[u][base[u]:] for u in EVERYONE}
    assert all(not bodies[u] for u in EVERYONE if u not in STAFF)
    [summary] = bodies["u5"]
    assert bodies["u7"] == [summary]
    assert "一季一汇总**（2026-Q3，7月1日—9月30日）" in summary
    assert "联系人 2 人，共走访 4 次" in summary
    lines = summary.splitlines()
    start = lines.index("- 张伟：走访 1 次，3 个月中 1 个月有走访 ⚠️")
    assert lines[start:start + 6] == [
        "- 张伟：走访 1 次，3 个月中 1 个月有走访 ⚠️",
        "  - 县发改局：1 次（9月）",
        "  - 招商引资专班：未走访",
        "- 陈静：走访 3 次，3 个月中 3 个月有走访",
        "  - 华埠镇：2 次（7、8月）",
        "  - 城关街道：1 次（9月）",
    ]
    assert "收到 3 件，已答复 1 件，关闭 0 件，待答复 2 件（超期 1 件）" in summary
    assert "待遇 1 件，报名/专班 1 件，其他 1 件" in summary
    # figures only, nobody's inquiry (the 帮带 sections below name pairs, the anonymous sender 赵强 among them)
    mailbox = summary.split("**导师帮带季评**")[0]
    assert "赵强" not in mailbox and "自荐" not in summary
    assert "导师帮带季评**：在册结对 2 对，已评 1 对（较好 1），未评 1 对" in summary


async def test_jobs_with_nobody_to_tell_send_nothing(services, clock):
    from sqlmodel import delete

    from storage.models import LiaisonLink, PersonRole

    async with services.db.transaction() as s:
        await s.exec(delete(LiaisonLink))
        await s.exec(delete(PersonRole).where(PersonRole.role.in_(["组工干部", "管理员"])))
    assert await run(services, clock, "monthly_visit_prompt", at(2026, 12, 1, 9)) == 0
    assert await run(services, clock, "quarterly_summary", at(2027, 1, 4, 9)) == 0
    assert await run(services, clock, "mailbox_overdue", at(2026, 12, 1, 9)) == 0
    assert await count(services, OutboxMessage) == 0


async def _outbox(services):
    from sqlmodel import select

    async with services.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage))).all())
