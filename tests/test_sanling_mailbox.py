"""三联信箱 through the local channel: submit, 查询, staff notification, 答复, 待办, 分类, 关闭, 统计, and
the privacy of the inquiry's text and of anonymous submitters."""

import datetime as dt

import pytest
from openpyxl import load_workbook

from bot.config import Config
from handlers.sheets.export import export_workbook
from handlers.sanling.mailbox import guess_category, take_ticket
from sanling_support import STAFF, count, deliver, inboxes, rows, sanling  # noqa: F401
from storage.models import AuditLog, Inquiry, InquiryAnswer, OutboxMessage, ProcessedMessage

pytestmark = pytest.mark.usefixtures("sanling")

QUESTION = "退出现职后的待遇如何落实？"
SECRET = "希望自荐参加招商专班，但不想让单位知道"
LI_NA, ZHAO_QIANG = 3, 4  # person ids in roster order


def only(boxes: dict[str, list[str]], users) -> dict[str, list[str]]:
    return {u: m for u, m in boxes.items() if u in users}


# --- submitting ---------------------------------------------------------------------------------------

async def test_submit_answers_with_a_ticket_and_every_staff_member_is_told(chat, services, bangdai):
    reply = await chat.say("u2", f"信箱 {QUESTION}")
    assert "编号 **#1**" in reply and "分类：待遇" in reply and "信箱 查询" in reply
    assert QUESTION not in reply
    [inquiry] = await rows(services, Inquiry)
    assert (inquiry.submitter_id, inquiry.anonymous, inquiry.text, inquiry.status) == (LI_NA, False, QUESTION, "open")
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    for staff in STAFF:
        [note] = boxes[staff]
        assert "新来信 #1" in note and QUESTION in note and "李娜（华埠镇）" in note and "答复 #1" in note
    # Nobody else, the submitter included, got anything: the text went to staff only.
    assert all(not msgs for u, msgs in boxes.items() if u not in STAFF)
    [entry] = await rows(services, AuditLog, AuditLog.action == "mailbox.submit")
    assert entry.actor_id == LI_NA and entry.target == "inquiry:1" and QUESTION not in str(entry.detail)


async def test_staff_submitter_is_not_notified_of_their_own_inquiry(chat, services, bangdai):
    await chat.say("u5", "信箱 想了解干部调任的材料要求")
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    assert boxes["u5"] == [] and len(boxes["u7"]) == 1


@pytest.mark.parametrize("text,category", [
    ("退出现职后的待遇如何落实？", "待遇"),
    ("我的职级晋升和工资什么时候调整", "待遇"),
    ("我想自荐报名参加破山行动专班", "报名/专班"),
    ("常青藤六大员还能报名吗", "报名/专班"),
    ("单位的停车位太少了", "其他"),
])
async def test_category_is_guessed_from_keywords(chat, services, text, category):
    assert guess_category(text) == category
    assert f"分类：{category}" in await chat.say("u2", f"信箱 {text}")


async def test_words_that_look_like_subcommands_are_part_of_an_inquiry(chat, services):
    reply = await chat.say("u2", "mailbox 查询 职级晋升需要什么条件")
    assert "编号 **#1**" in reply
    [inquiry] = await rows(services, Inquiry)
    assert inquiry.text == "查询 职级晋升需要什么条件"
    # 待办 with text from someone who is not staff is an inquiry too; 待办 alone is refused.
    assert "编号 **#2**" in await chat.say("u4", "信箱 待办事项太多，希望精简报表")
    assert "仅限管理员、组工干部" in await chat.say("u4", "信箱 待办")


@pytest.mark.parametrize("text,expect", [
    ("信箱", "请写上您要咨询的内容"),
    ("信箱   ", "请写上您要咨询的内容"),
    ("信箱 匿名", "请写上您要咨询的内容"),
    ("信箱：匿名，", "请写上您要咨询的内容"),
])
async def test_empty_inquiry_is_refused_with_an_example(chat, services, text, expect):
    reply = await chat.say("u2", text)
    assert expect in reply and "例如" in reply
    assert await count(services, Inquiry) == 0 and await count(services, OutboxMessage) == 0


async def test_overlong_inquiry_is_refused_and_nothing_is_written(chat, services):
    reply = await chat.say("u2", "信箱 " + "问" * 2000)  # the whole message is over the gateway's limit
    assert "太长" in reply and "2000" in reply
    # With a larger message limit configured, the inquiry's own limit still holds.
    services.config.programme.max_text_chars = 5000
    reply = await chat.say("u2", "信箱 匿名 " + "问" * 2001)
    assert "2001 字" in reply and "最多 2000 字" in reply and "没有保存" in reply
    assert "编号" in await chat.say("u2", "信箱 " + "问" * 2000)
    assert await count(services, Inquiry) == 1


