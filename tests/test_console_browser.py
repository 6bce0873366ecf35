"""The console in a real browser (headless Chromium): a staff member logs in through the link from
the chat, opens every page, answers a mailbox letter, imports a file; the figures are the chat's."""

from __future__ import annotations

import re

from sqlmodel import select

from browser_support import PHONE, Browser, driver  # noqa: F401  (fixture)
from console_support import chat_link, programme  # noqa: F401  (fixture)
from conftest import write
from sanling_support import deliver
from bot.inbound import Outgoing
from storage.models import AuditLog, Inquiry, InquiryStatus, OutboxMessage, OutboxStatus, Person

NEW_ROSTER = """\
姓名,手机,单位,职务,角色,本地ID
吴磊,13600008888,县财政局,科员,徒弟,u8
郑洁,1360000,县财政局,科员,,u9
"""


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return int(found.group(1))


async def test_staff_logs_in_opens_every_page_answers_and_imports(driver, client, chat, programme, bangdai, tmp_path):
    b = Browser(driver, client)
    await b._run(driver.delete_all_cookies)
    await b.open(await chat_link(chat))
    assert "进入帮带助手后台" in await b.text()
    await b.shot("login")
    await b.click("#enter")
    assert await b.path() == "/console/"

    # 概览: each figure is the one 统计 and 信箱 待办 give in the chat
    stats = await chat.say("u5", "统计")
    todo = await chat.say("u5", "信箱 待办")
    assert await b.text("#week-total") == str(number(r"在册结对 (\d+) 对", stats))
    assert await b.text("#week-done") == str(number(r"已面谈 (\d+) 对", stats))
    assert await b.text("#lapsed-count") == str(number(r"连续 2 周以上未面谈 (\d+) 对", stats))
    assert await b.text("#mailbox-open") == str(number(r"待答复\*\*：(\d+) 件", todo))
    assert await b.text("#signup-count") == str(number(r"已报名 (\d+) 人", stats))
    assert await b.text("#visit-count") == str(number(r"共走访 (\d+) 次", stats))
    overview = await b.text()
    assert "张伟 — 赵强（38 周）" in overview and "周联提醒" in overview
    await b.shot("overview")
    await b.shot("overview-phone", PHONE)

    # 帮带: the list, the lapsed filter, one mentee's whole record
    await b.click("header nav a[href='/console/pairs']")
    assert "李娜" in await b.text("#pairs") and await b.text("#pairs-total") == "2"
    await b.choose("select[name=state]", "lapsed")
    await b.click("form.inline button")
    assert "赵强" in await b.text("#pairs") and "李娜" not in await b.text("#pairs")
    await b.open("/console/pairs")
    await b.click("#pairs a")  # 李娜
    page = await b.text()
    assert "李娜 的帮带" in page and "讨论招商项目推进方法" in page and "熟悉信访工作流程" in page
    # a re-paired 帮带: one record, mentors over time with their reasons, figures as chat 本周 gives them
    assert "由 张伟 改为 王芳" in await chat.say("u5", "结对 赵强 王芳 工作调整")
    week = await chat.say("u4", "本周")
    await b.open("/console/pairs")
    assert "2026-11-19 起由 王芳 接任，原导师 张伟（工作调整）" in await b.text("#pairs")
    await b.shot("pairs")
    await b.click("#pairs a[href='/console/pairs/4']")
    assert await b.text("#change") == "2026-11-19 起由 王芳 接任，原导师 张伟（工作调整）"
    terms = await b.texts("#terms tr")
    assert "张伟" in terms[1] and "2026-11-19" in terms[1] and "工作调整" in terms[1] and "至今" in terms[2]
    assert f"本季度联系 {await b.text('#quarter-count')} 次" in week and "沟通信访件处理" in await b.text("#contacts")
    await b.shot("pair")

    # 信箱: the anonymous letter shows no writer; the answer goes out as the chat's 答复 does
    await b.open("/console/mailbox")
    queue = await b.text("#inquiries")
    assert "匿名" in queue and "李娜" not in queue and "周敏（县人社局）" in queue
    await b.shot("mailbox")
    await b.click("#inquiries a[href='/console/mailbox/1']")
    assert await b.text("#sender") == "匿名"
    await b.fill("#answer-form textarea", "已转人社局，本周内回复")
    await b.shot("inquiry")
    await b.click("#answer-form button")
    assert "已答复 #1" in await b.text("#result") or "#1" in await b.text("#result")
    assert "李娜" not in await b.text()
    async with programme.db.transaction() as s:
        inquiry = await s.get(Inquiry, 1)
        assert inquiry.status == InquiryStatus.ANSWERED
        entry = (await s.exec(select(AuditLog).where(AuditLog.action == "mailbox.answer"))).one()
        assert entry.actor_label == "陈静"
    await deliver(programme, bangdai)
    assert any("已转人社局，本周内回复" in m["text"] for m in await chat.inbox("u2"))
    assert "待答复**：1 件" in await chat.say("u5", "信箱 待办")

    # 常青藤: the ranking is 排行's, coefficients shown
    await b.open("/console/changqing")
    ranking = await chat.say("r1", "排行")
    assert "1. 招商一组（破山行动专班）1.5 分，1 项" in ranking
    assert "招商一组" in (await b.texts("#ranking tr"))[1] and "1.5" in (await b.texts("#ranking tr"))[1]
    assert "协调万洋众创项目土地指标" in await b.text("#achievements")
    await b.shot("changqing")

    # 导入: dry run row by row, then confirm
    await b.open("/console/data")
    await b.shot("data")
    await b.choose("select[name=kind]", "roster")
    await b.fill("input[type=file]", str(write(tmp_path, "新花名册.csv", NEW_ROSTER)))
    await b.click("#upload-form button")
    rows = await b.texts("#rows tr")
    assert "2 新增" in rows[1] and "3 出错" in rows[2] and "不是 11 位手机号" in rows[2], rows
    assert "试运行" in await b.text("h1")
    await b.shot("import-dry-run")
    async with programme.db.transaction() as s:
        assert (await s.exec(select(Person).where(Person.name == "吴磊"))).first() is None
    await b.click("#confirm")
    assert "已导入" in await b.text("h1") and await b.text("#created") == "1"
    async with programme.db.transaction() as s:
        assert (await s.exec(select(Person).where(Person.name == "吴磊"))).first() is not None
        audit = (await s.exec(select(AuditLog).where(AuditLog.action.like("%import%")).order_by(AuditLog.id))).all()
    assert [(a.action, a.actor_label) for a in audit if a.actor_label == "陈静"] == [
        ("console.import_check", "陈静"), ("import.roster", "陈静"), ("console.import", "陈静")]

    # 发送: a message the platform refused, and one no enabled channel can carry; retry the first
    now = programme.clock.now()
    failed = OutboxMessage(key="weekly-reminder:u1", person_id=1, body="本周周联提醒", channel="local", user_id="u1",
                           source="weekly_reminder", status=OutboxStatus.FAILED, attempts=8, next_attempt_at=now,
                           created_at=now, last_error="errcode 60020: not allow to access from your ip")
    async with programme.db.transaction() as s:
        s.add(failed)
        await programme.outbox.enqueue(s, Outgoing(key="changqing-ranking:dingtalk:常青藤一组:2026-11", body="排行",
                                                   group=("dingtalk", "常青藤一组"), source="monthly_ranking"))
    counts = await programme.outbox.counts()
    await b.open("/console/outbox")
    assert await b.text("#count-sent") == str(counts["sent"]) and await b.text("#count-failed") == "1"
    problems = await b.text("#problems")
    assert "errcode 60020" in problems and "渠道 dingtalk 未启用" in problems
    await b.click(f"#problems input[value='{failed.id}']", navigates=False)
    await b.shot("outbox")
    await b.click("#retry")
    assert "已重新排队 1 条" in await b.text("#retried")
    assert await b.text("#count-failed") == "0"

    # 退出 button ends the session
    await b.click("header form.me button")
    assert "已退出后台" in await b.text()
    await b.open("/console/")
    assert "请先登录" in await b.text()


