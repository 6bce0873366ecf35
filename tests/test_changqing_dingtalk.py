"""常青藤 on DingTalk, through the real dingtalk-stream SDK and the loopback DingTalk fake: the recruitment
broadcast to 159 retired cadres and two DingTalk groups (batchSend calls of at most 20 people, one
groupMessages/send per group), its status, a repeat that needs confirmation, and 140 sign-ups sent as
private DingTalk messages that make the seed's 88 %.

Everyone here is on DingTalk only: 陈静 (staff) is dt_s1, the retired cadres r1–r156 are dt_r1–dt_r156,
and the last three retired cadres have no chat account at all.
"""

from __future__ import annotations

import collections
import math

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.text import md_escape
from conftest import write
from handlers.sheets.roster import import_roster
from scheduler.outbox import NO_ACCOUNT
from storage.models import AuditLog, Broadcast, OutboxMessage, OutboxStatus, SignUp
from storage.models.changqing import SIX_ROLES
from test_changqing import NO_ACCOUNT as WITHOUT_ACCOUNT
from test_changqing import RETIRED, TEXT, retired_names

GROUPS = {"常青藤一组": "cidChangqingGroup01", "常青藤二组": "cidChangqingGroup02"}
REACHABLE = RETIRED - WITHOUT_ACCOUNT  # 156
BATCH = 20  # DingTalk's oToMessages/batchSend takes at most 20 userIds
STAFF = "dt_s1"
GONE = f"dt_r{REACHABLE - 1}"  # 钉钉ID DingTalk no longer knows (left the organisation): it fails, for good


def roster_csv() -> str:
    lines = ["姓名,单位,职务,角色,钉钉ID",
             f"陈静,县委组织部,干部科科长,组工干部,{STAFF}"]
    for i, name in enumerate(retired_names(), start=1):
        lines.append(f"{name},县服务业办,原主任,退职干部,{f'dt_r{i}' if i <= REACHABLE else ''}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def config(config):
    config.dingtalk.groups = dict(GROUPS)
    config.changqing.groups = [f"dingtalk:{name}" for name in GROUPS]
    return config


@pytest.fixture
async def cadres(dingtalk, services, tmp_path):
    """The roster loaded, and the bot a member of both 常青藤 groups on the fake's side."""
    report = await import_roster(services.db, write(tmp_path, "roster.csv", roster_csv()), now=services.clock.now())
    assert report.ok and report.created == RETIRED + 1, report.lines()
    dingtalk.fake.groups.update(GROUPS.values())
    return dingtalk


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


async def broadcast_rows(services) -> list[OutboxMessage]:
    async with services.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage).where(col(OutboxMessage.key).like("changqing-broadcast:%"))
                                  .order_by(OutboxMessage.id))).all())


async def drain(dingtalk) -> int:
    """Run the DingTalk dispatcher until a round finds nothing due; how many rows it attempted in all."""
    attempted = 0
    for _ in range(20):
        done = await dingtalk.dispatcher.run_once()
        if done == 0:
            return attempted
        attempted += done
    raise AssertionError("the DingTalk dispatcher kept finding work")


async def ask(fake, user: str, text: str) -> str:
    """A private message pushed over the stream; the answer must come back through its sessionWebhook."""
    pushed = await fake.push_text(user, text)
    replies = await fake.wait_reply(pushed)
    assert all(r.via == "webhook" and r.users == [user] and not r.group for r in replies), replies
    return "\n".join(r.text for r in replies)


