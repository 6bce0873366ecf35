"""Feels native (issue 16): one-tap command links in DingTalk, button cards in WeCom, the 晾晒 as a picture.

Through the real dingtalk-stream SDK and the loopback DingTalk fake, real wechatpy crypto against the real
callback endpoint and the WeCom fake, and the real chart drawn with matplotlib and the Noto CJK font.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import func
from sqlmodel import select

from bot import charts
from bot.app import enabled_channels
from bot.channels.wecom import WeComChannel
from bot.clock import TZ
from bot.commands import as_plain, cmd, commands_in, present
from bot.render import Renderer, picture_body
from bot.text import md_escape, md_unescape
from conftest import write
from fakes.wecom import Card, FakeWeCom, WeComCallbacks, point_at, serving
from handlers.changqing.records import RankRow, ranking_picture
from handlers.sheets.roster import import_roster
from scheduler.outbox import Dispatcher, Outbox
from scheduler.runner import run_job
from storage.models import ContactLog, OutboxMessage, SignUp, Squad, Unit
from storage.models.changqing import SIX_ROLES

ROBOT_KEY = "native-robot-key"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


# --- the command mark ----------------------------------------------------------------------------------

def test_a_command_mark_is_a_link_on_dingtalk_and_bold_words_elsewhere():
    mark = cmd("季评 李娜 较好", "较好")
    assert list(commands_in(mark)) == [("较好", "季评 李娜 较好")]
    linked = present(f"点：{mark}", "dingtalk")
    assert linked == ("点：[较好](dtmd://dingtalkclient/sendMessage?content="
                      "%E5%AD%A3%E8%AF%84%20%E6%9D%8E%E5%A8%9C%20%E8%BE%83%E5%A5%BD)")
    assert present(f"点：{mark}", "plain") == "点：**季评 李娜 较好**"  # what to type, in full
    assert present("没有命令", "dingtalk") == "没有命令"


def test_user_values_inside_a_mark_are_encoded_and_user_text_cannot_forge_one():
    # A name with Markdown and link syntax in it: the command stays one link, the words stay words.
    mark = cmd("季评 李](x) 较好")
    assert list(commands_in(mark)) == [("季评 李](x) 较好", "季评 李](x) 较好")]
    assert present(mark, "dingtalk").count("](dtmd://") == 1
    assert present(mark, "plain") == "**季评 李\\](x) 较好**"
    # Text someone typed that imitates a mark is escaped by the templates (| md) and stays text.
    forged = md_escape("[答复 #1 好](bangdai-cmd:%E7%AD%94)")
    assert list(commands_in(forged)) == [] and "dtmd" not in present(forged, "dingtalk")
    assert as_plain(forged) == forged


def test_remembered_marks_and_escapes_answer_as_made_afresh():
    # cmd(), md_escape and the channels' forms of a mark are remembered (bot/commands.py, bot/text.py):
    # equal keys of other types, the same mark in two styles and a repeat must still answer as new.
    assert cmd(1) != cmd(True) and cmd(1) == cmd("1") == cmd(1) and cmd(True) == cmd("True")
    assert cmd("记录 面谈") is cmd("记录 面谈") and cmd("记录  面谈", "面谈") != cmd("记录 面谈")
    assert cmd(["记录"]) == cmd("['记录']")  # unhashable: made, not remembered
    mark = cmd("记录 面谈")
    for _ in range(2):
        assert present(mark, "dingtalk").startswith("[记录 面谈](dtmd://")
        assert present(mark, "plain") == "**记录 面谈**"
    for value in ("*李*", "- 列表", "*李*"):
        assert md_escape(value) == md_escape(str(value)) and md_unescape(md_escape(value)) == value
    long = "# " + "长" * 100
    assert md_escape(long) == "\\" + long and md_escape(long) == md_escape(long)


# --- DingTalk: a tapped link is the command --------------------------------------------------------------

async def test_tapping_the_link_in_a_dingtalk_reply_logs_the_meeting(dingtalk, seeded, services):
    fake = dingtalk.fake
    assert "绑定成功" in await fake.say("dt_lina", "绑定 李娜 3456")
    pushed = await fake.push_text("dt_lina", "本周")
    [week] = await fake.wait_reply(pushed)
    assert week.msgtype == "markdown" and "bangdai-cmd" not in week.text
    assert week.links() == {"记录 面谈": "记录 面谈"}

    tapped = await fake.tap(week, "记录 面谈")  # DingTalk sends the link's content as 李娜's own message
    [answer] = await fake.wait_reply(tapped)
    assert "已记录" in answer.text and "面谈" in answer.text and "本周面谈 ✅ 已完成" in answer.text
    assert await count(services, ContactLog) == 1
    again = await fake.push_text("dt_lina", "本周")
    assert "记录 面谈" not in (await fake.wait_reply(again))[0].links()  # done: nothing left to tap


async def test_the_same_reply_on_the_local_channel_says_what_to_type(chat, seeded):
    week = await chat.say("u2", "本周")
    assert "**记录 面谈**" in week and "bangdai-cmd" not in week and "dtmd" not in week
    assert "已记录" in await chat.say("u2", "记录 面谈")  # the hint works when typed back verbatim


async def test_staff_lists_offer_one_link_per_item(dingtalk, seeded, services):
    fake = dingtalk.fake
    await fake.say("dt_chen", "绑定 陈静 5678")
    await fake.say("dt_lina", "绑定 李娜 3456")
    await fake.say("dt_lina", "信箱 退出现职后的待遇如何落实？")
    todo = await fake.push_text("dt_chen", "信箱 待办")
    [sent] = await fake.wait_reply(todo)
    assert sent.links() == {"答复 #1": "答复 #1"}
    shown = await fake.tap(sent, "答复 #1")  # the inquiry in full and how to answer, nothing written
    assert "答复格式：答复 #1 答复内容" in (await fake.wait_reply(shown))[0].text

    reviews = await fake.push_text("dt_chen", "季评")
    [listing] = await fake.wait_reply(reviews)
    # One link per rating on each pending pair's line (the fake's dict keeps the last pair's).
    for rating in ("好", "较好", "一般", "差"):
        assert listing.text.count(f"[{rating}](dtmd://") == 2
    assert listing.links()["较好"] == "季评 赵强 较好"
    tapped = await fake.tap(listing, "较好")
    assert "赵强 — 较好" in (await fake.wait_reply(tapped))[0].text


# --- WeCom: a button card, tapped once or retried -------------------------------------------------------

WECOM_ROSTER = """\
姓名,手机,单位,职务,角色,企业微信ID
陈静,13700005678,县委组织部,干部科科长,组工干部,chenjing
李忠兴,13600001111,县服务业办,原主任,退职干部,lizhongxing
"""


@pytest.fixture
async def wecom_fake(clock):
    async with serving(FakeWeCom(clock, webhook_keys={ROBOT_KEY})) as fake:
        yield fake


@pytest.fixture
def config(config, wecom_fake):
    point_at(config, wecom_fake, {"常青藤二组": ROBOT_KEY})
    return config


async def _callback(client, config, params_body) -> int:
    params, body = params_body
    resp = await client.post(config.wecom.callback_path, params=params, data=body)
    return resp.status


async def _wecom_roster(services, tmp_path):
    report = await import_roster(services.db, write(tmp_path, "roster.csv", WECOM_ROSTER), now=services.clock.now())
    assert report.ok, report.lines()


async def test_a_wecom_button_tap_signs_up_once_and_updates_the_card(client, bangdai, services, wecom_fake, clock,
                                                                   tmp_path):
    await _wecom_roster(services, tmp_path)
    wecom = bangdai.channels["wecom"]
    dispatch = Dispatcher(services.outbox, wecom, 1000)
    build = WeComCallbacks(clock)
    assert await _callback(client, services.config, build.seal(build.text("chenjing", "广播 常青藤 常青藤行动启动"))) == 200
    await wecom.drain()
    while await dispatch.run_once():
        pass
    [card] = [c for c in wecom_fake.cards if c.user == "lizhongxing"]
    # WeCom takes six buttons: the six 六大员 posts, first in the call
    assert set(card.keys().values()) == {f"报名 {post}" for post in SIX_ROLES}
    assert any("常青藤行动启动" in m for m in wecom_fake.inbox("lizhongxing"))  # the call itself, as text

    task, key, code = wecom_fake.press("lizhongxing", "报名 招商引资联络员")
    tap = build.card_event("lizhongxing", task, key, code)
    for _ in range(3):  # WeCom retries a callback it thinks went unanswered
        assert await _callback(client, services.config, build.seal(tap)) == 200
    await wecom.drain()
    while await dispatch.run_once():
        pass
    assert await count(services, SignUp) == 1
    signed = [m for m in wecom_fake.inbox("lizhongxing") if "报名成功" in m]
    assert len(signed) == 1 and "招商引资联络员" in signed[0]
    assert [u["button"]["replace_name"] for u in wecom_fake.card_updates] == ["已报名：招商引资联络员"]
    assert wecom_fake.card_updates[0]["response_code"] == code and wecom_fake.card_update_refused == []
    assert wecom.health()["cards_updated"] == 1
    await wecom.stop()


async def test_a_tap_that_is_refused_does_not_say_signed_up(client, bangdai, services, wecom_fake, clock, tmp_path):
    await _wecom_roster(services, tmp_path)
    wecom = bangdai.channels["wecom"]
    dispatch = Dispatcher(services.outbox, wecom, 1000)
    build = WeComCallbacks(clock)
    # 陈静 is staff, not a retired cadre: a tap of 报名 (on a card she was shown) is refused, and the
    # card then says only what was sent.
    wecom_fake.cards.append(Card("chenjing", {"task_id": "t1", "button_list": [{"text": "报名", "key": "报名"}]},
                                 clock.now()))
    task, key, code = wecom_fake.press("chenjing", "报名")
    await _callback(client, services.config, build.seal(build.card_event("chenjing", task, key, code)))
    await wecom.drain()
    while await dispatch.run_once():
        pass
    assert await count(services, SignUp) == 0
    assert [u["button"]["replace_name"] for u in wecom_fake.card_updates] == ["已发送：报名"]
    await wecom.stop()


async def test_without_card_support_the_call_is_text(client, bangdai, services, wecom_fake, clock, tmp_path):
    services.config.wecom.cards = False  # 政务微信 without template cards
    await _wecom_roster(services, tmp_path)
    wecom = bangdai.channels["wecom"]
    build = WeComCallbacks(clock)
    await _callback(client, services.config, build.seal(build.text("chenjing", "广播 常青藤 常青藤行动启动")))
    await wecom.drain()
    while await Dispatcher(services.outbox, wecom, 1000).run_once():
        pass
    assert wecom_fake.cards == []
    [call] = [m for m in wecom_fake.inbox("lizhongxing") if "常青藤行动启动" in m]
    assert "**报名 招商引资联络员**" in call and "bangdai-cmd" not in call
    await wecom.stop()


# --- the 晾晒 as a picture ------------------------------------------------------------------------------

KNOWN = [RankRow(1, "招商一组", "破山行动专班", 3, 4.5), RankRow(2, "项目二组", "项目攻坚专班", 2, 2.0),
         RankRow(3, "治理三组", "基层治理专班", 0, 0.0)]


def test_the_ranking_picture_shows_every_group_month_and_county():
    picture = ranking_picture(Renderer(TEMPLATES), KNOWN, "2026年11月", "开化县")
    fig = charts.figure(picture.spec)
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    for row in KNOWN:
        assert any(f"{row.squad}（{row.task_force}）" in t for t in texts), row.squad
    assert "4.5 分 · 3 项" in texts and "0 分 · 0 项" in texts
    assert any("2026年11月" in t for t in texts) and any("开化县" in t for t in texts)
    data = charts.png(picture.spec)
    assert data.startswith(charts.PNG_SIGNATURE) and len(data) < charts.MAX_BYTES
    image = Image.open(io.BytesIO(data))
    image.verify()
    assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 250


async def test_ranking_command_sends_the_picture_on_dingtalk_only_the_text_locally(dingtalk, chat, seeded,
                                                                                   services):
    async with services.db.transaction() as s:
        unit = Unit(name="破山行动专班", kind="专班")
        s.add(unit)
        await s.flush()
        s.add(Squad(name="招商一组", task_force_id=unit.id, created_at=services.clock.now()))
    text = await chat.say("u1", "排行")
    assert "招商一组" in text and "bangdai-cmd" not in text
    fake = dingtalk.fake
    await fake.say("dt_zw", "绑定 张伟 1234")
    pushed = await fake.push_text("dt_zw", "排行")
    await fake.wait_until(lambda: fake.images(), what="the ranking picture")
    [image] = fake.images()
    assert image.users == ["dt_zw"] and image.image.startswith(charts.PNG_SIGNATURE)
    assert fake.uploads[-1][1]["errcode"] == 0 and "招商一组" in fake.replies_to(pushed)[0].text


async def test_monthly_ranking_picture_reaches_dingtalk_and_wecom_groups(dingtalk, services, wecom_fake, tmp_path):
    config = services.config
    config.dingtalk.groups = {"常青藤一组": "cidRank1"}
    config.changqing.groups = ["dingtalk:常青藤一组", "wecom:常青藤二组"]
    dingtalk.fake.groups.add("cidRank1")
    services.outbox = Outbox(services.db, services.clock, config, enabled_channels(config))
    async with services.db.transaction() as s:
        for name, tf in (("招商一组", "破山行动专班"), ("项目二组", "项目攻坚专班")):
            unit = Unit(name=tf, kind="专班")
            s.add(unit)
            await s.flush()
            s.add(Squad(name=name, task_force_id=unit.id, created_at=services.clock.now()))
    result = await run_job(services, "monthly_ranking", dt.datetime(2026, 11, 30, 17, 0, tzinfo=TZ))
    assert result.queued == 4  # text and picture to each group
    async with services.db.transaction() as s:
        [body] = set((await s.exec(select(OutboxMessage.body).where(OutboxMessage.format == "image"))).all())
    await Dispatcher(services.outbox, dingtalk.channel, 1000).run_once()
    wecom = WeComChannel(services, None)
    await Dispatcher(services.outbox, wecom, 1000).run_once()
    await wecom.stop()
    expected = charts.png(json.loads(body))
    [ding] = dingtalk.fake.images()
    assert ding.group and ding.conversation == "cidRank1" and ding.image == expected
    [robot] = wecom_fake.images[ROBOT_KEY]
    assert robot == expected and wecom_fake.webhooks[ROBOT_KEY][-1].content == hashlib.md5(expected).hexdigest()
    texts = [s.text for s in dingtalk.fake.sent if s.msgtype == "sampleMarkdown"]
    assert any("招商一组" in t for t in texts)  # the text version went too


# --- the fakes refuse what the platforms refuse ---------------------------------------------------------

async def test_the_fakes_refuse_malformed_pictures_and_cards(dingtalk_fake, wecom_fake):
    async with aiohttp.ClientSession() as http:
        token = (await (await http.post(f"{dingtalk_fake.api_base}/v1.0/oauth2/accessToken",
                                        json={"appKey": dingtalk_fake.client_id,
                                              "appSecret": dingtalk_fake.client_secret})).json())["accessToken"]
        form = aiohttp.FormData()
        form.add_field("media", b"not a picture at all", filename="x.png", content_type="image/png")
        answer = await (await http.post(f"{dingtalk_fake.api_base}/media/upload",
                                        params={"access_token": token, "type": "image"}, data=form)).json()
        assert answer["errcode"] == 40005
        send = await http.post(f"{dingtalk_fake.api_base}/v1.0/robot/groupMessages/send",
                               headers={"x-acs-dingtalk-access-token": token},
                               json={"robotCode": dingtalk_fake.robot_code, "openConversationId": "cid",
                                     "msgKey": "sampleImageMsg", "msgParam": json.dumps({"photoURL": "@never"})})
        assert send.status == 400

        hook = f"{wecom_fake.base}/cgi-bin/webhook/send"
        png = charts.png(ranking_picture(Renderer(TEMPLATES), KNOWN, "2026年11月", "开化县").spec)
        wrong_md5 = {"msgtype": "image", "image": {"base64": base64.b64encode(png).decode(), "md5": "0" * 32}}
        assert (await (await http.post(hook, params={"key": ROBOT_KEY}, json=wrong_md5)).json())["errcode"] == 40058
        big = b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024)
        too_big = {"msgtype": "image", "image": {"base64": base64.b64encode(big).decode(),
                                                 "md5": hashlib.md5(big).hexdigest()}}
        assert (await (await http.post(hook, params={"key": ROBOT_KEY}, json=too_big)).json())["errcode"] == 40009
        gettoken = await (await http.get(f"{wecom_fake.base}/cgi-bin/gettoken",
                                         params={"corpid": wecom_fake.corp_id, "corpsecret": wecom_fake.secret})).json()
        send = f"{wecom_fake.base}/cgi-bin/message/send"
        base_card = {"touser": "u", "msgtype": "template_card", "agentid": wecom_fake.agent_id}
        for card, why in (({"card_type": "button_interaction", "main_title": {"title": "t"},
                            "button_list": [{"text": "a", "key": "a"}]}, "no task_id"),
                          ({"card_type": "button_interaction", "task_id": "bad id!", "main_title": {"title": "t"},
                            "button_list": [{"text": "a", "key": "a"}]}, "task_id characters"),
                          ({"card_type": "button_interaction", "task_id": "t2", "main_title": {"title": "t"},
                            "button_list": [{"text": str(i), "key": str(i)} for i in range(7)]}, "7 buttons")):
            answer = await (await http.post(send, params={"access_token": gettoken["access_token"]},
                                            json={**base_card, "template_card": card})).json()
            assert answer["errcode"] == 40058, why
        update = await (await http.post(f"{wecom_fake.base}/cgi-bin/message/update_template_card",
                                        params={"access_token": gettoken["access_token"]},
                                        json={"userids": ["u"], "agentid": wecom_fake.agent_id,
                                              "response_code": "never-issued", "button": {"replace_name": "x"}})).json()
        assert update["errcode"] == 40058


def test_picture_bodies_are_stable():
    spec = {"kind": "ranking", "rows": [], "title": "t"}
    assert picture_body(spec) == picture_body(dict(reversed(list(spec.items()))))


async def test_weekly_digest_carries_the_compliance_chart_to_wecom_staff(client, bangdai, services, seeded, wecom_fake,
                                                                      clock):
    wecom = bangdai.channels["wecom"]
    build = WeComCallbacks(clock)
    assert await _callback(client, services.config, build.seal(build.text("chenjing", "绑定 陈静 5678"))) == 200
    await wecom.drain()
    result = await run_job(services, "weekly_digest", dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ))
    assert result.queued == 2  # the digest's text and its chart
    async with services.db.transaction() as s:
        [body] = (await s.exec(select(OutboxMessage.body).where(OutboxMessage.format == "image"))).all()
    spec = json.loads(body)
    assert spec["kind"] == "compliance" and spec["weeks"][-1]["label"] == "11月16日起"
    texts = [t.get_text() for t in charts.figure(spec).findobj(lambda o: hasattr(o, "get_text"))]
    assert "11月16日起" in texts and any("周联" in t for t in texts)
    while await Dispatcher(services.outbox, wecom, 1000).run_once():
        pass
    [(user, picture)] = wecom_fake.member_images
    assert user == "chenjing" and picture == charts.png(spec)
    assert any("上周周联情况" in m for m in wecom_fake.inbox("chenjing"))
    await wecom.stop()


async def test_in_a_dingtalk_group_the_commands_stay_words(dingtalk, seeded, services):
    """A tapped link sends its text to the group without @-ing the robot, which never sees it: groups
    get the commands as words; the same call in a private chat gets links."""
    config = services.config
    config.dingtalk.groups = {"常青藤一组": "cidCall1"}
    config.changqing.groups = ["dingtalk:常青藤一组"]
    dingtalk.fake.groups.add("cidCall1")
    fake = dingtalk.fake
    await fake.say("dt_chen", "绑定 陈静 5678")
    assert "已排队" in await fake.say("dt_chen", "广播 常青藤 常青藤行动启动")
    await dingtalk.dispatcher.run_once()
    [post] = [s for s in fake.sent if s.via == "groupSend"]
    assert "**报名 招商引资联络员**" in post.text and "dtmd://" not in post.text
    in_group = await fake.push_text("dt_chen", "岗位", group="cidCall1")
    [answer] = await fake.wait_reply(in_group)
    assert answer.links() == {} and "**报名 招商引资联络员**" in answer.text
    private = await fake.push_text("dt_chen", "岗位")
    assert "报名 招商引资联络员" in (await fake.wait_reply(private))[0].links()
