"""常青藤 through the whole pipeline: broadcast to 159 retired cadres and 2 groups, sign-ups (集结),
groups (编组) with commitments, weighted achievements, the monthly ranking job — and every wrong form.

The local channel has no groups, so the two 常青藤 groups are a DingTalk and a WeCom group: the outbox
is told those platforms are on (their channels are built in their own issues) and the tests read the
group rows from the outbox table. Private messages are delivered by the real local channel.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.app import build_services
from bot.clock import TZ
from bot.config import Secret
from conftest import write
from handlers.changqing.common import MAX_MESSAGE_BYTES, split_lines, utf8_len
from handlers.sheets.roster import import_roster
from scheduler.outbox import Dispatcher, Outbox
from scheduler.runner import run_job
from storage.models import (Achievement, AuditLog, Broadcast, Commitment, OutboxMessage, OutboxStatus, SignUp,
                            Squad, SquadMember)

SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
GIVEN = ["建国", "志强", "海燕", "文华", "国庆", "秀英", "明辉", "立新"]
RETIRED = 159  # the big roster: the seed's county (140 of them are 88 %)
SMALL = 8  # the roster most tests use: r1–r5, and three without a chat account
NO_ACCOUNT = 3  # the last three of either roster have no chat account yet
GROUPS = ["dingtalk:常青藤一组", "wecom:常青藤二组"]


def retired_names(n: int = RETIRED) -> list[str]:
    names = ["李忠兴"] + [s + g for s in SURNAMES for g in GIVEN]
    return names[:n]


def roster_csv(n: int) -> str:
    lines = ["姓名,单位,职务,角色,本地ID",
             "陈静,县委组织部,干部科科长,组工干部,s1",
             "周敏,县人社局,科员,,x1"]
    for i, name in enumerate(retired_names(n), start=1):
        local = f"r{i}" if i <= n - NO_ACCOUNT else ""
        lines.append(f"{name},县服务业办,原主任,退职干部,{local}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def config(config):
    config.dingtalk.groups = {"常青藤一组": "cid-changqing-1"}
    config.wecom.webhooks = {"常青藤二组": Secret("webhook-key-2")}
    config.changqing.groups = list(GROUPS)
    return config


@pytest.fixture
async def services(config, clock):
    services = build_services(config, clock)
    # DingTalk and WeCom are on as far as the outbox knows, so group rows wait for their channels.
    services.outbox = Outbox(services.db, clock, config, ["local", "dingtalk", "wecom"])
    yield services
    await services.db.close()


async def load_roster(services, tmp_path, n: int):
    report = await import_roster(services.db, write(tmp_path, "roster.csv", roster_csv(n)), now=services.clock.now())
    assert report.ok and report.created == n + 2, report.lines()
    return services


@pytest.fixture
async def roster(services, tmp_path):
    """陈静 s1 (staff), 周敏 x1 (no role), retired cadres r1–r5 (李忠兴 is r1) and three without an account."""
    return await load_roster(services, tmp_path, SMALL)


@pytest.fixture
async def big_roster(services, tmp_path):
    """The same with 159 retired cadres, r1–r156 reachable."""
    return await load_roster(services, tmp_path, RETIRED)


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


async def outbox_rows(services, prefix: str) -> list[OutboxMessage]:
    async with services.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage).where(col(OutboxMessage.key).like(f"{prefix}%"))
                                  .order_by(OutboxMessage.id))).all())


async def deliver_local(bangdai) -> int:
    return await Dispatcher(bangdai.services.outbox, bangdai.channels["local"], 1000).run_once()


TEXT = "“常青藤”行动计划启动，欢迎退出现职领导干部报名集结，退职不退岗、退有所为"


# --- broadcast -------------------------------------------------------------------------------------

async def test_broadcast_to_159_retired_cadres_and_2_groups(chat, big_roster, bangdai, services):
    reply = await chat.say("s1", f"广播 常青藤 {TEXT}")
    assert "私信 159 人" in reply and f"其中 {NO_ACCOUNT} 人没有可用的聊天账号" in reply, reply
    assert "常青藤群 2 个" in reply and "常青藤一组（钉钉）" in reply and "常青藤二组（企业微信）" in reply
    rows = await outbox_rows(services, "changqing-broadcast:")
    people = [r for r in rows if r.person_id is not None]
    groups = [r for r in rows if r.group_name is not None]
    assert len(people) == RETIRED and len(groups) == 2
    assert len({r.body for r in rows}) == 1  # identical bodies: the outbox batches them (20 per DingTalk call)
    assert TEXT in rows[0].body and "报名" in rows[0].body and utf8_len(rows[0].body) <= MAX_MESSAGE_BYTES
    assert sorted((r.channel, r.group_name, r.status) for r in groups) == [
        ("dingtalk", "常青藤一组", OutboxStatus.QUEUED), ("wecom", "常青藤二组", OutboxStatus.QUEUED)]
    assert sum(r.status == OutboxStatus.UNDELIVERABLE for r in people) == NO_ACCOUNT
    assert {r.channel for r in people if r.status == OutboxStatus.QUEUED} == {"local"}

    assert await deliver_local(bangdai) == RETIRED - NO_ACCOUNT
    for user in ("r1", "r80", f"r{RETIRED - NO_ACCOUNT}"):
        inbox = await chat.inbox(user)
        assert len(inbox) == 1 and TEXT in inbox[0]["text"]
    assert await chat.inbox("s1") == [] and await chat.inbox("x1") == []  # staff and others get nothing

    status = await chat.say("s1", "广播 状态")
    assert f"已送达 {RETIRED - NO_ACCOUNT}，排队中 2，失败 0，无法送达 {NO_ACCOUNT}" in status, status
    assert "没有可用的聊天账号" in status
    assert await count(services, AuditLog, AuditLog.action == "changqing.broadcast") == 1


async def test_same_broadcast_twice_a_day_needs_confirmation(chat, roster, services, clock):
    await chat.say("s1", f"广播 常青藤 {TEXT}")
    clock.advance(hours=2)
    before = await count(services, OutboxMessage)
    again = await chat.say("s1", f"广播 常青藤  {TEXT} ")  # extra spaces are the same text
    assert "已经发过一条相同的常青藤广播" in again and "广播 确认" in again
    assert await count(services, OutboxMessage) == before
    assert "已取消" in await chat.say("s1", "广播 取消")
    assert "没有待确认的广播" in await chat.say("s1", "广播 确认")
    assert await count(services, OutboxMessage) == before

    await chat.say("s1", f"广播 常青藤 {TEXT}")
    confirmed = await chat.say("s1", "广播 确认")
    assert "已确认" in confirmed and f"私信 {SMALL} 人" in confirmed
    assert await count(services, OutboxMessage) == before + SMALL + 2
    assert "没有待确认的广播" in await chat.say("s1", "广播 确认")

    # a confirmation waits 30 minutes at most
    await chat.say("s1", f"广播 常青藤 {TEXT}")
    clock.advance(minutes=31)
    assert "没有待确认的广播" in await chat.say("s1", "广播 确认")
    # a different text, or the next day, goes out at once
    assert "已排队发送" in await chat.say("s1", "广播 常青藤 第二批岗位需求已发布，欢迎报名")
    clock.advance(days=1)
    assert "已排队发送" in await chat.say("s1", f"广播 常青藤 {TEXT}")
    assert await count(services, Broadcast, Broadcast.status == "sent") == 4


@pytest.mark.parametrize("text,expect", [
    ("广播", "请写上广播对象和文案"),
    ("广播 常青藤", "请写上广播的文案"),
    ("广播 常青藤    ", "请写上广播的文案"),
    ("广播 青蓝 欢迎报名", "不认识广播对象“青蓝”"),
    ("广播 常青藤 " + "退" * 700, "广播文案太长了"),
    ("广播 确认 一下", "“广播 确认”后面不用写内容"),
])
async def test_broadcast_wrong_forms_queue_nothing(chat, roster, services, text, expect):
    reply = await chat.say("s1", text)
    assert expect in reply, reply
    assert "例如" in reply
    assert await count(services, OutboxMessage) == 0 and await count(services, Broadcast) == 0


async def test_too_long_limit_is_in_bytes_of_the_whole_message(chat, roster, services):
    reply = await chat.say("s1", "广播 常青藤 " + "退" * 700)
    assert "2048 字节" in reply and "请删减约" in reply
    ok = "退" * 550  # 1650 bytes of text plus the sign-up lines (one per 六大员 post) still fit
    assert "已排队发送" in await chat.say("s1", f"广播 常青藤 {ok}")


async def test_broadcast_with_nobody_to_send_to(chat, services, tmp_path):
    services.config.changqing.groups = []
    await import_roster(services.db, write(tmp_path, "r.csv", "姓名,角色,本地ID\n陈静,组工干部,s1\n"), now=services.clock.now())
    assert "没有可以广播的对象" in await chat.say("s1", "广播 常青藤 欢迎报名")
    assert await count(services, Broadcast) == 0 and await count(services, OutboxMessage) == 0


async def test_broadcast_status_before_any(chat, roster):
    assert "还没有发过常青藤广播" in await chat.say("s1", "广播 状态")


# --- sign-up (集结) ---------------------------------------------------------------------------------

async def test_140_sign_ups_make_88_percent(chat, big_roster, services, clock):
    await chat.say("s1", f"广播 常青藤 {TEXT}")
    roles = ["招商引资联络员", "项目攻坚协调员", "", "矛盾纠纷化解员"]
    for i in range(1, 141):
        clock.advance(minutes=5)
        role = roles[i % len(roles)]
        reply = await chat.say(f"r{i}", f"报名 {role}".strip())
        assert "报名成功" in reply
    assert "目前已集结 140 人，占全县退职干部 159 人的 88%" in reply
    # signing up again changes the role, never the count
    again = await chat.say("r1", "报名 营商环境观察员")
    assert "改为 **营商环境观察员**" in again and "已集结 140 人" in again
    assert "您已经报过名了" in await chat.say("r1", "报名")
    assert "已集结 140 人" in await chat.say("r2", "signup 6")  # by number, English alias
    assert await count(services, SignUp) == 140

    stats = await chat.say("s1", "统计")
    assert "已报名 140 人 / 退职干部 159 人（88%）" in stats, stats
    assert "24 小时内报名 140 人" in stats
    assert "最先响应：李忠兴 11月19日 10:05（广播后 5 分钟）" in stats
    assert "营商环境观察员 1" in stats and "效率革命督导员 1" in stats and "未选岗位 34" in stats


async def test_sign_up_wrong_forms_write_nothing(chat, roster, services):
    not_retired = await chat.say("x1", "报名")
    assert "仅限退职干部使用" in not_retired
    assert "仅限退职干部使用" in await chat.say("s1", "报名 招商引资联络员")
    unknown = await chat.say("r1", "报名 招商联络员")
    assert "没有“招商联络员”这个岗位" in unknown and "报名 招商引资联络员" in unknown
    assert "您是不是想报" in await chat.say("r1", "报名 督导员")
    assert "六大员是" in await chat.say("r1", "报名 司机")
    assert "只写一个岗位名称" in await chat.say("r1", "报名 招商引资联络员 项目攻坚协调员")
    assert "没有“7”这个岗位" in await chat.say("r1", "报名 7")
    assert await count(services, SignUp) == 0


async def test_posts_lists_the_six_roles(chat, roster):
    posts = await chat.say("r1", "岗位")
    for role in ("项目攻坚协调员", "招商引资联络员", "矛盾纠纷化解员", "营商环境观察员", "基层治理服务员", "效率革命督导员"):
        assert role in posts
    assert len([line for line in posts.splitlines() if line[:1].isdigit()]) == 6
    assert "报名 招商引资联络员" in await chat.say("r1", "帮助")


# --- groups, commitments, achievements, ranking ----------------------------------------------------

async def make_squads(chat):
    assert "已新建小组 **招商一组**" in await chat.say("s1", "编组 新建 招商一组 破山行动专班 李忠兴")
    assert "已新建小组 **招商二组**" in await chat.say("s1", "编组 新建 招商二组 破山行动专班")
    names = retired_names()
    assert f"已把 {names[1]} 编入 **招商一组**" in await chat.say("s1", f"编组 调整 {names[1]} 招商一组")
    for n in names[2:4]:
        await chat.say("s1", f"编组 调整 {n} 招商二组")
    return names


async def test_squads_commitments_and_moves(chat, roster, services):
    names = await make_squads(chat)
    assert "承诺" in await chat.say("r1", "承诺 年内协调万洋众创二期 3 家企业落地投产")
    mine = await chat.say("r2", "编组")
    assert "**招商一组**（破山行动专班）" in mine and "组长：李忠兴" in mine
    assert "承诺：年内协调万洋众创二期 3 家企业落地投产" in mine and f"{names[1]}（我）" in mine
    assert "今年还没有公开承诺" in mine
    assert "已更新" in await chat.say("r1", "承诺 年内引进两个亿元项目")
    assert await count(services, Commitment) == 1
    assert "年内引进两个亿元项目" in await chat.say("r1", "承诺")

    moved = await chat.say("s1", f"编组 调整 {names[1]} 招商二组")
    assert "从 招商一组 调整到 **招商二组**" in moved
    assert "没有变化" in await chat.say("s1", f"编组 调整 {names[1]} 招商二组")
    assert "移出 招商一组" in await chat.say("s1", "编组 移出 李忠兴")
    assert "还没有编入常青藤小组" in await chat.say("r1", "编组")
    listing = await chat.say("s1", "编组 列表")
    assert "共 2 个小组" in listing and "招商二组：3 人" in listing and "招商一组：0 人" in listing
    assert "招商二组" in await chat.say("s1", "编组 招商二组")
    assert "已指定" in await chat.say("s1", "编组 组长 招商一组 李忠兴")
    async with services.db.transaction() as s:
        moves = (await s.exec(select(AuditLog).where(AuditLog.action == "changqing.squad.move").order_by(AuditLog.id))).all()
    assert [(m.detail["person"], m.detail["old"], m.detail["new"]) for m in moves][-3:] == [
        (names[1], "招商一组", "招商二组"), ("李忠兴", "招商一组", None), ("李忠兴", None, "招商一组")]
    assert all(m.actor_label == "陈静" for m in moves)


async def test_squad_wrong_forms_and_staff_only(chat, roster, services):
    await make_squads(chat)
    audit_before = await count(services, AuditLog)
    members_before = await count(services, SquadMember)
    for text in ("编组 调整 李忠兴 招商二组", "编组 新建 三组 破山行动专班", "编组 移出 李忠兴", "编组 列表",
                 "编组 组长 招商二组 李忠兴"):
        refused = await chat.say("r1", text)  # the sub-command's declared roles, before it runs
        assert "仅限" in refused and f"“{' '.join(text.split()[:2])}”" in refused, text
    assert "仅限" in await chat.say("x1", "编组")
    cases = [
        ("编组 调整 李忠兴", "请写上姓名和要去的组名"),
        ("编组 调整 查无此人 招商一组", "花名册里没有“查无此人”"),
        ("编组 调整 周敏 招商一组", "周敏 不是退职干部"),
        ("编组 调整 李忠兴 招商九组", "没有叫“招商九组”的小组"),
        ("编组 新建 招商一组 破山行动专班", "已经有叫“招商一组”的小组"),
        ("编组 新建 招商三组", "请写上组名和所属专班"),
        ("编组 不存在的组", "没有叫“不存在的组”的小组"),
    ]
    for text, expect in cases:
        assert expect in await chat.say("s1", text), text
    assert "招商一组" in await chat.say("s1", "编组 调整 李忠兴 招商九组")  # suggests the close names
    assert await count(services, AuditLog) == audit_before and await count(services, SquadMember) == members_before
    assert await count(services, Squad) == 2


async def test_ranking_with_weighted_achievements_and_the_monthly_job(chat, roster, services, clock):
    await make_squads(chat)
    saved = await chat.say("r1", "实绩 协调万洋众创项目土地指标")
    assert "已记入 招商一组 的实绩（#1" in saved
    await chat.say("r2", "实绩 对接两家客商来常考察")                # #2 group 1
    for user, text in (("r3", "化解一起劳资纠纷"), ("r4", "走访 5 家企业"), ("r3", "重复记录")):
        await chat.say(user, f"实绩 {text}")                        # #3 #4 #5 group 2
    assert "由 1 改为 **3**" in await chat.say("s1", "实绩 系数 #1 3")
    assert "改为 **1.25**" in await chat.say("s1", "实绩 系数 #2 1.25")
    assert "不再计入排行" in await chat.say("s1", "实绩 作废 #5 与 #3 重复")
    # group 1: 3 + 1.25 = 4.25 from 2; group 2: 1 + 1 = 2 from 2 (the void one does not count)
    ranking = await chat.say("r3", "排行")
    assert "1. 招商一组（破山行动专班）4.25 分，2 项" in ranking, ranking
    assert "2. 招商二组（破山行动专班）2 分，2 项" in ranking
    assert "您所在的 招商二组 排第 2 名" in ranking
    listing = await chat.say("s1", "实绩")
    assert "#5 招商二组" in listing and "已作废：与 #3 重复" in listing  # "#" mid-line needs no escape
    assert "协调万洋众创项目土地指标" in await chat.say("r1", "实绩") and "化解" not in await chat.say("r1", "实绩")

    # last working day of November 2026 is Monday 30th; the job posts to each configured group
    result = await run_job(services, "monthly_ranking", dt.datetime(2026, 11, 30, 17, 0, tzinfo=TZ))
    assert result.queued == 4 and result.period == "2026-11"  # the text and the picture to each group
    rows = [r for r in await outbox_rows(services, "changqing-ranking:") if r.format != "image"]
    assert sorted((r.channel, r.group_name, r.key) for r in rows) == [
        ("dingtalk", "常青藤一组", "changqing-ranking:dingtalk:常青藤一组:2026-11"),
        ("wecom", "常青藤二组", "changqing-ranking:wecom:常青藤二组:2026-11")]
    assert "晾晒比拼" in rows[0].body and "1. 招商一组（破山行动专班）4.25 分" in rows[0].body
    assert "您所在" not in rows[0].body
    # a second run the same month posts nothing new, even after the ranking changed
    await chat.say("r3", "实绩 又一项")
    again = await run_job(services, "monthly_ranking", dt.datetime(2026, 11, 30, 18, 0, tzinfo=TZ))
    assert again.queued == 0 and not again.first_run
    assert len(await outbox_rows(services, "changqing-ranking:")) == 4

    # next month starts from zero; 排行 上月 still shows November
    clock.set(dt.datetime(2026, 12, 2, 9, 0, tzinfo=TZ))
    december = await chat.say("r1", "排行")
    assert "1. 招商一组（破山行动专班）0 分，0 项" in december and "1. 招商二组（破山行动专班）0 分，0 项" in december
    assert "4.25 分" in await chat.say("r1", "排行 上月")
    assert "只能查看本月或上月" in await chat.say("r1", "排行 前年")


async def test_long_ranking_is_posted_in_parts_within_the_limit(services, roster, chat):
    for i in range(40):
        await chat.say("s1", f"编组 新建 第{'一二三四五六七八九十'[i % 10]}招商组{'甲乙丙丁'[i // 10]} 破山服务企业攻坚行动专班")
    result = await run_job(services, "monthly_ranking", dt.datetime(2026, 11, 30, 17, 0, tzinfo=TZ))
    rows = [r for r in await outbox_rows(services, "changqing-ranking:dingtalk") if r.format != "image"]
    assert len(rows) >= 2 and result.queued == 2 * (len(rows) + 1)  # and one picture per group
    assert all(utf8_len(r.body) <= MAX_MESSAGE_BYTES for r in rows)
    assert sum(r.body.count("招商组") for r in rows) == 40


async def test_monthly_ranking_without_groups_configured(services, roster, chat):
    services.config.changqing.groups = []
    await chat.say("s1", "编组 新建 招商一组 破山行动专班")
    assert (await run_job(services, "monthly_ranking", dt.datetime(2026, 11, 30, 17, 0, tzinfo=TZ))).queued == 0


async def test_achievement_wrong_forms_write_nothing(chat, roster, services):
    await make_squads(chat)
    await chat.say("r1", "实绩 协调万洋众创项目土地指标")
    audit_before = await count(services, AuditLog)
    no_group = await chat.say(f"r{SMALL - NO_ACCOUNT}", "实绩 走访企业")
    assert "还没有编入常青藤小组，实绩没有保存" in no_group
    assert "您不在任何常青藤小组里" in await chat.say("s1", "实绩 走访企业")
    assert "仅限" in await chat.say("x1", "实绩 走访企业")
    for text, expect in [
        ("实绩 系数 #1 3.5", "超出范围"),
        ("实绩 系数 #1 0.4", "应在 0.5 到 3.0 之间"),
        ("实绩 系数 #1 高", "应是数字"),
        ("实绩 系数 #1 1.255", "最多两位小数"),
        ("实绩 系数 #1", "应是数字"),
        ("实绩 系数 1.5", "请写上实绩编号"),
        ("实绩 系数 #99 1.5", "没有编号为 #99 的实绩"),
        ("实绩 作废 #1", "请写上作废的原因"),
        ("实绩 系数 #1 nan", "应是数字"),
        ("实绩 系数 #1 1.5 多写", "“实绩 系数”后面不用写内容"),
    ]:
        assert expect in await chat.say("s1", text), text
    for text in ("实绩 系数 #1 2", "实绩 作废 #1 不算"):
        assert "仅限管理员、组工干部" in await chat.say("r1", text)  # declared on the sub-command
    async with services.db.transaction() as s:
        only = (await s.exec(select(Achievement))).one()
    assert only.coefficient == 1.0 and only.voided_at is None
    assert await count(services, AuditLog) == audit_before
    await chat.say("s1", "实绩 作废 #1 重复")
    assert "已经作废" in await chat.say("s1", "实绩 系数 #1 2")
    assert "已经作废" in await chat.say("s1", "实绩 作废 #1 再来")


async def test_non_staff_cannot_use_staff_commands(chat, roster, services):
    for text in ("广播 常青藤 欢迎报名", "广播 状态", "统计"):
        assert "仅限管理员、组工干部使用" in await chat.say("r1", text)
    assert await count(services, Broadcast) == 0 and await count(services, OutboxMessage) == 0


# --- pure parts ------------------------------------------------------------------------------------

def test_split_lines_keeps_every_line_and_the_limit():
    body = "\n".join(f"{i}. 招商第{i}组（破山行动专班）4.5 分，4 项" for i in range(60))
    parts = split_lines(body)
    assert len(parts) > 1 and all(utf8_len(p) <= MAX_MESSAGE_BYTES for p in parts)
    assert "\n".join(parts) == body
    assert split_lines("短") == ["短"]
    long_line = split_lines("退" * 1000)
    assert "".join(long_line) == "退" * 1000 and all(utf8_len(p) <= MAX_MESSAGE_BYTES for p in long_line)


# --- 编组表 import ----------------------------------------------------------------------------------

SQUADS_CSV = """\
组名,专班,组长,成员
招商一组,破山行动专班,李忠兴,赵建国、赵志强
招商二组,破山行动专班,,赵海燕
"""


async def squad_members(services) -> dict[str, set[str]]:
    from storage.models import Person
    async with services.db.transaction() as s:
        rows = (await s.exec(select(Squad.name, Person.name).join(SquadMember, SquadMember.squad_id == Squad.id)
                             .join(Person, Person.id == SquadMember.person_id))).all()
    out: dict[str, set[str]] = {}
    for squad, person in rows:
        out.setdefault(squad, set()).add(person)
    return out


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_import_squads_is_idempotent_and_shows_in_chat(chat, roster, services, tmp_path, fmt):
    from handlers.sheets.squads import import_squads
    from test_imports import to_xlsx

    path = write(tmp_path, "squads.csv", SQUADS_CSV) if fmt == "csv" else to_xlsx(tmp_path, "squads.xlsx", SQUADS_CSV)
    now = services.clock.now()
    dry = await import_squads(services.db, path, now=now, dry_run=True)
    assert (dry.created, dry.errors) == (2, []) and await count(services, Squad) == 0
    first = await import_squads(services.db, path, now=now)
    assert (first.created, first.updated, first.errors) == (2, 0, []), first.lines()
    assert await squad_members(services) == {"招商一组": {"李忠兴", "赵建国", "赵志强"}, "招商二组": {"赵海燕"}}
    moves = await count(services, AuditLog, AuditLog.action == "changqing.squad.move")
    again = await import_squads(services.db, path, now=now)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert await count(services, AuditLog, AuditLog.action == "changqing.squad.move") == moves
    mine = await chat.say("r2", "编组")  # 赵建国
    assert "**招商一组**（破山行动专班）" in mine and "组长：李忠兴" in mine and "赵志强" in mine and "赵海燕" not in mine


async def test_import_squads_moves_and_reports_bad_rows_by_line(roster, services, tmp_path):
    from handlers.sheets.squads import import_squads

    now = services.clock.now()
    await import_squads(services.db, write(tmp_path, "a.csv", SQUADS_CSV), now=now)
    report = await import_squads(services.db, write(tmp_path, "b.csv", """\
        组名,专班,组长,成员
        招商一组,破山行动专班,李忠兴,赵建国
        招商二组,破山行动专班,,赵海燕、赵志强
        三组,破山行动专班,,查无此人
        四组,破山行动专班,,周敏
        招商一组,别的专班,,
        五组,,,赵文华
        六组,破山行动专班,,赵建国
        """), now=now)
    assert (report.created, report.updated) == (0, 2), report.lines()
    assert [line for line, _ in report.errors] == [4, 5, 6, 7, 8]
    reasons = dict(report.errors)
    assert "花名册中没有“查无此人”" in reasons[4] and "周敏 不是退职干部" in reasons[5]
    assert "与第 2 行重复" in reasons[6] and "专班为空" in reasons[7] and "已在第 2 行的“招商一组”中" in reasons[8]
    assert await squad_members(services) == {"招商一组": {"李忠兴", "赵建国"}, "招商二组": {"赵海燕", "赵志强"}}
    async with services.db.transaction() as s:
        move = (await s.exec(select(AuditLog).where(AuditLog.action == "changqing.squad.move")
                             .order_by(col(AuditLog.id).desc()))).first()
    assert move.detail == {"person": "赵志强", "old": None, "new": "招商二组"} and move.actor_label == "cli"
    assert await count(services, Squad) == 2


async def test_import_squads_refuses_a_file_without_its_columns(roster, services, tmp_path):
    from handlers.sheets.squads import import_squads

    report = await import_squads(services.db, write(tmp_path, "x.csv", "姓名,单位\n李忠兴,x\n"), now=services.clock.now())
    assert report.fatal and "组名" in report.fatal_text() and "专班" in report.fatal_text()


# --- config ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content,message", [
    ('[changqing]\ngroups = ["常青藤一组"]\n', '应写成 "dingtalk:群名"'),
    ('[changqing]\ngroups = ["local:常青藤一组"]\n', '应写成 "dingtalk:群名"'),
    ('[changqing]\ngroups = ["dingtalk:常青藤一组"]\n', "不在 [dingtalk] groups 中"),
    ('[changqing]\ngroups = ["wecom:常青藤二组"]\n[wecom.webhooks]\n"别的群" = "k"\n', "不在 [wecom] webhooks 中"),
])
def test_changqing_groups_must_be_reachable(tmp_path, content, message):
    from bot.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path, environ={})


def test_changqing_groups_config(tmp_path):
    from bot.config import load_config

    path = tmp_path / "c.toml"
    path.write_text('[changqing]\ngroups = ["dingtalk:常青藤一组", "wecom:常青藤二组"]\n'
                    '[dingtalk.groups]\n"常青藤一组" = "cid1"\n[wecom.webhooks]\n"常青藤二组" = "key2"\n', encoding="utf-8")
    assert load_config(path, environ={}).changqing.targets() == [("dingtalk", "常青藤一组"), ("wecom", "常青藤二组")]


# --- the CLI ---------------------------------------------------------------------------------------

def test_cli_import_squads_and_broadcast(tmp_path, capsys):
    """``bangdai`` in-process (main() with argv; test_cli.py covers real processes): exit codes and output."""
    from bot.cli import main

    def bangdai(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--config", str(cfg)])
        out = capsys.readouterr()
        return code, out.out, out.err

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n'
                   '[changqing]\ngroups = ["dingtalk:常青藤一组"]\n[dingtalk.groups]\n"常青藤一组" = "cid1"\n',
                   encoding="utf-8")
    assert bangdai("db", "upgrade")[0] == 0  # only serve and db upgrade create a database
    assert bangdai("import", "roster", str(write(tmp_path, "r.csv", roster_csv(SMALL))))[0] == 0
    squads = str(write(tmp_path, "s.csv", SQUADS_CSV))
    code, out, _ = bangdai("import", "squads", squads, "--dry-run")
    assert code == 0 and "试运行（未写入）：新增 2" in out
    assert "导入完成：新增 2" in bangdai("import", "squads", squads)[1]
    assert "新增 0，更新 0，未变 2" in bangdai("import", "squads", squads)[1]

    code, out, err = bangdai("broadcast", "常青藤", TEXT)
    assert code == 0 and f"私信 {SMALL} 人" in out and "常青藤群 1 个" in out, err
    code, out, err = bangdai("broadcast", "常青藤", TEXT)
    assert code == 1 and "--confirm" in err and "已经发过" in err
    code, out, _ = bangdai("broadcast", "常青藤", TEXT, "--confirm")
    assert code == 0 and "已排队发送" in out
    code, out, _ = bangdai("broadcast", "状态")
    # DingTalk is not enabled in this config: its group row is undeliverable and says why
    assert code == 0 and "最近 2 次" in out and "渠道 dingtalk 未启用" in out and "命令行发送" in out
    code, _, err = bangdai("broadcast", "常青藤", "  ")
    assert code == 2 and "请写上广播的文案" in err
    code, _, err = bangdai("broadcast", "常青藤", "退" * 700)
    assert code == 1 and "太长" in err
    code, _, err = bangdai("broadcast", "青蓝", "x")
    assert code == 2 and "不认识广播对象" in err


async def test_sign_up_figures_count_only_answers_from_active_retired_cadres(chat, roster, services, clock):
    from storage.models import Person

    assert "报名成功" in await chat.say("r1", "报名")  # before any call: not an answer to it
    clock.advance(hours=1)
    await chat.say("s1", f"广播 常青藤 {TEXT}")
    for user in ("r2", "r3"):
        clock.advance(minutes=10)
        await chat.say(user, "报名")
    async with services.db.transaction() as s:  # r3 leaves the roster
        person = (await s.exec(select(Person).where(Person.name == retired_names()[2]))).one()
        person.active = False
        s.add(person)
    stats = await chat.say("s1", "统计")
    assert "已报名 2 人" in stats and "24 小时内报名 1 人" in stats, stats
    assert retired_names()[2] not in stats
