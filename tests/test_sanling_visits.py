"""三联 liaisons: the sheet import (idempotent, per-line errors, dry run, CLI), and 走访 through the local
channel with its wrong forms."""

import datetime as dt

import pytest
from openpyxl import Workbook, load_workbook

from conftest import write
from handlers.sheets.export import export_workbook
from handlers.sheets.liaisons import import_liaisons
from sanling_support import LIAISONS_CSV, count, rows, sanling  # noqa: F401
from storage.models import AuditLog, LiaisonLink, PersonRole, Unit, Visit

CHEN_JING, ZHANG_WEI = 5, 1  # person ids in roster order


# --- import ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_import_links_gives_the_role_and_is_idempotent(services, seeded, tmp_path, fmt):
    if fmt == "csv":
        path = write(tmp_path, "l.csv", LIAISONS_CSV)
    else:
        wb = Workbook()
        for line in LIAISONS_CSV.strip().splitlines():
            wb.active.append(line.split(","))
        path = tmp_path / "l.xlsx"
        wb.save(path)
    now = services.clock.now()
    first = await import_liaisons(services.db, path, now=now)
    assert (first.created, first.updated, first.errors) == (4, 0, []), first.lines()
    again = await import_liaisons(services.db, path, now=now)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    roles = {(r.person_id, r.role) for r in await rows(services, PersonRole)}
    assert (CHEN_JING, "三联联系人") in roles and (ZHANG_WEI, "三联联系人") in roles
    units = {u.name: u.kind for u in await rows(services, Unit)}
    # 华埠镇 came from the roster without a kind; the liaison sheet says what it is.
    assert units["华埠镇"] == "乡镇" and units["招商引资专班"] == "专班" and units["县发改局"] == "部门"
    assert await count(services, LiaisonLink) == 4
    assert [a.action for a in await rows(services, AuditLog)].count("import.liaisons") == 2


async def test_import_errors_are_reported_by_line_and_good_rows_kept(services, seeded, tmp_path):
    sheet = write(tmp_path, "l.csv", """\
        联系人,单位,类型,状态
        陈静,华埠镇,乡镇
        王五,华埠镇,乡镇
        陈静,,乡镇
        陈静,城关街道,村
        陈静,华埠镇,镇

        张伟,华埠镇,部门
        张伟,县发改局,
        ,县发改局,部门
        张伟,县发改局,单位
        张伟,县人社局,部门,撤销
        张伟,县人社局,部门,暂停
        """)
    report = await import_liaisons(services.db, sheet, now=services.clock.now())
    reasons = dict(report.errors)
    assert "没有“王五”" in reasons[3]
    assert "单位为空" in reasons[4]
    assert "类型“村”不对" in reasons[5]
    assert "与第 2 行重复" in reasons[6]
    assert "在第 2 行是乡镇" in reasons[8]
    assert "类型为空" in reasons[9]
    assert "联系人为空" in reasons[10]
    assert "无从撤销" in reasons[12]
    assert "状态“暂停”不认识" in reasons[13]
    assert report.empty_lines == 1 and report.created == 2  # 陈静—华埠镇, 张伟—县发改局 (单位 = 部门)
    text = "\n".join(report.lines())
    assert "第 3 行" in text and "出错 9 行" in text


async def test_import_dry_run_and_ending_a_link(services, seeded, tmp_path, chat):
    now = services.clock.now()
    dry = await import_liaisons(services.db, write(tmp_path, "l.csv", LIAISONS_CSV), now=now, dry_run=True)
    assert dry.created == 4 and "试运行" in dry.lines()[0]
    assert await count(services, LiaisonLink) == 0 and await count(services, PersonRole, PersonRole.role == "三联联系人") == 0
    await import_liaisons(services.db, write(tmp_path, "l.csv", LIAISONS_CSV), now=now)
    ended = await import_liaisons(services.db, write(tmp_path, "end.csv", """\
        联系人,单位,类型,状态
        张伟,县发改局,部门,撤销
        张伟,招商引资专班,专班,撤销
        """), now=now)
    assert ended.updated == 2 and ended.ok
    assert "没有三联联系单位" in await chat.say("u1", "走访")
    assert "尚未走访" in await chat.say("u5", "走访")
    # The ended links stay as history in the export.
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, services.clock)
    assert counts["三联联系"] == 4
    states = [r[3].value for r in load_workbook(path)["三联联系"].iter_rows(min_row=2)]
    assert states.count("已撤销") == 2


def test_cli_import_liaisons(tmp_path):
    from test_cli import bangdai

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n', encoding="utf-8")
    from conftest import ROSTER_CSV

    assert bangdai("db", "upgrade", "--config", str(cfg)).returncode == 0
    assert bangdai("import", "roster", str(write(tmp_path, "r.csv", ROSTER_CSV)), "--config", str(cfg)).returncode == 0
    sheet = write(tmp_path, "l.csv", LIAISONS_CSV + "王五,华埠镇,乡镇\n")
    dry = bangdai("import", "liaisons", str(sheet), "--dry-run", "--config", str(cfg))
    assert "试运行（未写入）：新增 4" in dry.stdout and "第 6 行" in dry.stdout and dry.returncode == 1
    real = bangdai("import", "liaisons", str(sheet), "--config", str(cfg))
    assert "导入完成：新增 4" in real.stdout
    again = bangdai("import", "liaisons", str(write(tmp_path, "ok.csv", LIAISONS_CSV)), "--config", str(cfg))
    assert "新增 0，更新 0，未变 4" in again.stdout and again.returncode == 0
    wrong = bangdai("import", "liaisons", str(write(tmp_path, "bad.csv", "姓名,单位\n陈静,华埠镇\n")), "--config", str(cfg))
    assert wrong.returncode == 1 and "类型" in wrong.stdout