async def test_in_a_group_it_is_refused_in_one_line_without_echo_and_nothing_is_stored(chat, services, bangdai):
    for text in (f"信箱 {SECRET}", f"@帮带助手 信箱 匿名 {SECRET}", "信箱 查询", "答复 #1 好的"):
        replies = await chat.replies("u5" if text.startswith("答复") else "u2", text, group=True, conversation="g1",
                                     msg_id=f"g-{text[:6]}")
        assert len(replies) == 1 and "\n" not in replies[0]["text"] and "私聊" in replies[0]["text"]
        assert SECRET not in replies[0]["text"]
    assert await count(services, Inquiry) == 0 and await count(services, OutboxMessage) == 0
    stored = " ".join(str(p.replies) for p in await rows(services, ProcessedMessage))
    assert SECRET not in stored
    await deliver(services, bangdai)
    assert all(not msgs for msgs in (await inboxes(chat)).values())


# --- 查询 and viewing one -----------------------------------------------------------------------------

async def test_query_lists_only_own_inquiries_and_their_state(chat, services):
    await chat.say("u2", f"信箱 {QUESTION}")
    await chat.say("u4", f"信箱 匿名 {SECRET}")
    await chat.say("u2", "信箱 我想报名参加常青藤专班")
    await chat.say("u5", "答复 #1 已转人社局，本周内回复")
    mine = await chat.say("u2", "信箱 查询")
    assert "共 2 件" in mine and QUESTION in mine and "已答复" in mine and "已转人社局" in mine
    assert "#3" in mine and "待答复" in mine
    assert SECRET not in mine and "#2" not in mine
    theirs = await chat.say("u4", "信箱 查询")
    assert "（匿名）" in theirs and QUESTION not in theirs
    assert "还没有给三联信箱写过信" in await chat.say("u6", "信箱 查询")


async def test_viewing_one_inquiry_only_by_its_submitter_or_staff(chat, services):
    await chat.say("u4", f"信箱 匿名 {SECRET}")
    own = await chat.say("u4", "信箱 #1")
    assert SECRET in own and "组织部还在处理" in own and "来信人" not in own
    for user in ("u2", "u6", "u1"):
        other = await chat.say(user, "信箱 #1")
        assert "没有找到来信 #1" in other and SECRET not in other
    assert "没有找到来信 #1" in await chat.say("u2", "信箱 查询 #1")
    staff = await chat.say("u5", "信箱 ＃1")
    assert SECRET in staff and "来信人：匿名" in staff and "赵强" not in staff and "城关街道" not in staff
    assert "没有找到来信 #9" in await chat.say("u5", "信箱 #9")


# --- 答复 ---------------------------------------------------------------------------------------------

async def test_answer_reaches_the_submitter_privately_and_is_audited(chat, services, bangdai):
    await chat.say("u2", f"信箱 {QUESTION}")
    await deliver(services, bangdai)
    reply = await chat.say("u5", "答复 #1 已转人社局，本周内回复")
    assert "已答复来信 #1" in reply and "李娜（华埠镇）" in reply and "已私信发给提问人" in reply
    again = await chat.say("u7", "reply ＃1：人社局答复：按规定落实")
    assert "已补充答复来信 #1" in again
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    assert len(boxes["u2"]) == 2 and all(QUESTION in m for m in boxes["u2"])
    assert any("已转人社局，本周内回复" in m for m in boxes["u2"]) and any("按规定落实" in m for m in boxes["u2"])
    assert all(not boxes[u] for u in ("u1", "u3", "u4", "u6"))
    assert all(len(boxes[u]) == 1 for u in STAFF)  # only the new-inquiry note, not the answers
    [inquiry] = await rows(services, Inquiry)
    assert inquiry.status == "answered" and inquiry.answered_at is not None
    answers = await rows(services, InquiryAnswer)
    assert [a.author_id for a in answers] == [5, 7]
    audit = await rows(services, AuditLog, AuditLog.action == "mailbox.answer")
    assert [a.actor_id for a in audit] == [5, 7] and [a.detail["first"] for a in audit] == [True, False]


