"""A 帮带 belongs to the mentee (SPEC §3a): re-pairing, team changes, 清退 and undoing a mistake change who
mentors from when, and never reset or hide the contacts, the plan or the 季评; people hear about changes;
figures are as of their period; a contact sent twice is counted once; dates are Beijing dates."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from bot.clock import TZ
from scheduler.runner import run_job
from storage.models import ContactLog, OutboxMessage, PairingMentor, PersonRole

pytestmark = pytest.mark.usefixtures("seeded")


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def notices(services) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for m in await rows(services, OutboxMessage):
        if m.key.startswith("bangdai-change:"):
            out.setdefault(m.person_id, []).append(m.body)
    return out


async def test_re_pairing_keeps_the_week_the_plan_and_the_review(chat, services):
    await chat.say("u4", "记录 面谈 谈心谈话")  # 赵强 with 张伟, Thursday
    await chat.say("u1", "计划 赵强 添加 熟悉信访工作流程")
    await chat.say("u5", "季评 赵强 较好 帮带扎实")
    reply = await chat.say("u5", "结对 赵强 王芳 工作调整")
    assert "由 张伟 改为 王芳" in reply and "延续" in reply
    week = await chat.say("u4", "本周")
    assert "与导师 王芳" in week and "面谈 ✅ 已完成" in week and "谈心谈话" in week
    assert "本季度联系 1 次；培养计划完成 0/1" in week
    assert "2026-11-19 起由 王芳 接任，原导师 张伟（工作调整）" in week  # the history stays readable
    assert "熟悉信访工作流程" in await chat.say("u3", "计划 赵强")  # the new mentor sees the plan
    listing = await chat.say("u5", "季评")
    assert "已评 1 对（较好 1）" in listing and "王芳 — 赵强" not in listing
    assert await run_job(services, "weekly_reminder", dt.datetime(2026, 11, 19, 16, 0, tzinfo=TZ))
    reminded = {m.person_id: m.body for m in await rows(services, OutboxMessage, OutboxMessage.source == "weekly_reminder")}
    assert 4 not in reminded and "赵强" not in reminded[2]  # 赵强's 帮带 met this week: 王芳 only hears of 李娜
    told = await notices(services)
    assert "自 11月19日 起由 王芳 带您，原导师 张伟（工作调整）" in told[4][0]
    assert "您担任 赵强 的导师" in told[2][0] and "不再担任 赵强 的导师（工作调整）" in told[1][0]


async def test_undoing_a_mistaken_pairing_brings_everything_back(chat, services):
    await chat.say("u4", "记录 面谈 谈心谈话")
    await chat.say("u5", "结对 赵强 王芳 误操作")
    reply = await chat.say("u5", "结对 赵强 张伟 纠正误操作")
    assert "由 王芳 改为 张伟" in reply
    terms = await rows(services, PairingMentor)
    zhao = sorted((t.person_id, t.start_date, t.end_date) for t in terms if t.pairing_id == 2)
    assert zhao == [(1, dt.date(2026, 3, 1), None),  # 张伟's term goes on as if never ended
                    (2, dt.date(2026, 11, 19), dt.date(2026, 11, 19))]  # 王芳's covered no day: counts nowhere
    week = await chat.say("u1", "本周")
    assert "徒弟 赵强" in week and "面谈 ✅ 已完成" in week
    verdicts = await chat.say("u5", "考核")
    assert "王芳：" in verdicts and "赵强" not in verdicts.split("王芳：")[1].split("\n")[0]


async def test_dismissing_one_mentor_of_a_team_keeps_the_team_record(chat, services):
    await chat.say("u2", "记录 面谈 项目推进")  # 李娜 with 张伟、王芳
    await chat.say("u3", "计划 添加 基层党建")
    await chat.say("u5", "季评 李娜 好")
    reply = await chat.say("u5", "清退 张伟 帮带不到位")
    assert "已清退导师 张伟" in reply
    for user in ("u2", "u3"):
        week = await chat.say(user, "本周")
        assert "面谈 ✅ 已完成" in week and "培养计划完成 0/1" in week
    assert "已评 1 对（好 1）" in await chat.say("u5", "季评")
    await chat.say("u5", "考核 李娜 优秀")
    await chat.say("u5", "考核 赵强 优秀")
    verdicts = await chat.say("u5", "考核")
    assert "张伟：已清退，不具备评优资格" in verdicts  # never eligible in the year of 清退
    assert "王芳：优先确定为优秀" in verdicts
    told = await notices(services)
    assert "清退您的导师资格" in told[1][0] and "王芳" in told[3][0]


async def test_assessment_rules(chat, services, clock):
    clock.set(dt.datetime(2026, 11, 18, 10, 0, tzinfo=TZ))
    await chat.say("u5", "结对 确认 周敏 张伟 试点")  # paired for a day
    clock.set(dt.datetime(2026, 11, 19, 10, 0, tzinfo=TZ))
    await chat.say("u5", "结对 周敏 王芳 性格不匹配")
    await chat.say("u5", "考核 周敏 优秀")
    await chat.say("u5", "考核 李娜 优秀")
    await chat.say("u5", "考核 赵强 称职")
    verdicts = await chat.say("u5", "考核")
    zhang = next(line for line in verdicts.splitlines() if line.startswith("- 张伟"))
    assert "具备评优评先资格（李娜 优秀、赵强 称职）" in zhang and "周敏" not in zhang  # a day does not count
    assert "辅导 0 次" in zhang and "计划完成 0/0" in zhang
    assert "2025 年没有帮带结对" in await chat.say("u5", "考核 2025")
    refused = await chat.say("u5", "考核 2025 李娜 优秀")
    assert "李娜 2025 年没有帮带结对" in refused
    assert len(await rows(services, __import__("storage.models", fromlist=["AnnualGrade"]).AnnualGrade)) == 3


async def test_pairing_someone_without_the_mentor_role_asks_for_confirmation(chat, services):
    reply = await chat.say("u5", "结对 赵强 周敏 工作调整")
    assert "周敏 还不是导师" in reply and "结对 确认 赵强 周敏 工作调整" in reply
    assert not [t for t in await rows(services, PairingMentor) if t.person_id == 6]
    hint = reply.splitlines()[-1].strip()
    assert "已调整帮带关系" in await chat.say("u5", hint)  # the hint works sent back verbatim
    assert "导师" in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 6)}


@pytest.mark.parametrize("text,expect", [
    ("结对 确认", "请写上徒弟和导师的姓名"),
    ("结对 确认 赵强", "请在徒弟姓名后写上导师姓名"),
    ("结对 确认 赵强 王五", "花名册中没有“王五”"),
])
async def test_pair_confirm_wrong_forms(chat, services, text, expect):
    assert expect in await chat.say("u5", text)
    assert len(await rows(services, PairingMentor)) == 3


async def test_the_same_contact_sent_twice_is_recorded_once(chat, services, clock):
    assert "已记录" in await chat.say("u4", "记录 面谈 讨论招商项目", msg_id="a1")
    clock.advance(minutes=2)
    again = await chat.say("u4", "记录 面谈 讨论招商项目", msg_id="a2")
    assert "只记一次" in again
    assert len(await rows(services, ContactLog)) == 1
    assert "已记录" in await chat.say("u4", "记录 面谈 讨论另一件事", msg_id="a3")  # other text: another contact
    clock.advance(minutes=15)
    assert "已记录" in await chat.say("u4", "记录 面谈 讨论招商项目", msg_id="a4")  # much later: a new contact
    assert len(await rows(services, ContactLog)) == 3


@pytest.mark.parametrize("hour,minute,day", [(0, 30, "11月20日"), (23, 30, "11月19日")])
async def test_dates_people_read_are_beijing_dates(chat, services, clock, tmp_path, hour, minute, day):
    from openpyxl import load_workbook

    from handlers.sheets.export import export_workbook

    await chat.say("u1", "计划 赵强 添加 熟悉信访工作流程")
    clock.set(dt.datetime(2026, 11, 20 if hour == 0 else 19, hour, minute, tzinfo=TZ))
    assert "已完成第 1 项" in await chat.say("u4", "计划 完成 1")
    assert f"已于 {day} 完成" in await chat.say("u4", "计划 完成 1")
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, services.clock)
    sheet = load_workbook(path)["培养计划"]
    assert sheet["E2"].value.date() == dt.date(2026, 11, 20 if hour == 0 else 19)


async def test_a_past_quarter_can_be_reviewed_within_the_grace_days(chat, services, clock):
    clock.set(dt.datetime(2026, 10, 15, 10, 0, tzinfo=TZ))
    assert "已记录 2026-Q3 季评" in await chat.say("u5", "季评 2026Q3 李娜 好 补评")
    assert "已评 1 对（好 1）" in await chat.say("u5", "季评 2026-Q3")
    clock.set(dt.datetime(2026, 11, 19, 10, 0, tzinfo=TZ))  # past 15 working days after Q3
    closed = await chat.say("u5", "季评 2026Q3 赵强 好")
    assert "2026-Q3 不能评议" in closed and "2026-Q4" in closed
    example = closed.split("例如：")[1].strip()
    assert "已记录 2026-Q4 季评" in await chat.say("u5", example)  # the example works as sent
    assert "2025-Q4 没有帮带结对" not in closed


async def test_cli_runs_show_in_healthz(services, clock):
    from scheduler.service import Scheduler

    services.config.schedule.enabled = True
    sched = Scheduler(services)
    await run_job(services, "quarterly_summary", dt.datetime(2026, 10, 9, 10, 0, tzinfo=TZ), trigger="manual")
    await sched.refresh()
    body = sched.health()["scheduler"]
    assert body["last_runs"]["quarterly_summary"].startswith("2026-Q3 (")  # the quarter it is about
    assert "manual" in body["last_runs"]["quarterly_summary"]
    assert body["next_periods"]["quarterly_summary"] == "2026-Q4"  # the next one, run in Jan 2027


async def test_the_reports_count_what_was_mentored_in_their_period(chat, services, clock):
    clock.set(dt.datetime(2026, 9, 20, 10, 0, tzinfo=TZ))
    await chat.say("u5", "季评 李娜 好")  # Q3
    clock.set(dt.datetime(2026, 10, 8, 10, 0, tzinfo=TZ))
    await chat.say("u5", "结对 确认 周敏 张伟")  # begins in Q4: not a Q3 帮带
    await chat.say("u5", "结对 赵强 王芳 工作调整")  # a re-pairing is no new 帮带
    assert await run_job(services, "quarterly_summary", dt.datetime(2026, 10, 9, 9, 0, tzinfo=TZ))
    [summary] = {m.body for m in await rows(services, OutboxMessage, OutboxMessage.source == "quarterly_summary")}
    assert "2026-Q3" in summary and "在册结对 2 对，已评 1 对（好 1），未评 1 对" in summary
    assert await run_job(services, "weekly_digest", dt.datetime(2026, 10, 12, 9, 0, tzinfo=TZ))
    [digest] = {m.body for m in await rows(services, OutboxMessage, OutboxMessage.source == "weekly_digest",
                                           OutboxMessage.format != "image")}  # (its 周联 chart beside it)
    assert "2026-W41" in digest and "在册结对 3 对" in digest  # last week: 李娜, 赵强 (re-paired) and 周敏
