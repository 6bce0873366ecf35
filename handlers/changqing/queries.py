"""常青藤 archive as figures: who took part in each 实绩, each person's yearly 专项考核 score (the
difficulty coefficients of the 实绩 they took part in, summed), the groups' 重点企业/项目 with their
latest 跟进. No side effects: 实绩 档案/考核, 跟进, the export and the console call these."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import day_start
from storage.models import (Achievement, AchievementMember, Person, ProjectFollowUp, Squad, SquadMember,
                            SquadProject)


def year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return day_start(dt.date(year, 1, 1)), day_start(dt.date(year + 1, 1, 1))


async def participants(session: AsyncSession, achievement_ids: list[int]) -> dict[int, list[Person]]:
    """Per 实绩, the people who took part, by name."""
    out: dict[int, list[Person]] = defaultdict(list)
    if achievement_ids:
        for aid, person in (await session.exec(
            select(AchievementMember.achievement_id, Person)
            .join(Person, col(Person.id) == AchievementMember.person_id)
            .where(col(AchievementMember.achievement_id).in_(achievement_ids)).order_by(Person.name))).all():
            out[aid].append(person)
    return dict(out)


@dataclass
class PersonScore:
    """专项考核 of one retired cadre for a year."""

    rank: int
    person: Person
    squad: str
    count: int  # 实绩 taken part in (not voided)
    score: float  # their difficulty coefficients summed


async def person_scores(session: AsyncSession, year: int) -> list[PersonScore]:
    """Every person who took part in a counted 实绩 in ``year`` and every current group member, ranked
    by score (equal scores share a rank)."""
    start, end = year_bounds(year)
    totals: dict[int, list[float]] = defaultdict(list)
    for pid, coefficient in (await session.exec(
        select(AchievementMember.person_id, Achievement.coefficient)
        .join(Achievement, col(Achievement.id) == AchievementMember.achievement_id)
        .where(Achievement.created_at >= start, Achievement.created_at < end, col(Achievement.voided_at).is_(None)))).all():
        totals[pid].append(coefficient)
    squads = dict((await session.exec(select(SquadMember.person_id, Squad.name)
                                      .join(Squad, col(Squad.id) == SquadMember.squad_id))).all())
    ids = set(totals) | set(squads)
    if not ids:
        return []
    people = {p.id: p for p in (await session.exec(select(Person).where(col(Person.id).in_(ids)))).all()}
    rows = sorted(((people[pid], squads.get(pid, ""), len(totals.get(pid, [])), round(sum(totals.get(pid, [])), 2))
                   for pid in ids if pid in people), key=lambda r: (-r[3], -r[2], r[0].name, r[0].id))
    out: list[PersonScore] = []
    for i, (person, squad, count, score) in enumerate(rows):
        rank = out[-1].rank if out and out[-1].score == score else i + 1
        out.append(PersonScore(rank, person, squad, count, score))
    return out


async def person_archive(session: AsyncSession, person_id: int, year: int) -> list[tuple[Achievement, str]]:
    """个人实绩档案: the 实绩 of ``year`` this person took part in (voided ones too, marked), with the group."""
    start, end = year_bounds(year)
    return list((await session.exec(
        select(Achievement, Squad.name)
        .join(AchievementMember, col(AchievementMember.achievement_id) == Achievement.id)
        .join(Squad, col(Squad.id) == Achievement.squad_id)
        .where(AchievementMember.person_id == person_id, Achievement.created_at >= start, Achievement.created_at < end)
        .order_by(Achievement.created_at, Achievement.id))).all())


@dataclass
class ProjectView:
    project: SquadProject
    squad: str
    follow_ups: int
    last: ProjectFollowUp | None


async def projects(session: AsyncSession, squad_id: int | None = None) -> list[ProjectView]:
    """重点企业/项目 by group (one group's with ``squad_id``), each with its follow-up count and latest one."""
    query = select(SquadProject, Squad.name).join(Squad, col(Squad.id) == SquadProject.squad_id)
    if squad_id is not None:
        query = query.where(SquadProject.squad_id == squad_id)
    found = (await session.exec(query.order_by(Squad.name, SquadProject.id))).all()
    ids = [p.id for p, _ in found]
    notes: dict[int, list[ProjectFollowUp]] = defaultdict(list)
    if ids:
        for f in (await session.exec(select(ProjectFollowUp).where(col(ProjectFollowUp.project_id).in_(ids))
                                     .order_by(ProjectFollowUp.created_at, ProjectFollowUp.id))).all():
            notes[f.project_id].append(f)
    return [ProjectView(p, name, len(notes.get(p.id, [])), (notes.get(p.id) or [None])[-1])  # type: ignore[arg-type]
            for p, name in found]