async def test_answer_to_someone_without_a_chat_account_is_kept(chat, services):
    from sqlmodel import select

    from storage.models import ChatIdentity

    await chat.say("u2", f"信箱 {QUESTION}")
    async with services.db.transaction() as s:
        for identity in (await s.exec(select(ChatIdentity).where(ChatIdentity.person_id == LI_NA))).all():
            await s.delete(identity)
    reply = await chat.say("u5", "答复 #1 已转人社局")
    assert "暂时没有可用的聊天账号" in reply and "答复已保存" in reply
    assert await count(services, InquiryAnswer) == 1


@pytest.mark.parametrize("user,text,expect", [
    ("u5", "答复", "请写上要答复的来信编号"),
    ("u5", "答复 已转人社局", "请写上要答复的来信编号"),
    ("u5", "答复 #99 好的", "没有找到来信 #99"),
    ("u2", "答复 #1 我自己答", "仅限"),
    ("u6", "reply #1 x", "仅限"),
    ("stranger", "答复 #1 x", "绑定 姓名 手机后四位"),
])
async def test_answer_wrong_forms_write_nothing(chat, services, bangdai, user, text, expect):
    await chat.say("u2", f"信箱 {QUESTION}")
    await deliver(services, bangdai)
    before = await count(services, OutboxMessage)
    reply = await chat.say(user, text)
    assert expect in reply, reply
    assert "例如" in reply or "没有找到" in reply or "仅限" in reply or "绑定" in reply or "答复请发送" in reply or "答复格式" in reply
    assert await count(services, InquiryAnswer) == 0 and await count(services, OutboxMessage) == before
    assert (await rows(services, Inquiry))[0].status == "open"
    assert QUESTION not in reply


async def test_answering_a_closed_inquiry_is_refused(chat, services):
    await chat.say("u2", f"信箱 {QUESTION}")
    assert "已关闭来信 #1" in await chat.say("u5", "信箱 关闭 #1 重复来信，已在 #2 答复")
    reply = await chat.say("u7", "答复 #1 补一句")
    assert "已关闭" in reply and "不能再答复" in reply
    assert await count(services, InquiryAnswer) == 0


# --- 待办, 分类, 关闭 -------------------------------------------------------------------------------------

async def test_todo_lists_open_inquiries_only(chat, services):
    await chat.say("u2", f"信箱 {QUESTION}")
    await chat.say("u4", f"信箱 匿名 {SECRET}")
    await chat.say("u3", "信箱 专班工作经费怎么申请")
    await chat.say("u5", "答复 #1 已转人社局")
    await chat.say("u5", "信箱 关闭 #3 已电话答复")
    todo = await chat.say("u7", "mailbox todo")
    assert "待答复**：1 件" in todo and "#2" in todo and "匿名" in todo and SECRET[:10] in todo
    assert "#1 " not in todo and "#3 " not in todo and "赵强" not in todo
    await chat.say("u5", "答复 #2 欢迎报名，请联系专班")
    assert "没有待答复" in await chat.say("u5", "信箱 待办")
    assert "后面不用写内容" in await chat.say("u5", "信箱 待办 全部")


async def test_staff_change_the_category_and_it_is_audited(chat, services):
    await chat.say("u2", "信箱 单位停车位太少")
    assert "由“其他”改为“待遇”" in await chat.say("u5", "信箱 分类 #1 待遇")
    assert "由“待遇”改为“报名/专班”" in await chat.say("u5", "信箱 分类：＃1，专班")
    assert "本来就是“报名/专班”" in await chat.say("u5", "信箱 分类 #1 报名")
    assert (await rows(services, Inquiry))[0].category == "报名/专班"
    audit = await rows(services, AuditLog, AuditLog.action == "mailbox.category")
    assert [(a.detail["old"], a.detail["new"]) for a in audit] == [("其他", "待遇"), ("待遇", "报名/专班")]


@pytest.mark.parametrize("user,text,expect", [
    ("u5", "信箱 分类", "请写上编号和新的类别"),
    ("u5", "信箱 分类 #1", "请写上编号和新的类别"),
    ("u5", "信箱 分类 #1 奖金", "类别“奖金”不认识"),
    ("u5", "信箱 分类 #7 待遇", "没有找到来信 #7"),
    ("u2", "信箱 分类 #1 待遇", "仅限管理员、组工干部"),
])
async def test_category_wrong_forms(chat, services, user, text, expect):
    await chat.say("u2", "信箱 单位停车位太少")
    reply = await chat.say(user, text)
    assert expect in reply, reply
    assert (await rows(services, Inquiry))[0].category == "其他"
    assert await count(services, AuditLog, AuditLog.action == "mailbox.category") == 0


