"""WeCom (企业微信 / 政务微信) through the whole pipeline: callbacks encrypted and signed exactly as WeCom
does, POSTed to the real endpoint; replies and reminders arriving at a loopback WeCom that behaves like
the real one (token expiry, errors, and the silent per-member drop)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func
from sqlmodel import select

from prometheus_client import REGISTRY

from bot.app import Bangdai
from bot.channels.wecom_api import split_message
from bot.config import Config, ConfigError, Secret
from fakes.wecom import FakeWeCom, WeComCallbacks, point_at, serving
from bot.inbound import Outgoing
from scheduler.outbox import Dispatcher, Outbox
from scheduler.runner import run_job
from storage.models import ChatIdentity, ContactLog, OutboxMessage, OutboxStatus, Person, ProcessedMessage

ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


@pytest.fixture
async def fake(clock):
    async with serving(FakeWeCom(clock, webhook_keys={ROBOT_KEY})) as fake:
        yield fake


@pytest.fixture
def config(db_url, fake) -> Config:  # overrides conftest's: WeCom on, pointed at the fake
    config = Config()
    config.database.url = db_url
    config.schedule.enabled = False  # a catch-up run at startup would queue digests of its own
    point_at(config, fake, {"常青藤一组": ROBOT_KEY})
    return config


class WeComChat:
    """Talks to Bangdai as WeCom does, and reads what reached the fake WeCom."""

    def __init__(self, client: TestClient, bangdai: Bangdai, fake: FakeWeCom, clock) -> None:
        self.client, self.bangdai, self.fake = client, bangdai, fake
        self.channel = bangdai.channels["wecom"]
        self.dispatcher = bangdai.dispatchers["wecom"]
        self.build = WeComCallbacks(clock)
        self.path = bangdai.services.config.wecom.callback_path

    async def post(self, params: dict, body: bytes) -> int:
        resp = await self.client.post(self.path, params=params, data=body, headers={"Content-Type": "text/xml"})
        assert await resp.text() == ""  # WeCom gets nothing but the status
        return resp.status

    async def flush(self) -> None:
        """Let accepted callbacks finish, then deliver what they queued."""
        await self.channel.drain()
        while await self.dispatcher.run_once():
            pass

    async def send(self, plain: str) -> int:
        status = await self.post(*self.build.seal(plain))
        await self.flush()
        return status

    async def say(self, user: str, text: str) -> str:
        before = len(self.fake.inbox(user))
        assert await self.send(self.build.text(user, text)) == 200
        new = self.fake.inbox(user)[before:]
        assert new, f"no reply reached WeCom for {text!r}"
        return "\n".join(new)


@pytest.fixture
async def wecom(client, bangdai, fake, clock) -> WeComChat:
    # Deliveries are driven by the test (run_once) so that what reached WeCom is known at each step.
    await bangdai.dispatchers["wecom"].stop()
    return WeComChat(client, bangdai, fake, clock)


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


# --- URL verification --------------------------------------------------------------------------------

async def test_url_verification_answers_the_decrypted_echostr(wecom, clock):
    resp = await wecom.client.get(wecom.path, params=wecom.build.verification("8432798757034762830"))
    assert resp.status == 200 and await resp.text() == "8432798757034762830"

    forged = wecom.build.verification("1", token="not-our-token")
    stale = wecom.build.verification("1", timestamp=int(clock.now().timestamp()) - 6 * 60)
    other_corp = wecom.build.verification("1", corp_id="ww-someone-else")
    for params, reason in ((forged, "signature"), (stale, "stale"), (other_corp, "corp_id")):
        resp = await wecom.client.get(wecom.path, params=params)
        assert resp.status == 403 and await resp.text() == ""
        assert wecom.channel.rejected[reason] == 1


# --- every command over WeCom --------------------------------------------------------------------------

@pytest.mark.usefixtures("seeded")
async def test_each_command_over_encrypted_callbacks(wecom, services, fake):
    assert "绑定 姓名 手机后四位" in await wecom.say("zhangwei", "帮助")
    assert "绑定成功，张伟" in await wecom.say("zhangwei", "绑定 张伟 1234")
    assert "记录" in await wecom.say("zhangwei", "帮助") and "绑定" not in fake.inbox("zhangwei")[-1]

    logged = await wecom.say("zhangwei", "记录 赵强 面谈 讨论招商项目推进方法")
    assert "已记录：11月19日 面谈" in logged and "本周面谈 ✅" in logged
    week = await wecom.say("zhangwei", "本周")
    assert "与徒弟 赵强" in week and "面谈 ✅ 已完成" in week

    assert "已添加第 1 项" in await wecom.say("zhangwei", "计划 李娜 添加 熟悉信访工作流程")
    assert "1. ⬜ 熟悉信访工作流程" in await wecom.say("zhangwei", "计划 李娜")
    assert "十帮" in await wecom.say("zhangwei", "原则")

    assert "绑定成功，陈静" in await wecom.say("chenjing", "绑定 陈静 5678")
    stats = await wecom.say("chenjing", "统计")
    assert "工作统计" in stats
    # Wrong forms get the usage answer over WeCom too, and write nothing.
    assert "例如" in await wecom.say("zhangwei", "记录 李娜 讨论")
    assert await count(services, ContactLog) == 1
    # Bold text went out as markdown; WeCom saw nothing dropped or cut.
    assert {m.msgtype for m in fake.messages} <= {"markdown", "text"} and "markdown" in {m.msgtype for m in fake.messages}
    assert not fake.dropped and not fake.truncated
    assert await count(services, ChatIdentity, ChatIdentity.channel == "wecom") == 2


async def test_reply_arrives_through_the_running_dispatcher(client, bangdai, fake, clock):
    """No test hand on the outbox: the service's own dispatcher delivers the reply."""
    build = WeComCallbacks(clock)
    params, body = build.seal(build.text("lina", "帮助"))
    resp = await client.post(bangdai.services.config.wecom.callback_path, params=params, data=body)
    assert resp.status == 200
    await fake.wait_for(lambda: fake.inbox("lina"))
    assert "绑定 姓名 手机后四位" in fake.inbox("lina")[0]


