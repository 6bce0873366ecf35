"""Spreadsheets as offices make them, and files built to eat the machine (issue 14 item 1, issue 11 item 8).

Every fixture file is built here in the shape named: a title row over merged cells, a hidden 填表示例
sheet before the data, spaced and full-width headers with synonyms, serial dates, float-like phones,
GBK CSV, an .xls, a cell at XFD1048576, a shared-strings zip bomb, a stray cell at row 200,000.
"""

import datetime as dt
import re
import zipfile

import pytest
from openpyxl import Workbook
from sqlmodel import select

from conftest import ROSTER_CSV, write
from handlers.sheets.imports import ROSTER_COLUMNS, import_pairs, row_reason
from handlers.sheets.roster import import_roster
from handlers.sheets.liaisons import import_liaisons
from handlers.sheets.reader import SheetError, SheetLimits, read_sheet, sheet_date, sheet_phone
from storage.models import Pairing, Person, Unit

# A county's own roster: title row merged across the columns, a blank line, then the header written
# with spaces, full-width brackets and synonyms; phones stored as numbers, birth as a date.
TITLE = "XX县年轻干部花名册（2026年）"
HEADER = ["序号", "姓 名", "手机号码", "单位（部门）", "现任职务", "角色", "出生年月"]
PEOPLE = [
    [1, "张伟", 13800001234.0, "县委组织部", "原副部长", "导师", dt.datetime(1962, 5, 1)],
    [2, "王芳", 13800002345, "县发改局", "原局长", "导师", "1963.04"],
    [3, "李娜", "13900003456.0", "华埠镇", "镇长", "徒弟", 1986],
    [4, "赵强", "139-0000-4567", "城关街道", "主任", "徒弟", "1988年3月"],
]


def office_roster(path, *, example_first=True, hidden=True, extra_sheet=None, rows=PEOPLE):
    wb = Workbook()
    if example_first:
        ex = wb.active
        ex.title = "填表示例"
        ex.append(HEADER)
        ex.append([1, "张三", 13812345678, "示例单位", "科员", "组工干部", 1990])
        if hidden:
            ex.sheet_state = "hidden"
        ws = wb.create_sheet("花名册")
    else:
        ws = wb.active
        ws.title = "花名册"
    ws.append([TITLE])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    ws.append([])
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    if extra_sheet:
        other = wb.create_sheet(extra_sheet)
        other.append(["姓名", "手机"])
        other.append(["孙丽", "13700009999"])
    wb.save(path)
    return path


async def people(services):
    async with services.db.transaction() as s:
        return {p.name: p for p in (await s.exec(select(Person))).all()}


async def test_office_roster_title_rows_hidden_example_synonyms(services, tmp_path):
    path = office_roster(tmp_path / "花名册.xlsx")
    report = await import_roster(services.db, path, now=services.clock.now())
    assert report.ok and report.created == 4, report.lines()
    assert report.sheet == "花名册"
    found = await people(services)
    assert "张三" not in found  # the hidden example sheet is never imported
    assert found["张伟"].phone == "13800001234" and found["李娜"].phone == "13900003456"
    assert found["赵强"].phone == "13900004567"
    assert [found[n].birth_year for n in ("张伟", "王芳", "李娜", "赵强")] == [1962, 1963, 1986, 1988]
    assert found["王芳"].title == "原局长"
    async with services.db.transaction() as s:
        units = {u.id: u.name for u in (await s.exec(select(Unit))).all()}
    assert units[found["李娜"].unit_id] == "华埠镇"  # 单位（部门） is the unit, not an ignored column


async def test_visible_example_sheet_by_name_is_skipped_too(services, tmp_path):
    path = office_roster(tmp_path / "r.xlsx", hidden=False)
    report = await import_roster(services.db, path, now=services.clock.now())
    assert report.ok and report.sheet == "花名册" and "张三" not in await people(services)


async def test_two_candidate_sheets_name_them_and_sheet_option_picks(services, tmp_path):
    path = office_roster(tmp_path / "r.xlsx", extra_sheet="补充名单")
    report = await import_roster(services.db, path, now=services.clock.now())
    assert report.fatal and "“花名册”、“补充名单”" in report.fatal_text() and "--sheet 花名册" in report.fatal_text()
    assert await people(services) == {}
    report = await import_roster(services.db, path, now=services.clock.now(), sheet_name="补充名单")
    assert report.ok and set(await people(services)) == {"孙丽"}
    report = await import_roster(services.db, path, now=services.clock.now(), sheet_name="没有这个")
    assert "没有名为“没有这个”的工作表" in report.fatal_text() and "“花名册”" in report.fatal_text()


