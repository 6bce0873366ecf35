"""Structured 季评: the mentor's report (asked for at quarter end through the outbox), staff rating with
it in view, a 差 listing the 帮带 for re-pairing (digest, query), the export and the quarterly summary."""

import datetime as dt

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.clock import TZ
from handlers.sheets.export import export_workbook
from handlers.mentoring.reviews import rematch_candidates
from scheduler.runner import run_job
from storage.models import OutboxMessage, PairReview, ReviewReport

pytestmark = pytest.mark.usefixtures("seeded")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def test_report_in_one_message_or_item_by_item(chat, services):
    # 王芳 mentors only 李娜: no need to name her; labelled parts go to their items
    reply = await chat.say("u3", "季评 汇报 工作：每周面谈一次，带着跑了三个村 问题：群众工作经验不足 整改：多带下村接访")
    assert "已收到 2026-Q4 季评汇报（徒弟 李娜）：帮带情况、存在问题、整改方向" in reply
    assert "下步重点：未写" in reply and "季评 汇报 下步 内容" in reply
    assert "已收到" in await chat.say("u3", "季评 汇报 下步 重点补基层治理")
    [r] = await rows(services, ReviewReport)
    assert (r.quarter, r.mentor_id, r.done, r.problems, r.fixes, r.next_focus) == (
        "2026-Q4", 2, "每周面谈一次，带着跑了三个村", "群众工作经验不足", "多带下村接访", "重点补基层治理")
    # 张伟 mentors two: he names the mentee; text without labels is what was done
    assert "请写明汇报的是哪一位" in await chat.say("u1", "季评 汇报 问题 没写名字")
    assert "徒弟 赵强" in await chat.say("u1", "季评 汇报 赵强 一起研究了信访积案")
    mine = await chat.say("u1", "季评")
    assert "徒弟 李娜：未汇报" in mine and "徒弟 赵强：帮带情况✓ 存在问题✗" in mine
    assert len(await rows(services, ReviewReport)) == 2


@pytest.mark.parametrize("user,text,expect", [
    ("u3", "季评 汇报", "请写上汇报内容"),
    ("u3", "季评 汇报 问题", "请写上汇报内容"),
    ("u3", "季评 汇报 2026Q1 工作 很好", "2026-Q1 的季评已不能汇报"),
    ("u1", "季评 汇报 周敏 工作 不是我的徒弟", "请写明汇报的是哪一位"),
    ("u2", "季评 汇报 工作 徒弟不能汇报", "仅限导师、管理员、组工干部使用"),
    ("u5", "季评 汇报 工作 组工干部没有徒弟", "没有担任导师的帮带结对"),
    ("u3", "季评 汇报 问题 " + "长" * 2001, "最多 2000 字"),
])
async def test_report_wrong_forms(chat, services, user, text, expect):
    assert expect in await chat.say(user, text)
    assert await rows(services, ReviewReport) == []


async def test_staff_rate_with_the_report_in_view(chat, services):
    assert "导师尚未汇报本季度帮带情况" in await chat.say("u5", "季评 李娜")
    await chat.say("u3", "季评 汇报 工作：每周面谈 问题：经验不足")
    listing = await chat.say("u5", "季评")
    assert "张伟、王芳 — 李娜（导师已汇报" in listing and "张伟 — 赵强：" in listing
    assert "先看导师汇报：季评" in listing
    one = await chat.say("u5", "季评 李娜")
    assert "导师 王芳 的汇报" in one and "存在问题：经验不足" in one and "整改方向：（未写）" in one
    assert "评议请发送：季评 2026Q4 李娜 较好 评语" in one
    assert "已记录 2026-Q4 季评" in await chat.say("u5", "季评 2026Q4 李娜 较好 评语")  # the hint works verbatim
    assert "当前评价：较好，评语。改评请发送" in await chat.say("u5", "季评 李娜")


