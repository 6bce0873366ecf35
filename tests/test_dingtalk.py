"""DingTalk through the real dingtalk-stream SDK against a loopback fake of DingTalk's servers:
conversations, redeliveries, replies after the sessionWebhook expired, the outbox over batchSend,
throttling, reconnection, quota warnings and a clean stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import sys
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from sqlalchemy import func
from sqlmodel import select

from bot.app import Bangdai
from bot.channels.dingtalk import DingTalkChannel
from bot.channels.dingtalk_api import ApiUsage, markdown_title, message_param
from bot.channels.dingtalk_stream import StreamConnection
from bot.clock import TZ
from bot.inbound import Address, InboundMessage, Outgoing
from conftest import import_programme, write
from fakes.dingtalk_fixtures import configure_dingtalk
from scheduler.runner import run_job
from storage.models import (ChatIdentity, ContactLog, DingTalkApiUsage, OutboxMessage, OutboxStatus, Person,
                            PlanItem, ProcessedMessage)

ROSTER = """\
姓名,手机,单位,职务,角色,钉钉ID,出生年份
张伟,13800001234,县委组织部,原副部长,导师,dt_zw,1962
王芳,13800002345,县发改局,原局长,导师,dt_wf,1963
李娜,13900003456,华埠镇,镇长,徒弟,dt_ln,1986
赵强,13900004567,城关街道,主任,徒弟,dt_zq,1988
陈静,13700005678,县委组织部,干部科科长,组工干部,dt_cj,1981
周敏,13700006789,县人社局,科员,,,1990
"""
GROUP = "cidQingLanGroup01"


@pytest.fixture
async def roster(services, tmp_path):
    """The standard programme (see conftest) with DingTalk ids instead of local ones; 周敏 has none."""
    await import_programme(services.db, tmp_path, ROSTER, now=services.clock.now())
    return services


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


async def person_ids(services, *names: str) -> list[int]:
    async with services.db.transaction() as s:
        rows = dict((await s.exec(select(Person.name, Person.id))).all())
    return [rows[n] for n in names]


async def outbox_rows(services) -> dict[str, OutboxMessage]:
    async with services.db.transaction() as s:
        return {r.user_id or r.group_name: r for r in (await s.exec(select(OutboxMessage))).all()}


# --- conversations -------------------------------------------------------------------------------

async def test_private_chat_runs_every_command(dingtalk, roster, services):
    say = dingtalk.say
    assert "绑定 姓名 手机后四位" in await say("dt_stranger", "帮助")
    assert "绑定成功，周敏" in await say("dt_zm", "绑定 周敏 6789")
    mentor_help = await say("dt_zw", "帮助")
    assert "记录" in mentor_help and "计划" in mentor_help and "绑定" not in mentor_help
    assert "已记录：11月19日 面谈" in await say("dt_zq", "记录 面谈 讨论工作作风")
    assert "面谈 ✅ 已完成" in await say("dt_zq", "本周")
    assert "已添加第 1 项" in await say("dt_zw", "计划 李娜 添加 熟悉信访工作流程")
    assert "1. ⬜ 熟悉信访工作流程" in await say("dt_ln", "计划")
    assert "已完成第 1 项" in await say("dt_ln", "计划 完成 1")
    principles = await say("dt_ln", "原则")
    assert "十帮" in principles and "十不帮" in principles
    assert "工作统计" in await say("dt_cj", "统计")
    assert "仅限管理员、组工干部使用" in await say("dt_ln", "统计")

    assert await count(services, ChatIdentity, ChatIdentity.channel == "dingtalk",
                       ChatIdentity.platform_user_id == "dt_zm") == 1
    assert await count(services, ContactLog) == 1 and await count(services, PlanItem) == 1
    sent = dingtalk.fake.sent
    assert len(sent) == 11 and all(s.via == "webhook" and not s.group and not s.at_user_ids for s in sent)
    assert all(s.title and "**" not in s.title for s in sent)  # a readable notification preview
    assert dingtalk.fake.token_fetches == 0  # replies within the webhook's life cost no API call


@pytest.mark.parametrize("user,text,expect", [
    ("dt_zw", "记录 面谈 讨论", "请写上对方姓名"),
    ("dt_zq", "记录 散步 一起走走", "缺少联系方式"),
    ("dt_zq", "记录 明天 面谈 提前写", "将来的日期"),
    ("dt_zm", "记录 面谈 x", "绑定 姓名 手机后四位"),
    ("dt_x", "绑定 张伟", "请写上您的姓名和手机号后四位"),
    ("dt_ln", "计划 完成 9", "没有第 9 项"),
    ("dt_ln", "你好", "没看懂"),
])
async def test_wrong_forms_get_an_example_and_write_nothing(dingtalk, roster, services, user, text, expect):
    reply = await dingtalk.say(user, text)
    assert expect in reply, reply
    assert await count(services, ContactLog) == 0 and await count(services, PlanItem) == 0


async def test_group_chat_replies_mention_the_sender(dingtalk, roster, services):
    fake = dingtalk.fake
    pushed = await fake.push_text("dt_zw", "本周", group=GROUP)
    [sent] = await fake.wait_reply(pushed)
    assert sent.group and sent.conversation == GROUP and sent.users == []
    assert sent.at_user_ids == ["dt_zw"] and sent.text.startswith("@dt_zw ") and "李娜" in sent.text
    assert "已记录" in await dingtalk.say("dt_ln", "@帮带助手 记录 面谈 讨论招商项目", group=GROUP)
    assert "十帮" in await dingtalk.say("dt_zq", "原则", group=GROUP)
    assert "绑定 姓名 手机后四位" in await dingtalk.say("dt_stranger", "帮助", group=GROUP)
    assert await count(services, ContactLog) == 1
    assert all(s.group and s.at_user_ids == [s.text.split()[0][1:]] for s in fake.sent)


async def test_non_text_messages_get_one_line_once(dingtalk, roster):
    fake = dingtalk.fake
    data, session = fake.text_data("dt_ln", "")
    del data["text"]
    # (Pictures and files go to 预审 cases: tests/test_sanling_cases_platforms.py.)
    data.update(msgtype="interactiveCard", content={"cardData": "{}"})
    pushed = await fake.push_data(data, user="dt_ln", session=session)
    [sent] = await fake.wait_reply(pushed)
    assert "没有能看懂的文字" in sent.text and "本周" in sent.text and "\n" not in sent.text
    await fake.redeliver(pushed)
    await fake.wait_acked(pushed, 2)
    assert "本周帮带情况" in await dingtalk.say("dt_ln", "本周")
    assert len(fake.replies_to(pushed)) == 1


async def test_unreadable_frames_are_acknowledged_and_the_client_carries_on(dingtalk, roster):
    fake = dingtalk.fake
    not_json = await fake.push_data("{this is not json")
    not_a_message = await fake.push_data({"hello": "world"})
    # What DingTalk pushes when the organisation's quota is spent: msgtype text without a text.
    quota = await fake.push_data({"msgId": "q-1", "msgtype": "text", "conversationId": "c1", "conversationType": "1",
                                  "senderStaffId": "dt_ln", "errorMessage": "机器人消息额度已用完"})
    await fake.push_frame("not even a frame")
    for pushed in (not_json, not_a_message, quota):
        await fake.wait_acked(pushed)
    assert "本周帮带情况" in await dingtalk.say("dt_ln", "本周")
    assert fake.connections_opened == 1 and not fake.replies_to(quota)
    warnings = dingtalk.channel.health()["warnings"]
    assert any("机器人消息额度已用完" in w for w in warnings)


async def test_the_ack_does_not_wait_for_the_handling(dingtalk_fake, roster, services):
    configure_dingtalk(services, dingtalk_fake)
    gateway = Bangdai(services).gateway
    release = asyncio.Event()

    class SlowGateway:  # a database that takes its time
        answered, remember = gateway.answered, gateway.remember

        async def handle(self, msg, as_person=None, outcome=None):
            await release.wait()
            return await gateway.handle(msg)

    channel = DingTalkChannel(services, SlowGateway())
    await channel.start()
    try:
        pushed = await dingtalk_fake.push_text("dt_zq", "记录 面谈 谈心")
        await dingtalk_fake.wait_acked(pushed)
        assert not dingtalk_fake.replies_to(pushed) and await count(services, ContactLog) == 0
        release.set()
        await dingtalk_fake.wait_reply(pushed)
        assert await count(services, ContactLog) == 1
    finally:
        await channel.stop()


async def test_a_slow_reply_holds_up_no_other_conversation(dingtalk, roster):
    fake = dingtalk.fake
    release = fake.hold_replies("dt_ln")
    stuck = await fake.push_text("dt_ln", "本周")
    assert "面谈" in await dingtalk.say("dt_zq", "本周")
    assert not fake.replies_to(stuck)
    release.set()
    await fake.wait_reply(stuck)


# --- de-duplication --------------------------------------------------------------------------------

async def test_a_redelivered_frame_changes_nothing(dingtalk, roster, services):
    fake = dingtalk.fake
    pushed = await fake.push_text("dt_zq", "记录 面谈 讨论工作作风")
    await fake.wait_reply(pushed)
    before = metric("bangdai_dingtalk_duplicates_total")
    await fake.redeliver(pushed)
    await fake.wait_acked(pushed, 2)
    assert "面谈 ✅ 已完成" in await dingtalk.say("dt_zq", "本周")  # handled after the copy, in order
    assert len(fake.replies_to(pushed)) == 1
    assert await count(services, ContactLog) == 1
    assert await count(services, ProcessedMessage, ProcessedMessage.msg_id == pushed.msg_id,
                       ProcessedMessage.channel == "dingtalk") == 1
    assert metric("bangdai_dingtalk_duplicates_total") == before + 1


async def test_a_lost_ack_makes_dingtalk_push_again_and_still_nothing_doubles(dingtalk, roster, services):
    fake = dingtalk.fake
    fake.ack_timeout = 0.2
    fake.drop_acks(1)
    pushed = await fake.push_text("dt_zq", "记录 面谈 讨论工作作风")
    await fake.wait_acked(pushed)
    assert pushed.deliveries == 2  # the first ack was lost: DingTalk pushed it again
    await dingtalk.say("dt_zq", "本周")
    assert len(fake.replies_to(pushed)) == 1 and await count(services, ContactLog) == 1


async def test_a_redelivery_after_a_restart_is_caught_by_the_database(dingtalk, roster, services):
    fake = dingtalk.fake
    pushed = await fake.push_text("dt_zq", "记录 面谈 讨论工作作风")
    await fake.wait_reply(pushed)
    await dingtalk.channel.stop()
    restarted = Bangdai(services).channels["dingtalk"]  # a new process: nothing in memory
    await restarted.start()
    try:
        await fake.wait_connected(2)
        await fake.redeliver(pushed)
        await fake.wait_acked(pushed, 2)
        assert "面谈 ✅ 已完成" in await fake.say("dt_zq", "本周")
        assert len(fake.replies_to(pushed)) == 1 and await count(services, ContactLog) == 1
    finally:
        await restarted.stop()


async def test_the_gateway_alone_knows_a_message_was_handled(dingtalk, roster, services):
    """After a restart the channel has no memory; the gateway's one record (``Gateway.answered``) is
    what recognises the copy of a text and of a voice message DingTalk could not transcribe — the
    channel remembers the latter's answer through ``Gateway.remember``, not by writing the table."""
    fake = dingtalk.fake
    text = await fake.push_text("dt_zq", "记录 面谈 讨论工作作风")
    silent = await fake.push_message("dt_lzx", "audio", {"duration": 800, "downloadCode": "dl-voice-9"})
    await fake.wait_reply(text)
    await fake.wait_reply(silent)
    await dingtalk.channel.stop()
    restarted = Bangdai(services)
    channel = restarted.channels["dingtalk"]  # a new process: nothing in memory
    before = metric("bangdai_messages_total", channel="dingtalk", outcome="duplicate")
    await channel.start()
    try:
        await fake.wait_connected(2)
        for pushed in (text, silent):
            await fake.redeliver(pushed)
            await fake.wait_acked(pushed, 2)
        await fake.wait_until(lambda: metric("bangdai_messages_total", channel="dingtalk", outcome="duplicate")
                              == before + 2, what="both copies recognised by the gateway")
        assert len(fake.replies_to(text)) == 1 and len(fake.replies_to(silent)) == 1
        assert await count(services, ContactLog) == 1
        [stored] = await restarted.gateway.answered(InboundMessage("dingtalk", "dt_lzx", silent.conversation, "",
                                                                   msg_id=silent.msg_id))
        assert stored.text == services.renderer.text("dingtalk/not_heard")
    finally:
        await channel.stop()


