"""常青藤 in the workbook (零重复: the department's sheets come from the same records as the chat):
members with their post, group and 承诺, the groups with their 重点企业/项目, every 实绩 with who took
part, the year's 专项考核 scores and the project follow-ups."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.dates import beijing_day
from storage.models import (Achievement, Commitment, Person, ProjectFollowUp, SignUp, Squad, SquadMember, SquadProject,
                            Unit)

from handlers.changqing.common import retired_cadres
from handlers.changqing.queries import participants, person_scores


async def changqing_sheets(session: AsyncSession, clock: Clock, calendar: WorkCalendar) -> list[tuple[str, list[str], list[list]]]:
    year = clock.today().year
    names = dict((await session.exec(select(Person.id, Person.name))).all())
    units = dict((await session.exec(select(Unit.id, Unit.name))).all())
    squads = {s.id: s for s in (await session.exec(select(Squad).order_by(Squad.name))).all()}
    member_of = dict((await session.exec(select(SquadMember.person_id, SquadMember.squad_id))).all())
    posts = dict((await session.exec(select(SignUp.person_id, SignUp.role))).all())
    commitments = (await session.exec(select(Commitment).order_by(Commitment.year, Commitment.person_id))).all()
    this_year = {c.person_id: c.text for c in commitments if c.year == year}
    retired = await retired_cadres(session)
    ids = sorted(set(retired) | set(member_of) | set(posts))
    people = {p.id: p for p in (await session.exec(select(Person).where(col(Person.id).in_(ids or [0])))).all()}
    members = []
    for pid in ids:
        p = people.get(pid)
        squad = squads.get(member_of.get(pid))  # type: ignore[arg-type]
        members.append([names.get(pid, ""), units.get(p.unit_id, "") if p else "", posts.get(pid, ""),
                        "已报名" if pid in posts else "未报名", squad.name if squad else "",
                        units.get(squad.task_force_id, "") if squad else "", this_year.get(pid, "")])
    projects: dict[int, list[str]] = {}
    project_names: dict[int, tuple[str, int]] = {}
    for p in (await session.exec(select(SquadProject).order_by(SquadProject.id))).all():
        projects.setdefault(p.squad_id, []).append(p.name)
        project_names[p.id] = (p.name, p.squad_id)  # type: ignore[index]
    counts: dict[int, int] = {}
    for sid in member_of.values():
        counts[sid] = counts.get(sid, 0) + 1
    groups = [[s.name, units.get(s.task_force_id, ""), names.get(s.leader_id, "") if s.leader_id else "",
               counts.get(s.id, 0), "、".join(projects.get(s.id, []))] for s in squads.values()]  # type: ignore[arg-type]
    records = (await session.exec(select(Achievement).order_by(Achievement.created_at, Achievement.id))).all()
    took_part = await participants(session, [a.id for a in records])  # type: ignore[misc]
    achievements = [[a.id, beijing_day(a.created_at), squads[a.squad_id].name if a.squad_id in squads else "",
                     names.get(a.author_id, ""), "、".join(p.name for p in took_part.get(a.id, [])), a.text,  # type: ignore[arg-type]
                     a.coefficient, f"作废：{a.void_reason}" if a.voided_at else "有效"] for a in records]
    scores = [[year, s.person.name, s.squad, s.rank, s.count, s.score] for s in await person_scores(session, year)]
    notes = (await session.exec(select(ProjectFollowUp).order_by(ProjectFollowUp.created_at, ProjectFollowUp.id))).all()
    follow_ups = [[project_names[f.project_id][0], squads[project_names[f.project_id][1]].name,
                   beijing_day(f.created_at), names.get(f.author_id, ""), f.text] for f in notes]
    return [
        ("常青藤成员", ["姓名", "原单位", "六大员", "报名", "小组", "专班", f"{year}年承诺"], members),
        ("常青藤编组", ["组名", "专班", "组长", "人数", "重点企业/项目"], groups),
        ("常青藤承诺", ["年度", "姓名", "承诺"], [[c.year, names.get(c.person_id, ""), c.text] for c in commitments]),
        ("常青藤实绩", ["编号", "日期", "小组", "记录人", "参与人", "内容", "难度系数", "状态"], achievements),
        ("专项考核", ["年度", "姓名", "小组", "名次", "实绩项数", "得分"], scores),
        ("项目跟进", ["项目", "小组", "日期", "记录人", "内容"], follow_ups),
    ]
