"""The five 帮带 areas (五带): tags on contacts and plan items, coverage in 本周, the quarterly summary
and the export, and the 帮带 with an area untouched in a quarter."""

import datetime as dt

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.clock import TZ
from handlers.mentoring.areas import AreaError, extract_area
from handlers.sheets.export import export_workbook
from scheduler.runner import run_job
from storage.models import ContactLog, OutboxMessage, PlanItem


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


@pytest.mark.parametrize("text,want", [
    ("一起研究支部换届 #党建", ("党建", "一起研究支部换届")),
    ("＃群众 下村接访", ("群众", "下村接访")),
    ("#带基层治理促和谐 调解纠纷", ("治理", "调解纠纷")),
    ("#思想情怀助扎根 谈心", ("思想", "谈心")),
    ("处理信箱 #12 的答复", ("", "处理信箱 #12 的答复")),
    ("没有标签", ("", "没有标签")),
    ("#党建 支部 #党建 两次同一个", ("党建", "支部 两次同一个")),
])
def test_extract_area(text, want):
    assert extract_area(text) == want


@pytest.mark.parametrize("text", ["#经济 招商", "#党建 #治理 两个"])
def test_extract_area_wrong(text):
    with pytest.raises(AreaError):
        extract_area(text)


@pytest.mark.usefixtures("seeded")
async def test_contacts_and_plan_items_carry_an_area(chat, services):
    assert "已记录：11月19日 面谈 #党建" in await chat.say("u3", "记录 面谈 #党建 一起研究支部换届")
    assert "#群众" in await chat.say("u3", "记录 #群众 电话 下村接访")  # the tag may come anywhere
    await chat.say("u3", "记录 视频 没有标签")
    logs = await rows(services, ContactLog)
    assert [(c.area, c.note) for c in logs] == [("党建", "一起研究支部换届"), ("群众", "下村接访"), ("", "没有标签")]
    assert "已添加第 1 项：#财富 跑一个村集体经济项目" in await chat.say("u3", "计划 添加 #财富 跑一个村集体经济项目")
    assert "1. ⬜ #财富 跑一个村集体经济项目" in await chat.say("u2", "计划")
    [item] = await rows(services, PlanItem)
    assert (item.area, item.text) == ("财富", "跑一个村集体经济项目")
    week = await chat.say("u2", "本周")
    assert "本季度五带：思想 0、群众 1、党建 1、财富 1、治理 0；尚未涉及 思想、治理" in week
    staff = await chat.say("u5", "本周")
    assert "本季度五带覆盖" in staff and "思想 0、群众 1、党建 1、财富 1、治理 0" in staff
    assert "有领域尚未涉及的结对 2 对" in staff


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("user,text,expect", [
    ("u3", "记录 面谈 #经济 招商", "不认识领域标签“经济”"),
    ("u3", "记录 面谈 #党建 #治理 两个", "且只写一个"),
    ("u3", "记录 #党建", "缺少联系方式"),
    ("u3", "记录 面谈 #党建#治理 连写", "且只写一个"),
    ("u3", "计划 添加 #经济 招商", "不认识领域标签“经济”"),
    ("u3", "计划 添加 #党建", "请写上要添加的培养内容"),
])
async def test_area_wrong_forms(chat, services, user, text, expect):
    reply = await chat.say(user, text)
    assert expect in reply
    assert await rows(services, ContactLog) == [] and await rows(services, PlanItem) == []


@pytest.mark.usefixtures("seeded")
async def test_quarter_coverage_flags_untouched_areas_and_is_exported(chat, services, clock, tmp_path):
    clock.set(at(2026, 9, 10, 10))
    for area in ("思想", "群众", "党建", "财富", "治理"):
        await chat.say("u3", f"记录 面谈 #{area} 李娜的{area}")
    await chat.say("u1", "记录 赵强 面谈 #党建 赵强的党建")
    moment = at(2026, 10, 9, 9)
    clock.set(moment)
    await run_job(services, "quarterly_summary", moment)
    [summary] = await rows(services, OutboxMessage, OutboxMessage.source == "quarterly_summary")
    assert "**五带覆盖**（涉及该领域的结对数 / 在册 2 对）：思想 1、群众 1、党建 2、财富 1、治理 1" in summary.body
    assert "本季度有领域未涉及的结对（1 对）：张伟 — 赵强（未涉及 思想、群众、财富、治理）" in summary.body
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, clock)
    wb = load_workbook(path)
    assert wb["联系记录"]["G2"].value == "带思想情怀助扎根"
    sheet = {(r[0].value, r[1].value): [c.value for c in r[3:]] for r in wb["五带覆盖"].iter_rows(min_row=2)}
    assert sheet[("2026-Q3", "李娜")] == [1, 1, 1, 1, 1, None]
    assert sheet[("2026-Q3", "赵强")] == [0, 0, 1, 0, 0, "思想、群众、财富、治理"]
    assert sheet[("2026-Q4", "赵强")][-1] == "思想、群众、党建、财富、治理"