# --- replies after the sessionWebhook expired --------------------------------------------------------

async def test_an_expired_session_webhook_falls_back_to_the_openapi(dingtalk, roster):
    fake = dingtalk.fake
    before = metric("bangdai_dingtalk_replies_total", path="openapi")
    await fake.push_text("dt_ln", "本周", webhook_expired=True)
    [private] = await fake.wait_sent(1, via="batchSend")
    assert private.users == ["dt_ln"] and "本周帮带情况" in private.text and private.msgtype == "sampleMarkdown"

    await fake.push_text("dt_zw", "原则", group=GROUP, nick="张伟", webhook_expired=True)
    [group] = await fake.wait_sent(1, via="groupSend")
    assert group.conversation == GROUP and group.text.startswith("@张伟 ") and "十帮" in group.text

    # Looks valid, but DingTalk has already dropped it (errcode 300001): the OpenAPI again.
    await fake.push_text("dt_zq", "本周", webhook_revoked=True)
    sends = await fake.wait_sent(2, via="batchSend")
    assert sends[1].users == ["dt_zq"]
    assert not [s for s in fake.sent if s.via == "webhook"]
    assert fake.token_fetches == 1
    await fake.wait_until(lambda: metric("bangdai_dingtalk_replies_total", path="openapi") == before + 3,
                          what="the third reply to be counted")