async def test_reused_and_expired_links_are_refused_in_the_browser(driver, client, chat, programme, clock):
    b = Browser(driver, client)
    await b._run(driver.delete_all_cookies)
    link = await chat_link(chat)
    await b.open(link)
    await b.click("#enter")
    assert await b.path() == "/console/"
    await b._run(driver.delete_all_cookies)
    await b.open(link)
    assert "已经用过了" in await b.text("#refused")
    await b.shot("refused")

    late = await chat_link(chat)
    clock.advance(minutes=10, seconds=1)
    await b.open(late)
    assert "已过期" in await b.text("#refused")
    await b.open("/console/")
    assert "请先登录" in await b.text()


async def test_the_programme_pages_at_phone_width_show_the_chats_figures(driver, client, chat, programme):
    """Issue 18's pages on a phone: the 待调整 list with the mentor's report, the pool and classes, the
    专项考核 and a person's archive, the five areas — each figure as the chat gives it."""
    said = [  # what each says, and what the answer says when it was done
        ("u1", "季评 汇报 赵强 工作：见面少 问题：群众工作经验不足 整改：每周面谈 下步：多下村", "已收到"),
        ("u5", "季评 赵强 差 帮带流于形式", "待调整结对"),
        ("u1", "记录 李娜 面谈 #党建 一起研究支部换届", "#党建"),
        ("u6", "导师 自荐 在乡镇工作二十年，愿意带年轻干部", "已收到您的导师自荐"),
        ("u5", "导师 激励 张伟 补助 2026-11 300", "已记录导师激励"),
        ("u1", "课堂 新建 12月5日 14:30 湖镇镇现场教学点 基层信访工作方法", "已新建开放型课堂 #1"),
        ("u2", "课堂 报名 #1", "已报名课堂 #1"),
        ("r1", "实绩 参与 #1 李忠兴、赵建国", "已登记实绩 #1 的参与人"),
        ("u5", "跟进 关联 招商一组 万洋众创、华友钴业", "已为 招商一组 关联"),
        ("r2", "跟进 万洋众创 协调二期厂房验收", "已记录 万洋众创 的跟进"),
    ]
    for user, text, done in said:
        reply = await chat.say(user, text)
        assert done in reply, (user, text, reply)
    pool = await chat.say("u5", "导师 库")
    archive = await chat.say("u5", "实绩 档案 赵建国")
    b = Browser(driver, client)
    await b._run(driver.delete_all_cookies)
    await b.open(await chat_link(chat))
    await b.click("#enter")
    await b.resize(PHONE)

    # 概览: the 待调整 list, the mentor's report in view
    rematch = await b.text("#rematch")
    assert "张伟 — 赵强" in rematch and "2026-Q4 差" in rematch and "群众工作经验不足" in rematch
    assert await b.text("#rematch-count") == "1" and await b.overflow() == 0
    await b.shot("overview-rematch-phone", PHONE)

    # 导师库 / 课堂, from the nav
    await b.click("header nav a[href='/console/mentors']")
    assert await b.path() == "/console/mentors" and await b.overflow() == 0
    year, total = re.search(r"- 张伟.*?2026 年辅导 (\d+) 次（累计 (\d+) 次）", pool).groups()
    assert await b.text("#pool tr[data-person='1'] .contacts-year") == year
    assert await b.text("#pool tr[data-person='1'] .contacts-total") == total
    assert "补助合计 300 元" in await b.text("#pool tr[data-person='1']")
    assert "待审核" in await b.text("#pool tr[data-person='6']")
    assert await b.text("#classes tr[data-class='1'] .signed") == "1" and "李娜" in await b.text("#classes")
    await b.shot("mentors-phone", PHONE)
    await b.shot("mentors")

    # 常青藤: 专项考核, then a person's archive
    await b.resize(PHONE)
    await b.open("/console/changqing")
    assert "李忠兴" in (await b.texts("#scores tr"))[1] and await b.overflow() == 0
    assert "万洋众创" in await b.text("#projects") and "协调二期厂房验收" in await b.text("#projects")
    await b.shot("changqing-phone", PHONE)
    await b.click("#scores a[href^='/console/changqing/people/8']")  # 赵建国
    count, score, rank = re.search(r"参与实绩 (\d+) 项，专项考核得分 (\S+)（第 (\d+) 名）", archive).groups()
    assert (await b.text("#archive-count"), await b.text("#archive-rank")) == (count, rank)
    assert float(await b.text("#archive-score")) == float(score)
    assert "协调万洋众创项目土地指标" in await b.text("#archive") and await b.overflow() == 0
    await b.shot("changqing-person-phone", PHONE)

    # 帮带: five areas this quarter, last quarter's gaps flagged
    await b.resize(PHONE)
    await b.open("/console/pairs")
    cells = await b.texts("#pairs .area-cell")
    assert any("党建 1" in c for c in cells) and all("2026-Q3 未涉及" in c for c in cells)
    assert await b.overflow() == 0
    await b.shot("pairs-areas-phone", PHONE)
    await b.shot("pairs-areas")
    await b.open("/console/pairs/3")
    assert "0 0 1 0 0" in await b.text("#areas-2026-Q4")
    await b.shot("pair-areas-phone", PHONE)
    await b.resize((1280, 900))
