"""Staff commands of 导师帮带: 结对 (with history), 季评, 考核 (捆绑考核), 清退."""

import pytest
from sqlmodel import select

from storage.models import AnnualGrade, AuditLog, Pairing, PairingMentor, PairReview, PersonRole

pytestmark = pytest.mark.usefixtures("seeded")


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def test_pair_create_rematch_and_end_keep_history(bot, services):
    created = await bot.ask("u5", "结对 周敏 张伟")
    assert created.key == "staff/paired" and created.values["outcome"] == "created"
    assert (created.values["mentee"].name, [m.name for m in created.values["mentors"]]) == ("周敏", ["张伟"])
    assert "徒弟" in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 6)}
    assert (await bot.ask("u5", "结对 周敏 张伟")).values["outcome"] == "unchanged"
    reply = await bot.ask("u5", "结对 周敏 王芳 性格类型不匹配")
    assert reply.values["outcome"] == "updated" and reply.values["before"] == "张伟"
    assert [m.name for m in reply.values["mentors"]] == ["王芳"] and reply.values["reason"] == "性格类型不匹配"
    [pairing] = await rows(services, Pairing, Pairing.mentee_id == 6)  # one 帮带 for good
    terms = await rows(services, PairingMentor, PairingMentor.pairing_id == pairing.id)
    assert [(t.person_id, t.end_date is None, t.end_reason) for t in terms] == [(1, False, "性格类型不匹配"), (2, True, "")]
    ended = await bot.ask("u5", "结对 结束 周敏 调离本县")
    assert ended.key == "staff/pair_ended" and ended.values["label"] == "王芳 — 周敏"
    assert not any(p.active for p in await rows(services, Pairing, Pairing.mentee_id == 6))
    actions = [a.action for a in await rows(services, AuditLog)]
    assert {"pairing.start", "pairing.rematch", "pairing.end"} <= set(actions)
    # the mentee now has no pair: their commands say so
    assert (await bot.ask("u6", "记录 面谈 x")).key == "mentoring/no_pair"


@pytest.mark.parametrize("text,key,why", [
    ("结对", "errors/usage", "staff/usage/pair"),
    ("结对 周敏", "errors/usage", "staff/usage/pair_mentors"),
    ("结对 周敏 王五", "staff/not_found", None),
    ("结对 周敏 周敏", "staff/self_mentor", None),
    ("结对 结束 周敏", "errors/usage", "staff/usage/pair_end"),
    ("结对 结束 周敏 原因", "staff/no_active_pair", None),
])
async def test_pair_wrong_forms(bot, services, text, key, why):
    before = len(await rows(services, Pairing))
    reply = await bot.ask("u5", text)
    assert (reply.key, reply.why) == (key, why), reply.text
    if key == "staff/not_found":
        assert reply.values["text"] == "王五"
    assert len(await rows(services, Pairing)) == before


async def test_staff_commands_are_staff_only(bot):
    for text in ("结对 周敏 张伟", "考核", "清退 张伟 原因"):
        refused = await bot.ask("u1", text)
        assert refused.key == "errors/not_allowed" and set(refused.values["roles"]) == {"管理员", "组工干部"}
    # 季评: a mentor reports (季评 汇报) but does not rate; nobody else may use it
    assert (await bot.ask("u1", "季评 李娜 好")).key == "staff/review_mentor_only"
    refused = await bot.ask("u2", "季评")
    assert refused.key == "errors/not_allowed" and set(refused.values["roles"]) == {"导师", "管理员", "组工干部"}


async def test_quarterly_review(bot, services):
    listing = await bot.ask("u5", "季评")
    assert listing.key == "staff/review_list"
    s = listing.values["s"]
    assert (s.quarter, s.reviewed, s.total) == ("2026-Q4", 0, 2) and "张伟 — 赵强" in [v.label for v in s.pending]
    first = await bot.ask("u5", "季评 李娜 较好 帮带扎实")
    assert first.key == "staff/reviewed" and first.values["view"].label == "张伟、王芳 — 李娜"
    assert (first.values["quarter"], first.values["rating"], first.values["updated"]) == ("2026-Q4", "较好", False)
    assert (await bot.ask("u5", "季评 李娜 好 进步明显")).values["updated"]
    [r] = await rows(services, PairReview)
    assert (r.rating, r.comment, r.quarter) == ("好", "进步明显", "2026-Q4")
    s = (await bot.ask("u5", "季评")).values["s"]
    assert s.reviewed == 1 and s.counts == [("好", 1)] and "张伟、王芳 — 李娜" not in [v.label for v in s.pending]
    assert (await bot.ask("u5", "季评 赵强 很棒")).why == "staff/usage/rating"
    nothing = await bot.ask("u5", "季评 周敏 好")
    assert nothing.key == "staff/no_pair_in_quarter" and nothing.values == {"name": "周敏", "quarter": "2026-Q4"}
    assert len(await rows(services, PairReview)) == 1


async def test_bundled_assessment(chat, services):
    """End to end over the local channel, wording on purpose: one mentor a line, each verdict spelled out."""
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


@pytest.mark.parametrize("text,key,why", [
    ("考核 李娜 很好", "errors/usage", "staff/usage/grade_level"),
    ("考核 李娜", "errors/usage", "staff/usage/grade_level"),
    ("考核 李娜 优秀 很厉害", "errors/usage", "staff/usage/grade_extra"),
    ("考核 2099 李娜 优秀", "errors/usage", "staff/usage/bad_year"),
    ("考核 王五 优秀", "staff/not_found", None),
])
async def test_grade_wrong_forms(bot, services, text, key, why):
    reply = await bot.ask("u5", text)
    assert (reply.key, reply.why) == (key, why), reply.text
    assert await rows(services, AnnualGrade) == []


async def test_dismiss_mentor(bot, services):
    said = await bot.ask("u5", "清退 张伟 连续两个季度帮带不到位")
    assert said.key == "staff/dismissed" and said.values["mentor"].name == "张伟" and len(said.values["changed"]) == 2
    assert [v.mentee.name for v in said.values["orphans"]] == ["赵强"]  # 赵强 had only 张伟
    assert "结对 赵强 新导师姓名" in said.text  # the hint staff send to give him a new mentor
    active = await rows(services, Pairing, Pairing.active == True)  # noqa: E712
    [lina] = active  # 李娜's pair goes on with 王芳 alone
    links = await rows(services, PairingMentor, PairingMentor.pairing_id == lina.id)
    assert [(link.person_id, link.is_lead, link.end_date is None, link.dismissed) for link in links] == [
        (1, True, False, True), (2, True, True, False)]  # 张伟's term ended by 清退, kept as history
    assert "导师" not in {r.role for r in await rows(services, PersonRole, PersonRole.person_id == 1)}
    assert (await bot.ask("u1", "记录 面谈 x")).key == "errors/not_allowed"
    assert (await bot.ask("u5", "清退 张伟 再来一次")).key == "staff/not_a_mentor"
    assert (await bot.ask("u5", "清退 王芳")).why == "staff/usage/dismiss"
