"""Shared set-up for the console tests: a programme with something on every page, and logging in
through the one-time link a staff member gets in the chat."""

from __future__ import annotations

import re

import pytest

from conftest import write
from handlers.sheets.roster import import_roster
from handlers.sheets.liaisons import import_liaisons

RETIRED_ROSTER = """\
姓名,手机,单位,职务,角色,本地ID
李忠兴,13500001111,县服务业办,原主任,退职干部,r1
赵建国,13500002222,县经信局,原局长,退职干部,r2
钱文,13500003333,县林业局,原副局长,退职干部,r3
"""
LIAISONS_CSV = """\
联系人,单位,类型
陈静,华埠镇,乡镇
陈静,城关街道,乡镇
"""
STAFF = "u5"  # 陈静, 组工干部
LINK = re.compile(r"(/console/login\?t=[0-9a-f]{64})")


@pytest.fixture
async def programme(seeded, chat, tmp_path):
    """The standard pairs with a week of contacts and a plan, two mailbox inquiries (one anonymous),
    三联 links with a visit, and 常青藤: three retired cadres, two groups, sign-ups and 实绩."""
    now = seeded.clock.now()
    r = await import_roster(seeded.db, write(tmp_path, "retired.csv", RETIRED_ROSTER), now=now)
    links = await import_liaisons(seeded.db, write(tmp_path, "liaisons.csv", LIAISONS_CSV), now=now)
    assert r.ok and links.ok, (r.lines(), links.lines())
    said = [  # what each says, and the start of the answer that shows it was done
        ("u1", "记录 李娜 面谈 讨论招商项目推进方法", "已记录"),
        ("u1", "记录 赵强 昨天 电话 沟通信访件处理", "已记录"),
        ("u1", "计划 李娜 添加 熟悉信访工作流程", "已添加第 1 项"),
        ("u2", "信箱 匿名 希望自荐参加招商专班", "已收到您的匿名来信，编号 **#1**"),
        ("u6", "信箱 退出现职后的待遇如何落实？", "已收到您的来信，编号 **#2**"),
        ("u5", "走访 华埠镇 了解年轻干部思想动态", "已记录"),
        ("u5", "编组 新建 招商一组 破山行动专班 李忠兴", "已新建小组"),
        ("u5", "编组 调整 赵建国 招商一组", "已把 赵建国 编入"),
        ("u5", "编组 新建 服务一组 助企服务专班 钱文", "已新建小组"),
        ("r1", "报名 招商引资联络员", "报名成功"),
        ("r2", "报名", "报名成功"),
        ("r1", "实绩 协调万洋众创项目土地指标", "已记入 招商一组 的实绩（#1"),
        ("r3", "实绩 走访 5 家企业", "已记入 服务一组 的实绩（#2"),
        ("u5", "实绩 系数 #1 1.5", "已把 招商一组 的实绩 #1"),
        ("u5", "季评 李娜 较好 帮带扎实", "已记录 2026-Q4 季评"),
        ("u5", "考核 李娜 优秀", "已录入 李娜 2026 年度考核"),
    ]
    for user, text, done in said:
        reply = await chat.say(user, text)
        assert reply.startswith(done), (user, text, reply)
    return seeded


async def chat_link(chat, user: str = STAFF) -> str:
    """The path and query of the link ``user`` gets for ``后台``."""
    reply = await chat.say(user, "后台")
    found = LINK.search(reply)
    assert found, reply
    return found.group(1)
