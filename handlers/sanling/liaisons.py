"""三联 links — department leaders and organization cadres linked to townships, departments and 专班 —
imported from the department's sheet, and the visit facts the command, the jobs and the export share.

The import follows the roster import: idempotent, every bad row reported by line with the good rows
kept, one transaction, ``dry_run`` reports without writing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.calendar import WorkCalendar
from bot.clock import Clock
from storage.db import Database
from storage.models import LiaisonLink, Person, PersonRole, Role, Unit, Visit

from handlers.sheets.imports import ImportReport, RowError, cell_text, run_import
from bot.identity import NotFound, find_person
from handlers.sheets.reader import SheetLimits

LIAISON_COLUMNS = {
    "person": ["联系人", "三联联系人", "姓名", "liaison", "person", "name"],
    "unit": ["单位", "联系单位", "unit"],
    "kind": ["类型", "单位类型", "kind", "type"],
    "status": ["状态", "status"],
}
UNIT_KINDS = ("乡镇", "部门", "专班")
_KIND_WORDS = {
    "乡镇": "乡镇", "乡": "乡镇", "镇": "乡镇", "街道": "乡镇", "乡镇街道": "乡镇", "联乡镇": "乡镇", "township": "乡镇",
    "部门": "部门", "单位": "部门", "机关": "部门", "联部门": "部门", "department": "部门",
    "专班": "专班", "工作专班": "专班", "联专班": "专班", "taskforce": "专班", "task force": "专班",
}
_ENDED = {"撤销", "取消", "结束", "停止", "解除", "ended", "removed"}
_ACTIVE = {"", "在联", "有效", "正常", "active"}


async def import_liaisons(
    db: Database, path: str | Path, *, now: dt.datetime, dry_run: bool = False, actor: str = "cli",
    sheet_name: str | None = None, limits: SheetLimits | None = None,
) -> ImportReport:
    """``联系人, 单位, 类型[, 状态]``: one row per link; 状态 撤销 ends a link (kept as history)."""
    seen: dict[tuple[int, str], int] = {}
    kinds: dict[str, tuple[str, int]] = {}
    return await run_import(
        db, path, kind="liaisons", columns=LIAISON_COLUMNS, required={"person", "unit", "kind"}, now=now,
        dry_run=dry_run, actor=actor, sheet_name=sheet_name, limits=limits,
        row=lambda session, line, row, _sheet: _liaison_row(session, row, now, seen, kinds, line, actor),
    )


async def _liaison_row(session: AsyncSession, row: dict, now: dt.datetime, seen: dict[tuple[int, str], int],
                       kinds: dict[str, tuple[str, int]], line: int, actor: str = "cli") -> str:
    if not cell_text(row.get("person")):
        raise RowError("imports/rows/liaison_empty")
    unit_name = cell_text(row.get("unit"))
    if not unit_name:
        raise RowError("imports/rows/unit_empty")
    if len(unit_name) > 100:
        raise RowError("imports/rows/unit_too_long")
    kind_word = cell_text(row.get("kind"))
    kind = _KIND_WORDS.get(kind_word.lower()) or _KIND_WORDS.get(kind_word)
    if kind is None:
        raise RowError("imports/rows/unit_kind", word=kind_word, kinds=UNIT_KINDS)
    status = cell_text(row.get("status")).lower()
    if status not in _ENDED | _ACTIVE:
        raise RowError("imports/rows/link_status", status=status)
    active = status not in _ENDED
    try:
        person = await find_person(session, row["person"])
    except NotFound as exc:
        raise RowError(exc.reason, **exc.values) from None
    if unit_name in kinds and kinds[unit_name][0] != kind:
        raise RowError("imports/rows/unit_kind_changed", unit=unit_name, line=kinds[unit_name][1], was=kinds[unit_name][0],
                       kind=kind)
    key = (person.id, unit_name)  # type: ignore[assignment]
    if key in seen:
        raise RowError("imports/rows/link_twice", line=seen[key], name=person.name, unit=unit_name)

    outcome = "unchanged"
    unit = (await session.exec(select(Unit).where(Unit.name == unit_name))).first()
    if unit is None:
        if not active:
            raise RowError("imports/rows/unlink_no_unit", unit=unit_name)
        unit = Unit(name=unit_name, kind=kind)
        session.add(unit)
        await session.flush()
    elif unit.kind != kind:
        unit.kind = kind
        session.add(unit)
        outcome = "updated"
    link = (await session.exec(
        select(LiaisonLink).where(LiaisonLink.person_id == person.id, LiaisonLink.unit_id == unit.id)
    )).first()
    if link is None:
        if not active:
            raise RowError("imports/rows/unlink_no_link", name=person.name, unit=unit_name)
        session.add(LiaisonLink(person_id=person.id, unit_id=unit.id, created_at=now))  # type: ignore[arg-type]
        outcome = "created"
    elif link.active != active:
        link.active = active
        session.add(link)
        outcome = "updated"
    if active and await session.get(PersonRole, (person.id, Role.LIAISON.value)) is None:
        session.add(PersonRole(person_id=person.id, role=Role.LIAISON.value))  # type: ignore[arg-type]
        audit(session, now, Actor(actor), "role.grant", f"person:{person.id}", name=person.name,
              role=Role.LIAISON.value, source="三联名单")
        outcome = "updated" if outcome == "unchanged" else outcome
    await session.flush()
    seen[key] = line  # type: ignore[index]
    kinds.setdefault(unit_name, (kind, line))
    return outcome


# --- facts shared by 走访, the jobs, 统计 and the export -------------------------------------------------

@dataclass(frozen=True)
class LinkedUnit:
    id: int
    name: str
    kind: str


async def linked_units(session: AsyncSession, person_id: int | None = None) -> dict[int, list[LinkedUnit]]:
    """Active links of active people: person id -> their units, by name."""
    query = (
        select(LiaisonLink.person_id, Unit.id, Unit.name, Unit.kind)
        .join(Unit, Unit.id == LiaisonLink.unit_id)
        .join(Person, Person.id == LiaisonLink.person_id)
        .where(LiaisonLink.active == True, Person.active == True)  # noqa: E712
    )
    if person_id is not None:
        query = query.where(LiaisonLink.person_id == person_id)
    out: dict[int, list[LinkedUnit]] = defaultdict(list)
    for pid, uid, name, kind in (await session.exec(query.order_by(Unit.name))).all():
        out[pid].append(LinkedUnit(uid, name, kind))
    return dict(out)


async def visits_between(session: AsyncSession, first: dt.date, last: dt.date,
                         person_ids: list[int] | None = None) -> dict[int, list[Visit]]:
    """Visits from ``first`` to ``last`` inclusive: liaison id -> visits, oldest first."""
    query = select(Visit).where(Visit.day >= first, Visit.day <= last)
    if person_ids is not None:
        if not person_ids:
            return {}
        query = query.where(col(Visit.liaison_id).in_(person_ids))
    out: dict[int, list[Visit]] = defaultdict(list)
    for v in (await session.exec(query.order_by(Visit.day, Visit.id))).all():
        out[v.liaison_id].append(v)
    return dict(out)


def unit_status(units: list[LinkedUnit], visits: list[Visit]) -> list[dict]:
    """Per linked unit: the visits to it among ``visits`` (a month's, a quarter's)."""
    by_unit: dict[int, list[Visit]] = defaultdict(list)
    for v in visits:
        by_unit[v.unit_id].append(v)
    return [{"unit": u, "visits": by_unit.get(u.id, [])} for u in units]


async def liaison_sheets(session: AsyncSession, clock: Clock, calendar: WorkCalendar) -> list[tuple[str, list[str], list[list]]]:
    """三联联系 (every link, ended ones kept) and 三联走访 (every visit) for the workbook."""
    people = dict((await session.exec(select(Person.id, Person.name))).all())
    units = {u.id: u for u in (await session.exec(select(Unit))).all()}
    links = (await session.exec(select(LiaisonLink).order_by(LiaisonLink.person_id, LiaisonLink.unit_id))).all()
    link_rows = [[people.get(k.person_id, ""), units[k.unit_id].name, units[k.unit_id].kind,
                  "在联" if k.active else "已撤销"] for k in links]
    visits = (await session.exec(select(Visit).order_by(Visit.day, Visit.id))).all()
    visit_rows = [[v.day, people.get(v.liaison_id, ""), units[v.unit_id].name, units[v.unit_id].kind, v.note]
                  for v in visits]
    return [("三联联系", ["联系人", "单位", "类型", "状态"], link_rows),
            ("三联走访", ["日期", "联系人", "单位", "类型", "内容"], visit_rows)]