# --- the one-tap picker: 标注 -----------------------------------------------------------------------------

@pytest.mark.usefixtures("seeded")
async def test_each_offered_area_sent_back_tags_the_last_contact_or_plan_item(chat, services):
    from test_hints_sendable import hints

    logged = await chat.say("u3", "记录 面谈 一起研究支部换届")
    offered = [h for h in hints(logged) if h.startswith("标注")]
    assert offered == [f"标注 #{tag}" for tag in ("思想", "群众", "党建", "财富", "治理")]
    for hint, tag in zip(offered, ("思想", "群众", "党建", "财富", "治理")):
        reply = await chat.say("u3", hint)  # sent back verbatim, as a tap sends it
        assert reply.startswith("已把 11月19日 的面谈记录（一起研究支部换届）标为 #" + tag), reply
        [log] = await rows(services, ContactLog)
        assert log.area == tag
    assert "标为 #思想（带思想情怀助扎根），原为 #治理" in await chat.say("u3", "标注 #思想")
    assert "标注" not in await chat.say("u3", "记录 电话 #群众 下村接访")  # tagged already: nothing offered
    assert "标为 #党建" in await chat.say("u3", "标注 党建")  # the bare word and the full name do too
    assert "标为 #治理（带基层治理促和谐）" in await chat.say("u3", "标注 #带基层治理促和谐")
    assert [c.area for c in await rows(services, ContactLog)] == ["思想", "治理"]  # only the latest one changed

    added = await chat.say("u3", "计划 添加 跑一个村集体经济项目")
    offered = [h for h in hints(added) if h.startswith("标注")]
    assert offered == [f"标注 计划 #{tag}" for tag in ("思想", "群众", "党建", "财富", "治理")]
    assert "已把培养计划第 1 项（跑一个村集体经济项目）标为 #财富" in await chat.say("u3", offered[3])
    [item] = await rows(services, PlanItem)
    assert item.area == "财富"
    staff = await chat.say("u5", "本周")
    assert "思想 1、群众 0、党建 0、财富 1、治理 1" in staff  # coverage counts what was tapped


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("user,text,expect", [
    ("u3", "标注", "请写上领域标签"),
    ("u3", "标注 计划", "请写上领域标签"),
    ("u3", "标注 #经济", "不认识领域标签“经济”"),
    ("u3", "标注 #党建 #治理", "且只写一个"),
    ("u3", "标注 #党建 多写了", "标注只写一个领域标签"),
    ("u3", "标注 #党建", "您还没有记录过联系"),
    ("u3", "标注 计划 #财富", "您还没有添加过培养计划"),
    ("u5", "标注 #党建", "仅限"),
])
async def test_tag_wrong_forms(chat, services, user, text, expect):
    assert expect in await chat.say(user, text)
    assert await rows(services, ContactLog) == [] and await rows(services, PlanItem) == []


async def test_a_tap_on_an_area_in_dingtalk_tags_the_contact(dingtalk, seeded, services):
    fake = dingtalk.fake
    assert "绑定成功" in await fake.say("dt_lina", "绑定 李娜 3456")
    pushed = await fake.push_text("dt_lina", "记录 面谈 谈心谈话")
    [logged] = await fake.wait_reply(pushed)
    assert logged.links()["#党建"] == "标注 #党建" and len(logged.links()) == 6  # 本周 and the five areas
    tapped = await fake.tap(logged, "#党建")  # DingTalk sends the link's content as 李娜's own message
    [answer] = await fake.wait_reply(tapped)
    assert "标为 #党建" in answer.text
    [log] = await rows(services, ContactLog)
    assert log.area == "党建"
