"""Issue 11, item 5: what people type is shown as text, never as Markdown in the bot's own voice.

Markup goes into every argument of every declared command (and the sub-commands handlers dispatch
themselves), from every role; every reply, and every notification queued meanwhile, must show it
escaped. Roster values (a unit's name) are user-supplied too. Sent in process (``bot``): the text is
what the local channel would show; what a channel does to it is tested per channel."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.text import md_escape, md_unescape
from conftest import write
from handlers.sheets.roster import import_roster
from storage.models import OutboxMessage

from test_security import SUB_ACTIONS, everyone  # noqa: F401  (fixture)

MARKUP = "[点我](evil.cn)<b>粗</b>*斜*_下_~~删~~@所有人`码`#号"
MULTILINE = "说明\n# 标题\n- 列表\n1. 第一\n> 引用\n---"
USERS = ["u5", "u7", "u1", "u2", "l1", "r1", "m8", "stranger"]  # staff, admin, mentor, mentee, liaison, retired
# What must never appear unescaped in a reply: each piece of MARKUP as Markdown would read it.
MARKS = ["[点我]", "](evil.cn)", "<b>", "*斜*", "_下_", "~~删~~", "@所有人", "`码`"]
_ESCAPED_PAIR = re.compile(r"\\.", re.S)
_LINE_MARKS = re.compile(r"^(# 标题|- 列表|1\. 第一|> 引用|---)$", re.M)


def unescaped_markup(text: str) -> list[str]:
    """The pieces of MARKUP/MULTILINE that ``text`` shows as Markdown rather than as text."""
    bare = _ESCAPED_PAIR.sub("", text)  # what is left once every escaped character is taken out
    return [m for m in MARKS if m in bare] + _LINE_MARKS.findall(text)


def test_the_checker_itself():
    assert unescaped_markup(MARKUP) and unescaped_markup(MULTILINE)
    assert unescaped_markup(md_escape(MARKUP)) == [] and unescaped_markup(md_escape(MULTILINE)) == []
    assert md_unescape(md_escape(MARKUP + MULTILINE)) == MARKUP + MULTILINE


def variants(router) -> list[str]:
    """Every example and sub-command with each argument in turn replaced by markup, and with markup
    (one line, then several) added at the end."""
    texts = []
    for example in [e for c in router.commands for e in (c.keyword, *c.examples)] + SUB_ACTIONS:
        words = example.split(" ")
        for i in range(1, len(words)):
            texts.append(" ".join(words[:i] + [MARKUP] + words[i + 1:]))
        texts.append(f"{example} {MARKUP}")
        texts.append(f"{example} {MULTILINE}")
    return list(dict.fromkeys(texts))


async def test_markup_in_every_argument_of_every_command_shows_as_text(bot, everyone, services, tmp_path):  # noqa: F811
    roster = f"姓名,手机,单位,职务,角色,本地ID\n吴昊,13500003333,{MARKUP},{MARKUP},徒弟,m8\n"
    assert (await import_roster(services.db, write(tmp_path, "m.csv", roster), now=services.clock.now())).ok
    await bot.say("u5", "结对 吴昊 张伟")
    texts = variants(services.router)
    assert len(texts) > 150
    leaks: list[tuple[str, str, list[str]]] = []
    for text in texts:
        for user in USERS:
            reply = await bot.say(user, text)
            if found := unescaped_markup(reply):
                leaks.append((user, text, found))
    # what was stored is read back: plans, contacts, letters, squads, achievements, the staff's views
    for text in ("本周", "计划", "计划 吴昊", "信箱 查询", "信箱 待办", "信箱 #1", "季评", "考核", "编组", "编组 列表",
                 "实绩", "排行", "承诺", "走访", "统计", "广播 状态"):
        for user in USERS:
            reply = await bot.say(user, text)
            if found := unescaped_markup(reply):
                leaks.append((user, text, found))
    assert leaks == [], leaks[:5]
    async with services.db.transaction() as s:
        bodies = (await s.exec(select(OutboxMessage.key, OutboxMessage.body))).all()
    assert bodies  # letters, answers and notices were queued
    assert [(key, found) for key, body in bodies if (found := unescaped_markup(body))] == []


def test_plain_text_channels_show_escaped_values_as_typed():
    """WeCom members inside WeChat get plain text: the escapes the renderer added are taken out again."""
    from bot.channels.wecom_api import to_plain

    assert to_plain(f"**来信**：{md_escape(MARKUP)}\n{md_escape(MULTILINE)}") == f"来信：{MARKUP}\n{MULTILINE}"
