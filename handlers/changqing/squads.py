"""常青藤 groups (编组) inside task forces (专班), and each member's public commitment (公开承诺).

Only staff create groups and move members — the seed's rule that units may not recall or swap members
without the organization department — and every move is written to the AuditLog.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.clock import Clock
from bot.identity import STAFF_ROLES, Sender
from handlers.args import nothing_more
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from storage.models import Commitment, Person, Role, SignUp, Squad, SquadMember, Unit
from storage.models.changqing import TASK_FORCE_KIND

from handlers.changqing.common import find_person, is_retired

router = Router()

SQUAD_ROLES = {Role.RETIRED, *STAFF_ROLES}
MAX_COMMITMENT_CHARS = 500


@dataclass
class Member:
    person: Person
    unit: str
    role: str  # 六大员 chosen at sign-up, or ""
    commitment: str


@dataclass
class SquadView:
    """One group with its task force, leader and members (leader first), each with this year's 承诺."""

    squad: Squad
    task_force: str
    members: list[Member] = field(default_factory=list)

    @property
    def leader(self) -> Member | None:
        return next((m for m in self.members if m.person.id == self.squad.leader_id), None)


# --- lookups the other 常青藤 modules share -------------------------------------------------------------

async def squad_id_of(session: AsyncSession, person_id: int) -> int | None:
    link = await session.get(SquadMember, person_id)
    return link.squad_id if link else None


async def squad_view(session: AsyncSession, squad: Squad, year: int) -> SquadView:
    task_force = await session.get(Unit, squad.task_force_id)
    rows = (
        await session.exec(
            select(Person, Unit.name, SignUp.role, Commitment.text)
            .join(SquadMember, SquadMember.person_id == Person.id)
            .join(Unit, col(Unit.id) == Person.unit_id, isouter=True)
            .join(SignUp, SignUp.person_id == Person.id, isouter=True)
            .join(Commitment, (Commitment.person_id == Person.id) & (Commitment.year == year), isouter=True)
            .where(SquadMember.squad_id == squad.id)
            .order_by(SquadMember.joined_at, Person.id)
        )
    ).all()
    members = [Member(p, unit or "", role or "", text or "") for p, unit, role, text in rows]
    members.sort(key=lambda m: m.person.id != squad.leader_id)  # leader first, the rest as they joined
    return SquadView(squad, task_force.name if task_force else "", members)


async def find_squad(session: AsyncSession, name: str) -> Squad:
    squad = (await session.exec(select(Squad).where(Squad.name == name))).first()
    if squad is None:
        names = list((await session.exec(select(Squad.name).order_by(Squad.name))).all())
        raise Refusal("changqing/squad_unknown", name=name,
                      close=difflib.get_close_matches(name, names, n=3, cutoff=0.3), count=len(names))
    return squad


async def task_force(session: AsyncSession, name: str) -> tuple[Unit, bool]:
    """The 专班 called ``name``, created when new; a unit of that name from the roster becomes one."""
    unit = (await session.exec(select(Unit).where(Unit.name == name))).first()
    if unit is None:
        unit = Unit(name=name, kind=TASK_FORCE_KIND)
        session.add(unit)
        await session.flush()
        return unit, True
    if unit.kind != TASK_FORCE_KIND:
        unit.kind = TASK_FORCE_KIND
        session.add(unit)
    return unit, False


async def move_member(session: AsyncSession, person: Person, squad: Squad | None, now: dt.datetime,
                      actor: Sender | None, actor_label: str = "") -> tuple[str | None, bool]:
    """Put ``person`` in ``squad`` (None: out of any group). Returns the old group's name and whether
    anything changed; a change is audited."""
    link = await session.get(SquadMember, person.id)
    old = await session.get(Squad, link.squad_id) if link else None
    if (old.id if old else None) == (squad.id if squad else None):
        return (old.name if old else None), False
    if link is not None:
        await session.delete(link)
        if old is not None and old.leader_id == person.id:
            old.leader_id = None  # a leader who leaves stops leading
            session.add(old)
        await session.flush()
    if squad is not None:
        session.add(SquadMember(person_id=person.id, squad_id=squad.id, joined_at=now))  # type: ignore[arg-type]
    audit(session, now, actor or Actor(actor_label), "changqing.squad.move", f"person:{person.id}",
          person=person.name, old=old.name if old else None, new=squad.name if squad else None)
    await session.flush()
    return (old.name if old else None), True


