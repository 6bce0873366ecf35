"""The 三联 sheet (联系人, 单位, 类型[, 状态]) into the 三联 links; the link and visit facts the 走访 command,
the jobs and the export share stay in ``handlers/sanling/liaisons.py``.

The import follows the roster import: idempotent, every bad row reported by line with the good rows
kept, one transaction, ``dry_run`` reports without writing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.identity import NotFound, find_person
from storage.db import Database
from storage.models import LiaisonLink, PersonRole, Role, Unit

from handlers.sheets.imports import ImportReport, RowError, cell_text, run_import
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
