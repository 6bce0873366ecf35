"""Everyday typing: homophone and one-letter slips in the command word, parts run together without
spaces, weekday dates, English words, and usage answers that name what was actually wrong."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from bot.phrases import PhraseError, read_contact
from bot.text import near_miss
from handlers.mentoring.contacts import MODE_WORDS
from storage.models import ContactLog

TODAY = dt.date(2026, 11, 19)  # a Thursday
WORDS = ["记录", "log", "本周", "status", "计划", "plan", "帮助", "help", "答复", "reply", "信箱", "mailbox"]


@pytest.mark.parametrize("typed,meant", [
    ("纪录 面谈 讨论", "记录 面谈 讨论"),  # IME homophone (ji lu)
    ("记路 面谈 讨论", "记录 面谈 讨论"),  # one character off
    ("笨周", "本周"), ("回复 #12 已转人社局", "答复 #12 已转人社局"), ("计化 完成 1", "计划 完成 1"),
    ("stauts", "status"), ("hepl", "help"), ("mailbx 查询", "mailbox 查询"),
    ("你好", None), ("hello", None), ("记", None), ("log", None),
])
def test_near_miss(typed, meant):
    assert near_miss(typed, WORDS) == meant


@pytest.mark.parametrize("raw,expected", [
    ("面谈 讨论招商项目", (None, TODAY, "面谈", "讨论招商项目")),
    ("赵强 面谈讨论工作", ("赵强", TODAY, "面谈", "讨论工作")),
    ("赵强今天电话沟通信访件处理", ("赵强", TODAY, "电话", "沟通信访件处理")),
    ("李娜 上周五 面谈 谈心", ("李娜", dt.date(2026, 11, 13), "面谈", "谈心")),
    ("周一视频 交流", (None, dt.date(2026, 11, 16), "视频", "交流")),
    ("11月18日线上 布置任务", (None, dt.date(2026, 11, 18), "线上", "布置任务")),
    ("yesterday phone talked about the plan", (None, dt.date(2026, 11, 18), "电话", "talked about the plan")),
    ("王五 面谈 x", ("王五", TODAY, "面谈", "x")),  # not a counterpart: the pair check says so
    ("赵强 面谈", ("赵强", TODAY, "面谈", "")),  # the content is optional
    # The date said after the mode is the day (it was logged as today with the date in the note).
    ("面谈 昨天 谈心", (None, dt.date(2026, 11, 18), "面谈", "谈心")),
    ("face 2026-11-17 谈心", (None, dt.date(2026, 11, 17), "面谈", "谈心")),
    ("李娜 电话 上周五 沟通", ("李娜", dt.date(2026, 11, 13), "电话", "沟通")),
    # Not a date on its own, or a date already given, or impossible: the words stay the note.
    ("面谈 昨天说好的事已落实", (None, TODAY, "面谈", "昨天说好的事已落实")),
    ("今天 面谈 昨天 布置的任务", (None, TODAY, "面谈", "昨天 布置的任务")),
    ("面谈 2026-02-30 x", (None, TODAY, "面谈", "2026-02-30 x")),
])
def test_read_contact(raw, expected):
    c = read_contact(raw, TODAY, ["赵强", "李娜"], MODE_WORDS)
    assert (c.name, c.day, c.mode, c.note) == expected


@pytest.mark.parametrize("raw,says", [
    ("Li Na phone talked", "看不懂 “Li”、“Na”"),
    ("李娜 赵强 面谈 x", "写了两位对方姓名（李娜、赵强）"),
    ("今天 昨天 面谈 x", "日期写了两次（昨天）"),
    ("李娜 讨论工作", "请在“讨论工作”前写 面谈、电话、视频 或 线上"),
    ("2026-02-30 面谈 x", "日期 2026-02-30 不存在"),
])
def test_read_contact_names_what_is_wrong(raw, says):
    with pytest.raises(PhraseError) as caught:
        read_contact(raw, TODAY, ["赵强", "李娜"], MODE_WORDS)
    assert says in _said(caught.value)


def _said(error) -> str:
    """The sentence a reason template makes, as a person reads it."""
    from bot.config import ProgrammeConfig
    from bot.render import Renderer
    from bot.text import md_unescape

    return md_unescape(Renderer(ProgrammeConfig().templates_dir).text(error.reason, **error.values))


@pytest.mark.usefixtures("seeded")
async def test_a_homophone_gets_a_suggestion_that_works_when_sent(chat, services):
    reply = await chat.say("u1", "纪录 赵强 面谈 讨论招商项目")
    assert "您是不是想发：**记录 赵强 面谈 讨论招商项目**" in reply
    assert "已记录" in await chat.say("u1", "记录 赵强 面谈 讨论招商项目")
    # Only commands this person may use are suggested: 答复 is staff's.
    assert "您是不是想发" not in await chat.say("u1", "达复 #1 好")
    assert "您是不是想发：**答复 #1 好**" in (await chat.say("u5", "达复 #1 好")).replace("\\", "")


@pytest.mark.usefixtures("seeded")
async def test_parts_run_together_are_understood(chat, services, clock):
    assert "已记录：11月19日 面谈（与徒弟 赵强）" in await chat.say("u1", "记录 赵强 面谈讨论工作")
    assert "已记录：11月19日 电话（与徒弟 赵强）" in await chat.say("u1", "记录赵强今天电话沟通信访件处理")
    assert "已记录：11月13日 面谈（与徒弟 李娜）" in await chat.say("u1", "记录 李娜 上周五 面谈 谈心谈话")
    async with services.db.transaction() as s:
        notes = [c.note for c in (await s.exec(select(ContactLog).order_by(ContactLog.id))).all()]
    assert notes == ["讨论工作", "沟通信访件处理", "谈心谈话"]


@pytest.mark.usefixtures("seeded")
async def test_usage_answers_name_the_words_that_were_wrong(chat):
    reply = await chat.say("u4", "log Zhang Wei phone talked")
    assert "看不懂 “Zhang”、“Wei”" in reply and "姓名和日期各写一次即可" not in reply


@pytest.mark.usefixtures("seeded")
async def test_help_shows_every_alias_of_the_commands_one_may_use(chat, services):
    router = services.router
    for user in ("u1", "u5", "u6"):
        text = await chat.say(user, "帮助")
        roles = {"u1": {"导师"}, "u5": {"组工干部"}, "u6": set()}[user]
        for command in router.visible_to(roles):
            assert f"**{command.keyword}**（{command.alias}）" in text, (user, command.keyword)


@pytest.mark.usefixtures("seeded")
async def test_plan_words_run_together(chat):
    assert "已添加第 1 项：熟悉信访工作流程（徒弟 赵强）" in await chat.say("u1", "计划赵强添加熟悉信访工作流程")
    assert "已添加第 2 项" in await chat.say("u1", "计划 赵强添加跟班学习")
    assert "已完成第 1 项：熟悉信访工作流程" in await chat.say("u4", "计划完成1")
    listing = await chat.say("u4", "计划")
    assert "1. ✅ 熟悉信访工作流程" in listing and "2. ⬜ 跟班学习" in listing


def test_space_out():
    from bot.phrases import space_out

    names, actions = ["赵强", "李娜"], ["添加", "完成", "add"]
    assert space_out("赵强添加熟悉信访工作", names, actions) == "赵强 添加 熟悉信访工作"
    assert space_out("完成2", names, actions) == "完成 2"
    assert space_out("李娜 完成 3", names, actions) == "李娜 完成 3"
    assert space_out("", names, actions) == ""
    assert space_out("熟悉工作", names, actions) == "熟悉工作"