# --- the outbox over the OpenAPI ----------------------------------------------------------------------

def name(kind: str, n: int) -> str:
    """A made-up two- or three-character name, distinct per (kind, n)."""
    return kind + "甲乙丙丁戊己庚辛壬癸"[n // 10] + "一二三四五六七八九十"[n % 10]


def big_programme(mentors: int, staff: int) -> tuple[str, str]:
    """``mentors`` mentors with two mentees each, and ``staff`` staff members, all on DingTalk."""
    rows = ["姓名,手机,单位,职务,角色,钉钉ID"]
    pairs = ["徒弟,导师,牵头导师,开始日期,协议签订日期"]
    for m in range(1, mentors + 1):
        rows.append(f"{name('师', m)},138{m:08d},单位{m},职务,导师,dt_m{m:02d}")
        for k in (1, 2):
            e = 2 * (m - 1) + k
            rows.append(f"{name('徒', e)},139{e:08d},单位{m},职务,徒弟,dt_e{e:02d}")
            pairs.append(f"{name('徒', e)},{name('师', m)},,2026-03-01,")
    for s in range(1, staff + 1):
        rows.append(f"{name('组', s)},137{s:08d},县委组织部,干部,组工干部,dt_s{s:02d}")
    return "\n".join(rows) + "\n", "\n".join(pairs) + "\n"


async def test_a_reminder_round_goes_out_as_batch_sends(dingtalk, services, clock, tmp_path):
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster

    roster_csv, pairs_csv = big_programme(mentors=15, staff=22)
    now = clock.now()
    assert (await import_roster(services.db, write(tmp_path, "r.csv", roster_csv), now=now)).ok
    assert (await import_pairs(services.db, write(tmp_path, "p.csv", pairs_csv), now=now)).ok
    fake, sent_before = dingtalk.fake, metric("bangdai_dingtalk_proactive_sends_total", kind="user", outcome="sent")

    run = await run_job(services, "weekly_reminder", dt.datetime(2026, 11, 19, 16, 0, tzinfo=TZ))
    assert run.queued == 45
    assert await dingtalk.dispatcher.run_once() == 45
    calls = fake.batch_calls
    assert calls and all(c.status == 200 and 1 <= len(c.users) <= 20 for c in calls)
    # Reminders are personal (name and counterparts), so each is its own message, each person gets one.
    received = sorted(u for c in calls for u in c.users)
    assert received == sorted([f"dt_m{m:02d}" for m in range(1, 16)] + [f"dt_e{e:02d}" for e in range(1, 31)])
    assert len({c.param["text"] for c in calls}) == len(calls)  # no text was sent in two calls
    assert f"{name('师', 1)}，您好" in next(c.param["text"] for c in calls if c.users == ["dt_m01"])

    # The Monday digest is one identical text for all 22 staff: two calls, 20 + 2; its chart the same.
    clock.set(dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ))
    await run_job(services, "weekly_digest", clock.now())
    assert await dingtalk.dispatcher.run_once() == 44
    digest_calls = [c for c in calls[45:] if c.body["msgKey"] == "sampleMarkdown"]
    chart_calls = [c for c in calls[45:] if c.body["msgKey"] == "sampleImageMsg"]
    assert sorted(len(c.users) for c in digest_calls) == [2, 20] == sorted(len(c.users) for c in chart_calls)
    assert len(dingtalk.fake.uploads) == 1  # one picture, uploaded once
    assert len({c.param["text"] for c in digest_calls}) == 1 and "上周周联情况" in digest_calls[0].param["text"]

    rows = await outbox_rows(services)
    assert len(rows) == 67 and all(r.status == OutboxStatus.SENT for r in rows.values())
    # 45 reminders, 22 digests and their 22 charts
    assert metric("bangdai_dingtalk_proactive_sends_total", kind="user", outcome="sent") == sent_before + 89
    # Every call that reached DingTalk was counted, persistently.
    async with services.db.transaction() as s:
        usage = await s.get(DingTalkApiUsage, "2026-11")
    assert usage.calls == sum(fake.api_calls.values()) == len(calls) + fake.token_fetches + len(fake.uploads)


