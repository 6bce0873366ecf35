"""When jobs run and what they send: working days, holidays, make-up days, catch-up, double runs."""

import asyncio
import datetime as dt

import pytest
from sqlmodel import select

from bot.clock import TZ
from conftest import PG_URL
from bot.calendar import WorkCalendar
from scheduler.outbox import Dispatcher
from scheduler.runner import UnknownJob, run_job
from scheduler.service import Schedule, ScheduleError, Scheduler
from storage.models import JobRun, OutboxMessage, OutboxStatus


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


CAL = WorkCalendar()


def test_weekly_schedule_normal_holiday_and_makeup_weeks():
    s = Schedule("0 16 * * thu", "week", CAL)
    assert s.planned(dt.date(2026, 11, 17)) == at(2026, 11, 19, 16, 0)
    # National Day 2026: Thu 1 and Fri 2 October are holidays, the weekend is a weekend: no run that week.
    assert s.planned(dt.date(2026, 9, 30)) is None
    # New Year 2026: Thu 1 and Fri 2 January off, Sunday 4 January a make-up working day.
    assert s.planned(dt.date(2026, 1, 1)) == at(2026, 1, 4, 16, 0)
    assert s.next_at_or_after(at(2026, 9, 28, 0, 0)) == at(2026, 10, 8, 16, 0)  # skips W40 entirely
    assert s.period_of(at(2026, 1, 4, 16, 0)) == "2026-W01"


def test_monthly_quarterly_daily_forms():
    first = Schedule("first-working-day 09:00", "month", CAL)
    assert first.planned(dt.date(2026, 10, 20)) == at(2026, 10, 8, 9, 0)  # after the National Day holiday
    assert first.planned(dt.date(2026, 11, 20)) == at(2026, 11, 2, 9, 0)  # 1 November is a Sunday
    quarter = Schedule("first-working-day-of-quarter 09:00", "quarter", CAL)
    assert quarter.planned(dt.date(2026, 12, 1)) == at(2026, 10, 8, 9, 0)
    last = Schedule("last-working-day 17:00", "month", CAL)
    assert last.planned(dt.date(2026, 10, 1)) == at(2026, 10, 30, 17, 0)
    assert last.planned(dt.date(2026, 2, 1)) == at(2026, 2, 28, 17, 0)  # Saturday 28 Feb is a make-up working day
    daily = Schedule("0 9 * * *", "day", CAL)
    assert daily.planned(dt.date(2026, 11, 21)) is None  # Saturday
    assert daily.planned(dt.date(2026, 10, 10)) == at(2026, 10, 10, 9, 0)  # make-up Saturday
    with pytest.raises(ScheduleError):
        Schedule("every thursday", "week", CAL)


def test_a_year_without_the_notice_keeps_the_holidays_the_law_fixes():
    """2027: chinese-calendar has no data; the statutory holidays are computed from the rule."""
    cal = WorkCalendar()
    fixed = [dt.date(2027, 1, 1), *(dt.date(2027, 2, d) for d in range(5, 9)),  # 元旦; 除夕 2-05 to 初三 2-08
             dt.date(2027, 4, 5), dt.date(2027, 5, 1), dt.date(2027, 5, 2), dt.date(2027, 6, 9), dt.date(2027, 9, 15),
             dt.date(2027, 10, 1)]  # 清明, 劳动节, 端午 (五月初五), 中秋, 国庆
    for day in fixed:
        assert not cal.is_workday(day), day
    assert cal.is_workday(dt.date(2027, 1, 8)) and not cal.is_workday(dt.date(2027, 1, 9))
    assert cal.is_workday(dt.date(2027, 2, 9))  # 初四, a Tuesday: only the notice could make it a day off
    [warning] = cal.warnings()
    assert "2027" in warning and "调休" in warning
    # The quarterly summary is not planned on 元旦 2027 (a Friday) but on Monday 4 January.
    quarter = Schedule("first-working-day-of-quarter 09:00", "quarter", cal)
    assert quarter.planned(dt.date(2027, 2, 1)) == at(2027, 1, 4, 9, 0)
    assert Schedule("first-working-day 09:00", "month", cal).planned(dt.date(2027, 10, 20)) == at(2027, 10, 4, 9, 0)
    weekly = Schedule("0 16 * * thu", "week", cal)
    assert weekly.planned(dt.date(2027, 2, 1)) == at(2027, 2, 4, 16, 0)
    # 3 working days after Thursday 31 Dec 2026 skip 元旦 and the weekend.
    assert cal.add_workdays(at(2026, 12, 31, 10, 0), 3) == at(2027, 1, 6, 10, 0)