async def _require_retired(session: AsyncSession, person: Person) -> None:
    if not await is_retired(session, person.id):  # type: ignore[arg-type]
        raise Refusal("changqing/not_retired", name=person.name)


# --- 编组 ------------------------------------------------------------------------------------------

squad_command = router.command(
    "编组", "squad", roles=SQUAD_ROLES, order=42, private_roles=STAFF_ROLES,
    summary="常青藤编组：我的小组、专班和组员（组工干部：新建、调整）",
    usage="编组；组工干部：编组 组名", examples=("编组",),
)
STAFF_ONLY = dict(roles=STAFF_ROLES, private_only=True)


@squad_command
async def squads(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """编组: one's own group; staff may name any group (``编组 招商一组``)."""
    word = args.take()
    if word is None:
        return await _my_squad(sender, session, clock)
    if not sender.is_staff:
        raise UsageError("changqing/usage/squad_own_only")
    if args:
        raise UsageError("changqing/usage/squad_unknown_action", word=word)
    return Answer.of("changqing/squad", view=await squad_view(session, await find_squad(session, word),
                                                             clock.today().year), me=None)


@squad_command.sub("列表", "list", **STAFF_ONLY, usage="编组 列表", examples=("编组 列表",))
async def squad_list(args: Args, session: AsyncSession) -> Answer:
    nothing_more(args)
    return await _list(session)


@squad_command.sub("新建", "new", **STAFF_ONLY, usage="编组 新建 组名 专班 [组长]",
           examples=("编组 新建 招商一组 破山行动专班", "编组 新建 招商一组 破山行动专班 李忠兴"))
async def squad_create(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    now = clock.now()
    name, tf_name, leader_name = args.take(), args.take(), args.take()
    if not name or not tf_name or args:
        raise UsageError("changqing/usage/squad_create", "编组 新建 招商一组 破山行动专班 李忠兴")
    if len(name) > 50 or len(tf_name) > 100:
        raise UsageError("changqing/usage/squad_name_length")
    if (await session.exec(select(Squad).where(Squad.name == name))).first() is not None:
        raise Refusal("changqing/squad_exists", name=name)
    leader = await find_person(session, leader_name) if leader_name else None
    if leader is not None:
        await _require_retired(session, leader)
    unit, new_tf = await task_force(session, tf_name)
    squad = Squad(name=name, task_force_id=unit.id, created_at=now)  # type: ignore[arg-type]
    session.add(squad)
    await session.flush()
    audit(session, now, sender, "changqing.squad.create", f"squad:{squad.id}", name=name, task_force=tf_name)
    moved_from = None
    if leader is not None:
        moved_from, _ = await move_member(session, leader, squad, now, sender)
        squad.leader_id = leader.id
        session.add(squad)
    return Answer.of("changqing/squad_created", name=name, task_force=tf_name, new_tf=new_tf,
                     leader=leader.name if leader else None, moved_from=moved_from)


@squad_command.sub("调整", "move", **STAFF_ONLY, usage="编组 调整 姓名 组名", examples=("编组 调整 李忠兴 招商一组",))
async def squad_move(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    person_name, squad_name = args.take(), args.take()
    if not person_name or not squad_name or args:
        raise UsageError("changqing/usage/squad_move")
    person = await find_person(session, person_name)
    await _require_retired(session, person)
    squad = await find_squad(session, squad_name)
    old, changed = await move_member(session, person, squad, clock.now(), sender)
    return Answer.of("changqing/squad_moved", name=person.name, squad=squad.name, old=old, changed=changed)


@squad_command.sub("移出", "remove", **STAFF_ONLY, usage="编组 移出 姓名", examples=("编组 移出 李忠兴",))
async def squad_remove(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    person_name = args.take()
    if not person_name or args:
        raise UsageError("changqing/usage/squad_remove")
    person = await find_person(session, person_name)
    old, changed = await move_member(session, person, None, clock.now(), sender)
    return Answer.of("changqing/squad_removed", name=person.name, old=old, changed=changed)


@squad_command.sub("组长", "leader", **STAFF_ONLY, usage="编组 组长 组名 姓名", examples=("编组 组长 招商一组 李忠兴",))
async def squad_leader(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    now = clock.now()
    squad_name, person_name = args.take(), args.take()
    if not squad_name or not person_name or args:
        raise UsageError("changqing/usage/squad_leader")
    squad = await find_squad(session, squad_name)
    person = await find_person(session, person_name)
    await _require_retired(session, person)
    moved_from, _ = await move_member(session, person, squad, now, sender)
    if squad.leader_id != person.id:
        squad.leader_id = person.id
        session.add(squad)
        audit(session, now, sender, "changqing.squad.leader", f"squad:{squad.id}", squad=squad.name, leader=person.name)
    return Answer.of("changqing/squad_leader", squad=squad.name, name=person.name, moved_from=moved_from)


async def _my_squad(sender: Sender, session: AsyncSession, clock: Clock) -> Answer:
    squad_id = await squad_id_of(session, sender.id)
    if squad_id is None:
        if sender.is_staff:
            return await _list(session)
        raise Refusal("changqing/squad_none")
    squad = await session.get(Squad, squad_id)
    return Answer.of("changqing/squad", view=await squad_view(session, squad, clock.today().year), me=sender.id)  # type: ignore[arg-type]


async def _list(session: AsyncSession) -> Answer:
    by_tf = await squad_summaries(session)
    return Answer.of("changqing/squads", by_tf=by_tf, total=sum(len(v) for v in by_tf.values()))


async def squad_summaries(session: AsyncSession) -> dict[str, list[dict]]:
    """Every group by task force: name, member count, leader's name — ``编组`` for staff and the console."""
    rows = (
        await session.exec(
            select(Squad, Unit.name, func.count(col(SquadMember.person_id)))
            .join(Unit, col(Unit.id) == Squad.task_force_id)
            .join(SquadMember, SquadMember.squad_id == Squad.id, isouter=True)
            .group_by(col(Squad.id), col(Unit.name))
            .order_by(Unit.name, Squad.name)
        )
    ).all()
    leaders = dict((await session.exec(
        select(Person.id, Person.name).where(col(Person.id).in_([s.leader_id for s, _, _ in rows if s.leader_id]))
    )).all())
    by_tf: dict[str, list[dict]] = {}
    for squad, tf, count in rows:
        by_tf.setdefault(tf, []).append({"name": squad.name, "count": count, "leader": leaders.get(squad.leader_id),
                                         "squad": squad})
    return by_tf


# --- 承诺 ------------------------------------------------------------------------------------------

@router.command(
    "承诺", "commit", roles={Role.RETIRED}, order=43,
    summary="公开承诺：写下今年的承诺，组内可见", usage="承诺 [内容]",
    examples=("承诺 年内协调万洋众创二期 3 家企业落地投产", "承诺"),
)
async def commitment(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    year = clock.today().year
    current = (await session.exec(
        select(Commitment).where(Commitment.person_id == sender.id, Commitment.year == year)
    )).first()
    text = args.rest()
    in_squad = await squad_id_of(session, sender.id) is not None
    if not text:
        return Answer.of("changqing/commitment_show", commitment=current, year=year, in_squad=in_squad)
    if len(text) > MAX_COMMITMENT_CHARS:
        raise UsageError("changqing/usage/commitment_too_long", limit=MAX_COMMITMENT_CHARS, length=len(text))
    now = clock.now()
    replaced = current is not None
    if current is None:
        current = Commitment(person_id=sender.id, year=year, text=text, created_at=now, updated_at=now)
    else:
        current.text, current.updated_at = text, now
    session.add(current)
    return Answer.of("changqing/commitment_saved", year=year, replaced=replaced, in_squad=in_squad)
