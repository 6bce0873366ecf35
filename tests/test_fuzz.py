"""Issue 11, item 6: nothing typed crashes the bot. 20,000 seeded messages from every role, privately
and in groups, through the real gateway and the local channel's HTTP endpoint (raw JSON bodies with
lone surrogates among them): no "系统刚才出了点问题", no HTTP 500, no traceback in the log.

The messages are built from the commands' own examples with words swapped for hostile ones (digits
``int`` refuses, surrogates, controls, markup, huge numbers, impossible dates, very long text), so
most reach deep into the handlers rather than stopping at "unknown command".

Run once: nothing here depends on the database kind (PostgreSQL-only inputs — NUL — have their own
small test in test_security.py, which runs in both passes), and 20,000 messages take most of a minute.
They go in four parts of 5,000, each on its own programme, so pytest-xdist can run them side by side.
"""

from __future__ import annotations

import json
import logging
import random

import pytest

from bot.gateway import Gateway
from bot.inbound import InboundMessage
from conftest import PG_URL

from test_security import SUB_ACTIONS, everyone  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="the same on every database: run in the SQLite pass only")

SEED = 20261129
TOTAL = 20_000
OVER_HTTP = 3_000  # of which half are raw JSON bodies with \\ud800-style escapes
PARTS = 4
USERS = ["u5", "u7", "u1", "u2", "u3", "u4", "l1", "r1", "u6", "stranger", "someone-else"]

HOSTILE = [
    "᧚", "፩", "፩፱፰፭", "١٢", "٣٤٥٦", "௫", "²", "½", "Ⅻ", "𝟙𝟚", "١.٥", "#᧚", "第᧚项", "#99999999999999999999",
    "99999999999", "-1", "0", "#0", "1e309", "NaN", "inf", "1.255", "3.0000001", "-0", "+5",
    "\ud800", "\udfff", "a\ud83db", "\x00", "\x07", "\x1b[31m", "\u202e", "\u200b", "\ufeff", "e\u0301\u0301\u0301",
    "😀", "👨‍👩‍👧", "\U0010ffff", "\ufffd", "＃１２", "：", "，", "；", "、", "　", "\n", "\r\n", "\t",
    "[点我](http://evil.cn)", "<b>x</b>", "**粗**", "# 标题", "@所有人", "<@all>", "`", "\\", "{{ 1 }}", "{% x %}",
    "%s", "'; DROP TABLE person; --", "2026-02-30", "13月45日", "2099-01-01", "1900-01-01", "昨天", "前天",
    "今天", "11-19", "2026/11/19", "0-0", "张伟", "李娜", "王芳", "赵强", "陈静", "孙丽", "李忠兴", "刘洋",
    "华埠镇", "常青藤", "匿名", "查询", "待办", "分类", "关闭", "添加", "完成", "结束", "状态", "确认", "取消",
    "系数", "作废", "列表", "新建", "调整", "移出", "组长", "上月", "面谈", "电话", "视频", "线上", "优秀",
    "称职", "较好", "一般", "表彰", "招商引资联络员", "#1", "#2", "#3", "1", "2", "3", "", " ",
]


def fuzzed_text(rng: random.Random, bases: list[str]) -> str:
    roll = rng.random()
    if roll < 0.04:
        return "".join(rng.choice(HOSTILE) for _ in range(rng.randint(0, 6)))
    if roll < 0.06:
        return rng.choice(bases).split(" ")[0] + " " + "长" * rng.choice((499, 500, 1999, 2000, 2001, 4000, 5000))
    words = rng.choice(bases).split(" ")
    for _ in range(rng.randint(1, 3)):
        action = rng.random()
        hostile = rng.choice(HOSTILE)
        if action < 0.5 and len(words) > 1:
            words[rng.randrange(1, len(words))] = hostile
        elif action < 0.8:
            words.insert(rng.randrange(1, len(words) + 1), hostile)
        else:
            words[-1] += hostile
    text = " ".join(words)
    if rng.random() < 0.1:
        text = rng.choice(("@帮带助手 ", "＠bot\u2005", " ", "\u3000")) + text
    return text


@pytest.mark.parametrize("part", range(PARTS))
async def test_twenty_thousand_hostile_messages_get_answers(part, client, everyone, services, caplog):  # noqa: F811
    rng = random.Random(f"{SEED}/{part}")
    router = services.router
    bases = [e for c in router.commands for e in (c.keyword, c.alias, *c.examples)] + SUB_ACTIONS
    internal = services.renderer.text("errors/internal")
    gateway = Gateway(services)
    caplog.set_level(logging.ERROR)
    failures: list[tuple[str, str, str]] = []

    for n in range((TOTAL - OVER_HTTP) // PARTS):
        user = rng.choice(USERS)
        text = fuzzed_text(rng, bases)
        msg = InboundMessage(channel=rng.choice(("local", "local", "dingtalk", "wecom")), sender_id=user,
                             conversation_id=rng.choice((user, "g1")), text=text, is_group=rng.random() < 0.3,
                             msg_id=f"f{n}" if rng.random() < 0.2 else None, sender_name=rng.choice(HOSTILE))
        replies = await gateway.handle(msg)
        if not replies or any(r.text == internal for r in replies):
            failures.append(("gateway", user, text))

    for n in range(OVER_HTTP // PARTS):
        user = rng.choice(USERS)
        text = fuzzed_text(rng, bases)
        group = rng.random() < 0.3
        if n % 2:
            body = json.dumps({"user": user, "text": text, "group": group, "msg_id": f"h{n}\ud800"}).encode()
        else:  # what a careless client sends: \ud800-style escapes json.dumps would also write
            body = ('{"user": %s, "text": %s, "group": %s}' % (
                json.dumps(user), json.dumps(text + "\ud800"), json.dumps(group))).encode()
        resp = await client.post("/api/local/messages", data=body, headers={"Content-Type": "application/json"})
        if resp.status != 200:
            failures.append((f"http {resp.status}", user, text))
            continue
        replies = (await resp.json())["replies"]
        if not replies or any(r["text"] == internal for r in replies):
            failures.append(("http", user, text))

    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == [], (len(failures), failures[:10])
    assert tracebacks == [], [r.getMessage() for r in tracebacks[:5]]
