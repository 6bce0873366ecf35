"""导师帮带: the commands' logic through the in-process harness (answers' keys and values, the database);
the local channel's HTTP contract, de-duplication and one conversation end to end through ``chat``."""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.models import ChatIdentity, ContactLog, PlanItem, ProcessedMessage

pytestmark = pytest.mark.usefixtures("seeded")


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


# Logic through the in-process harness (template keys and values); the local channel's HTTP, its limits and
# one conversation's wording end to end stay on ``chat``.

# --- 帮助 and 绑定 -------------------------------------------------------------------------------

def listed(said) -> set[str]:
    return {c.keyword for c in said.values["commands"]}


async def test_help_depends_on_roles(bot):
    assert (await bot.ask("stranger", "帮助")).key == "help/unbound"
    mentor = await bot.ask("u1", "帮助")
    assert mentor.key == "help/list" and {"记录", "计划"} <= listed(mentor) and "绑定" not in listed(mentor)
    nobody = await bot.ask("u6", "help")
    assert nobody.key == "help/list" and "本周" in listed(nobody) and "记录" not in listed(nobody)
    detail = await bot.ask("u1", "帮助 记录")
    assert detail.key == "help/command" and detail.values["command"].keyword == "记录"
    assert "记录 李娜 昨天 电话 沟通信访件处理" in detail.values["command"].examples


async def test_one_account_per_person_per_platform(bot, services):
    assert (await bot.ask("new", "本周")).key == "errors/need_bind"  # unbound: told to bind
    # 周敏 already has u6 on the local channel from the roster
    assert (await bot.ask("new", "绑定 周敏 6789")).key == "people/bind_taken"
    assert await count(services, ChatIdentity, ChatIdentity.platform_user_id == "new") == 0


async def test_bind_success_and_already_bound(bot, services):
    from storage.models import Person

    async with services.db.transaction() as s:
        s.add(Person(name="孙丽", phone="13600001111", created_at=services.clock.now()))
    bound = await bot.ask("w1", "绑定　孙丽　1111")
    assert bound.key == "people/bound" and "孙丽" in bound.text
    again = await bot.ask("w1", "绑定 孙丽 1111")
    assert again.key == "people/already_bound" and "孙丽" in again.text
    assert (await bot.ask("w1", "本周")).key == "mentoring/no_pair"
    assert await count(services, ChatIdentity, ChatIdentity.platform_user_id == "w1") == 1


@pytest.mark.parametrize("text,why", [
    ("绑定", "people/usage/bind"),
    ("绑定 张伟", "people/usage/bind"),
    ("绑定 张伟 12a4", "people/usage/bind_last4"),
    ("绑定 张伟 1234 多余", "people/usage/bind_last4"),
])
async def test_bind_wrong_forms(bot, services, text, why):
    reply = await bot.ask("x1", text)
    assert reply.key == "errors/usage" and reply.why == why and reply.values["example"] == "绑定 张伟 1234"
    assert await count(services, ChatIdentity, ChatIdentity.platform_user_id == "x1") == 0


async def test_bind_locks_after_five_failures_for_an_hour(bot, services, clock):
    from storage.models import Person

    async with services.db.transaction() as s:
        s.add(Person(name="孙丽", phone="13600001111", created_at=clock.now()))
    for left in (4, 3, 2, 1):
        failed = await bot.ask("x2", "绑定 孙丽 9999")
        assert failed.key == "people/bind_failed" and failed.values["left"] == left
    assert (await bot.ask("x2", "绑定 孙丽 9999")).key == "people/bind_locked"
    # Even the right answer is refused while locked: nobody can keep guessing.
    assert (await bot.ask("x2", "绑定 孙丽 1111")).key == "people/bind_locked"
    clock.advance(minutes=30)
    assert (await bot.ask("x2", "绑定 孙丽 1111")).key == "people/bind_locked"
    clock.advance(minutes=31)
    assert (await bot.ask("x2", "绑定 孙丽 1111")).key == "people/bound"
    # Another chat identity was never locked.


# --- 记录 -------------------------------------------------------------------------------------

async def test_log_for_a_mentee_with_one_pair(chat, services):
    """End to end over the local channel's HTTP, wording and all."""
    reply = await chat.say("u4", "记录 面谈 讨论招商项目推进方法")
    assert "已记录：11月19日 面谈" in reply and "本周面谈 ✅" in reply
    assert await count(services, ContactLog) == 1


async def test_log_with_counterpart_date_and_mode(bot, services):
    said = await bot.ask("u1", "记录 李娜 昨天 电话 沟通信访件处理")
    assert said.key == "mentoring/logged"
    assert said.values["day"] == dt.date(2026, 11, 18) and said.values["mode"] == "电话"
    status = said.values["status"]
    assert status["view"].mentee.name == "李娜" and not status["face_done"]  # no 面谈 yet this week
    async with services.db.transaction() as s:
        log = (await s.exec(select(ContactLog))).one()
    assert log.day == dt.date(2026, 11, 18) and log.mode == "电话" and log.note == "沟通信访件处理"


