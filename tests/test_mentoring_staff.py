"""Staff commands of 导师帮带: 结对 (with history), 季评, 考核 (捆绑考核), 清退."""

import pytest
from sqlmodel import select

from storage.models import AnnualGrade, AuditLog, Pairing, PairingMentor, PairReview, PersonRole

pytestmark = pytest.mark.usefixtures("seeded")


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def test_pair_create_rematch_and_end_keep_history(chat, services):
    assert "已建立结对：张伟 — 周敏" in await chat.say("u5", "结对 周敏 张伟")
    assert "徒弟" in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 6)}
    assert "无需调整" in await chat.say("u5", "结对 周敏 张伟")
    reply = await chat.say("u5", "结对 周敏 王芳 性格类型不匹配")
    assert "由 张伟 改为 王芳" in reply and "性格类型不匹配" in reply
    [pairing] = await rows(services, Pairing, Pairing.mentee_id == 6)  # one 帮带 for good
    terms = await rows(services, PairingMentor, PairingMentor.pairing_id == pairing.id)
    assert [(t.person_id, t.end_date is None, t.end_reason) for t in terms] == [(1, False, "性格类型不匹配"), (2, True, "")]
    assert "已结束结对：王芳 — 周敏" in await chat.say("u5", "结对 结束 周敏 调离本县")
    assert not any(p.active for p in await rows(services, Pairing, Pairing.mentee_id == 6))
    actions = [a.action for a in await rows(services, AuditLog)]
    assert {"pairing.start", "pairing.rematch", "pairing.end"} <= set(actions)
    # the mentee now has no pair: their commands say so
    assert "没有在册的帮带结对" in await chat.say("u6", "记录 面谈 x")


@pytest.mark.parametrize("text,expect", [
    ("结对", "请写上徒弟和导师的姓名"),
    ("结对 周敏", "请在徒弟姓名后写上导师姓名"),
    ("结对 周敏 王五", "花名册中没有“王五”"),
    ("结对 周敏 周敏", "不能做自己的导师"),
    ("结对 结束 周敏", "结束结对请写上徒弟姓名和原因"),
    ("结对 结束 周敏 原因", "没有在册的帮带结对"),
])
async def test_pair_wrong_forms(chat, services, text, expect):
    before = len(await rows(services, Pairing))
    assert expect in await chat.say("u5", text)
    assert len(await rows(services, Pairing)) == before


async def test_staff_commands_are_staff_only(chat):
    for text in ("结对 周敏 张伟", "考核", "清退 张伟 原因"):
        assert "仅限管理员、组工干部使用" in await chat.say("u1", text)
    # 季评: a mentor reports (季评 汇报) but does not rate; nobody else may use it
    assert "季评的评议由组工干部进行" in await chat.say("u1", "季评 李娜 好")
    assert "仅限导师、管理员、组工干部使用" in await chat.say("u2", "季评")


async def test_quarterly_review(chat, services):
    listing = await chat.say("u5", "季评")
    assert "2026-Q4 季评" in listing and "已评 0 对" in listing and "张伟 — 赵强" in listing
    assert "已记录 2026-Q4 季评：张伟、王芳 — 李娜 — 较好" in await chat.say("u5", "季评 李娜 较好 帮带扎实")
    assert "已更新" in await chat.say("u5", "季评 李娜 好 进步明显")
    [r] = await rows(services, PairReview)
    assert (r.rating, r.comment, r.quarter) == ("好", "进步明显", "2026-Q4")
    listing = await chat.say("u5", "季评")
    assert "已评 1 对（好 1）" in listing and "张伟、王芳 — 李娜" not in listing
    assert "评价请写 好、较好、一般、差" in await chat.say("u5", "季评 赵强 很棒")
    assert "周敏 在 2026-Q4 没有帮带结对" in await chat.say("u5", "季评 周敏 好")
    assert len(await rows(services, PairReview)) == 1


async def test_bundled_assessment(chat, services):
    pending = await chat.say("u5", "考核")
    assert "张伟：待定，徒弟 李娜、赵强 尚未录入考核" in pending
    assert [line for line in pending.splitlines() if line.startswith("- ")] == [  # one mentor a line
        "- 张伟：待定，徒弟 李娜、赵强 尚未录入考核（李娜 未录入、赵强 未录入）；辅导 0 次，计划完成 0/0",
        "- 王芳：待定，徒弟 李娜 尚未录入考核（李娜 未录入）；辅导 0 次，计划完成 0/0"]
    assert "已录入 李娜 2026 年度考核：优秀" in await chat.say("u5", "考核 李娜 优秀")
    await chat.say("u5", "考核 赵强 称职")
    result = await chat.say("u5", "考核")
    assert "张伟：具备评优评先资格（李娜 优秀、赵强 称职）" in result  # 优先 needs every mentee 优秀 or 表彰
    assert "王芳：优先确定为优秀，颁发“优秀导师”证书" in result
    await chat.say("u5", "考核 赵强 基本称职")  # one mentee below 称职: no 评优 for that mentor
    result = await chat.say("u5", "考核")
    assert "张伟：不具备评优评先资格" in result and "王芳：优先确定为优秀" in result
    await chat.say("u5", "考核 2026 李娜 称职 表彰")
    assert "王芳：优先确定为优秀" in await chat.say("u5", "考核")  # commended counts like 优秀
    grades = await rows(services, AnnualGrade)
    assert len(grades) == 2 and any(g.commended for g in grades)
    assert "2025 年没有帮带结对" in await chat.say("u5", "考核 2025")


@pytest.mark.parametrize("text,expect", [
    ("考核 李娜 很好", "等次请写 优秀、称职、基本称职、不称职 之一"),
    ("考核 李娜", "等次请写"),
    ("考核 李娜 优秀 很厉害", "只能写“表彰”"),
    ("考核 2099 李娜 优秀", "年份 2099 不对"),
    ("考核 王五 优秀", "花名册中没有“王五”"),
])
async def test_grade_wrong_forms(chat, services, text, expect):
    assert expect in await chat.say("u5", text)
    assert await rows(services, AnnualGrade) == []


async def test_dismiss_mentor(chat, services):
    reply = await chat.say("u5", "清退 张伟 连续两个季度帮带不到位")
    assert "已清退导师 张伟，涉及 2 个结对" in reply
    assert "赵强：结对 赵强 新导师姓名" in reply  # 赵强 had only 张伟
    active = await rows(services, Pairing, Pairing.active == True)  # noqa: E712
    [lina] = active  # 李娜's pair goes on with 王芳 alone
    links = await rows(services, PairingMentor, PairingMentor.pairing_id == lina.id)
    assert [(link.person_id, link.is_lead, link.end_date is None, link.dismissed) for link in links] == [
        (1, True, False, True), (2, True, True, False)]  # 张伟's term ended by 清退, kept as history
    assert "导师" not in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 1)}
    assert "仅限导师、徒弟使用" in await chat.say("u1", "记录 面谈 x")
    assert "没有担任导师" in await chat.say("u5", "清退 张伟 再来一次")
    assert "请写上导师姓名和清退原因" in await chat.say("u5", "清退 王芳")
