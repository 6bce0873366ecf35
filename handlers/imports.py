"""Loading the programme from the department's spreadsheets: the roster and the pairs.

Both imports are idempotent (the same file twice changes nothing), report every bad row by line with
the reason while the good rows still go in, and run in one transaction: a crash leaves nothing half
written, and ``dry_run`` rolls the transaction back after reporting what would have happened.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.dates import DateError, parse_sheet_date
from bot.text import fold
from storage.db import Database
from storage.models import AuditLog, ChatIdentity, Person, PersonRole, Role, Unit

from .pairing_ops import Actor, NotFound, find_person, set_mentors
from .sheets import Sheet, SheetError, read_sheet

ROSTER_COLUMNS = {
    "name": ["姓名", "name"],
    "phone": ["手机", "手机号", "手机号码", "联系电话", "phone", "mobile"],
    "unit": ["单位", "工作单位", "unit"],
    "title": ["职务", "title"],
    "roles": ["角色", "role", "roles"],
    "dingtalk_id": ["钉钉ID", "钉钉id", "钉钉userid", "dingtalk_id", "dingtalk"],
    "wecom_id": ["企业微信ID", "企业微信id", "企微ID", "wecom_id", "wecom"],
    "local_id": ["本地ID", "local_id"],
    "birth_year": ["出生年份", "出生年", "birth_year"],
}
PAIR_COLUMNS = {
    "mentee": ["徒弟", "帮带对象", "mentee"],
    "mentors": ["导师", "mentor", "mentors"],
    "lead": ["牵头导师", "lead", "lead_mentor"],
    "start": ["开始日期", "结对日期", "start_date", "start"],
    "agreement": ["协议签订日期", "协议日期", "agreement_date", "agreement"],
    "mentee_unit": ["徒弟单位", "mentee_unit"],
}
IDENTITY_FIELDS = {"dingtalk_id": "dingtalk", "wecom_id": "wecom", "local_id": "local"}
ROLE_WORDS = {r.value: r.value for r in Role} | {
    "mentor": Role.MENTOR, "mentee": Role.MENTEE, "staff": Role.STAFF, "admin": Role.ADMIN,
    "liaison": Role.LIAISON, "retired": Role.RETIRED, "组工": Role.STAFF, "联系人": Role.LIAISON,
    "退职": Role.RETIRED, "退出现职干部": Role.RETIRED, "退出现职领导干部": Role.RETIRED,
}
_LIST_SPLIT = re.compile(r"[、,，;；/\s]+")


@dataclass
class ImportReport:
    kind: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    empty_lines: list[int] = field(default_factory=list)
    outcomes: list[tuple[int, str]] = field(default_factory=list)  # (line, created/updated/unchanged), good rows
    fatal: str | None = None

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.errors

    def lines(self) -> list[str]:
        if self.fatal:
            return [f"导入失败：{self.fatal}"]
        head = "试运行（未写入）" if self.dry_run else "导入完成"
        out = [f"{head}：新增 {self.created}，更新 {self.updated}，未变 {self.unchanged}，出错 {len(self.errors)} 行"]
        out += [f"  第 {line} 行：{reason}" for line, reason in self.errors]
        if self.empty_lines:
            out.append(f"  跳过空行：第 {'、'.join(map(str, self.empty_lines))} 行")
        out += [f"  提示：{w}" for w in self.warnings]
        return out


class RowError(ValueError):
    pass


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return fold(str(value)).strip()


def _phone(value: Any) -> str | None:
    digits = re.sub(r"[\s\-]", "", cell_text(value))
    if not digits:
        return None
    if not re.fullmatch(r"1\d{10}", digits):
        raise RowError(f"手机号“{digits}”不是 11 位手机号")
    return digits


def _roles(value: Any) -> set[str]:
    out = set()
    for word in _LIST_SPLIT.split(cell_text(value)):
        if not word:
            continue
        role = ROLE_WORDS.get(word.lower()) or ROLE_WORDS.get(word)
        if role is None:
            raise RowError(f"角色“{word}”不认识，可用：{'、'.join(r.value for r in Role)}")
        out.add(str(role))
    return out


def _birth_year(value: Any, today: dt.date) -> int | None:
    text = cell_text(value)
    if not text:
        return None
    if not text.isdigit() or not 1920 <= int(text) <= today.year:
        raise RowError(f"出生年份“{text}”不对，应为四位年份，如 1985")
    return int(text)


async def _unit(session: AsyncSession, name: str, cache: dict[str, Unit]) -> Unit | None:
    if not name:
        return None
    if name not in cache:
        unit = (await session.exec(select(Unit).where(Unit.name == name))).first()
        if unit is None:
            unit = Unit(name=name)
            session.add(unit)
            await session.flush()
        cache[name] = unit
    return cache[name]


RowFn = Callable[[AsyncSession, int, dict, Sheet], Awaitable[str]]


async def run_import(
    db: Database, path: str | Path, *, kind: str, columns: dict, required: set[str], row: RowFn,
    now: dt.datetime, dry_run: bool = False, actor: str = "cli",
) -> ImportReport:
    """The one way a spreadsheet goes in: read it (a file that can't be used is refused whole), then
    ``row(session, line, values, sheet)`` for each row, each in a savepoint (a bad row leaves no trace,
    reported by line), all rows in one transaction, rolled back when ``dry_run``. ``row`` answers
    "created", "updated" or "unchanged", or raises RowError/NotFound with the reason."""
    report = ImportReport(kind, dry_run)
    try:
        sheet = read_sheet(path, columns, required)
    except SheetError as exc:
        report.fatal = str(exc)
        return report
    report.empty_lines = sheet.empty_lines
    if sheet.ignored_headers:
        report.warnings.append(f"忽略不认识的列：{'、'.join(sheet.ignored_headers)}")
    await _run_rows(db, sheet, report, row, now, actor, path)
    return report


async def import_roster(
    db: Database, path: str | Path, *, now: dt.datetime, dry_run: bool = False, actor: str = "cli"
) -> ImportReport:
    units: dict[str, Unit] = {}
    seen: dict[tuple, int] = {}
    return await run_import(
        db, path, kind="roster", columns=ROSTER_COLUMNS, required={"name"}, now=now, dry_run=dry_run, actor=actor,
        row=lambda session, line, row, _sheet: _roster_row(session, row, now, units, seen, line),
    )


async def _run_rows(db: Database, sheet: Sheet, report: ImportReport, row_fn: RowFn, now: dt.datetime, actor: str,
                    path: str | Path) -> None:
    async with db.turn(), db.sessions() as session:
        try:
            for line, row in sheet.rows:
                try:
                    async with session.begin_nested():
                        outcome = await row_fn(session, line, row, sheet)
                except (RowError, NotFound) as exc:
                    report.errors.append((line, str(exc)))
                    continue
                setattr(report, outcome, getattr(report, outcome) + 1)
                report.outcomes.append((line, outcome))
            session.add(AuditLog(at=now, actor_label=actor, action=f"import.{report.kind}", target=Path(path).name,
                                 detail={"created": report.created, "updated": report.updated,
                                         "errors": len(report.errors)}))
            if report.dry_run:
                await session.rollback()
            else:
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def _roster_row(
    session: AsyncSession, row: dict, now: dt.datetime, units: dict[str, Unit], seen: dict[tuple, int], line: int
) -> str:
    name = cell_text(row.get("name"))
    if not name:
        raise RowError("姓名为空")
    if len(name) > 50 or any(ch.isdigit() for ch in name):
        raise RowError(f"姓名“{name}”不像姓名")
    phone = _phone(row.get("phone"))
    unit_name = cell_text(row.get("unit"))
    roles = _roles(row.get("roles"))
    birth_year = _birth_year(row.get("birth_year"), now.date())
    title = cell_text(row.get("title"))
    keys = [("phone", phone)] if phone else []
    keys.append(("name", name, unit_name))
    for key in keys:
        if key in seen:
            raise RowError(f"与第 {seen[key]} 行重复（{'手机号相同' if key[0] == 'phone' else '姓名和单位相同'}）")
    unit = await _unit(session, unit_name, units)
    person = None
    if phone:
        person = (await session.exec(select(Person).where(Person.phone == phone))).first()
    if person is None:
        query = select(Person).where(Person.name == name, Person.unit_id == (unit.id if unit else None))
        if unit is None:
            query = select(Person).where(Person.name == name, Person.unit_id.is_(None))  # type: ignore[union-attr]
        matches = (await session.exec(query)).all()
        if phone:
            matches = [p for p in matches if p.phone in (None, phone)]
        if len(matches) > 1:
            raise RowError(f"花名册中已有多名“{name}”（{unit_name or '无单位'}），请填写手机号区分")
        person = matches[0] if matches else None
    for key in keys:
        seen[key] = line

    outcome = "unchanged"
    if person is None:
        person = Person(name=name, phone=phone, unit_id=unit.id if unit else None, title=title,
                        birth_year=birth_year, created_at=now)
        session.add(person)
        await session.flush()
        outcome = "created"
    else:
        wanted = {"name": name, "phone": phone or person.phone, "unit_id": unit.id if unit else person.unit_id,
                  "title": title or person.title, "birth_year": birth_year or person.birth_year, "active": True}
        changed = {k: v for k, v in wanted.items() if getattr(person, k) != v}
        if changed:
            for k, v in changed.items():
                setattr(person, k, v)
            session.add(person)
            outcome = "updated"
    have = set((await session.exec(select(PersonRole.role).where(PersonRole.person_id == person.id))).all())
    for role in sorted(roles - have):
        session.add(PersonRole(person_id=person.id, role=role))
        outcome = "updated" if outcome == "unchanged" else outcome
    for field_name, channel in IDENTITY_FIELDS.items():
        platform_id = cell_text(row.get(field_name))
        if not platform_id:
            continue
        owner = (
            await session.exec(
                select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.platform_user_id == platform_id)
            )
        ).first()
        if owner is not None:
            if owner.person_id != person.id:
                other = await session.get(Person, owner.person_id)
                raise RowError(f"{ROSTER_COLUMNS[field_name][0]}“{platform_id}”已属于 {other.name if other else '他人'}")
            continue
        current = (
            await session.exec(
                select(ChatIdentity).where(ChatIdentity.channel == channel, ChatIdentity.person_id == person.id)
            )
        ).first()
        if current is not None:
            current.platform_user_id, current.linked_by = platform_id, "roster"
            session.add(current)
        else:
            session.add(ChatIdentity(channel=channel, platform_user_id=platform_id, person_id=person.id,
                                     linked_by="roster", created_at=now))
        outcome = "updated" if outcome == "unchanged" else outcome
    await session.flush()
    return outcome


async def import_pairs(
    db: Database, path: str | Path, *, now: dt.datetime, dry_run: bool = False, actor: str = "cli"
) -> ImportReport:
    seen: dict[int, int] = {}
    return await run_import(
        db, path, kind="pairs", columns=PAIR_COLUMNS, required={"mentee", "mentors", "start"}, now=now,
        dry_run=dry_run, actor=actor, row=lambda session, line, row, _sheet: _pair_row(session, row, now, seen, line, actor),
    )


async def _pair_row(session: AsyncSession, row: dict, now: dt.datetime, seen: dict[int, int], line: int, actor: str) -> str:
    if not cell_text(row.get("mentee")):
        raise RowError("徒弟为空")
    mentor_words = [w for w in re.split(r"[、,，;；]+", cell_text(row.get("mentors"))) if w.strip()]
    if not mentor_words:
        raise RowError("导师为空")
    mentee = await find_person(session, row["mentee"], cell_text(row.get("mentee_unit")))
    mentors: list[Person] = []
    for word in mentor_words:
        person = await find_person(session, word.strip())
        if person.id == mentee.id:
            raise RowError(f"{mentee.name} 不能做自己的导师")
        if any(m.id == person.id for m in mentors):
            raise RowError(f"导师“{person.name}”写了两次")
        mentors.append(person)
    lead = mentors[0]
    if lead_word := cell_text(row.get("lead")):
        lead_person = await find_person(session, lead_word)
        if not any(m.id == lead_person.id for m in mentors):
            raise RowError(f"牵头导师“{lead_word}”不在导师名单中")
        lead = lead_person
    try:
        start = parse_sheet_date(row.get("start"))
        agreement = parse_sheet_date(row.get("agreement"))
    except DateError as exc:
        raise RowError(str(exc)) from None
    if start is None:
        raise RowError("开始日期为空")
    if agreement is not None and agreement > now.date():
        raise RowError(f"协议签订日期 {agreement} 在将来")
    if mentee.id in seen:
        raise RowError(f"徒弟 {mentee.name} 在第 {seen[mentee.id]} 行已有结对")
    seen[mentee.id] = line  # type: ignore[index]

    return await set_mentors(session, mentee, mentors, lead, start=start, agreement=agreement,
                             reason="导入调整帮带关系", actor=Actor(actor), now=now)