async def test_tolerant_input(bot, services):
    assert (await bot.ask("u4", "@帮带助手　记录：面谈，讨论工作作风")).key == "mentoring/logged"
    assert (await bot.ask("u4", "ＬＯＧ  face  2026-11-17  谈心")).values["mode"] == "面谈"
    video = await bot.ask("u4", "log 11月16日 视频 复盘")
    assert video.key == "mentoring/logged" and video.values["mode"] == "视频"
    assert await count(services, ContactLog) == 3


async def test_mentor_team_both_mentors_log_and_mentee_sees_both(bot):
    await bot.ask("u1", "记录 李娜 电话 了解近况")
    await bot.ask("u3", "记录 面谈 讨论招商引资项目")  # 王芳 has one pair: no name needed
    week = await bot.ask("u2", "本周")
    assert week.key == "mentoring/week"
    [status] = week.values["statuses"]
    assert [m.name for m in status["view"].mentors] == ["张伟", "王芳"] and status["face_done"]
    assert {(c["log"].mode, c["author"], c["log"].note) for c in status["contacts"]} == {
        ("电话", "张伟", "了解近况"), ("面谈", "王芳", "讨论招商引资项目")}
    assert status["quarter_count"] == 2


@pytest.mark.parametrize("user,text,key,why", [
    ("u1", "记录 面谈 讨论", "mentoring/which_pair", None),  # two pairs: which one?
    ("u4", "记录", "errors/usage", "errors/phrases/no_mode"),
    ("u4", "记录 讨论招商项目推进方法", "errors/usage", "errors/phrases/no_mode_before"),
    ("u4", "记录 明天 面谈 提前写", "errors/usage", "errors/dates/future"),
    ("u4", "记录 2026-10-01 面谈 太早", "errors/usage", "errors/dates/too_old"),
    ("u4", "记录 2026-02-30 面谈 不存在", "errors/usage", "errors/dates/no_such_day"),
    ("u1", "记录 王五 面谈 x", "mentoring/not_counterpart", None),
    ("u2", "记录 赵强 面谈 x", "mentoring/not_counterpart", None),
    ("u6", "记录 面谈 x", "errors/not_allowed", None),
    ("stranger", "记录 面谈 x", "errors/need_bind", None),
])
async def test_log_wrong_forms_write_nothing(bot, services, user, text, key, why):
    reply = await bot.ask(user, text)
    assert (reply.key, reply.why) == (key, why), reply.text
    if key == "mentoring/not_counterpart":
        assert reply.values["name"] == text.split()[1] and reply.values["mentee_only"] == (user == "u2")
    if key == "errors/not_allowed":
        assert set(reply.values["roles"]) == {"导师", "徒弟"}
    assert await count(services, ContactLog) == 0


async def test_person_with_no_pair(bot, services):
    from storage.models import PersonRole

    async with services.db.transaction() as s:
        s.add(PersonRole(person_id=6, role="导师"))
    assert (await bot.ask("u6", "记录 面谈 x")).key == "mentoring/no_pair"


async def test_ambiguous_counterpart(bot, services, tmp_path):
    from conftest import write
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster

    now = services.clock.now()
    await import_roster(services.db, write(tmp_path, "r.csv", "姓名,手机,单位\n李娜,13911112222,城关街道\n"), now=now)
    await import_pairs(services.db, write(tmp_path, "p.csv", "徒弟,导师,开始日期\n李娜（城关街道）,张伟,2026-03-01\n"), now=now)
    asked = await bot.ask("u1", "记录 李娜 面谈 x")
    assert asked.key == "mentoring/ambiguous" and asked.values["name"] == "李娜"


# --- 本周 --------------------------------------------------------------------------------------

async def test_status_for_staff_shows_compliance_and_lapsed_pairs(bot, clock):
    clock.set(dt.datetime(2026, 11, 5, 10, 0))
    await bot.ask("u2", "记录 面谈 W45 的面谈")
    clock.set(dt.datetime(2026, 11, 19, 10, 0))
    staff = await bot.ask("u5", "本周")
    assert staff.key == "mentoring/week_staff"
    c = staff.values["c"]
    assert (c.total, c.done_count) == (2, 0)
    # 张伟 — 赵强 never met since March; 张伟、王芳 — 李娜 only missed W46: not yet 2 weeks
    assert [v.label for v, _ in c.lapsed] == ["张伟 — 赵强"]
    await bot.ask("u4", "记录 面谈 谈心")
    c = (await bot.ask("u5", "本周")).values["c"]
    assert (c.total, c.done_count) == (2, 1) and c.lapsed == []