async def queue_notice(services, *names: str, body: str = "**通知** 本周五下午开会") -> None:
    ids = await person_ids(services, *names)
    async with services.db.transaction() as s:
        await services.outbox.enqueue_many(s, [Outgoing(key=f"notice:{pid}", person_id=pid, body=body, source="test")
                                               for pid in ids])


async def test_flow_controlled_users_are_retried_later_and_invalid_ones_fail(dingtalk, roster, services, clock):
    fake = dingtalk.fake
    fake.flow_control("dt_ln")
    fake.invalid_users.add("dt_zq")
    await queue_notice(services, "张伟", "李娜", "赵强", "陈静")
    assert await dingtalk.dispatcher.run_once() == 4
    [call] = fake.batch_calls
    assert sorted(call.users) == ["dt_cj", "dt_ln", "dt_zq", "dt_zw"] and call.param["title"] == "通知 本周五下午开会"
    rows = await outbox_rows(services)
    assert rows["dt_zw"].status == rows["dt_cj"].status == OutboxStatus.SENT
    assert rows["dt_zq"].status == OutboxStatus.FAILED and "invalidStaffIdList" in rows["dt_zq"].last_error
    waiting = rows["dt_ln"]
    assert waiting.status == OutboxStatus.QUEUED and "flowControlledStaffIdList" in waiting.last_error
    assert waiting.next_attempt_at >= clock.now() + dt.timedelta(seconds=60)

    assert await dingtalk.dispatcher.run_once() == 0  # not due yet
    clock.advance(minutes=2)
    assert await dingtalk.dispatcher.run_once() == 1
    assert fake.batch_calls[-1].users == ["dt_ln"]
    assert (await outbox_rows(services))["dt_ln"].status == OutboxStatus.SENT


