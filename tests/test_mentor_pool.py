"""导师库: 组织推荐 / 个人自荐 with approval granting the 导师 role (audited), the pool with mentees and
辅导次数, incentives (in the export), and the 优秀导师 certificate PDF sent privately and from the CLI."""

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from handlers.sheets.export import export_workbook
from storage.models import AuditLog, MentorCertificate, MentorIncentive, MentorNomination, OutboxMessage, PersonRole

pytestmark = pytest.mark.usefixtures("seeded")


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def test_self_application_and_approval_grant_the_role(chat, services):
    assert "已收到您的导师自荐" in await chat.say("u6", "导师 自荐 在乡镇工作二十年，愿意带年轻干部")
    assert "正在等待组织部审核" in await chat.say("u6", "导师 自荐 再来一次")
    pool = await chat.say("u5", "导师 库")
    assert "2 名导师，待审核 1 人" in pool and "- 周敏：待审核（个人自荐：在乡镇工作二十年" in pool
    assert "- 张伟：在带 李娜、赵强；2026 年辅导 0 次（累计 0 次）" in pool
    assert "审核请发送：导师 通过 周敏" in pool
    assert "已通过：周敏 进入导师库，获得“导师”身份（个人自荐）" in await chat.say("u5", "导师 通过 周敏")
    assert "导师" in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 6)}
    assert "赵强 的导师由 张伟 改为 周敏" in await chat.say("u5", "结对 赵强 周敏")  # no 结对 确认 needed: the role is there
    assert "已经是导师" in await chat.say("u5", "导师 推荐 周敏 再推一次")
    actions = [a.action for a in await rows(services, AuditLog) if a.action.startswith("mentor.")]
    assert actions == ["mentor.apply", "mentor.approve"]


async def test_nomination_refused_then_applied_again(chat, services):
    assert "已推荐 周敏 进入导师库（组织推荐），待审核" in await chat.say("u5", "导师 推荐 周敏 基层经验丰富")
    assert "未通过：周敏 的组织推荐（暂不符合年龄条件）" in await chat.say("u5", "导师 不通过 周敏 暂不符合年龄条件")
    assert "导师" not in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 6)}
    assert "没有待审核的导师推荐或自荐" in await chat.say("u5", "导师 通过 周敏")
    assert "- 周敏：未通过（组织推荐：基层经验丰富；暂不符合年龄条件）" in await chat.say("u5", "导师 库")
    assert "已收到您的导师自荐" in await chat.say("u6", "导师 自荐 明年符合条件了")
    [n] = await rows(services, MentorNomination)
    assert (n.source, n.status, n.reason) == ("个人自荐", "待审核", "明年符合条件了")


@pytest.mark.parametrize("user,text,expect", [
    ("u6", "导师", "请在“导师”后面写上要做的事"),
    ("u6", "导师 当导师", "请在“导师”后面写上要做的事"),
    ("u6", "导师 自荐", "请写上理由"),
    ("u6", "导师 推荐 李娜 优秀", "“导师 推荐”仅限管理员、组工干部使用"),
    ("u1", "导师 库", "“导师 库”仅限管理员、组工干部使用"),
    ("u1", "导师 自荐 我想当", "已经是导师"),
    ("u5", "导师 推荐", "请写上被推荐人的姓名和推荐理由"),
    ("u5", "导师 推荐 王五 很好", "花名册中没有“王五”"),
    ("u5", "导师 推荐 周敏", "请写上理由"),
    ("u5", "导师 通过", "请写上姓名"),
    ("u5", "导师 不通过 周敏", "请写上姓名和原因"),
    ("u5", "导师 库 全部", "查看导师库只需发送“导师 库”"),
    ("u6", "导师 自荐 " + "长" * 501, "理由最多 500 字"),
])
async def test_pool_wrong_forms(chat, services, user, text, expect):
    assert expect in await chat.say(user, text)
    assert await rows(services, MentorNomination) == []


