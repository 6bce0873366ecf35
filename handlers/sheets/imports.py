"""Loading the programme from the department's spreadsheets: the roster, the pairs (and, through
:func:`run_import`, the 三联 links and 常青藤 groups).

Every import is idempotent (the same file twice changes nothing) and reports every bad row by sheet,
line and column with the reason while the good rows still go in; ``dry_run`` reports what would happen
and writes nothing. Reading the file (``handlers.sheets.reader``) is bounded and refuses a file that cannot be
used before anything is written. Rows are written in short transactions of :data:`CHUNK_ROWS` rows:
on SQLite the chat waits for at most one of them, never for the whole file. A crash part-way leaves the
rows before it written; importing the file again completes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.identity import NotFound, find_person
from bot.text import Reasoned, fold, mask_phone, md_unescape
from storage.db import Database
from storage.models import Person, Role

from handlers.mentoring.pairing import set_mentors
from handlers.sheets.reader import CellError, Sheet, SheetError, SheetLimits, read_sheet, sheet_date

ROSTER_COLUMNS = {
    "name": ["姓名", "名字", "name"],
    "phone": ["手机", "手机号", "手机号码", "联系电话", "联系方式", "移动电话", "电话", "电话号码", "phone", "mobile"],
    "unit": ["单位", "工作单位", "单位(部门)", "单位名称", "所在单位", "部门", "工作部门", "unit"],
    "title": ["职务", "现任职务", "现职务", "职务(职级)", "title"],
    "roles": ["角色", "身份", "role", "roles"],
    "dingtalk_id": ["钉钉ID", "钉钉id", "钉钉userid", "钉钉账号", "dingtalk_id", "dingtalk"],
    "wecom_id": ["企业微信ID", "企业微信id", "企微ID", "企业微信账号", "wecom_id", "wecom"],
    "local_id": ["本地ID", "local_id"],
    "birth_year": ["出生年份", "出生年", "出生年月", "出生日期", "birth_year"],
}
PAIR_COLUMNS = {
    "mentee": ["徒弟", "徒弟姓名", "帮带对象", "青年干部", "mentee"],
    "mentors": ["导师", "导师姓名", "mentor", "mentors"],
    "lead": ["牵头导师", "lead", "lead_mentor"],
    "start": ["开始日期", "结对日期", "结对时间", "start_date", "start"],
    "agreement": ["协议签订日期", "协议日期", "签订日期", "agreement_date", "agreement"],
    "mentee_unit": ["徒弟单位", "mentee_unit"],
}
# How typed columns are read (handlers.sheets.reader.CONVERTERS); the same field name means the same kind everywhere.
FIELD_KINDS = {"phone": "phone", "birth_year": "year", "start": "date", "agreement": "date"}
WHAT = {"roster": "花名册", "pairs": "结对表", "liaisons": "三联名单", "squads": "编组表"}
CHUNK_ROWS = 500

IDENTITY_FIELDS = {"dingtalk_id": "dingtalk", "wecom_id": "wecom", "local_id": "local"}
ROLE_WORDS = {r.value: r.value for r in Role} | {
    "mentor": Role.MENTOR, "mentee": Role.MENTEE, "staff": Role.STAFF, "admin": Role.ADMIN,
    "liaison": Role.LIAISON, "retired": Role.RETIRED, "组工": Role.STAFF, "联系人": Role.LIAISON,
    "退职": Role.RETIRED, "退出现职干部": Role.RETIRED, "退出现职领导干部": Role.RETIRED,
}
_LIST_SPLIT = re.compile(r"[、,，;；/\s]+")


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from bot.config import ProgrammeConfig
    from bot.render import Renderer

    return Renderer(ProgrammeConfig().templates_dir)


@dataclass
class ImportReport:
    kind: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, where and why)
    warnings: list[Reasoned] = field(default_factory=list)  # template key + values, rendered where shown
    empty_lines: int = 0
    outcomes: list[tuple[int, str]] = field(default_factory=list)  # (line, created/updated/unchanged), good rows
    fatal: SheetError | None = None  # why the file as a whole was refused
    sheet: str | None = None
    deactivated: list[str] = field(default_factory=list)  # --full: people no longer on the roster
    preview: list[list[tuple[str, str]]] = field(default_factory=list)  # the first rows as they will be stored

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.errors

    def take_sheet(self, sheet: Sheet) -> None:
        """What reading the file found: the sheet, empty lines, unusable cells, ignored columns."""
        self.sheet = sheet.name
        self.empty_lines = sheet.empty_lines
        for line, field_name, error in sheet.bad_rows:
            self.errors.append((line, f"{sheet.where(line, field_name)}：{row_reason(error)}"))
        if sheet.ignored_headers:
            self.warnings.append(Reasoned("imports/file/ignored_columns", headers=list(sheet.ignored_headers)))
        self.warnings += sheet.notes

    def row_error(self, sheet: Sheet, line: int, exc: Exception, row: dict | None = None) -> None:
        reason = row_reason(exc)
        field_name = getattr(exc, "field", None) or _guess_field(reason, row or {}, sheet)
        self.errors.append((line, f"{sheet.where(line, field_name)}：{reason}"))

    def fatal_text(self, renderer: Any = None) -> str | None:
        """Why the file was refused, as plain text (rendered like a row error)."""
        return None if self.fatal is None else row_reason(self.fatal, renderer)

    def warning_texts(self, renderer: Any = None) -> list[str]:
        """The report's warnings and notes, as plain text (rendered like a row error)."""
        return [row_reason(w, renderer) for w in self.warnings]

    def lines(self, renderer: Any = None) -> list[str]:
        self.errors.sort(key=lambda e: e[0])
        text = (renderer or _renderer()).text("imports/report", report=self, what=WHAT.get(self.kind, "表格"),
                                              fatal=self.fatal_text(renderer), warnings=self.warning_texts(renderer))
        return md_unescape(text).splitlines()  # the report is plain text (a terminal, a web page), not Markdown