# --- redelivery --------------------------------------------------------------------------------------

@pytest.mark.usefixtures("seeded")
async def test_a_retried_callback_changes_nothing_even_after_a_restart(wecom, services, fake, bangdai):
    await wecom.say("zhaoqiang", "绑定 赵强 4567")
    params, body = wecom.build.seal(wecom.build.text("zhaoqiang", "记录 面谈 谈心谈话"))
    for _ in range(3):  # WeCom retries the same request when it thinks we were slow
        assert await wecom.post(params, body) == 200
    await wecom.flush()
    assert await count(services, ContactLog) == 1
    assert len(fake.inbox("zhaoqiang")) == 2  # the bind reply and one 记录 reply
    assert wecom.channel.health()["duplicates"] == 2

    # A new process (same database) receiving the retry still does nothing.
    again = Bangdai(services)
    other = TestClient(TestServer(again.web_app()))
    await other.start_server()
    try:
        resp = await other.post(wecom.path, params=params, data=body)
        assert resp.status == 200
        await again.channels["wecom"].drain()
        await Dispatcher(services.outbox, again.channels["wecom"], 1000).run_once()
    finally:
        await other.close()
    assert await count(services, ContactLog) == 1 and len(fake.inbox("zhaoqiang")) == 2
    assert await count(services, ProcessedMessage) == 2


# --- callbacks that are refused ------------------------------------------------------------------------

def _forged(build, plain):
    return build.seal(plain, token="guessed-token")


def _stale(build, plain):
    return build.seal(plain, timestamp=int(build.clock.now().timestamp()) - 301)


def _future(build, plain):
    return build.seal(plain, timestamp=int(build.clock.now().timestamp()) + 301)


