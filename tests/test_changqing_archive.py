"""常青藤 archive: who took part in each 实绩 (个人实绩档案), the yearly 专项考核 from the difficulty
coefficients, groups linked to 重点企业/项目 with 跟进, and the 常青藤 sheets of the export."""

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from handlers.sheets.export import export_workbook
from storage.models import AchievementMember, AuditLog, ProjectFollowUp, SquadProject
import test_changqing

# The 常青藤 fixtures: s1 staff, x1 no role, r1–r5 retired (李忠兴, 赵建国, 赵志强, 赵海燕, 赵文华).
config, services, roster = test_changqing.config, test_changqing.services, test_changqing.roster

pytestmark = pytest.mark.usefixtures("roster")


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())


async def groups(chat):
    await chat.say("s1", "编组 新建 招商一组 破山行动专班 李忠兴")
    await chat.say("s1", "编组 调整 赵建国 招商一组")
    await chat.say("s1", "编组 调整 赵志强 招商一组")
    await chat.say("s1", "编组 新建 招商二组 破山行动专班 赵海燕")


async def test_person_archive_and_yearly_scores(chat, services):
    await groups(chat)
    await chat.say("r1", "实绩 协调万洋众创项目土地指标")  # #1
    await chat.say("r2", "实绩 对接两家客商来常考察")  # #2
    await chat.say("r4", "实绩 化解一起劳资纠纷")  # #3, group 2
    assert "已登记实绩 #1 的参与人：李忠兴、赵建国" in await chat.say("r1", "实绩 参与 #1 李忠兴、赵建国")
    await chat.say("s1", "实绩 系数 #1 3")
    await chat.say("s1", "实绩 系数 #2 1.5")
    await chat.say("s1", "实绩 作废 #3 重复记录")
    assert {(m.achievement_id, m.person_id) for m in await rows(services, AchievementMember)} == {
        (1, 3), (1, 4), (2, 4), (3, 6)}  # person ids: 陈静 1, 周敏 2, 李忠兴 3, 赵建国 4, 赵志强 5, 赵海燕 6
    archive = await chat.say("r2", "实绩 档案")
    assert "赵建国 2026 年个人实绩档案**：参与实绩 2 项，专项考核得分 4.5（第 1 名）" in archive
    assert "#1 11月19日 招商一组：协调万洋众创项目土地指标（系数 3.0；参与：李忠兴、赵建国）" in archive
    scores = await chat.say("s1", "实绩 考核")
    assert "1. 赵建国（招商一组）：4.5 分，2 项" in scores and "2. 李忠兴（招商一组）：3.0 分，1 项" in scores
    assert "赵海燕（招商二组）：0 分，0 项" in scores  # voided: counts nothing
    assert "已作废不计分" in await chat.say("s1", "实绩 档案 赵海燕")
    assert "赵建国 2025 年个人实绩档案" in await chat.say("r2", "实绩 档案 2025")
    assert any(a.action == "changqing.achievement.members" for a in await rows(services, AuditLog))


@pytest.mark.parametrize("user,text,expect", [
    ("r2", "实绩 参与 #1 赵建国", "不是您记录的"),
    ("r1", "实绩 参与 #1", "请写上参与的组员姓名"),
    ("r1", "实绩 参与 #1 赵海燕", "赵海燕 不在 招商一组"),
    ("r1", "实绩 参与 #1 王五", "王五"),
    ("r1", "实绩 参与 #9 赵建国", "#9"),
    ("r1", "实绩 档案 赵建国", "只能查看自己的"),
    ("r1", "实绩 档案 2099", "年份“2099”不对"),
    ("r1", "实绩 档案 2026 多余", "档案后面只写姓名和年份"),
    ("r1", "实绩 考核", "“实绩 考核”仅限管理员、组工干部"),
    ("s1", "实绩 考核 明年", "年份“明年”不对"),
])
async def test_archive_wrong_forms(chat, services, user, text, expect):
    await groups(chat)
    await chat.say("r1", "实绩 协调万洋众创项目土地指标")
    assert expect in await chat.say(user, text)
    assert [(m.achievement_id, m.person_id) for m in await rows(services, AchievementMember)] == [(1, 3)]