async def test_close_with_a_reason_tells_the_submitter(chat, services, bangdai):
    await chat.say("u4", f"信箱 匿名 {SECRET}")
    reply = await chat.say("u5", "信箱 关闭 #1 已当面沟通")
    assert "已关闭来信 #1" in reply and "已当面沟通" in reply
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    assert any("已由组织部关闭" in m and "已当面沟通" in m for m in boxes["u4"])
    [inquiry] = await rows(services, Inquiry)
    assert inquiry.status == "closed" and inquiry.close_reason == "已当面沟通"
    [entry] = await rows(services, AuditLog, AuditLog.action == "mailbox.close")
    assert entry.actor_id == 5 and entry.detail == {"reason": "已当面沟通"}
    assert "关闭原因：已当面沟通" in await chat.say("u4", "信箱 查询")


@pytest.mark.parametrize("setup,text,expect", [
    (None, "信箱 关闭", "请写上编号和关闭原因"),
    (None, "信箱 关闭 #1", "请写上编号和关闭原因"),
    (None, "信箱 关闭 #5 重复", "没有找到来信 #5"),
    ("答复 #1 已答复", "信箱 关闭 #1 重复", "已答复，不需要关闭"),
    ("信箱 关闭 #1 重复", "信箱 关闭 #1 再关一次", "已关闭"),
])
async def test_close_wrong_forms(chat, services, setup, text, expect):
    await chat.say("u2", f"信箱 {QUESTION}")
    if setup:
        await chat.say("u5", setup)
    closes = await count(services, AuditLog, AuditLog.action == "mailbox.close")
    reply = await chat.say("u5", text)
    assert expect in reply, reply
    assert await count(services, AuditLog, AuditLog.action == "mailbox.close") == closes
    assert "仅限管理员、组工干部" in await chat.say("u2", "信箱 关闭 #1 不想问了")


# --- anonymity everywhere staff look -------------------------------------------------------------------

async def test_anonymous_stays_anonymous_in_every_staff_view_and_export(chat, services, bangdai, tmp_path, clock):
    from scheduler.runner import run_job

    reply = await chat.say("u4", f"信箱 匿名 {SECRET}")
    assert "匿名来信" in reply and "组织部看不到您的姓名" in reply
    await chat.say("u2", "信箱 另一封信")
    name, unit, phone = "赵强", "城关街道", "4567"
    staff_texts = [await chat.say("u5", "信箱 待办"), await chat.say("u5", "信箱 #1"), await chat.say("u5", "统计")]
    clock.set(dt.datetime(2026, 11, 25, 9, 0))  # past 3 working days: the overdue reminder names it too
    assert (await run_job(services, "mailbox_overdue", clock.now())).queued == 4
    staff_texts.append(await chat.say("u7", "答复 #1 欢迎，已转专班"))
    await deliver(services, bangdai)
    boxes = await inboxes(chat)
    staff_texts += boxes["u5"] + boxes["u7"]
    assert sum("来信人：匿名" in t for t in staff_texts) >= 6
    for text in staff_texts:
        assert name not in text and unit not in text and phone not in text, text
    # The answer still found the submitter, and only the submitter.
    assert any("欢迎，已转专班" in m for m in boxes["u4"])
    assert not any("欢迎，已转专班" in m for u in ("u1", "u2", "u3", "u6") for m in boxes[u])
    mailbox_entries = [e for e in await rows(services, AuditLog) if e.action.startswith("mailbox.")]
    assert len(mailbox_entries) == 3  # two submissions, one answer
    for entry in mailbox_entries:
        assert entry.actor_id != ZHAO_QIANG and name not in entry.actor_label and name not in str(entry.detail)
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, clock)
    ws = load_workbook(path)["三联信箱"]
    cells = [[str(c.value or "") for c in row] for row in ws.iter_rows(min_row=2)]
    anonymous = next(r for r in cells if SECRET in r)
    assert "匿名" in anonymous and not any(name in c or unit in c for c in anonymous)
    signed = next(r for r in cells if "另一封信" in r)
    assert "李娜（华埠镇）" in signed


async def test_export_has_the_mailbox_sheet_with_answers_and_no_phones(chat, services, tmp_path, clock):
    await chat.say("u2", f"信箱 {QUESTION}")
    await chat.say("u5", "答复 #1 已转人社局")
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, clock)
    assert counts["三联信箱"] == 1
    wb = load_workbook(path)
    header = [c.value for c in wb["三联信箱"][1]]
    row = [c.value for c in wb["三联信箱"][2]]
    record = dict(zip(header, row))
    assert record["编号"] == 1 and record["状态"] == "已答复" and record["内容"] == QUESTION
    assert "已转人社局" in record["答复"] and record["来信人"] == "李娜（华埠镇）"
    values = [str(c.value) for ws in wb.worksheets for r in ws.iter_rows() for c in r]
    assert "13900003456" not in values