def _absurd_time(build, plain):
    return build.seal(plain, timestamp=10**30)


def _wrong_corp(build, plain):
    return build.seal(plain, corp_id="ww0000000000000000")


def _malformed(build, plain):
    params, _ = build.seal(plain)
    return params, b"<xml><Encrypt><![CDATA[abc]]></Encrypt"


def _no_encrypt(build, plain):
    params, _ = build.seal(plain)
    return params, b"<xml><ToUserName>x</ToUserName></xml>"


def _entities(build, plain):
    params, _ = build.seal(plain)
    return params, b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'


def _oversized(build, plain):
    params, body = build.seal(plain)
    return params, body.replace(b"</xml>", b"<Pad>" + b"x" * 70_000 + b"</Pad></xml>")


def _unsigned(build, plain):
    params, body = build.seal(plain)
    del params["msg_signature"]
    return params, body


@pytest.mark.parametrize("make,status,reason", [
    (_forged, 403, "signature"), (_stale, 403, "stale"), (_future, 403, "stale"), (_absurd_time, 403, "stale"), (_wrong_corp, 403, "corp_id"),
    (_unsigned, 403, "unsigned"), (_malformed, 400, "malformed"), (_no_encrypt, 400, "malformed"),
    (_entities, 400, "malformed"), (_oversized, 413, "too_large"),
])
@pytest.mark.usefixtures("seeded")
async def test_refused_callbacks_do_nothing(wecom, services, fake, make, status, reason):
    params, body = make(wecom.build, wecom.build.text("zhangwei", "绑定 张伟 1234"))
    assert await wecom.post(params, body) == status
    await wecom.flush()
    assert await count(services, ProcessedMessage) == 0
    assert await count(services, OutboxMessage) == 0
    assert await count(services, ChatIdentity, ChatIdentity.channel == "wecom") == 0
    assert fake.messages == [] and fake.send_calls == 0
    health = wecom.channel.health()
    assert health["rejected"] == {reason: 1} and health["received"] == 0
    metrics = await (await wecom.client.get("/metrics")).text()
    assert f'bangdai_wecom_rejected_total{{reason="{reason}"}}' in metrics


async def test_a_plaintext_that_is_not_a_message_is_refused(wecom, services, fake):
    assert await wecom.send("<xml><Nothing/></xml>") == 400
    assert await wecom.send("not xml at all") == 400
    assert await count(services, OutboxMessage) == 0 and fake.send_calls == 0


# --- many users at once --------------------------------------------------------------------------------

async def test_concurrent_callbacks_from_many_users(wecom, services, fake):
    users = [f"user{i:02d}" for i in range(40)]
    sealed = [wecom.build.seal(wecom.build.text(u, "帮助")) for u in users]
    statuses = await asyncio.gather(*(wecom.post(p, b) for p, b in sealed))
    assert statuses == [200] * len(users)
    await wecom.flush()
    for u in users:
        assert len(fake.inbox(u)) == 1 and "绑定 姓名 手机后四位" in fake.inbox(u)[0]
    assert await count(services, ProcessedMessage) == len(users)
    assert fake.token_fetches == 1  # one token shared by every send
    assert wecom.channel.health()["received"] == len(users)


# --- events and other message types ---------------------------------------------------------------------

@pytest.mark.usefixtures("seeded")
async def test_enter_agent_gets_one_welcome_a_day(wecom, fake, clock, services):
    sealed = wecom.build.seal(wecom.build.event("newcomer"))
    assert await wecom.post(*sealed) == 200
    await wecom.flush()
    (welcome,) = fake.inbox("newcomer")
    assert "帮助" in welcome and "绑定 张伟 1234" in welcome
    assert await wecom.post(*sealed) == 200  # WeCom's retry
    clock.advance(minutes=10)
    await wecom.send(wecom.build.event("newcomer"))  # opened the app again the same day
    await wecom.flush()
    assert len(fake.inbox("newcomer")) == 1
    assert wecom.channel.health()["duplicates"] == 1

    await wecom.say("newcomer", "绑定 王芳 2345")
    clock.advance(days=1)
    await wecom.send(wecom.build.event("newcomer"))
    assert fake.inbox("newcomer")[-1].startswith("王芳，您好")
    await wecom.send(wecom.build.event("newcomer", event="click", key="MENU_1"))  # nothing to say to a click
    assert len(fake.inbox("newcomer")) == 3