def test_the_notice_entered_in_the_config_wins(tmp_path):
    from bot.config import ConfigError, load_config
    from bot.calendar import calendar_for

    path = tmp_path / "c.toml"
    path.write_text('[calendar]\nholidays = [2027-02-04, "2027-02-09"]\nworkdays = [2027-02-20]\n', encoding="utf-8")
    cal = calendar_for(load_config(path, environ={}))
    assert not cal.is_workday(dt.date(2027, 2, 4)) and not cal.is_workday(dt.date(2027, 2, 9))
    assert cal.is_workday(dt.date(2027, 2, 20))  # a Saturday make-up day
    assert not cal.is_workday(dt.date(2027, 2, 5))  # 除夕: fixed by law, entered or not
    assert cal.is_workday(dt.date(2027, 2, 10))  # a Wednesday the operator did not list
    assert cal.warnings() == []
    path.write_text('[calendar]\nholidays = ["下周五"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="下周五"):
        load_config(path, environ={})


async def outbox_rows(services, **where):
    async with services.db.transaction() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        for k, v in where.items():
            q = q.where(getattr(OutboxMessage, k) == v)
        return list((await s.exec(q)).all())


@pytest.mark.usefixtures("seeded")
async def test_a_week_of_reminders_right_people_right_text_once(chat, services, clock, bangdai):
    clock.set(at(2026, 11, 16, 9, 0))
    await chat.say("u4", "记录 面谈 周一的面谈")  # 赵强 and 张伟 met; 李娜's pair did not
    clock.set(at(2026, 11, 19, 16, 0))
    first = await run_job(services, "weekly_reminder", clock.now())
    assert (first.period, first.queued, first.first_run) == ("2026-W47", 3, True)
    again = await run_job(services, "weekly_reminder", clock.now())
    assert (again.queued, again.first_run) == (0, False)
    dispatcher = Dispatcher(services.outbox, bangdai.channels["local"], 100)
    assert await dispatcher.run_once() == 3
    assert await dispatcher.run_once() == 0
    for user, counterpart in (("u1", "徒弟 李娜"), ("u3", "徒弟 李娜"), ("u2", "导师 张伟、王芳")):
        inbox = await chat.inbox(user)
        assert len(inbox) == 1 and counterpart in inbox[0]["text"] and "记录 面谈" in inbox[0]["text"]
        assert inbox[0]["key"].endswith(":2026-W47")
    assert "赵强" not in (await chat.inbox("u1"))[0]["text"]
    assert await chat.inbox("u4") == []
    # The next week is a new period: reminded again, including the pair that met last week.
    clock.set(at(2026, 11, 26, 16, 0))
    assert (await run_job(services, "weekly_reminder", clock.now())).queued == 4


@pytest.mark.usefixtures("seeded")
async def test_person_without_chat_account_is_undeliverable_and_in_the_digest(chat, services, clock, bangdai):
    from storage.models import ChatIdentity

    async with services.db.transaction() as s:
        identity = (await s.exec(select(ChatIdentity).where(ChatIdentity.platform_user_id == "u4"))).one()
        await s.delete(identity)
    clock.set(at(2026, 11, 19, 16, 0))
    await run_job(services, "weekly_reminder", clock.now())
    [row] = await outbox_rows(services, status=OutboxStatus.UNDELIVERABLE)
    assert row.person_id == 4 and "没有可用的聊天账号" in row.last_error
    clock.set(at(2026, 11, 23, 9, 0))
    digest = await run_job(services, "weekly_digest", clock.now())
    assert digest.queued == 2  # one staff member: the digest and its 周联 chart (the local channel shows the text)
    await Dispatcher(services.outbox, bangdai.channels["local"], 100).run_once()
    [msg] = await chat.inbox("u5")
    assert "上周周联情况" in msg["text"] and "2026-W47" in msg["text"]
    assert "无法送达" in msg["text"] and "赵强" in msg["text"]
    assert "在册结对 2 对，已面谈 0 对" in msg["text"]


@pytest.mark.usefixtures("seeded")
async def test_catch_up_after_downtime_runs_missed_periods_once(services, clock):
    services.config.schedule.enabled = True
    clock.set(at(2026, 11, 19, 15, 0))  # before Thursday 16:00: only Monday's digest is due
    sched = Scheduler(services)
    weekly = {"weekly_digest", "weekly_reminder"}  # other programmes' jobs catch up too; these are the subject
    assert [j for j in await sched.catch_up() if j in weekly] == ["weekly_digest"]
    clock.set(at(2026, 11, 20, 10, 0))  # down over Thursday 16:00, back on Friday
    assert [j for j in await Scheduler(services).catch_up() if j in weekly] == ["weekly_reminder"]
    assert [j for j in await Scheduler(services).catch_up() if j in weekly] == []  # a restart runs nothing twice
    async with services.db.transaction() as s:
        runs = (await s.exec(select(JobRun).order_by(JobRun.id))).all()
    assert [(r.job, r.period, r.trigger) for r in runs if r.job in weekly] == [
        ("weekly_digest", "2026-W46", "catch-up"), ("weekly_reminder", "2026-W47", "catch-up")]  # the digest is of W46
    assert len(await outbox_rows(services, source="weekly_reminder")) == 4


@pytest.mark.usefixtures("seeded")
async def test_a_new_install_catches_up_no_period_that_ended_before_it(services, clock):
    from storage.models import Installation

    clock.set(at(2026, 10, 9, 10, 0))  # the first working day of Q4, after the National Day holiday
    async with services.db.transaction() as s:
        row = await s.get(Installation, 1)
        row.created_at = at(2026, 10, 9, 8, 0)  # installed this morning
        s.add(row)
    ran = await Scheduler(services).catch_up()
    assert "quarterly_summary" not in ran and "weekly_digest" not in ran  # Q3 and W40 ended before the install
    assert await outbox_rows(services, source="quarterly_summary") == []
    async with services.db.transaction() as s:
        row = await s.get(Installation, 1)
        row.created_at = at(2026, 9, 1, 8, 0)  # installed during Q3: its summary is owed
        s.add(row)
    assert "quarterly_summary" in await Scheduler(services).catch_up()
    [body] = {m.body for m in await outbox_rows(services, source="quarterly_summary")}
    async with services.db.transaction() as s:
        [run] = (await s.exec(select(JobRun).where(JobRun.job == "quarterly_summary"))).all()
    assert run.period == "2026-Q3" and "2026-Q3" in body  # one label for the run and its message


@pytest.mark.usefixtures("seeded")
async def test_no_catch_up_in_a_holiday_week(services, clock):
    clock.set(at(2026, 10, 3, 12, 0))  # National Day week: the reminder has no day this week
    assert "weekly_reminder" not in await Scheduler(services).catch_up()


async def test_apscheduler_runs_on_the_planned_trigger(services):
    services.config.schedule.enabled = True
    sched = Scheduler(services)
    await sched.start()
    try:
        await asyncio.wait_for(sched.leading.wait(), 10)
        assert sched.leader
        job = sched.aps.get_job("weekly_reminder")
        now = dt.datetime.now(TZ)
        assert job.next_run_time == sched.schedules["weekly_reminder"].next_at_or_after(now)
        assert sched.health()["scheduler"]["leader"] is True
    finally:
        await sched.stop()


async def test_unknown_job_lists_valid_ones(services):
    with pytest.raises(UnknownJob) as err:
        await run_job(services, "nosuch", services.clock.now())
    assert "weekly_reminder" in str(err.value)


@pytest.mark.skipif(not PG_URL, reason="leader election uses a PostgreSQL advisory lock")
async def test_only_one_process_leads_on_postgresql(services, config, clock):
    from bot.app import build_services

    services.config.schedule.enabled = True
    other = build_services(config, clock)
    a, b = Scheduler(services), Scheduler(other)
    try:
        assert await a._acquire_leadership() is True
        assert await b._acquire_leadership() is False
        await a.stop()
        assert await b._acquire_leadership() is True
    finally:
        await a.stop()
        await b.stop()
        await other.db.close()


# --- housekeeping ---------------------------------------------------------------------------------

async def test_old_records_of_handled_messages_are_purged_and_recent_ones_still_answer_copies(
        services, clock, chat, seeded):
    from sqlalchemy import func
    from sqlmodel import select

    from storage.models import ProcessedMessage

    first = await chat.say("u2", "本周", msg_id="old")
    clock.advance(days=31)
    recent = await chat.say("u2", "本周", msg_id="recent")
    assert await chat.say("u2", "本周", msg_id="old") == first  # still remembered before the purge

    result = await run_job(services, "purge_processed_messages", clock.now())
    assert result.queued == 0
    async with services.db.transaction() as session:
        kept = (await session.exec(select(ProcessedMessage.msg_id))).all()
        assert set(kept) == {"recent"}
        assert (await session.exec(select(func.count()).select_from(ProcessedMessage))).one() == 1
    assert await chat.say("u2", "本周", msg_id="recent") == recent  # a copy of a recent one: same answer

    services.config.programme.processed_message_days = 0  # a mistake in the config purges nothing
    clock.advance(days=400)
    await run_job(services, "purge_processed_messages", clock.now())
    async with services.db.transaction() as session:
        assert (await session.exec(select(func.count()).select_from(ProcessedMessage))).one() == 1