async def test_projects_and_follow_ups(chat, services):
    await groups(chat)
    linked = await chat.say("s1", "跟进 关联 招商一组 万洋众创、华友钴业、金色阳光")
    assert "已为 招商一组 关联：万洋众创、华友钴业、金色阳光" in linked and "现联系 3 个" in linked
    assert "无需重复" in await chat.say("s1", "跟进 关联 招商一组 万洋众创")
    assert "已由其他小组联系" in await chat.say("s1", "跟进 关联 招商二组 万洋众创")
    assert "已记录 万洋众创 的跟进" in await chat.say("r2", "跟进 万洋众创 协调二期厂房验收")
    assert "不是您所在小组联系的项目" in await chat.say("r4", "跟进 万洋众创 我来看看")
    mine = await chat.say("r1", "跟进")
    assert "- 万洋众创（招商一组）：跟进 1 次，最近 11月19日：协调二期厂房验收" in mine and "华友钴业（招商一组）：跟进 0 次" in mine
    assert "赵建国：协调二期厂房验收" in await chat.say("r4", "跟进 万洋众创")
    assert "没有名为“万洋”的重点企业/项目。可选：万洋众创、华友钴业、金色阳光" in await chat.say("r1", "跟进 万洋 内容")
    assert "还没有关联的重点企业/项目" in await chat.say("r4", "跟进")
    assert len(await rows(services, SquadProject)) == 3 and len(await rows(services, ProjectFollowUp)) == 1


@pytest.mark.parametrize("user,text,expect", [
    ("r1", "跟进 关联 招商一组 万洋众创", "“跟进 关联”仅限管理员、组工干部"),
    ("s1", "跟进 关联 招商一组", "请写上组名和重点企业/项目名称"),
    ("s1", "跟进 关联 招商九组 万洋众创", "招商九组"),
    ("x1", "跟进", "仅限"),
    ("r5", "跟进", "还没有编入"),
])
async def test_project_wrong_forms(chat, services, user, text, expect):
    await groups(chat)
    assert expect in await chat.say(user, text)
    assert await rows(services, SquadProject) == []


async def test_changqing_sheets_in_the_export(chat, services, tmp_path):
    await chat.say("r1", "报名 招商引资联络员")
    await groups(chat)
    await chat.say("r1", "承诺 年内协调万洋众创二期 3 家企业落地投产")
    await chat.say("r1", "实绩 协调万洋众创项目土地指标")
    await chat.say("r1", "实绩 参与 #1 李忠兴、赵建国")
    await chat.say("s1", "实绩 系数 #1 1.5")
    await chat.say("s1", "跟进 关联 招商一组 万洋众创、华友钴业、金色阳光")
    await chat.say("r1", "跟进 万洋众创 协调二期厂房验收")
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, services.clock)
    assert counts["常青藤成员"] == 8 and counts["常青藤编组"] == 2 and counts["常青藤实绩"] == 1
    wb = load_workbook(path)
    members = {r[0].value: [c.value for c in r] for r in wb["常青藤成员"].iter_rows(min_row=2)}
    assert members["李忠兴"][2:] == ["招商引资联络员", "已报名", "招商一组", "破山行动专班", "年内协调万洋众创二期 3 家企业落地投产"]
    assert [c.value for c in wb["常青藤编组"][2]] == ["招商一组", "破山行动专班", "李忠兴", 3, "万洋众创、华友钴业、金色阳光"]
    assert [c.value for c in wb["常青藤实绩"][2]][2:] == ["招商一组", "李忠兴", "李忠兴、赵建国", "协调万洋众创项目土地指标", 1.5, "有效"]
    scores = {r[1].value: r[5].value for r in wb["专项考核"].iter_rows(min_row=2)}
    assert scores["李忠兴"] == 1.5 and scores["赵建国"] == 1.5 and scores["赵志强"] == 0
    assert [c.value for c in wb["项目跟进"][2]][:2] == ["万洋众创", "招商一组"]
    assert [c.value for c in wb["常青藤承诺"][2]] == [2026, "李忠兴", "年内协调万洋众创二期 3 家企业落地投产"]


async def test_seed_poshan_task_force_five_groups_three_projects_each(chat, services, tmp_path):
    """The seed (常山): in the 破山 task force five former heads of economic departments each lead a group,
    and each group serves 3 重点企业（项目）: 15 projects, read back by chat and in the export."""
    leaders = ["李忠兴", "赵建国", "赵志强", "赵海燕", "赵文华"]
    for i, leader in enumerate(leaders, start=1):
        assert "已新建小组" in await chat.say("s1", f"编组 新建 破山{i}组 破山行动专班 {leader}")
        names = "、".join(f"企业{i}-{k}" for k in range(1, 4))
        assert "现联系 3 个" in await chat.say("s1", f"跟进 关联 破山{i}组 {names}")
    await chat.say("s1", "跟进 关联 破山1组 万洋众创")  # the seed's 万洋众创, served by 李忠兴's group
    assert "已记录 万洋众创 的跟进" in await chat.say("r1", "跟进 万洋众创 服务项目落地投产")
    listing = await chat.say("s1", "跟进")
    assert listing.count("（破山") == 16 and "万洋众创（破山1组）：跟进 1 次" in listing
    path = tmp_path / "out.xlsx"
    await export_workbook(services.db, path, services.clock)
    groups_sheet = {r[0].value: r[4].value for r in load_workbook(path)["常青藤编组"].iter_rows(min_row=2)}
    assert len(groups_sheet) == 5 and all(len(v.split("、")) == 3 for k, v in groups_sheet.items() if k != "破山1组")
