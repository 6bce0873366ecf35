"""What the code declares holds (issue 13, point 5).

- Every ``examples`` string of every declared command and sub-command, sent privately by someone the
  command allows, is understood: no usage answer, no "unknown command", no "not allowed". 帮助 and the
  usage answers show these examples to people, who send them back as they are.
- Every template key the Python names (``Answer.of``, ``Refusal``, ``UsageError``, ``renderer.text``,
  the jobs' templates…) exists under templates/, so a renamed or missing template fails here rather than
  on the first person who meets that answer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import PG_URL, write
from handlers.sheets.squads import import_squads
from handlers.sheets.liaisons import import_liaisons
from handlers.sheets.roster import import_roster

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"

# Beside the standard roster (u1 张伟 and u3 王芳 mentors, u2 李娜 and u4 赵强 mentees, u5 陈静 staff, u6
# 周敏 with no role): an admin, two retired cadres in a 常青藤 squad and a 三联 liaison — the names the
# examples use.
MORE_ROSTER = """\
姓名,手机,单位,职务,角色,本地ID
孙丽,13600007777,县委组织部,副部长,管理员,u7
李忠兴,13500001111,县政协,原主席,退职干部,r1
赵建国,13600002222,县人大常委会,原副主任,退职干部,r2
刘洋,13500002222,县委办,科员,三联联系人,l1
"""
LIAISONS = """\
联系人,单位,类型
刘洋,华埠镇,乡镇
陈静,破山行动专班,专班
"""
SQUADS = """\
组名,专班,组长,成员
招商一组,破山行动专班,李忠兴,赵建国
"""
# Who may send what, by role; "" is someone not yet bound. The first who understands an example passes it.
SENDERS = {"导师": ["u1", "u3"], "徒弟": ["u2", "u4"], "组工干部": ["u5"], "管理员": ["u7"],
           "退职干部": ["r1", "r2"], "三联联系人": ["l1"], "": ["newcomer"]}
NOT_UNDERSTOOD = ("errors/usage", "errors/unknown", "errors/not_allowed", "errors/private_only", "errors/need_bind")


def declared(commands) -> list:
    """Every command and, depth first, the sub-commands it declares (``children``), in order."""
    out = []
    for command in commands:
        out.append(command)
        out += declared(getattr(command, "children", ()) or ())
    return out


def eligible(command) -> list[str]:
    bound = [user for role, users in SENDERS.items() if role for user in users
             if command.roles is None or role in command.roles]
    bound = list(dict.fromkeys(bound + (["u6"] if command.roles is None else [])))
    return bound + (SENDERS[""] if command.unbound else [])


@pytest.fixture
async def programme(seeded, tmp_path):
    now = seeded.clock.now()
    for fn, name, text in ((import_roster, "more.csv", MORE_ROSTER), (import_liaisons, "links.csv", LIAISONS),
                           (import_squads, "squads.csv", SQUADS)):
        report = await fn(seeded.db, write(tmp_path, name, text), now=now)
        assert report.ok, report.lines()
    return seeded


@pytest.mark.skipif(bool(PG_URL), reason="the router and its examples are the same on every database: SQLite pass only")
async def test_every_declared_example_is_understood_by_someone_it_is_meant_for(programme, bot):
    commands = declared(programme.router.commands)
    assert any(getattr(c, "children", None) for c in commands) or len(commands) > 25
    failures, sent = [], 0
    for command in commands:
        senders = eligible(command)
        assert senders, f"nobody in the test programme may use {command.keyword}"
        for example in command.examples:
            heard = []
            for user in senders:
                said = await bot.ask(user, str(example))
                sent += 1
                heard.append(f"{user}: {said.keys}")
                if not any(k.startswith(NOT_UNDERSTOOD) for k in said.keys):
                    break
            else:
                failures.append(f"{command.keyword}: “{example}” → " + "; ".join(heard))
    assert not failures, "\n".join(failures)
    assert sent >= 60


def test_the_walk_reaches_sub_commands():
    """``declared`` follows ``children`` wherever the router declares them."""
    class C:
        def __init__(self, keyword, children=()):
            self.keyword, self.children = keyword, list(children)

    tree = [C("编组", [C("编组 新建"), C("编组 调整")]), C("本周")]
    assert [c.keyword for c in declared(tree)] == ["编组", "编组 新建", "编组 调整", "本周"]


# --- every template the code names exists --------------------------------------------------------------

TOP = sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir())
KEY = re.compile(r"^(?:%s)(?:/[\w-]+)+(?:\.md)?$" % "|".join(map(re.escape, TOP)))
PRODUCTION = ("bot", "handlers", "scheduler", "storage")


def template_keys_in(source: str) -> set[str]:
    """String constants in ``source`` shaped like a template key (``errors/usage``, ``jobs/x.md``); the
    constant head of an f-string (``f"sanling/case_{kind}"``) as a prefix ending in ``*``."""
    tree = ast.parse(source)
    heads = {id(f.values[0]) for f in ast.walk(tree) if isinstance(f, ast.JoinedStr) and f.values}
    parts = {id(v) for f in ast.walk(tree) if isinstance(f, ast.JoinedStr) for v in f.values}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
            if id(node) not in parts:
                found.add(node.value.removesuffix(".md"))
            elif id(node) in heads:
                found.add(node.value + "*")
    return found


def test_the_key_reader_finds_keys_and_nothing_else():
    found = template_keys_in('Answer.of("errors/usage"); Refusal("mentoring/which_pair", n=1)\n'
                             'env.get_template("sanling/job_visit_prompt.md"); x = "not/a key"; y = "/console/x"\n'
                             'z = f"sanling/case_{kind}"; w = f"{a}errors/usage"')
    assert found == {"errors/usage", "mentoring/which_pair", "sanling/job_visit_prompt", "sanling/case_*"}


def test_every_template_named_in_the_code_exists():
    named: dict[str, list[str]] = {}
    for package in PRODUCTION:
        for path in sorted((REPO / package).rglob("*.py")):
            for key in template_keys_in(path.read_text(encoding="utf-8")):
                named.setdefault(key, []).append(str(path.relative_to(REPO)))
    assert len(named) > 150, len(named)
    missing = {k: v for k, v in named.items() if not any(TEMPLATES.glob(f"{k}.md"))}
    assert not missing, missing