def _guess_field(reason: str, row: dict, sheet: Sheet) -> str | None:
    """The column a row error is about, for reasons that do not say: the column whose header the reason
    starts with ("徒弟为空"), or whose value it quotes ("花名册中没有“王五”")."""
    for f, header in sheet.headers.items():
        if reason.startswith(header):
            return f
    quoted = re.findall(r"“([^”]+)”", reason)
    for f, value in row.items():
        text = cell_text(value)
        if text and any(q == text or q in text for q in quoted):
            return f
    return None


class RowError(Reasoned):
    """A row that cannot go in: ``reason`` a template under ``templates/imports/rows/`` with ``values``,
    so the department rewords it without Python; ``field`` names the column when it is about one cell."""

    def __init__(self, reason: str, field: str | None = None, **values: Any) -> None:
        super().__init__(reason, **values)
        self.field = field


def row_reason(exc: Exception, renderer: Any = None) -> str:
    """What a row error says, as plain text (a report is read in a terminal or on a web page)."""
    if isinstance(exc, Reasoned):
        return md_unescape((renderer or _renderer()).text(exc.reason, **exc.values))
    return str(exc)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        value = value.date()
    return fold(str(value)).strip()


def parse_roles(value: Any) -> set[str]:
    out = set()
    for word in _LIST_SPLIT.split(cell_text(value)):
        if not word:
            continue
        role = ROLE_WORDS.get(word.lower()) or ROLE_WORDS.get(word)
        if role is None:
            raise RowError("imports/rows/role_unknown", field="roles", word=word, roles=[r.value for r in Role])
        out.add(str(role))
    return out


def read(path: str | Path, kind: str, columns: dict, required: set[str], *, sheet_name: str | None = None,
         limits: SheetLimits | None = None) -> Sheet:
    kinds = {f: k for f, k in FIELD_KINDS.items() if f in columns}
    return read_sheet(path, columns, required, kinds=kinds, sheet_name=sheet_name, limits=limits,
                      what=WHAT.get(kind, "表格"))


def preview_row(sheet: Sheet, values: dict[str, Any]) -> list[tuple[str, str]]:
    """A parsed row as it will be stored, under the file's own headers; phones masked."""
    out = []
    for f in sheet.columns:
        value = values.get(f)
        if isinstance(value, dt.date):
            text = value.isoformat()
        elif f == "phone":
            text = mask_phone(value)
        else:
            text = cell_text(value)
        out.append((sheet.headers.get(f, f), text))
    return out


RowFn = Callable[[AsyncSession, int, dict, Sheet], Awaitable[str]]
PREVIEW_ROWS = 5


async def run_import(
    db: Database, path: str | Path, *, kind: str, columns: dict, required: set[str], row: RowFn,
    now: dt.datetime, dry_run: bool = False, actor: str = "cli", sheet_name: str | None = None,
    limits: SheetLimits | None = None,
) -> ImportReport:
    """The way a spreadsheet goes in: read it (a file that can't be used is refused whole), then
    ``row(session, line, values, sheet)`` for each row, each in a savepoint (a bad row leaves no trace,
    reported by line), in transactions of :data:`CHUNK_ROWS` rows. A dry run checks every row in one
    transaction that is rolled back. ``row`` answers "created", "updated" or "unchanged", or raises
    RowError/NotFound with the reason."""
    report = ImportReport(kind, dry_run)
    try:
        sheet = await asyncio.to_thread(read, path, kind, columns, required, sheet_name=sheet_name, limits=limits)
    except SheetError as exc:
        report.fatal = exc
        return report
    report.take_sheet(sheet)
    await _run_rows(db, sheet, report, row, now, actor, path)
    report.errors.sort(key=lambda e: e[0])
    return report


