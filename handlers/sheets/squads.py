"""The 常青藤 编组表 (组名, 专班, 组长, 成员) into groups and their members; the groups' operations
(``task_force``, ``move_member``) are the chat's own, in ``handlers/changqing/squads.py``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.router import Refusal
from storage.db import Database
from storage.models import Person, Squad, SquadMember

from handlers.changqing.common import find_person, is_retired
from handlers.changqing.squads import move_member, task_force
from handlers.sheets.imports import ImportReport, RowError, cell_text, run_import
from handlers.sheets.reader import Sheet, SheetLimits

SQUAD_COLUMNS = {
    "name": ["组名", "编组", "小组", "squad", "group"],
    "task_force": ["专班", "所属专班", "task_force"],
    "leader": ["组长", "leader"],
    "members": ["成员", "组员", "members"],
}
_LIST_SPLIT = "、,，;；"


def _names(value: object) -> list[str]:
    text = cell_text(value)
    for sep in _LIST_SPLIT:
        text = text.replace(sep, " ")
    return [w for w in text.split() if w]


async def _import_person(session: AsyncSession, raw: str) -> Person:
    try:
        person = await find_person(session, raw)
    except Refusal as exc:
        values = exc.answer.values
        if exc.answer.template == "changqing/person_ambiguous":
            raise RowError("imports/rows/person_ambiguous", name=values["name"]) from None
        raise RowError("imports/rows/person_unknown", name=raw) from None
    if not await is_retired(session, person.id):  # type: ignore[arg-type]
        raise RowError("imports/rows/not_retired", name=person.name)
    return person


async def import_squads(db: Database, path: str | Path, *, now: dt.datetime, dry_run: bool = False,
                        actor: str = "cli", sheet_name: str | None = None,
                        limits: SheetLimits | None = None) -> ImportReport:
    """编组表: 组名, 专班, 组长 (optional), 成员 (names separated by 、). Each row states the whole group:
    listed members are moved in (from wherever they were), members no longer listed leave it."""
    placed: dict[int, tuple[int, str]] = {}  # person -> (line, group) already placed by this file
    names_seen: dict[str, int] = {}

    async def row_fn(session: AsyncSession, line: int, row: dict, sheet: Sheet) -> str:
        name, tf_name = cell_text(row.get("name")), cell_text(row.get("task_force"))
        if not name:
            raise RowError("imports/rows/squad_empty")
        if not tf_name:
            raise RowError("imports/rows/task_force_empty")
        if len(name) > 50 or len(tf_name) > 100:
            raise RowError("imports/rows/squad_name_length")
        if name in names_seen:
            raise RowError("imports/rows/squad_twice", name=name, line=names_seen[name])
        leader = await _import_person(session, cell_text(row.get("leader"))) if cell_text(row.get("leader")) else None
        members = [await _import_person(session, w) for w in _names(row.get("members"))]
        if leader is not None and all(m.id != leader.id for m in members):
            members.insert(0, leader)
        ids = [m.id for m in members]
        if len(set(ids)) != len(ids):
            raise RowError("imports/rows/member_twice")
        for m in members:
            if m.id in placed:
                raise RowError("imports/rows/member_placed", name=m.name, line=placed[m.id][0],  # type: ignore[index]
                               squad=placed[m.id][1])  # type: ignore[index]
        names_seen[name] = line

        outcome = "unchanged"
        unit, _ = await task_force(session, tf_name)
        squad = (await session.exec(select(Squad).where(Squad.name == name))).first()
        if squad is None:
            squad = Squad(name=name, task_force_id=unit.id, created_at=now)  # type: ignore[arg-type]
            session.add(squad)
            await session.flush()
            audit(session, now, Actor(actor), "changqing.squad.create", f"squad:{squad.id}", name=name, task_force=tf_name)
            outcome = "created"
        elif squad.task_force_id != unit.id:
            squad.task_force_id = unit.id  # type: ignore[assignment]
            session.add(squad)
            outcome = "updated"
        current = set((await session.exec(select(SquadMember.person_id).where(SquadMember.squad_id == squad.id))).all())
        for pid in sorted(current - set(ids)):
            person = await session.get(Person, pid)
            await move_member(session, person, None, now, None, actor)  # type: ignore[arg-type]
            outcome = "updated" if outcome == "unchanged" else outcome
        for m in members:
            _, changed = await move_member(session, m, squad, now, None, actor)
            if changed and outcome == "unchanged":
                outcome = "updated"
            placed[m.id] = (line, name)  # type: ignore[index]
        # With a 组长 column the file names the leader (blank: none); without one, leaders set in chat stay.
        if "leader" in sheet.columns:
            leader_id = leader.id if leader else None
        else:
            leader_id = squad.leader_id if squad.leader_id in ids else None
        if squad.leader_id != leader_id:
            squad.leader_id = leader_id
            session.add(squad)
            outcome = "updated" if outcome == "unchanged" else outcome
        await session.flush()
        return outcome

    return await run_import(db, path, kind="squads", columns=SQUAD_COLUMNS, required={"name", "task_force"},
                            row=row_fn, now=now, dry_run=dry_run, actor=actor, sheet_name=sheet_name, limits=limits)