async def test_a_column_that_looks_known_but_is_not_is_an_error(services, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.title = "名单"
    ws.append(["姓名", "手机", "工作单位及职务"])
    ws.append(["张伟", "13800001234", "县委组织部副部长"])
    wb.save(tmp_path / "r.xlsx")
    report = await import_roster(services.db, tmp_path / "r.xlsx", now=services.clock.now())
    assert report.fatal and "工作表“名单”第 1 行 C 列表头“工作单位及职务”" in report.fatal_text()
    assert await people(services) == {}


async def test_every_row_error_names_sheet_row_and_column(services, tmp_path):
    rows = [*PEOPLE[:2], [3, "李娜", 1390000, "华埠镇", "镇长", "徒弟", 1986], [4, "赵强", "", "城关街道", "", "教练", ""]]
    path = office_roster(tmp_path / "r.xlsx", rows=rows)
    report = await import_roster(services.db, path, now=services.clock.now())
    assert report.created == 2
    reasons = dict(report.errors)
    assert reasons[6] == "工作表“花名册” 第 6 行 C 列（手机号码）：手机号“1390000”不是 11 位手机号"
    assert reasons[7].startswith("工作表“花名册” 第 7 行 F 列（角色）：角色“教练”不认识")


async def test_pairs_with_serial_and_written_dates_and_dry_run_preview(services, tmp_path, seeded):
    wb = Workbook()
    ws = wb.active
    ws.title = "结对"
    ws.append(["2026年青蓝接力结对名单"])
    ws.merge_cells("A1:D1")
    ws.append(["徒弟姓名", "导师姓名", "结对时间", "协议签订日期"])
    ws.append(["李娜", "张伟、王芳", 46082, "2026.3.5"])  # 46082 is 2026-03-01 as Excel counts days
    ws.append(["赵强", "张伟", "2026/3/1", "2026年3月2日"])
    ws.append(["周敏", "王芳", "2026-03-01 00:00:00", None])
    wb.save(tmp_path / "p.xlsx")
    dry = await import_pairs(services.db, tmp_path / "p.xlsx", now=services.clock.now(), dry_run=True)
    assert dry.ok, dry.lines()
    text = "\n".join(dry.lines())
    assert "前 3 行将这样写入" in text and "结对时间=2026-03-01，协议签订日期=2026-03-05" in text
    report = await import_pairs(services.db, tmp_path / "p.xlsx", now=services.clock.now())
    assert report.ok and (report.created, report.updated) == (1, 1), report.lines()
    async with services.db.transaction() as s:
        active = (await s.exec(select(Pairing).where(Pairing.active == True))).all()  # noqa: E712
    assert {(p.start_date, p.agreement_date) for p in active} >= {
        (dt.date(2026, 3, 1), dt.date(2026, 3, 5)), (dt.date(2026, 3, 1), dt.date(2026, 3, 2))}


async def test_pair_errors_name_the_column_of_the_name(services, tmp_path, seeded):
    path = write(tmp_path, "p.csv", "徒弟,导师,开始日期\n周敏,王五,2026-03-01\n周敏,王芳,3月1日\n")
    report = await import_pairs(services.db, path, now=services.clock.now())
    reasons = dict(report.errors)
    assert reasons[2].startswith("第 2 行 B 列（导师）：花名册中没有“王五”")
    assert reasons[3].startswith("第 3 行 C 列（开始日期）：日期“3月1日”看不懂")


async def test_gbk_csv_with_title_row_and_liaisons(services, tmp_path, seeded):
    path = tmp_path / "三联.csv"
    path.write_bytes("三联联系名单,,\n联系人,联系单位,类型\n陈静,华埠镇,乡镇\n".encode("gbk"))
    report = await import_liaisons(services.db, path, now=services.clock.now())
    assert report.ok and report.created == 1, report.lines()


async def test_xls_is_refused_with_what_to_do(services, tmp_path):
    path = tmp_path / "老表格.xls"
    path.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 512)  # the OLE2 signature of a BIFF .xls
    report = await import_roster(services.db, path, now=services.clock.now())
    assert "另存为 .xlsx" in report.fatal_text()
    renamed = tmp_path / "renamed.xlsx"
    renamed.write_bytes(path.read_bytes())
    report = await import_roster(services.db, renamed, now=services.clock.now())
    assert "另存为 .xlsx" in report.fatal_text()


def test_cell_readers():
    assert sheet_date(46082) == dt.date(2026, 3, 1) and sheet_date("46082") == dt.date(2026, 3, 1)
    for text in ("2026.3.1", "2026/3/1", "2026年3月1日", "2026-03-01", "20260301", "2026-03-01 00:00:00"):
        assert sheet_date(text) == dt.date(2026, 3, 1), text
    assert sheet_phone(13800138000.0) == sheet_phone("13800138000.0") == sheet_phone("+86 138 0013 8000") == "13800138000"
    for bad in (7, "2026-02-30", "下周"):
        with pytest.raises(ValueError):
            sheet_date(bad)
    with pytest.raises(ValueError) as caught:
        sheet_phone("1.38001E+10")
    assert "科学计数法“1.38001E+10”" in row_reason(caught.value)  # the reason as the import report says it


