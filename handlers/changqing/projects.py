"""常青藤 groups' 重点企业/项目 (in 常山 each group of the 破山 task force serves three) and their 跟进:
staff link projects to a group; the group's members (and staff) note what was done for each."""

from __future__ import annotations

import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.clock import Clock
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from storage.models import Person, ProjectFollowUp, Role, SquadProject

from handlers.changqing.queries import projects
from handlers.changqing.squads import find_squad, squad_id_of

router = Router()

_SPLIT = re.compile(r"[、,，;；/]+")
MAX_FOLLOW_UP = 1000


follow_command = router.command(
    "跟进", "follow", roles={Role.RETIRED, *STAFF_ROLES}, order=46, private_roles=STAFF_ROLES,
    summary="常青藤重点企业/项目跟进：本组联系的项目和最近跟进，记录一次跟进（组工干部：关联项目）",
    usage="跟进；跟进 项目名 [内容]",
    examples=("跟进", "跟进 万洋众创 协调二期厂房验收"),
)


@follow_command.sub("关联", "link", roles=STAFF_ROLES, private_only=True, usage="跟进 关联 组名 项目、项目、项目",
                    examples=("跟进 关联 招商一组 万洋众创、华友钴业、金色阳光",))
async def link_projects(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """A group's 重点企业/项目 (staff): a name another group has is refused, not moved."""
    now = clock.now()
    squad_name = args.take()
    names = [n.strip() for n in _SPLIT.split(args.rest()) if n.strip()]
    if squad_name is None or not names:
        raise UsageError("changqing/usage/link_projects")
    if any(len(n) > 100 for n in names):
        raise UsageError("changqing/usage/project_name_length")
    squad = await find_squad(session, squad_name)
    added, taken = [], []
    for name in dict.fromkeys(names):
        existing = (await session.exec(select(SquadProject).where(SquadProject.name == name))).first()
        if existing is not None:
            if existing.squad_id != squad.id:
                taken.append(name)
            continue
        session.add(SquadProject(squad_id=squad.id, name=name, created_at=now))  # type: ignore[arg-type]
        added.append(name)
    if taken:
        raise Refusal("changqing/project_taken", names=taken)
    audit(session, now, sender, "changqing.project.link", f"squad:{squad.id}", squad=squad.name, projects=added)
    await session.flush()
    return Answer.of("changqing/projects_linked", squad=squad.name, added=added,
                     views=await projects(session, squad.id))


@follow_command
async def follow(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    word = args.take()
    now = clock.now()
    my_squad = await squad_id_of(session, sender.id)
    if word is None:
        if my_squad is None and not sender.is_staff:
            raise Refusal("changqing/squad_none")
        return Answer.of("changqing/projects", views=await projects(session, None if sender.is_staff and my_squad is None
                                                                     else my_squad), staff=sender.is_staff)
    project = (await session.exec(select(SquadProject).where(SquadProject.name == word))).first()
    if project is None:
        known = [v.project.name for v in await projects(session, my_squad)] if my_squad or sender.is_staff else []
        raise Refusal("changqing/project_unknown", name=word, known=known[:10])
    text = args.rest()
    if not text:
        notes = (await session.exec(select(ProjectFollowUp, Person.name)
                                    .join(Person, Person.id == ProjectFollowUp.author_id)
                                    .where(ProjectFollowUp.project_id == project.id)
                                    .order_by(ProjectFollowUp.created_at.desc()).limit(10))).all()  # type: ignore[attr-defined]
        return Answer.of("changqing/project_notes", project=project, notes=notes)
    if not sender.is_staff and my_squad != project.squad_id:
        raise Refusal("changqing/project_not_yours", name=project.name)
    if len(text) > MAX_FOLLOW_UP:
        raise UsageError("changqing/usage/follow_up_too_long", limit=MAX_FOLLOW_UP, length=len(text))
    session.add(ProjectFollowUp(project_id=project.id, author_id=sender.id, text=text, created_at=now))  # type: ignore[arg-type]
    return Answer.of("changqing/follow_up_saved", project=project)