# --- 走访 ---------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("sanling")
async def test_visit_lists_this_months_units_and_logs_visits(chat, services, clock):
    listing = await chat.say("u5", "走访")
    assert "联系单位 2 个，已走访 0 个" in listing and "⬜ 华埠镇（乡镇）" in listing and "⬜ 城关街道" in listing
    reply = await chat.say("u5", "走访 华埠镇 了解年轻干部思想动态")
    assert "已记录：11月19日 走访 华埠镇" in reply and "11月已走访 1/2" in reply and "尚未走访：城关街道" in reply
    reply = await chat.say("u5", "visit 城关 昨天 座谈会")  # part of a name, date after the unit
    assert "11月18日 走访 城关街道" in reply and "全部走访 ✅" in reply
    await chat.say("u5", "走访 11-02 华埠镇：回访")  # date first, full-width colon
    listing = await chat.say("u5", "走访")
    assert "✅ 华埠镇（乡镇）：11月2日、11月19日，共 2 次" in listing and "✅ 城关街道（乡镇）：11月18日" in listing
    visits = await rows(services, Visit)
    assert sorted((v.day, v.note) for v in visits) == [
        (dt.date(2026, 11, 2), "回访"), (dt.date(2026, 11, 18), "座谈会"), (dt.date(2026, 11, 19), "了解年轻干部思想动态")]
    assert all(v.liaison_id == CHEN_JING for v in visits)
    # Next month starts empty.
    clock.set(dt.datetime(2026, 12, 1, 10, 0))
    assert "联系单位 2 个，已走访 0 个" in await chat.say("u5", "走访")
    # A visit dated last month counts for last month.
    assert "11月 2 个联系单位已全部走访" in await chat.say("u5", "走访 城关街道 11月30日 补记")


@pytest.mark.usefixtures("sanling")
@pytest.mark.parametrize("user,text,expect", [
    ("u5", "走访 县发改局 座谈", "“县发改局”不是您的三联联系单位"),
    ("u5", "走访 白沙村 座谈", "“白沙村”不在您的三联联系单位中"),
    ("u5", "走访 华埠镇", "请写上这次走访的内容"),
    ("u5", "走访 华埠镇 明天 座谈", "将来的日期"),
    ("u5", "走访 2026-12-01 华埠镇 座谈", "将来的日期"),
    ("u5", "走访 华埠镇 2026-02-30 座谈", "不存在"),
    ("u5", "走访 华埠镇 2026-09-01 座谈", "超过 30 天"),
    ("u5", "走访 昨天 华埠镇 今天 座谈", "日期写一次即可"),
    ("u5", "走访 昨天", "请写上走访的单位和内容"),
    ("u2", "走访 华埠镇 座谈", "仅限三联联系人"),
    ("stranger", "走访", "绑定 姓名 手机后四位"),
])
async def test_visit_wrong_forms_write_nothing(chat, services, user, text, expect):
    reply = await chat.say(user, text)
    assert expect in reply, reply
    assert await count(services, Visit) == 0


@pytest.mark.usefixtures("sanling")
async def test_ambiguous_part_of_a_unit_name(chat, services, tmp_path):
    await import_liaisons(services.db, write(tmp_path, "more.csv", "联系人,单位,类型\n陈静,华埠镇工业园区专班,专班\n"),
                          now=services.clock.now())
    assert "已记录" in await chat.say("u5", "走访 华埠镇 座谈")  # the full name wins over the longer one's prefix
    reply = await chat.say("u5", "走访 华埠 座谈")
    assert "对应您的多个联系单位" in reply and "华埠镇工业园区专班" in reply
    assert await count(services, Visit) == 1


@pytest.mark.usefixtures("sanling")
async def test_stats_show_this_months_visits(chat, services):
    await chat.say("u5", "走访 华埠镇 座谈")
    await chat.say("u5", "走访 华埠镇 回访")
    stats = await chat.say("u7", "统计")
    assert "联系人 2 人、联系单位 4 个，已走访 1 个（25%），共走访 2 次；本月尚未走访的联系人 1 人" in stats


@pytest.mark.usefixtures("sanling")
async def test_visits_in_the_export(chat, services, tmp_path):
    await chat.say("u1", "走访 招商引资专班 调研项目推进")
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, services.clock)
    assert counts["三联走访"] == 1 and counts["三联联系"] == 4
    [row] = [[c.value for c in r] for r in load_workbook(path)["三联走访"].iter_rows(min_row=2)]
    assert row[1:] == ["张伟", "招商引资专班", "专班", "调研项目推进"]