async def test_status_for_person_without_pair_or_staff_role(bot):
    assert (await bot.ask("u6", "本周")).key == "mentoring/no_pair"


# --- 计划 --------------------------------------------------------------------------------------

async def test_plan_add_list_done(bot, services):
    added = await bot.ask("u1", "计划 李娜 添加 熟悉信访工作流程")
    assert added.key == "mentoring/plan_added" and added.values["seq"] == 1
    assert (await bot.ask("u3", "计划 添加 参与一次招商洽谈")).values["seq"] == 2
    plan = await bot.ask("u2", "计划")
    assert plan.key == "mentoring/plan"
    assert [(i.seq, i.text, i.done_at) for i in plan.values["items"]] == [
        (1, "熟悉信访工作流程", None), (2, "参与一次招商洽谈", None)]
    done = await bot.ask("u2", "计划 完成 2")
    assert done.key == "mentoring/plan_done" and done.values["item"].seq == 2
    again = await bot.ask("u3", "计划 完成 2")
    assert again.key == "mentoring/plan_already_done" and "11月19日" in again.text
    [status] = (await bot.ask("u2", "本周")).values["statuses"]
    assert (status["plan_done"], status["plan_total"]) == (1, 2)


@pytest.mark.parametrize("user,text,key,why", [
    ("u2", "计划 添加 自己加", "mentoring/plan_mentor_only", None),
    ("u1", "计划 添加 x", "mentoring/which_pair", None),
    ("u3", "计划 添加", "errors/usage", "mentoring/usage/plan_add"),
    ("u2", "计划 完成", "errors/usage", "mentoring/usage/plan_done"),
    ("u2", "计划 完成 二", "errors/usage", "mentoring/usage/plan_done"),
    ("u2", "计划 完成 9", "mentoring/plan_no_item", None),
    ("u3", "计划 李娜 删除 1", "errors/usage", "mentoring/usage/plan_action"),
    ("u6", "计划", "errors/not_allowed", None),
])
async def test_plan_wrong_forms(bot, services, user, text, key, why):
    reply = await bot.ask(user, text)
    assert (reply.key, reply.why) == (key, why), reply.text
    if key == "mentoring/plan_no_item":
        assert reply.values["seq"] == 9
    assert await count(services, PlanItem) == 0


# --- 原则, unknown commands, limits --------------------------------------------------------------

async def test_principles_from_the_data_file(bot, services, tmp_path):
    reply = await bot.ask("u2", "原则")
    assert reply.key == "mentoring/principles" and reply.values["example"]
    assert len(reply.values["help"]) == 10 and len(reply.values["not_help"]) == 10
    custom = tmp_path / "p.toml"
    custom.write_text('title = "本县原则"\nhelp = ["帮甲"]\nnot_help = ["不帮乙"]\n', encoding="utf-8")
    services.config.programme.principles_file = str(custom)
    reply = await bot.ask("u2", "principles")
    assert (reply.values["title"], reply.values["help"], reply.values["not_help"]) == ("本县原则", ["帮甲"], ["不帮乙"])
    assert not reply.values["example"]
    custom.write_text("help = 3", encoding="utf-8")
    assert (await bot.ask("u2", "原则")).key == "mentoring/principles_broken"


async def test_unknown_command_suggests_commands(chat, bot):
    reply = await chat.say("u2", "你好")  # the wording end to end: what to send instead
    assert "没看懂" in reply and "帮助" in reply and "记录 面谈" in reply
    assert (await bot.ask("stranger", "你好")).key == "errors/need_bind"
    empty = await bot.ask("u2", "")
    assert empty.key == "errors/unknown" and "帮助" in {c.keyword for c in empty.values["commands"]}


async def test_text_over_2000_chars_is_refused_not_truncated(bot, services):
    reply = await bot.ask("u4", "记录 面谈 " + "很" * 2000)
    assert reply.key == "errors/too_long" and reply.values["limit"] == 2000
    assert await count(services, ContactLog) == 0


# --- de-duplication, concurrency, the HTTP contract ------------------------------------------------

async def test_repeated_msg_id_answers_the_same_and_writes_nothing(chat, services):
    first = await chat.replies("u4", "记录 面谈 谈心", msg_id="m-1")
    again = await chat.replies("u4", "记录 面谈 谈心", msg_id="m-1")
    assert first == again
    assert await count(services, ContactLog) == 1
    refused = await chat.replies("u4", "记录", msg_id="m-2")
    assert refused == await chat.replies("u4", "记录 面谈 不同的文字", msg_id="m-2")
    assert await count(services, ContactLog) == 1
    assert await count(services, ProcessedMessage) == 2