async def test_incentives_recorded_and_exported(chat, services, tmp_path):
    assert "已记录导师激励：张伟 补助 2026-11 300 元" in await chat.say("u5", "导师 激励 张伟 补助 2026-11 300")
    assert "已更新导师激励：张伟 补助 2026-11 350 元" in await chat.say("u5", "导师 激励 张伟 补助 2026年11月 350元")
    await chat.say("u5", "导师 激励 张伟 补助 2026-10 300")
    assert "已记录导师激励：张伟 体检（2026年度健康体检）" in await chat.say("u5", "导师 激励 张伟 体检 2026年度健康体检")
    await chat.say("u5", "导师 激励 王芳 培训 市委党校导师培训班")
    assert len(await rows(services, MentorIncentive)) == 4
    assert "激励 体检 1 次 补助 2 次共 650 元" in await chat.say("u5", "导师 库")
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, services.clock)
    assert counts["导师激励"] == 4 and counts["导师库"] == 2
    wb = load_workbook(path)
    got = sorted(tuple(c.value for c in r) for r in wb["导师激励"].iter_rows(min_row=2))
    assert ("张伟", "补助", "2026-11", 350, None) in got and ("王芳", "培训", "2026-11", None, "市委党校导师培训班") in got


@pytest.mark.parametrize("text,expect", [
    ("导师 激励 张伟", "请写上导师姓名和激励类型"),
    ("导师 激励 张伟 奖金 100", "激励类型请写 体检、补助、培训 之一"),
    ("导师 激励 张伟 补助 300", "补助请写月份和金额"),
    ("导师 激励 张伟 补助 2026-13 300", "补助请写月份和金额"),
    ("导师 激励 张伟 补助 2026-11 三百", "补助请写月份和金额"),
    ("导师 激励 张伟 体检", "请写上说明"),
    ("导师 激励 李娜 体检 年度体检", "没有担任导师"),
])
async def test_incentive_wrong_forms(chat, services, text, expect):
    assert expect in await chat.say("u5", text)
    assert await rows(services, MentorIncentive) == []


async def test_certificate_for_preferred_mentors(chat, services, tmp_path):
    assert "[programme] county" in await chat.say("u5", "导师 证书")  # no county configured: says what to set
    services.config.programme.county = "常山县"
    services.config.programme.certificate_dir = str(tmp_path / "certs")
    assert "还没有“优先确定为优秀”的导师" in await chat.say("u5", "导师 证书 2026")
    await chat.say("u5", "考核 李娜 优秀")  # 王芳 mentors only 李娜: preferred; 张伟 waits for 赵强
    reply = await chat.say("u5", "导师 证书 2026")
    assert "- 王芳：已生成并私信告知" in reply and "张伟" not in reply
    [cert] = await rows(services, MentorCertificate)
    pdf = tmp_path / "certs" / "2026" / "优秀导师-2026-王芳-2.pdf"
    assert cert.path == str(pdf) and pdf.read_bytes().startswith(b"%PDF")
    [notice] = await rows(services, OutboxMessage, OutboxMessage.source == "certificate")
    assert notice.person_id == 2 and notice.key == "certificate:2:2026" and str(pdf) in notice.body
    assert "此前已颁发" in await chat.say("u5", "导师 证书 2026")  # again: no second message
    assert len(await rows(services, OutboxMessage, OutboxMessage.source == "certificate")) == 1
    assert "优秀导师 2026" in await chat.say("u5", "导师 库")
    assert "年份“2099”不对" in await chat.say("u5", "导师 证书 2099")
    assert "仅限管理员、组工干部使用" in await chat.say("u3", "导师 证书")


async def test_the_pool_is_handled_in_private_chats_only(chat, services):
    replies = await chat.replies("u6", "导师 自荐 群里说的", conversation="g1", group=True)
    assert "请在与我的私聊中发送" in replies[0]["text"]
    assert await rows(services, MentorNomination) == []
