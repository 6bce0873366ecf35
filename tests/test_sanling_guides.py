"""流程 (零跑腿): the guides are data files read at request time, matched by title, alias and part of a name."""

import pytest

from handlers.sanling.guides import load_guides

pytestmark = pytest.mark.usefixtures("seeded")

GUIDE = """\
title = "{title}"
aliases = {aliases}
steps = ["第一步", "第二步"]
materials = ["申请表"]
handler = "组织部干部科"
time_limit = "5 个工作日"
"""


def test_ten_shipped_guides_all_marked_as_examples(config):
    guides = load_guides(config.programme.guides_dir)
    assert len(guides) >= 10
    titles = {g.title for g in guides}
    for needed in ("中层干部选拔任用", "公务员职级晋升", "公务员登记", "干部借用顶岗审批", "中层干部调整预审"):
        assert needed in titles
    assert any(t.startswith("干部调任") for t in titles)
    for g in guides:
        assert g.example and g.steps and g.handler and g.time_limit, g.key


async def test_list_and_one_guide(chat):
    listing = await chat.say("u6", "流程")
    assert "共 10 项" in listing and "公务员登记" in listing and "**流程 1**" in listing and "示例" in listing
    one = await chat.say("u6", "流程 公务员登记")
    assert "**公务员登记**（示例" in one and "办理步骤" in one and "所需材料" in one
    assert "经办" in one and "时限" in one and "《公务员登记表》" in one


@pytest.mark.parametrize("query,title", [
    ("借调", "干部借用顶岗审批"),  # an alias
    ("GUIDE 转正", "新录用公务员试用期满转正"),  # English keyword, alias
    ("流程 职级", "公务员职级晋升"),
    ("流程：档案查阅", "干部人事档案查（借）阅"),
    ("流程 干部调任", "干部调任（最多跑一次）"),  # part of a title
    ("流程 出国", "领导干部因私出国（境）审批"),
    ("流程 中层干部调整预审", "中层干部调整预审"),
    ("流程 干部借用审批", "干部借用顶岗审批"),  # the query contains an alias  # exact title even though it contains another's alias
])
async def test_matching_by_alias_and_part_of_a_name(chat, query, title):
    text = query if query.startswith(("流程", "GUIDE")) else f"流程 {query}"
    reply = await chat.say("u2", text)
    assert reply.startswith(f"**{title}**"), reply


async def test_several_matches_ask_which_one(chat):
    reply = await chat.say("u2", "流程 中层")
    assert "对应 2 项流程" in reply and "流程 中层干部选拔任用" in reply and "流程 中层干部调整预审" in reply


async def test_unknown_name_answers_the_closest_titles(chat):
    reply = await chat.say("u2", "流程 公务员登计")
    assert "没有找到“公务员登计”" in reply and "可能是" in reply and "- 流程 公务员登记" in reply.splitlines()[2]
    reply = await chat.say("u2", "流程 火箭发射")
    assert "没有找到" in reply and "现有流程" in reply and "发送 **流程**" in reply


async def test_operators_edit_guides_without_code(chat, services, tmp_path):
    services.config.programme.guides_dir = str(tmp_path)
    assert "暂未配置" in await chat.say("u2", "流程")
    (tmp_path / "01_a.toml").write_text(GUIDE.format(title="干部挂职审批", aliases='["挂职"]'), encoding="utf-8")
    (tmp_path / "02_b.toml").write_text("title = 3\n", encoding="utf-8")  # broken: skipped, not fatal
    (tmp_path / "03_c.toml").write_text("这不是 TOML", encoding="utf-8")
    listing = await chat.say("u2", "流程")
    assert "共 1 项" in listing and "干部挂职审批" in listing and "示例" not in listing
    one = await chat.say("u2", "流程 挂职")
    assert "**干部挂职审批**" in one and "示例" not in one and "组织部干部科" in one
    (tmp_path / "01_a.toml").write_text(GUIDE.format(title="干部挂职锻炼审批", aliases="[]"), encoding="utf-8")
    assert "**干部挂职锻炼审批**" in await chat.say("u2", "流程 挂职")  # read at request time


async def test_guides_need_binding(chat):
    assert "绑定 姓名 手机后四位" in await chat.say("stranger", "流程")


async def test_a_guide_by_its_number_in_the_list(chat):
    listing = await chat.say("u6", "流程")
    fourth = listing.split("\n4. ")[1].split("\n")[0]
    assert f"**{fourth}**" in await chat.say("u6", "流程 4")
    assert f"**{fourth}**" in await chat.say("u6", "流程 第４项")
    for wrong in ("流程 0", "流程 11"):
        reply = await chat.say("u6", wrong)
        assert "现有 10 项（1–10）" in reply and "流程 1" in reply, reply