# --- hostile files -------------------------------------------------------------------------------------

def roster_xlsx(path, *extra_cells):
    wb = Workbook()
    ws = wb.active
    for line in ROSTER_CSV.strip().splitlines():
        ws.append(line.split(","))
    for row, col, value in extra_cells:
        ws.cell(row=row, column=col, value=value)
    wb.save(path)
    return path


def test_declared_dimension_xfd1048576_is_refused_before_reading(tmp_path):
    path = roster_xlsx(tmp_path / "huge.xlsx", (1048576, 16384, "x"))
    assert path.stat().st_size < 10_000
    with pytest.raises(SheetError) as caught:
        read_sheet(path, ROSTER_COLUMNS, {"name"})
    assert "1,048,576 行 × 16,384 列，超过上限 100,000 行 × 50 列" in row_reason(caught.value)


def test_shared_strings_zip_bomb_is_refused_before_unpacking(tmp_path):
    plain = roster_xlsx(tmp_path / "plain.xlsx")
    bomb = tmp_path / "bomb.xlsx"
    strings = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
               + (b"<si><t>" + b"A" * 1000 + b"</t></si>") * 60_000
               + b"</sst>")  # 60 MB of shared strings, a few hundred KB packed
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rIdSS" Type="http://schemas.openxmlformats.org/'
                                    b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
            dst.writestr(info.filename, data)
        dst.writestr("xl/sharedStrings.xml", strings)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(SheetError) as caught:
        read_sheet(bomb, ROSTER_COLUMNS, {"name"})
    assert re.search(r"文件解压后有 \d+ MB，超过上限 50 MB；", row_reason(caught.value))
    # the limit is the operator's to set
    read_sheet(bomb, ROSTER_COLUMNS, {"name"}, limits=SheetLimits(max_unpacked_mb=100))


async def test_stray_cell_at_row_200000(services, tmp_path):
    path = roster_xlsx(tmp_path / "stray.xlsx", (200_000, 1, "x"))
    report = await import_roster(services.db, path, now=services.clock.now())
    assert "200,000 行" in report.fatal_text() and "删除后另存" in report.fatal_text()
    assert await people(services) == {}
    # with the limit raised the data goes in; reading stops at the long run of empty rows and says so
    report = await import_roster(services.db, path, now=services.clock.now(), limits=SheetLimits(max_rows=300_000))
    assert report.ok and report.created == 6 and report.empty_lines == 0
    text = "\n".join(report.lines())
    assert "从第 8 行起连续 1,000 行为空，之后的行没有读取" in text and len(report.lines()) < 10


async def test_empty_lines_are_a_count(services, tmp_path):
    lines = ROSTER_CSV.strip().splitlines()
    body = "\n".join([lines[0], lines[1], "", ",,,", "", lines[2], *([""] * 40), lines[3]]) + "\n"
    report = await import_roster(services.db, write(tmp_path, "r.csv", body), now=services.clock.now())
    assert report.ok and report.created == 3 and report.empty_lines == 43
    assert "跳过空行 43 行" in "\n".join(report.lines())


def test_columns_and_rows_over_limits_in_csv(tmp_path):
    wide = write(tmp_path, "wide.csv", "姓名\n张伟" + ",x" * 60 + "\n")
    with pytest.raises(SheetError) as caught:
        read_sheet(wide, ROSTER_COLUMNS, {"name"})
    assert row_reason(caught.value) == "第 2 行有 61 列，超过上限 50 列"
    long = write(tmp_path, "long.csv", "姓名\n" + "张伟\n" * 30)
    with pytest.raises(SheetError) as caught:
        read_sheet(long, ROSTER_COLUMNS, {"name"}, limits=SheetLimits(max_rows=20))
    assert row_reason(caught.value) == "文件第 21 行还有内容，超过上限 20 行"


@pytest.mark.parametrize("convert, value", [
    ("date", "፩፱፰፭፩"), ("date", "٤٦٠٨٢"), ("year", "፩፱፰፭"), ("year", "١٩٨٥"), ("phone", "1٣٨٠٠١٣٨٠٠٠"),
])
def test_cells_take_only_ascii_digits(convert, value):
    """Digits of other scripts are refused as the cell's usual mistake, never a crash or a stored
    non-ASCII phone (issue 11 item 6: a birth year ፩፱፰፭ in a roster)."""
    from handlers.sheets.reader import CONVERTERS, CellError
    with pytest.raises(CellError):
        CONVERTERS[convert](value)