async def test_a_location_gets_a_one_line_answer_once(wecom, fake, services):
    # (Pictures and files go to 预审 cases: tests/test_sanling_cases_platforms.py.)
    sealed = wecom.build.seal(wecom.build.location("lina"))
    assert await wecom.post(*sealed) == 200
    assert await wecom.post(*sealed) == 200
    await wecom.flush()
    (answer,) = fake.inbox("lina")
    assert "只能看懂文字" in answer and "\n" not in answer.strip()


@pytest.mark.usefixtures("seeded")
async def test_the_gateway_recognises_every_retried_callback(wecom, fake, services):
    """A retried text and a retried location are both known by the gateway's one record of handled
    messages (``Gateway.answered``): the channel keeps none of its own and reads no other table."""
    def duplicates() -> float:
        return REGISTRY.get_sample_value("bangdai_messages_total", {"channel": "wecom", "outcome": "duplicate"}) or 0.0

    before = duplicates()
    text = wecom.build.seal(wecom.build.text("lina", "帮助"))
    place = wecom.build.seal(wecom.build.location("lina"))
    for sealed in (text, place, text, place):
        assert await wecom.post(*sealed) == 200
        await wecom.flush()
    assert duplicates() == before + 2
    assert await count(services, ProcessedMessage) == 2  # the location's answer is remembered too
    assert len(fake.inbox("lina")) == 2 and wecom.channel.health()["duplicates"] == 2


# --- reminders through the outbox, within WeCom's per-member limit ----------------------------------------

async def bind_on_wecom(services, names: dict[str, str]) -> None:
    async with services.db.transaction() as s:
        for name, user in names.items():
            person = (await s.exec(select(Person).where(Person.name == name))).one()
            s.add(ChatIdentity(channel="wecom", platform_user_id=user, person_id=person.id, linked_by="roster",
                               created_at=services.clock.now()))


@pytest.mark.usefixtures("seeded")
async def test_weekly_reminder_goes_out_on_wecom_within_the_member_limit(bangdai, services, fake, clock):
    await bind_on_wecom(services, {"张伟": "zhangwei", "李娜": "lina", "王芳": "wangfang", "赵强": "zhaoqiang"})
    channel = bangdai.channels["wecom"]
    await channel.start()
    dispatcher = Dispatcher(services.outbox, channel, 1000)
    # 张伟 also has a backlog of 40 other messages: more than WeCom lets through in a minute.
    async with services.db.transaction() as s:
        zhang = (await s.exec(select(Person.id).where(Person.name == "张伟"))).one()
        await services.outbox.enqueue_many(s, [Outgoing(key=f"backlog:{i}", person_id=zhang, body=f"通知 {i}")
                                               for i in range(40)])
    clock.set(dt.datetime(2026, 11, 19, 16, 0))
    result = await run_job(services, "weekly_reminder", clock.now())
    assert result.queued == 4  # nobody has met this week

    rounds = 0
    while await count(services, OutboxMessage, OutboxMessage.status != OutboxStatus.SENT) and rounds < 10:
        await dispatcher.run_once()
        clock.advance(seconds=61)
        rounds += 1
    assert await count(services, OutboxMessage, OutboxMessage.status == OutboxStatus.SENT) == 44
    assert rounds >= 2  # the limit really held some back
    assert fake.dropped == []  # WeCom never had to drop anything
    for user in ("zhangwei", "lina", "wangfang", "zhaoqiang"):
        assert sum("周联" in m or "面谈" in m for m in fake.inbox(user)) == 1
    assert len(fake.inbox("zhangwei")) == 41
    for m in fake.messages:  # never more than the configured 25 in any minute
        assert sum(1 for o in fake.messages if o.user == m.user and m.at - dt.timedelta(minutes=1) < o.at <= m.at) <= 25
    await channel.stop()


