"""Every hint is sendable: a scripted conversation over the demo programme, as each of its people (a
mentor with two mentees, mentees, a 导师团 mentor who is also a retired cadre, staff who is also a
三联 liaison, retired cadres, an admin, someone not yet bound). Every "发送 …" / "请发送：…" /
"回复：…" hint in every reply is sent back verbatim by the person who got it, and so on for the hints
in those replies; each must be understood — no usage answer, no "didn't understand", no "which pair?".
"""

from __future__ import annotations

import re

import pytest

from bot.app import load_demo

# What a person sees is Markdown: \# shows as #, **x** as bold x.
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_SEND = re.compile(r"(?:发送|回复|想发)")
_PLAIN = re.compile(r"(?:发送|回复)[：:]\s*(?!\*\*)([^，。；（\n*“”]+)")
NOT_UNDERSTOOD = {"errors/usage", "errors/unknown", "errors/need_bind", "errors/not_allowed",
                  "errors/private_only", "mentoring/which_pair", "mentoring/not_counterpart", "mentoring/ambiguous"}

SCRIPT = [
    ("u1", "帮助"), ("u1", "绑定 张伟 1234"), ("u1", "帮助"), ("u1", "本周"), ("u1", "计划"),
    ("u1", "纪录 李娜 面谈 讨论招商项目"), ("u1", "原则"), ("u1", "流程"), ("u1", "排行"), ("u1", "信箱 查询"),
    ("u2", "帮助"), ("u2", "本周"), ("u2", "计划"), ("u2", "记录 电话 沟通信访件处理"), ("u2", "信箱 查询"),
    ("u4", "本周"), ("u4", "计划"), ("u1", "记录赵强昨天电话了解近况"),
    ("u3", "帮助"), ("u3", "本周"), ("u3", "计划"), ("u3", "编组"), ("u3", "岗位"),
    ("u5", "帮助"), ("u5", "本周"), ("u5", "统计"), ("u5", "信箱 待办"), ("u5", "走访"), ("u5", "季评"),
    ("u5", "考核"), ("u5", "编组 列表"), ("u5", "实绩"), ("u5", "排行"), ("u5", "广播 状态"), ("u5", "流程 4"),
    ("u6", "帮助"), ("u6", "编组"), ("u6", "排行"), ("u6", "岗位"), ("u6", "实绩"), ("u6", "承诺"),
    ("u7", "帮助"), ("u7", "信箱 查询"), ("u7", "编组"), ("u7", "承诺"),
    ("admin", "帮助"), ("admin", "统计"),
    # Sub-commands someone may not use: the refusal names the siblings they may, which must work.
    ("u2", "导师 推荐 周敏 基层经验丰富"), ("u7", "信箱 待办"), ("u7", "预审 待办"),
]


def hints(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        at = _SEND.search(line)
        if at is None:
            continue
        tail = line[at.start():]
        found += _BOLD.findall(tail) + [m.strip() for m in _PLAIN.findall(tail) if m.strip()]
    return [re.sub(r"\\(.)", r"\1", h).strip() for h in found]


def test_the_hint_reader_reads_what_people_are_told_to_send():
    assert hints("面谈后请发送，例如：**记录 李娜 面谈 讨论工作方法**") == ["记录 李娜 面谈 讨论工作方法"]
    assert hints("查看某一项请发送序号或名称，例如：**流程 1** 或 **流程 公务员登记**") == ["流程 1", "流程 公务员登记"]
    assert hints("您是不是想发：**答复 \\#12 好**") == ["答复 #12 好"]
    assert hints("完成后发送：计划 完成 序号") == ["计划 完成 序号"]
    assert hints("**本周帮带情况**（11月16日）") == []


@pytest.mark.parametrize("user,text", [("u1", "计划 添加 熟悉信访工作流程"), ("u1", "计划 完成 1"),
                                       ("u1", "记录 面谈 讨论工作方法")])
async def test_a_mentor_with_two_mentees_is_asked_which_with_sendable_examples(bot, services, user, text):
    await load_demo(services)
    await bot.ask("u1", "绑定 张伟 1234")
    asked = await bot.ask(user, text)
    assert asked.key == "mentoring/which_pair" and "请写上对方姓名" in asked.text
    for line in asked.text.splitlines()[1:]:
        example = line.removeprefix("- ").replace("\\", "")
        assert (await bot.ask(user, example)).key != "mentoring/which_pair", example


async def test_every_hint_in_a_demo_conversation_works_when_sent_back(bot, services):
    assert await load_demo(services)
    queue: list[tuple[str, str, str]] = []
    sent: set[tuple[str, str]] = set()
    failures: list[str] = []
    for user, text in SCRIPT:
        reply = (await bot.ask(user, text)).text
        queue += [(user, hint, text) for hint in hints(reply)]
    assert len(queue) > 30
    checked = 0
    while queue:
        user, hint, source = queue.pop(0)
        if (user, hint) in sent:
            continue
        sent.add((user, hint))
        said = await bot.ask(user, hint)
        bad = [t for t in said.keys if t in NOT_UNDERSTOOD]
        if bad:
            failures.append(f"{user} sent “{hint}” (hinted after “{source}”) → {bad}: {said.text[:120]}")
        checked += 1
        assert checked < 400, "hints keep producing new hints"
        queue += [(user, h, hint) for h in hints(said.text)]
    assert not failures, "\n".join(failures)
    assert checked >= 25


async def test_a_sub_command_someone_may_not_use_names_the_ones_they_may(bot, services):
    """导师 推荐 is staff's; a mentee who sends it is told about 导师 自荐 (the hint the old hand-written
    refusal gave), and sending that example back files the application."""
    assert await load_demo(services)
    refused = await bot.ask("u2", "导师 推荐 周敏 基层经验丰富")
    assert refused.key == "errors/not_allowed"
    assert [c.keyword for c in refused.values["others"]] == ["导师 自荐"]
    [example] = [h for h in hints(refused.text) if h.startswith("导师")]
    assert (await bot.ask("u2", example)).key == "mentor/nominated"