async def test_a_poor_review_lists_the_bangdai_for_re_pairing_until_re_paired(chat, services, clock):
    reply = await chat.say("u5", "季评 赵强 差 帮带流于形式")
    assert "已列入“待调整结对”名单" in reply and "结对 赵强 新导师姓名 原因" in reply
    async with services.db.transaction() as s:
        [r] = await rematch_candidates(s, clock.today())
    assert (r.view.mentee.name, r.review.rating, r.review.quarter) == ("赵强", "差", "2026-Q4")
    clock.set(at(2026, 11, 23, 9))
    assert (await run_job(services, "weekly_digest", clock.now())).queued >= 1
    [digest] = await rows(services, OutboxMessage, OutboxMessage.source == "weekly_digest", OutboxMessage.format != "image")
    assert "季评为“差”、待调整导师" in digest.body and "张伟 — 赵强（2026-Q4 差：帮带流于形式）" in digest.body
    # a better review of the same quarter clears it; so does re-pairing after a 差
    await chat.say("u5", "季评 赵强 一般")
    async with services.db.transaction() as s:
        assert await rematch_candidates(s, clock.today()) == []
    await chat.say("u5", "季评 赵强 差")
    clock.set(at(2026, 11, 24, 10))
    await chat.say("u5", "结对 赵强 王芳 季评为差")
    async with services.db.transaction() as s:
        assert await rematch_candidates(s, clock.today()) == []
    await chat.say("u5", "季评 赵强 差")  # rated 差 and re-paired later the same day: cleared too (terms are dated by day)
    clock.set(at(2026, 11, 24, 11))
    await chat.say("u5", "结对 赵强 张伟 再次调整")
    async with services.db.transaction() as s:
        assert await rematch_candidates(s, clock.today()) == []
    clock.set(at(2026, 11, 30, 9))
    await run_job(services, "weekly_digest", clock.now())
    digests = await rows(services, OutboxMessage, OutboxMessage.source == "weekly_digest", OutboxMessage.format != "image")
    assert len(digests) == 2 and all("待调整" not in d.body for d in digests if "W48" in d.key)


async def test_mentors_are_asked_at_quarter_end_once_per_quarter(chat, services, clock):
    clock.set(at(2026, 12, 30, 10))
    await chat.say("u3", "季评 汇报 工作 提前写好了")  # 王芳 already reported on her only 帮带
    moment = at(2027, 1, 4, 8, 30)  # first working day of 2027-Q1
    clock.set(moment)
    assert (await run_job(services, "review_report_request", moment)).queued == 1  # only 张伟
    assert (await run_job(services, "review_report_request", at(2027, 1, 5, 8, 30))).queued == 0
    [ask] = await rows(services, OutboxMessage, OutboxMessage.source == "review_report_request")
    assert ask.key == "review-report:1:2026-Q4" and ask.person_id == 1
    assert "2026-Q4 已结束" in ask.body and "李娜、赵强" in ask.body
    hint = "季评 汇报 李娜 问题 群众工作经验不足"
    assert hint in ask.body
    assert "已收到 2026-Q4 季评汇报（徒弟 李娜）" in await chat.say("u1", hint)  # last quarter, in grace
    clock.set(at(2027, 3, 1, 10))
    assert "已收到 2027-Q1 季评汇报" in await chat.say("u1", "季评 汇报 李娜 工作 新季度")


async def test_export_and_quarterly_summary_carry_reports(chat, services, clock, tmp_path):
    clock.set(at(2026, 9, 20, 10))
    await chat.say("u1", "季评 汇报 赵强 工作：走访三个村 下步：补党建")
    await chat.say("u5", "季评 赵强 差 帮带流于形式")
    await chat.say("u5", "季评 李娜 好")
    moment = at(2026, 10, 9, 9)
    clock.set(moment)
    assert (await run_job(services, "quarterly_summary", moment)).queued == 1
    [summary] = await rows(services, OutboxMessage, OutboxMessage.source == "quarterly_summary")
    assert "导师季评汇报：1 / 2 对已汇报" in summary.body
    assert "季评为“差”（1 对，应调整结对）：张伟 — 赵强（帮带流于形式）" in summary.body
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, clock)
    assert counts["季评汇报"] == 1
    wb = load_workbook(path)
    assert [c.value for c in wb["季评汇报"][2]][:7] == ["2026-Q3", "赵强", "张伟", "走访三个村", None, None, "补党建"]
    marks = {row[1].value: row[4].value for row in wb["季评"].iter_rows(min_row=2)}
    assert marks == {"赵强": "是", "李娜": None}
    assert len(await rows(services, PairReview)) == 2
