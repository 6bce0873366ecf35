"""Roster and pairs import from .csv and .xlsx: idempotent, per-line errors, good rows kept, dry run."""

import datetime as dt

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from conftest import PAIRS_CSV, ROSTER_CSV, write
from handlers.sheets.export import export_workbook
from handlers.sheets.imports import import_pairs
from handlers.sheets.roster import import_roster
from storage.models import AuditLog, ChatIdentity, Pairing, PairingMentor, Person, PersonRole


async def rows(services, model):
    async with services.db.transaction() as s:
        return (await s.exec(select(model))).all()


def to_xlsx(tmp_path, name, csv_text, date_cols=()):
    wb = Workbook()
    ws = wb.active
    lines = [line.split(",") for line in csv_text.strip().splitlines()]
    for i, line in enumerate(lines):
        if i and date_cols:
            line = [dt.datetime.fromisoformat(v) if j in date_cols and v else v for j, v in enumerate(line)]
        ws.append(line)
    path = tmp_path / name
    wb.save(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_roster_and_pairs_round_trip_and_are_idempotent(services, tmp_path, fmt):
    now = services.clock.now()
    if fmt == "csv":
        roster, pairs = write(tmp_path, "r.csv", ROSTER_CSV), write(tmp_path, "p.csv", PAIRS_CSV)
    else:
        # phone numbers as numbers and dates as real date cells, as Excel stores them
        roster = to_xlsx(tmp_path, "r.xlsx", ROSTER_CSV)
        wb = load_workbook(roster)
        for row in wb.active.iter_rows(min_row=2):
            row[1].value = int(row[1].value)
        wb.save(roster)
        pairs = to_xlsx(tmp_path, "p.xlsx", PAIRS_CSV, date_cols=(3, 4))
    first = await import_roster(services.db, roster, now=now)
    assert (first.created, first.updated, first.errors) == (6, 0, [])
    p = await import_pairs(services.db, pairs, now=now)
    assert (p.created, p.errors) == (2, [])
    again_r = await import_roster(services.db, roster, now=now)
    again_p = await import_pairs(services.db, pairs, now=now)
    assert (again_r.created, again_r.updated, again_r.unchanged) == (0, 0, 6)
    assert (again_p.created, again_p.updated, again_p.unchanged) == (0, 0, 2)
    people = {p.name: p for p in await rows(services, Person)}
    assert people["张伟"].phone == "13800001234" and people["李娜"].birth_year == 1986
    links = await rows(services, PairingMentor)
    assert len(links) == 3 and sum(link.is_lead for link in links) == 2
    roles = {(r.person_id, r.role) for r in await rows(services, PersonRole)}
    assert (people["李娜"].id, "徒弟") in roles and (people["王芳"].id, "导师") in roles
    pairing = next(p for p in await rows(services, Pairing) if p.mentee_id == people["李娜"].id)
    assert pairing.start_date == dt.date(2026, 3, 1) and pairing.agreement_date == dt.date(2026, 3, 5)
    identities = {(i.channel, i.platform_user_id) for i in await rows(services, ChatIdentity)}
    assert ("local", "u1") in identities


async def test_roster_errors_are_reported_by_line_and_good_rows_kept(services, tmp_path):
    sheet = write(tmp_path, "r.csv", """\
        姓名,手机,单位,角色,出生年份,钉钉ID
        张伟,13800001234,组织部,导师,1962,dt1
        ,13800001111,组织部,,,
        李娜,1380000,华埠镇,徒弟,,
        王芳,13800002345,发改局,教练,,
        赵强,13800003456,街道,徒弟,85,

        孙丽,13800001234,组织部,,,
        周敏,13800009999,人社局,,,dt1
        陈静,13800005678,组织部,组工干部,,
        """)
    report = await import_roster(services.db, sheet, now=services.clock.now())
    assert report.created == 2  # 张伟, 陈静
    assert [line for line, _ in report.errors] == [3, 4, 5, 6, 8, 9]
    reasons = dict(report.errors)
    assert "姓名为空" in reasons[3] and "11 位手机号" in reasons[4] and "角色“教练”不认识" in reasons[5]
    assert "出生年份" in reasons[6] and "与第 2 行重复" in reasons[8] and "已属于 张伟" in reasons[9]
    assert report.empty_lines == 1
    assert {p.name for p in await rows(services, Person)} == {"张伟", "陈静"}
    text = "\n".join(report.lines())
    assert "第 4 行 B 列（手机）：手机号“1380000”不是 11 位手机号" in text and "跳过空行 1 行" in text


async def test_wrong_headers_refuse_the_file(services, tmp_path):
    report = await import_roster(services.db, write(tmp_path, "r.csv", "人员,号码\n张伟,13800001234\n"),
                                 now=services.clock.now())
    assert report.fatal and "姓名" in report.fatal_text()
    assert report.lines() == ["导入失败：表头缺少必填列：姓名（在文件的前 20 行中没有找到）"]  # what `bangdai import` prints
    assert await rows(services, Person) == []
    report = await import_pairs(services.db, write(tmp_path, "p.csv", "徒弟,开始日期\n李娜,2026-03-01\n"),
                                now=services.clock.now())
    assert "导师" in report.fatal_text()
    for bad in ("x.txt", "missing.csv"):
        if bad.endswith(".txt"):
            write(tmp_path, bad, "姓名\n张伟\n")
        report = await import_roster(services.db, tmp_path / bad, now=services.clock.now())
        assert report.fatal


async def test_gbk_csv_from_excel(services, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("姓名,手机\n张伟,13800001234\n".encode("gbk"))
    report = await import_roster(services.db, path, now=services.clock.now())
    assert report.created == 1 and report.ok


async def test_dry_run_writes_nothing(services, tmp_path):
    report = await import_roster(services.db, write(tmp_path, "r.csv", ROSTER_CSV), now=services.clock.now(), dry_run=True)
    assert report.created == 6 and "试运行" in report.lines()[0]
    assert await rows(services, Person) == [] and await rows(services, AuditLog) == []


async def test_pairs_errors(services, tmp_path, seeded):
    now = services.clock.now()
    await import_roster(services.db, write(tmp_path, "r2.csv", "姓名,手机,单位\n张伟,13811112222,华埠镇\n"), now=now)
    sheet = write(tmp_path, "p.csv", """\
        徒弟,导师,牵头导师,开始日期,协议签订日期
        周敏,王五,,2026-03-01,
        周敏,张伟,,2026-03-01,
        周敏,王芳、王芳,,2026-03-01,
        周敏,王芳,赵强,2026-03-01,
        周敏,周敏,,2026-03-01,
        周敏,王芳,,2026-13-01,
        周敏,王芳,,,
        周敏,王芳,,2026-03-01,2099-01-01
        ,王芳,,2026-03-01,
        周敏,王芳,,2026-03-01,
        周敏,王芳,,2026-03-01,
        """)
    report = await import_pairs(services.db, sheet, now=now)
    reasons = dict(report.errors)
    assert "没有“王五”" in reasons[2]
    assert "有 2 名“张伟”" in reasons[3]
    assert "写了两次" in reasons[4]
    assert "不在导师名单" in reasons[5]
    assert "自己的导师" in reasons[6]
    assert "不存在" in reasons[7]
    assert "开始日期为空" in reasons[8]
    assert "在将来" in reasons[9]
    assert "徒弟为空" in reasons[10]
    assert "第 11 行已有结对" in reasons[12]
    assert report.created == 1


async def test_name_with_unit_and_rematch_keeps_history(services, tmp_path, seeded):
    now = services.clock.now()
    await import_roster(services.db, write(tmp_path, "r2.csv", "姓名,手机,单位\n张伟,13811112222,华埠镇\n"), now=now)
    report = await import_pairs(services.db, write(tmp_path, "p.csv", "徒弟,导师,开始日期\n赵强,张伟（华埠镇）,2026-11-01\n"), now=now)
    assert report.ok and report.updated == 1, report.lines()
    [pairing] = [p for p in await rows(services, Pairing) if p.mentee_id == 4]  # one 帮带 for good
    terms = [t for t in await rows(services, PairingMentor) if t.pairing_id == pairing.id]
    assert [(t.person_id, t.end_date, t.end_reason) for t in terms] == [
        (1, dt.date(2026, 11, 1), "导入调整帮带关系"), (7, None, "")]
    assert any(a.action == "pairing.rematch" for a in await rows(services, AuditLog))


async def test_export_masks_phones(services, tmp_path, seeded):
    path = tmp_path / "out.xlsx"
    counts = await export_workbook(services.db, path, services.clock)
    assert counts["人员"] == 6 and counts["结对"] == 2
    wb = load_workbook(path)
    values = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert "138****1234" in values and "13800001234" not in values
    assert wb.sheetnames[:6] == ["人员", "结对", "联系记录", "培养计划", "季评", "捆绑考核"]  # programmes add theirs after
    assert counts["捆绑考核"] == 2 and wb["捆绑考核"]["F2"].value == "待定（徒弟考核未录齐）"