# --- delivery errors ---------------------------------------------------------------------------------------

async def queue_to(services, channel, user: str, key: str, body: str = "提醒：本周还没有面谈") -> None:
    await channel.queue_to_user(user, [(key, body, "markdown")], source="test")


async def status_of(services, key: str) -> OutboxMessage:
    async with services.db.transaction() as s:
        return (await s.exec(select(OutboxMessage).where(OutboxMessage.key == key))).one()


async def test_delivery_errors_are_classified(bangdai, services, fake, clock):
    channel = bangdai.channels["wecom"]
    dispatcher = Dispatcher(services.outbox, channel, 1000)

    fake.invalid_users = {"gone"}
    await queue_to(services, channel, "gone", "k-gone")
    await dispatcher.run_once()
    gone = await status_of(services, "k-gone")
    assert gone.status == OutboxStatus.FAILED and "invaliduser" in gone.last_error

    for code in (45009, 45033):
        fake.fail_next(code)
        await queue_to(services, channel, "lina", f"k-{code}")
        await dispatcher.run_once()
        row = await status_of(services, f"k-{code}")
        assert row.status == OutboxStatus.QUEUED and str(code) in row.last_error
        assert row.next_attempt_at >= clock.now() + dt.timedelta(seconds=60)
    clock.advance(minutes=11)
    await dispatcher.run_once()
    assert (await status_of(services, "k-45009")).status == OutboxStatus.SENT
    assert len(fake.inbox("lina")) == 2

    # A token WeCom no longer accepts is fetched again once, and the send goes through.
    fetches = fake.token_fetches
    fake.expire_tokens()
    await queue_to(services, channel, "lina", "k-token")
    await dispatcher.run_once()
    assert (await status_of(services, "k-token")).status == OutboxStatus.SENT
    assert fake.token_fetches == fetches + 1
    # Before the token expires (7200 s) it is refreshed without WeCom having to refuse it.
    clock.advance(seconds=7200 - 200)
    await queue_to(services, channel, "lina", "k-refresh")
    calls = fake.send_calls
    await dispatcher.run_once()
    assert fake.token_fetches == fetches + 2 and fake.send_calls == calls + 1
    health = channel.health()
    assert health["api_errors"] == {"81013": 1, "45009": 1, "45033": 1} and health["sent"] == 4
    await channel.stop()


async def test_one_token_fetch_under_concurrency(bangdai, fake):
    channel = bangdai.channels["wecom"]
    tokens = await asyncio.gather(*(channel.api.token() for _ in range(20)))
    assert len(set(tokens)) == 1 and fake.token_fetches == 1
    await channel.stop()


async def test_a_batch_with_one_invalid_member(bangdai, services, fake):
    channel = bangdai.channels["wecom"]
    from bot.inbound import Address

    fake.invalid_users = {"left-the-county"}
    addresses = [Address("wecom", user_id=u) for u in ("lina", "left-the-county", "zhaoqiang")]
    results = await channel.deliver_batch(addresses, "**通知**：周四下午开会", "markdown", ["a", "b", "c"])
    assert results[0] is None and results[2] is None and "invaliduser" in results[1].reason
    assert fake.send_calls == 1 and fake.inbox("lina") == ["**通知**：周四下午开会"]
    await channel.stop()


# --- group robots -----------------------------------------------------------------------------------------