@asynccontextmanager
async def chunk_transaction(db: Database, dry_run: bool) -> AsyncIterator[AsyncSession]:
    """One chunk of an import (pairs, roster, …): its own transaction in the database's turn, committed —
    or rolled back for a dry run or on any error — then a pause, so messages waiting for the database
    go before the next chunk."""
    async with db.turn(), db.sessions() as session:
        try:
            yield session
            if dry_run:
                await session.rollback()
            else:
                await session.commit()
        except BaseException:
            await session.rollback()
            raise
    await asyncio.sleep(0)


async def _run_rows(db: Database, sheet: Sheet, report: ImportReport, row_fn: RowFn, now: dt.datetime, actor: str,
                    path: str | Path) -> None:
    # A dry run must see its own earlier rows (a unit created by row 2 is found by row 5): one transaction.
    step = (len(sheet.rows) or 1) if report.dry_run else CHUNK_ROWS
    chunks = [sheet.rows[i:i + step] for i in range(0, len(sheet.rows), step)] or [[]]
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        async with chunk_transaction(db, report.dry_run) as session:
            for line, row in chunk:
                try:
                    async with session.begin_nested():
                        outcome = await row_fn(session, line, row, sheet)
                except (RowError, NotFound) as exc:
                    report.row_error(sheet, line, exc, row)
                    continue
                setattr(report, outcome, getattr(report, outcome) + 1)
                report.outcomes.append((line, outcome))
                if len(report.preview) < PREVIEW_ROWS:
                    report.preview.append(preview_row(sheet, row))
            if last:
                import_audit(session, report, now, actor, path)


def import_audit(session: AsyncSession, report: ImportReport, now: dt.datetime, actor: str, path: str | Path) -> None:
    audit(session, now, Actor(actor), f"import.{report.kind}", Path(path).name, created=report.created,
          updated=report.updated, errors=len(report.errors), deactivated=len(report.deactivated))


async def import_pairs(
    db: Database, path: str | Path, *, now: dt.datetime, dry_run: bool = False, actor: str = "cli",
    sheet_name: str | None = None, limits: SheetLimits | None = None,
) -> ImportReport:
    seen: dict[int, int] = {}
    return await run_import(
        db, path, kind="pairs", columns=PAIR_COLUMNS, required={"mentee", "mentors", "start"}, now=now,
        dry_run=dry_run, actor=actor, sheet_name=sheet_name, limits=limits,
        row=lambda session, line, row, _sheet: _pair_row(session, row, now, seen, line, actor),
    )


async def _pair_row(session: AsyncSession, row: dict, now: dt.datetime, seen: dict[int, int], line: int, actor: str) -> str:
    if not cell_text(row.get("mentee")):
        raise RowError("imports/rows/mentee_empty")
    mentor_words = [w for w in re.split(r"[、,，;；]+", cell_text(row.get("mentors"))) if w.strip()]
    if not mentor_words:
        raise RowError("imports/rows/mentor_empty")
    mentee = await find_person(session, row["mentee"], cell_text(row.get("mentee_unit")))
    mentors: list[Person] = []
    for word in mentor_words:
        person = await find_person(session, word.strip())
        if person.id == mentee.id:
            raise RowError("imports/rows/self_mentor", name=mentee.name)
        if any(m.id == person.id for m in mentors):
            raise RowError("imports/rows/mentor_twice", name=person.name)
        mentors.append(person)
    lead = mentors[0]
    if lead_word := cell_text(row.get("lead")):
        lead_person = await find_person(session, lead_word)
        if not any(m.id == lead_person.id for m in mentors):
            raise RowError("imports/rows/lead_not_listed", name=lead_word)
        lead = lead_person
    try:  # the reader converted the date columns already (FIELD_KINDS); this keeps callers with raw cells right
        start = sheet_date(row.get("start"))
        agreement = sheet_date(row.get("agreement"))
    except CellError as exc:
        raise RowError(exc.reason, **exc.values) from None
    if start is None:
        raise RowError("imports/rows/start_empty")
    if agreement is not None and agreement > now.date():
        raise RowError("imports/rows/agreement_future", day=agreement)
    if mentee.id in seen:
        raise RowError("imports/rows/mentee_twice", name=mentee.name, line=seen[mentee.id])
    seen[mentee.id] = line  # type: ignore[index]

    return await set_mentors(session, mentee, mentors, lead, start=start, agreement=agreement,
                             reason="导入调整帮带关系", actor=Actor(actor), now=now)