async def test_concurrent_duplicates_act_once(chat, services):
    results = await asyncio.gather(*(chat.replies("u4", "记录 面谈 并发", msg_id="same") for _ in range(10)))
    assert all(r == results[0] for r in results)
    assert await count(services, ContactLog) == 1


async def test_concurrent_messages_from_many_users(chat, services, tmp_path):
    from conftest import write
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster

    n = 40
    roster = "姓名,手机,角色,本地ID\n" + "".join(
        f"导师{chr(0x4e00 + i)},1380000{i:04d},导师,m{i}\n徒弟{chr(0x4e00 + i)},1390000{i:04d},徒弟,e{i}\n"
        for i in range(n)
    )
    pairs = "徒弟,导师,开始日期\n" + "".join(f"徒弟{chr(0x4e00 + i)},导师{chr(0x4e00 + i)},2026-03-01\n" for i in range(n))
    now = services.clock.now()
    assert (await import_roster(services.db, write(tmp_path, "r.csv", roster), now=now)).ok
    assert (await import_pairs(services.db, write(tmp_path, "p.csv", pairs), now=now)).ok
    sends = [chat.say(f"m{i}", f"记录 面谈 第{i}次") for i in range(n)] + [chat.say(f"e{i}", "本周") for i in range(n)]
    sends += [chat.say(f"e{i}", f"记录 电话 电话{i}") for i in range(n)]
    replies = await asyncio.gather(*sends)
    assert all("抱歉" not in r for r in replies), [r for r in replies if "抱歉" in r][:1]
    assert await count(services, ContactLog) == 2 * n


@pytest.mark.parametrize("body,reason", [
    ("not json", "not valid UTF-8 JSON"),
    ([1, 2], "JSON object"),
    ({"text": "帮助"}, "'user' is required"),
    ({"user": "u1"}, "'text' is required"),
    ({"user": "", "text": "帮助"}, "'user' is required"),
    ({"user": "u1", "text": "帮助", "group": "yes"}, "'group' must be true or false"),
    ({"user": "u1", "text": "帮助", "msg_id": 5}, "'msg_id'"),
    ({"user": "u1", "text": "帮助", "extra": 1}, "unknown fields: extra"),
])
async def test_malformed_requests_get_400_with_reason(client, body, reason):
    if isinstance(body, str):
        resp = await client.post("/api/local/messages", data=body)
    else:
        resp = await client.post("/api/local/messages", json=body)
    assert resp.status == 400
    assert reason in (await resp.json())["error"]


async def test_oversized_body_is_refused(client):
    resp = await client.post("/api/local/messages", data=b"{" + b" " * (70 * 1024) + b"}")
    assert resp.status == 413


async def test_healthz_and_metrics(client, chat):
    await chat.say("u1", "帮助")
    health = await (await client.get("/healthz")).json()
    # The quarterly summary's next run is in 2027, a year the holiday package may not cover yet: that is
    # a warning for the operator, not a fault of the service.
    assert all("法定节假日" in w for w in health.get("warnings", []))
    assert health["status"] == "ok" and health["database"]["ok"]
    assert health["channels"]["local"]["state"] == "ok"
    metrics = await (await client.get("/metrics")).text()
    assert 'bangdai_messages_total{channel="local",outcome="ok"}' in metrics


async def test_local_token_protects_the_api(services, bangdai):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import Bangdai
    from bot.config import Secret

    services.config.local.token = Secret("s3cret")
    client = TestClient(TestServer(Bangdai(services).web_app()))
    await client.start_server()
    try:
        assert (await client.post("/api/local/messages", json={"user": "u1", "text": "帮助"})).status == 401
        assert (await client.get("/api/local/inbox/u1")).status == 401
        ok = await client.post("/api/local/messages", json={"user": "u1", "text": "帮助"},
                               headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200
    finally:
        await client.close()


async def test_stats_for_staff_only(bot):
    await bot.ask("u4", "记录 面谈 谈心")
    reply = await bot.ask("u5", "统计")
    assert reply.key == "stats/all"
    assert "在册结对 2 对，已面谈 1 对（50%）" in reply.values["parts"][0]  # the figures as staff read them
    refused = await bot.ask("u2", "统计")
    assert refused.key == "errors/not_allowed" and set(refused.values["roles"]) == {"组工干部", "管理员"}


async def test_a_mentor_asked_which_pair_gets_back_what_he_typed_braces_and_all(bot):
    """The "which pair?" examples repeat the text typed; braces in it are text, not a format field
    (found by the fuzz: "计划 添加 {% x %}" answered 系统刚才出了点问题)."""
    asked = await bot.ask("u1", "计划 添加 {% x %} 与 {name}")
    assert asked.key == "mentoring/which_pair"
    assert asked.values["examples"] == ["计划 李娜 添加 {% x %} 与 {name}", "计划 赵强 添加 {% x %} 与 {name}"]