async def test_a_long_group_message_is_split_cleanly_for_the_robot(bangdai, services, fake):
    channel = bangdai.channels["wecom"]
    lines = [f"{i:02d}. 常青藤第{i}组本月实绩：协调项目土地指标、化解矛盾纠纷、走访企业" for i in range(80)]
    body = "**本月排行**\n" + "\n".join(lines)
    assert len(body.encode()) > 3 * 2048
    async with services.db.transaction() as s:
        await services.outbox.enqueue_many(s, [
            Outgoing(key="rank:1", group=("wecom", "常青藤一组"), body=body),
            Outgoing(key="rank:nobody", group=("wecom", "没有这个群"), body="x"),
        ])
    await Dispatcher(services.outbox, channel, 1000).run_once()
    posts = fake.webhooks[ROBOT_KEY]
    assert len(posts) == 4 and fake.webhook_refused == []
    assert all(len(p.content.encode()) <= 2048 for p in posts)
    assert "\n".join(p.content for p in posts) == body  # cut only between lines
    assert (await status_of(services, "rank:1")).status == OutboxStatus.SENT
    nobody = await status_of(services, "rank:nobody")
    assert nobody.status == OutboxStatus.FAILED and "没有这个群" in nobody.last_error
    await channel.stop()


async def test_the_robot_limit_holds_messages_back_instead_of_losing_them(bangdai, services, fake, clock):
    channel = bangdai.channels["wecom"]
    dispatcher = Dispatcher(services.outbox, channel, 1000)
    async with services.db.transaction() as s:
        await services.outbox.enqueue_many(s, [Outgoing(key=f"g{i}", group=("wecom", "常青藤一组"), body=f"第{i}条")
                                               for i in range(25)])
    await dispatcher.run_once()
    assert len(fake.webhooks[ROBOT_KEY]) == 18
    clock.advance(seconds=61)
    await dispatcher.run_once()
    assert len(fake.webhooks[ROBOT_KEY]) == 25 and fake.webhook_refused == []
    await channel.stop()


# --- one person, two platforms ------------------------------------------------------------------------------

@pytest.mark.usefixtures("seeded")
async def test_one_person_on_dingtalk_and_wecom_has_one_history(wecom, services, fake, bangdai):
    from bot.inbound import InboundMessage

    await wecom.say("zhangwei", "绑定 张伟 1234")
    async with services.db.transaction() as s:  # the DingTalk channel links its own ids the same way
        zhang = (await s.exec(select(Person).where(Person.name == "张伟"))).one()
        s.add(ChatIdentity(channel="dingtalk", platform_user_id="ding-0912", person_id=zhang.id, linked_by="roster",
                           created_at=services.clock.now()))
    # Logged on WeCom, seen from DingTalk (through the same gateway the DingTalk channel uses) ...
    await wecom.say("zhangwei", "记录 赵强 面谈 讨论招商项目推进方法")
    replies = await bangdai.gateway.handle(
        InboundMessage(channel="dingtalk", sender_id="ding-0912", conversation_id="c", text="本周", msg_id="d1"))
    assert "讨论招商项目推进方法" in replies[0].text and "面谈 ✅ 已完成" in replies[0].text
    # ... and logged on DingTalk, seen on WeCom.
    await bangdai.gateway.handle(InboundMessage(channel="dingtalk", sender_id="ding-0912", conversation_id="c",
                                                text="记录 李娜 电话 了解近况", msg_id="d2"))
    week = await wecom.say("zhangwei", "本周")
    assert "讨论招商项目推进方法" in week and "了解近况" in week
    assert await count(services, ContactLog) == 2

    # A reminder goes to the preferred platform in [outbox] channel_order, never to both.
    config = services.config
    for order, expected in ((["dingtalk", "wecom", "local"], "dingtalk"), (["wecom", "dingtalk", "local"], "wecom")):
        config.outbox.channel_order = order
        outbox = Outbox(services.db, services.clock, config, ["local", "dingtalk", "wecom"])
        async with services.db.transaction() as s:
            await outbox.enqueue_many(s, [Outgoing(key=f"both:{expected}", person_id=zhang.id, body="提醒")])
        rows = await count(services, OutboxMessage, OutboxMessage.key == f"both:{expected}")
        row = await status_of(services, f"both:{expected}")
        assert rows == 1 and row.channel == expected
        assert row.user_id == {"dingtalk": "ding-0912", "wecom": "zhangwei"}[expected]


