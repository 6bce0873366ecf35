"""三联 links — department leaders and organization cadres linked to townships, departments and 专班 —
as the facts the 走访 command, the jobs and the export share. The sheet they come from is read by
``handlers/sheets/liaisons.py``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock
from storage.models import LiaisonLink, Person, Unit, Visit



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