async def test_broadcast_to_159_retired_cadres_and_2_dingtalk_groups(cadres, services, clock):
    fake = cadres.fake
    fake.invalid_users.add(GONE)
    reply = await ask(fake, STAFF, f"广播 常青藤 {TEXT}")
    assert f"私信 {RETIRED} 人" in reply and f"其中 {WITHOUT_ACCOUNT} 人没有可用的聊天账号" in reply, reply
    assert "常青藤群 2 个：常青藤一组（钉钉）、常青藤二组（钉钉）" in reply
    for name in retired_names()[REACHABLE:]:
        assert name in reply
    assert fake.batch_calls == [] and fake.group_calls == []  # queued, not sent, until the dispatcher runs

    assert await drain(cadres) == REACHABLE + len(GROUPS)

    # Private messages: identical bodies, so ceil(156 / 20) = 8 batchSend calls, everyone exactly once.
    calls = fake.batch_calls
    assert len(calls) == math.ceil(REACHABLE / BATCH) == 8
    assert all(c.status == 200 and 1 <= len(c.users) <= BATCH for c in calls)
    assert sorted(len(c.users) for c in calls) == [REACHABLE % BATCH] + [BATCH] * (REACHABLE // BATCH)
    received = collections.Counter(u for c in calls for u in c.users)
    assert set(received) == {f"dt_r{i}" for i in range(1, REACHABLE + 1)} and set(received.values()) == {1}
    assert STAFF not in received
    assert len({c.param["text"] for c in calls}) == 1 and TEXT in calls[0].param["text"]
    assert "报名" in calls[0].param["text"] and calls[0].body["msgKey"] == "sampleMarkdown"
    assert [c.answer["invalidStaffIdList"] for c in calls if c.answer["invalidStaffIdList"]] == [[GONE]]

    # Groups: one groupMessages/send per configured group, to its openConversationId.
    groups = fake.group_calls
    assert len(groups) == 2 and all(c.status == 200 for c in groups)
    assert sorted(c.body["openConversationId"] for c in groups) == sorted(GROUPS.values())
    # The same call; privately the commands are links to tap, in a group words (a tap there would not @ the robot).
    assert "](dtmd://dingtalkclient/sendMessage?content=" in calls[0].param["text"]
    assert all(TEXT in c.param["text"] and "**报名 招商引资联络员**" in c.param["text"] and "dtmd://" not in c.param["text"]
               for c in groups)
    delivered = [s for s in fake.sent if s.via in ("batchSend", "groupSend")]
    assert sum(len(s.users) for s in delivered if s.via == "batchSend") == REACHABLE - 1  # all but GONE
    assert sorted(s.conversation for s in delivered if s.via == "groupSend") == sorted(GROUPS.values())

    # The outbox: three never had an account, one was refused by DingTalk, the rest went out.
    rows = await broadcast_rows(services)
    assert len(rows) == RETIRED + len(GROUPS)
    by_status = collections.Counter(r.status for r in rows)
    assert by_status == {OutboxStatus.SENT: REACHABLE - 1 + len(GROUPS), OutboxStatus.FAILED: 1,
                         OutboxStatus.UNDELIVERABLE: WITHOUT_ACCOUNT}
    undeliverable = [r for r in rows if r.status == OutboxStatus.UNDELIVERABLE]
    assert all(r.person_id is not None and r.user_id is None and r.last_error == NO_ACCOUNT for r in undeliverable)
    [failed] = [r for r in rows if r.status == OutboxStatus.FAILED]
    assert failed.user_id == GONE and "invalidStaffIdList" in failed.last_error
    assert {r.channel for r in rows if r.status != OutboxStatus.UNDELIVERABLE} == {"dingtalk"}

    status = await ask(fake, STAFF, "广播 状态")
    assert f"陈静发送：私信 {RETIRED} 人、群 2 个" in status, status
    assert f"已送达 {REACHABLE - 1 + len(GROUPS)}，排队中 0，失败 1，无法送达 {WITHOUT_ACCOUNT}" in status, status
    assert f"{retired_names()[REACHABLE - 2]}：钉钉ID {md_escape(GONE)} 无效" in status  # markdown: dt\\_r155
    for name in retired_names()[REACHABLE:]:
        assert f"{name}：{NO_ACCOUNT}" in status

    # The same text again the same day: a question, not 159 more messages.
    api_before, sent_before = dict(fake.api_calls), len(fake.sent)
    outbox_before = await count(services, OutboxMessage)
    clock.advance(hours=2)
    again = await ask(fake, STAFF, f"广播 常青藤  {TEXT} ")
    assert "已经发过一条相同的常青藤广播" in again and "广播 确认" in again and "广播 取消" in again, again
    assert await count(services, OutboxMessage) == outbox_before
    assert await drain(cadres) == 0
    assert dict(fake.api_calls) == api_before and len(fake.batch_calls) == 8 and len(fake.group_calls) == 2
    assert [s.via for s in fake.sent[sent_before:]] == ["webhook"]  # only the question itself
    assert await count(services, Broadcast, Broadcast.status == "sent") == 1
    assert await count(services, AuditLog, AuditLog.action == "changqing.broadcast") == 1
    assert fake.token_fetches == 1  # one access token served every call


async def test_140_sign_ups_over_dingtalk_make_88_percent(cadres, services, clock):
    fake = cadres.fake
    assert "已排队发送" in await ask(fake, STAFF, f"广播 常青藤 {TEXT}")
    await drain(cadres)
    api_calls = sum(fake.api_calls.values())

    roles = ["招商引资联络员", "项目攻坚协调员", "", "矛盾纠纷化解员"]
    first = None
    for i in range(1, 141):
        clock.advance(minutes=5)
        role = roles[i % len(roles)]
        pushed = await fake.push_text(f"dt_r{i}", f"报名 {role}".strip())
        first = first or pushed
        [reply] = await fake.wait_reply(pushed)
        assert reply.via == "webhook" and reply.users == [f"dt_r{i}"] and reply.reply_to == pushed.msg_id
        assert "报名成功" in reply.text and f"目前已集结 {i} 人" in reply.text, reply.text
        if role:
            assert f"岗位：**{role}**" in reply.text
    assert "目前已集结 140 人，占全县退职干部 159 人的 88%" in reply.text

    # DingTalk pushing the first sign-up again (its ack "lost") changes nothing.
    await fake.redeliver(first)
    await fake.wait_acked(first, 2)
    assert len(fake.replies_to(first)) == 1
    # Signing up again keeps the count; someone who is not a retired cadre cannot sign up.
    assert "您已经报过名了，岗位：**项目攻坚协调员**" in await ask(fake, "dt_r1", "报名")
    assert "仅限退职干部使用" in await ask(fake, STAFF, "报名")
    assert await count(services, SignUp) == 140

    stats = await ask(fake, STAFF, "统计")
    assert "已报名 140 人 / 退职干部 159 人（88%）" in stats, stats
    per_role = {"招商引资联络员": 35, "项目攻坚协调员": 35, "矛盾纠纷化解员": 35}
    assert "岗位：" + "，".join(f"{r} {per_role.get(r, 0)}" for r in SIX_ROLES) + "，未选岗位 35" in stats
    assert "首次广播 11月19日 10:00，24 小时内报名 140 人（88%）" in stats
    assert "最先响应：李忠兴 11月19日 10:05（广播后 5 分钟）" in stats
    # Every answer went back through its sessionWebhook: no OpenAPI call was spent on them.
    assert sum(fake.api_calls.values()) == api_calls