# --- health, metrics, configuration ----------------------------------------------------------------------------

async def test_health_and_metrics_show_the_channel(wecom, fake):
    await wecom.say("lina", "帮助")
    health = await (await wecom.client.get("/healthz")).json()
    w = health["channels"]["wecom"]
    assert w["state"] == "ok" and w["received"] == 1 and w["sent"] == 1 and w["token_valid_until"]
    metrics = await (await wecom.client.get("/metrics")).text()
    for name in ("bangdai_wecom_received_total", "bangdai_wecom_sends_total"):
        assert name in metrics


async def test_a_send_refused_for_configuration_shows_on_healthz(bangdai, services, fake):
    channel = bangdai.channels["wecom"]
    fake.agent_id = "999"  # the app was deleted and re-created: our agent_id is wrong now
    await queue_to(services, channel, "lina", "k-agent")
    await Dispatcher(services.outbox, channel, 1000).run_once()
    assert (await status_of(services, "k-agent")).status == OutboxStatus.FAILED
    health = channel.health()
    assert health["state"] == "error" and any("agent_id" in w for w in health["warnings"])
    await channel.stop()


def test_a_bad_encoding_aes_key_is_a_config_error(services):
    from bot.channels.wecom import WeComChannel

    services.config.wecom.encoding_aes_key = Secret("too-short")
    with pytest.raises(ConfigError, match="encoding_aes_key"):
        WeComChannel(services, None)


def test_serve_refuses_a_bad_wecom_key_with_a_clear_message(tmp_path, capsys):
    from bot.cli import main

    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/x.db"\n'
                    '[wecom]\nenabled = true\ncorp_id = "ww1"\nencoding_aes_key = "short"\n', encoding="utf-8")
    assert main(["serve", "--config", str(path)]) == 2
    assert "[wecom] encoding_aes_key" in capsys.readouterr().err


async def test_a_long_app_message_resumes_after_the_part_that_failed(bangdai, services, fake, clock):
    channel = bangdai.channels["wecom"]
    dispatcher = Dispatcher(services.outbox, channel, 1000)
    body = "\n".join(f"第{i}项：熟悉信访工作流程，参与一次招商洽谈，走访两家企业" for i in range(90))
    assert len(body.encode()) > 2 * 2048
    fake.fail_next(None, 45009)  # the first part goes through, the second is throttled
    await queue_to(services, channel, "lina", "k-long", body)
    await dispatcher.run_once()
    assert len(fake.inbox("lina")) == 1 and (await status_of(services, "k-long")).status == OutboxStatus.QUEUED
    clock.advance(minutes=11)
    await dispatcher.run_once()
    assert (await status_of(services, "k-long")).status == OutboxStatus.SENT
    parts = fake.inbox("lina")
    assert len(parts) == len(split_message(body)) >= 3 and "\n".join(parts) == body  # every part once, in order
    assert all(len(p.encode()) <= 2048 for p in parts) and not fake.truncated
    await channel.stop()


@pytest.mark.usefixtures("seeded")
async def test_the_member_window_survives_a_restart(bangdai, services, fake, clock):
    channel = bangdai.channels["wecom"]
    await channel.start()
    for i in range(25):
        await queue_to(services, channel, "lina", f"before:{i}", f"第{i}条")
    await Dispatcher(services.outbox, channel, 1000).run_once()
    await channel.stop()
    clock.advance(seconds=20)

    restarted = Bangdai(services).channels["wecom"]  # a new process: nothing in memory
    await restarted.start()
    await queue_to(services, restarted, "lina", "after", "重启后的第一条")
    await Dispatcher(services.outbox, restarted, 1000).run_once()
    assert (await status_of(services, "after")).status == OutboxStatus.QUEUED
    assert len(fake.inbox("lina")) == 25 and fake.dropped == []
    await restarted.stop()