@pytest.mark.parametrize("code", ["Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "90018"])
async def test_throttling_answers_back_off(dingtalk, roster, services, clock, code):
    fake, api = dingtalk.fake, dingtalk.channel.api
    now = [time.monotonic()]
    api.monotonic = lambda: now[0]  # the channel's own pause runs on this clock
    fake.throttle(1, code=code)
    await queue_notice(services, "张伟", "李娜")
    assert await dingtalk.dispatcher.run_once() == 2
    assert [c.status for c in fake.batch_calls] == [403]
    rows = await outbox_rows(services)
    assert all(r.status == OutboxStatus.QUEUED and "限流" in r.last_error for r in rows.values())
    clock.advance(minutes=1)
    # Still inside the pause the throttling answer started: no call is spent on it.
    assert await dingtalk.dispatcher.run_once() == 2 and len(fake.batch_calls) == 1
    now[0] += 10  # the pause is over
    clock.advance(minutes=5)
    assert await dingtalk.dispatcher.run_once() == 2
    assert [c.status for c in fake.batch_calls] == [403, 200]
    assert all(r.status == OutboxStatus.SENT for r in (await outbox_rows(services)).values())


async def test_an_exhausted_monthly_quota_waits_long(dingtalk, roster, services, clock):
    dingtalk.fake.exhaust_quota()
    errors_before = metric("bangdai_dingtalk_api_errors_total", code="Forbidden.AccessDenied.ApiCountLimitForOrg")
    await queue_notice(services, "李娜")
    await dingtalk.dispatcher.run_once()
    row = (await outbox_rows(services))["dt_ln"]
    assert row.status == OutboxStatus.QUEUED and "用完" in row.last_error
    assert row.next_attempt_at >= clock.now() + dt.timedelta(hours=1)
    assert metric("bangdai_dingtalk_api_errors_total", code="Forbidden.AccessDenied.ApiCountLimitForOrg") == errors_before + 1


async def test_group_messages_go_to_configured_groups_by_name(dingtalk, roster, services):
    fake = dingtalk.fake
    services.config.dingtalk.groups = {"常青藤一组": GROUP}
    fake.groups.add(GROUP)
    async with services.db.transaction() as s:
        await services.outbox.enqueue_many(s, [
            Outgoing(key="g1", group=("dingtalk", "常青藤一组"), body="**晾晒比拼** 本月排行"),
            Outgoing(key="g2", group=("dingtalk", "没配置的群"), body="**晾晒比拼** 本月排行"),
        ])
    assert await dingtalk.dispatcher.run_once() == 2
    [call] = fake.group_calls
    assert call.body["openConversationId"] == GROUP and call.body["msgKey"] == "sampleMarkdown"
    assert call.param == {"title": "晾晒比拼 本月排行", "text": "**晾晒比拼** 本月排行"}
    rows = await outbox_rows(services)
    assert rows["常青藤一组"].status == OutboxStatus.SENT
    assert rows["没配置的群"].status == OutboxStatus.FAILED and "没有配置" in rows["没配置的群"].last_error


async def test_the_access_token_is_fetched_once_and_renewed_before_expiry(dingtalk):
    fake, channel = dingtalk.fake, dingtalk.channel

    def send(i: int):
        return channel.deliver(Address("dingtalk", user_id=f"dt_{i}"), f"消息 {i}", "markdown", f"k{i}")

    await asyncio.gather(*(send(i) for i in range(10)))
    assert fake.token_fetches == 1 and len(fake.batch_calls) == 10
    channel.api.monotonic = lambda: time.monotonic() + fake.token_ttl - 120  # within the renewal margin
    await send(10)
    assert fake.token_fetches == 2
    fake.expire_tokens()  # revoked on DingTalk's side before its time: one 401, a new token, delivered
    await send(11)
    assert fake.token_fetches == 3 and [c.status for c in fake.batch_calls[-2:]] == [401, 200]


async def test_wrong_credentials_keep_messages_waiting_and_warn(dingtalk, services):
    channel = dingtalk.channel
    channel.api._app_secret = "wrong"
    with pytest.raises(Exception) as raised:
        await channel.deliver(Address("dingtalk", user_id="dt_ln"), "x", "markdown", "k")
    assert type(raised.value).__name__ == "TransientError" and "invalidClientIdOrSecret" in str(raised.value)
    assert any("access token" in w for w in channel.health()["warnings"])


# --- the connection ---------------------------------------------------------------------------------

async def test_the_stream_recovers_from_closes_disconnect_frames_and_failed_opens(dingtalk, roster):
    fake, channel = dingtalk.fake, dingtalk.channel
    await fake.close_connections()  # a clean close from the server
    await fake.wait_connected(2)
    assert "本周帮带情况" in await dingtalk.say("dt_ln", "本周")

    await fake.send_disconnect()  # DingTalk asks the client to reconnect
    await fake.wait_connected(3)
    assert any(a["headers"]["messageId"].startswith("sys-") for a in fake.system_acks)

    opens = len(fake.open_requests)
    fake.fail_open(3)
    await fake.close_connections(code=1011)  # an abnormal close, then three refused opens
    pushed = await fake.push_text("dt_ln", "原则")  # held by DingTalk meanwhile
    await fake.wait_connected(4)
    assert len(fake.open_requests) == opens + 4
    assert "十帮" in (await fake.wait_reply(pushed))[0].text
    health = channel.health()
    assert health["state"] == "connected" and health["reconnects"] == 6 and health["last_error"] == ""
    assert fake.open_requests[-1]["subscriptions"] == [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]


def test_reconnect_delays_grow_exponentially_with_jitter():
    stream = StreamConnection("http://127.0.0.1:1", "id", "secret", lambda data: None, base_delay=1.0, max_delay=60.0)
    for attempt, cap in [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (40, 60)]:
        delays = [stream.delay(attempt) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jitter: many processes don't come back in lockstep


async def test_stop_is_clean_and_final(dingtalk):
    fake, channel = dingtalk.fake, dingtalk.channel
    await channel.stop()
    await fake.wait_until(lambda: fake.active == 0, what="the connection to close")
    assert channel.health()["state"] == "stopped" and channel.stream._task is None
    assert fake.connections_opened == 1


async def test_health_and_metrics_over_http(dingtalk, roster):
    fake = dingtalk.fake
    pushed = await fake.push_text("dt_ln", "本周")
    await fake.wait_reply(pushed)
    await fake.redeliver(pushed)
    await fake.wait_acked(pushed, 2)
    fake.throttle(1)
    with pytest.raises(Exception):
        await dingtalk.channel.deliver(Address("dingtalk", user_id="dt_ln"), "x", "markdown", "k1")
    dingtalk.channel.api.monotonic = lambda: time.monotonic() + 10
    await dingtalk.channel.deliver(Address("dingtalk", user_id="dt_ln"), "x", "markdown", "k2")

    client = TestClient(TestServer(dingtalk.app.web_app()))
    await client.start_server()
    try:
        health = await (await client.get("/healthz")).json()
        metrics = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    ding = health["channels"]["dingtalk"]
    assert ding["state"] == "connected" and ding["last_message_at"].startswith("2026-11-19T10:00")
    assert ding["received"] == 1 and ding["api_calls_this_month"] == 3 and "warnings" not in ding
    for line in ('bangdai_dingtalk_received_total{kind="text"}', "bangdai_dingtalk_duplicates_total",
                 'bangdai_dingtalk_replies_total{path="webhook"}',
                 'bangdai_dingtalk_proactive_sends_total{kind="user",outcome="sent"}',
                 'bangdai_dingtalk_api_errors_total{code="Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}',
                 "bangdai_dingtalk_connected 1.0", "bangdai_dingtalk_reconnects_total"):
        assert line in metrics, line


async def test_staff_are_warned_at_80_percent_of_the_monthly_quota(dingtalk, roster, services, clock):
    channel = dingtalk.channel
    services.config.dingtalk.monthly_api_quota = 10
    async with services.db.transaction() as s:
        s.add(DingTalkApiUsage(month="2026-11", calls=7, updated_at=clock.now()))
    await channel.usage.load()
    assert channel.quota_warnings() == [] and "warnings" not in channel.health()
    await channel.deliver(Address("dingtalk", user_id="dt_ln"), "x", "markdown", "k")  # token + batchSend
    [warning] = channel.quota_warnings()
    assert "2026-11 已调用 9 次" in warning and "90%" in warning and warning in channel.health()["warnings"]
    assert await ApiUsage(services.db, clock).load() == 9  # kept in the database

    clock.set(dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ))
    await run_job(services, "weekly_digest", clock.now())
    async with services.db.transaction() as s:
        digest = (await s.exec(select(OutboxMessage).where(OutboxMessage.source == "weekly_digest",
                                                           OutboxMessage.format != "image"))).one()
    assert digest.user_id == "dt_cj" and "钉钉接口 2026-11 已调用 9 次" in digest.body

    clock.set(dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ))  # a new month starts from nothing
    assert channel.quota_warnings() == []


# --- the whole service, stopped by SIGTERM ------------------------------------------------------------

@pytest.mark.parametrize("connected", [True, False])
async def test_serve_with_dingtalk_stops_on_sigterm(dingtalk_fake, tmp_path, connected):
    from test_cli import clean_env, free_port

    fake = dingtalk_fake
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/serve.db"\n[server]\nport = {free_port()}\n'
        f'[dingtalk]\nenabled = true\nclient_id = "{fake.client_id}"\nclient_secret = "{fake.client_secret}"\n'
        f'api_base = "{fake.api_base}"\nreconnect_base_seconds = 0.05\nreconnect_max_seconds = 0.2\n',
        encoding="utf-8")
    if not connected:
        fake.fail_open(10_000)  # the SDK's own loop would retry every 10 s forever and never stop
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)], cwd=tmp_path,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if connected:
            await fake.wait_connected(timeout=30)
            assert "绑定 姓名 手机后四位" in await fake.say("dt_new", "帮助", timeout=30)
        else:
            await fake.wait_until(lambda: len(fake.open_requests) >= 3, timeout=30, what="a few failed opens")
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 5)
        log = proc.stdout.read()
        assert proc.returncode == 0, log
        assert fake.client_secret not in log
        await fake.wait_until(lambda: fake.active == 0, what="the connection to close")
    finally:
        if proc.poll() is None:
            proc.kill()


# --- small pure parts --------------------------------------------------------------------------------

def test_markdown_titles_and_message_params():
    assert markdown_title("**周联提醒**\n\n张伟，您好") == "周联提醒"
    assert markdown_title("## 标题 `x`") == "标题 x"
    assert markdown_title("") == "帮带助手"
    assert markdown_title("- 第一项") == "第一项"
    assert message_param("你好", "text") == ("sampleText", '{"content": "你好"}')
    key, param = message_param("**通知** 开会", "markdown")
    assert key == "sampleMarkdown" and '"title": "通知 开会"' in param