async def test_the_exports_overdue_column_follows_the_configured_calendar(chat, services, tmp_path, clock):
    """超期 in the workbook counts working days by ``[calendar]``, as chat and the overdue job do: two
    days the department declared off (a notice's bridging days) move the deadline past today."""
    await chat.say("u2", f"信箱 {QUESTION}")  # Thursday 19 November: overdue after Tuesday the 24th
    clock.set(dt.datetime(2026, 11, 25, 9, 0))
    days_off = Config()
    days_off.calendar.holidays = ["2026-11-23", "2026-11-24"]
    for config, overdue in ((Config(), "是"), (days_off, None)):
        path = tmp_path / "out.xlsx"
        await export_workbook(services.db, path, clock, config)
        sheet = load_workbook(path)["三联信箱"]
        record = dict(zip([c.value for c in sheet[1]], [c.value for c in sheet[2]]))
        assert record["超期"] == overdue, config.calendar


# --- 统计 ---------------------------------------------------------------------------------------------

async def test_stats_show_received_answered_open_overdue_for_month_and_year(chat, services, clock):
    clock.set(dt.datetime(2026, 3, 2, 10, 0))
    await chat.say("u2", "信箱 三月的来信")  # #1 answered
    await chat.say("u4", "信箱 三月的另一封")  # #2 stays open: overdue
    await chat.say("u5", "答复 #1 已答复")
    clock.set(dt.datetime(2026, 11, 2, 10, 0))
    await chat.say("u2", "信箱 十一月初的来信")  # #3 open, overdue by the 19th
    await chat.say("u3", "信箱 十一月初另一封")  # #4 closed
    await chat.say("u5", "信箱 关闭 #4 重复")
    clock.set(dt.datetime(2026, 11, 19, 10, 0))
    await chat.say("u4", "信箱 今天的来信")  # #5 open, not overdue
    await chat.say("u3", "信箱 今天的另一封")  # #6 answered
    await chat.say("u7", "答复 #6 好的")
    stats = await chat.say("u5", "统计")
    assert "本月收到 4 件，已答复 1 件，关闭 1 件，待答复 2 件（超期 1 件）" in stats
    assert "本年收到 6 件，已答复 2 件，关闭 1 件，待答复 3 件（超期 2 件）" in stats
    assert "仅限" in await chat.say("u2", "统计")


def test_ticket_parsing():
    assert take_ticket("#12 已转人社局") == (12, "已转人社局")
    assert take_ticket("＃１２：已转") == (12, "已转")
    assert take_ticket("12，已转") == (12, "已转")
    assert take_ticket("第12号 已转") == (12, "已转")
    assert take_ticket("#12") == (12, "")
    assert take_ticket("已转人社局") is None


async def test_no_other_person_ever_sees_the_text(chat, services, bangdai, tmp_path):
    """Whatever the others type, and whatever reaches their inboxes, the text is not there."""
    QUESTION = "我的车补标准是否与原岗位一致"  # noqa: N806 - not the help example, which everyone may see
    await chat.say("u4", f"信箱 匿名 {SECRET}")
    await chat.say("u5", "答复 #1 收到，已转专班")
    await chat.say("u2", f"信箱 {QUESTION}")
    await chat.say("u7", "信箱 关闭 #2 已当面答复")
    await deliver(services, bangdai)
    commands = ["帮助", "本周", "信箱 查询", "信箱 #1", "信箱 #2", "信箱 查询 #1", "信箱 待办", "统计", "流程",
                "走访", "信箱 分类 #1 其他", "答复 #1 x", "信箱 关闭 #1 x", "帮助 信箱"]
    for user in ("u1", "u3", "u6"):
        for text in commands:
            reply = await chat.say(user, text)
            assert SECRET not in reply and QUESTION not in reply and "已转专班" not in reply, (user, text, reply)
        for message in await chat.inbox(user):
            assert SECRET not in message["text"] and QUESTION not in message["text"]
    # Each submitter sees their own and nothing of the other's.
    assert QUESTION not in await chat.say("u4", "信箱 查询") and SECRET not in await chat.say("u2", "信箱 查询")
    assert all(QUESTION not in m["text"] for m in await chat.inbox("u4"))
    assert all(SECRET not in m["text"] for m in await chat.inbox("u2"))
