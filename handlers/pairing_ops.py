"""Changing who mentors whom — shared by the pairs import and the staff chat commands.

A pairing is never edited into a different one: 调整帮带关系 ends the current pairing (it stays as
history, with the reason) and starts a new one, and every change is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.text import fold
from storage.models import AuditLog, Pairing, PairingMentor, Person, PersonRole, Role, Unit

from .pairs import PairView, load_pairs


_NAME_WITH_UNIT = re.compile(r"^(.+?)[（(](.+)[)）]$")


class NotFound(ValueError):
    """A name that matches nobody, or several people; the message says which and what to write."""


async def find_person(session: AsyncSession, raw: str, unit_hint: str = "") -> Person:
    """The active person a name names: ``张伟``, or ``张伟（华埠镇）`` where names repeat."""
    text = fold(str(raw or "")).strip()
    name, unit_name = text, unit_hint
    if m := _NAME_WITH_UNIT.match(text):
        name, unit_name = m.group(1).strip(), m.group(2).strip()
    query = select(Person, Unit.name).join(Unit, Unit.id == Person.unit_id, isouter=True).where(
        Person.name == name, Person.active == True  # noqa: E712
    )
    found = (await session.exec(query)).all()
    if unit_name:
        found = [(p, u) for p, u in found if u == unit_name]
    if not found:
        raise NotFound(f"花名册中没有“{text}”" + ("" if unit_name else "，请先导入花名册"))
    if len(found) > 1:
        raise NotFound(f"花名册中有 {len(found)} 名“{name}”，请写成“{name}（单位）”区分")
    return found[0][0]


@dataclass
class Actor:
    """Who is making a change: a person (staff in chat) or a label ("cli", "import")."""

    label: str
    person_id: int | None = None


async def active_pair_of(session: AsyncSession, mentee_id: int) -> PairView | None:
    current = (
        await session.exec(select(Pairing.id).where(Pairing.mentee_id == mentee_id, Pairing.active == True))  # noqa: E712
    ).first()
    return (await load_pairs(session, pairing_ids=[current]))[0] if current else None


async def ensure_roles(session: AsyncSession, mentee: Person, mentors: list[Person]) -> None:
    wanted = [(mentee.id, Role.MENTEE)] + [(m.id, Role.MENTOR) for m in mentors]
    for person_id, role in wanted:
        if await session.get(PersonRole, (person_id, str(role))) is None:
            session.add(PersonRole(person_id=person_id, role=str(role)))


async def end_pairing(session: AsyncSession, view: PairView, on: dt.date, reason: str, actor: Actor,
                      now: dt.datetime, action: str = "pairing.end") -> None:
    pairing = view.pairing
    pairing.active, pairing.ended_on, pairing.end_reason = False, max(on, pairing.start_date), reason[:200]
    session.add(pairing)
    session.add(AuditLog(at=now, actor_id=actor.person_id, actor_label=actor.label, action=action,
                         target=f"pairing:{view.id}",
                         detail={"mentee": view.mentee.name, "mentors": view.mentor_names, "reason": reason}))


async def set_mentors(
    session: AsyncSession,
    mentee: Person,
    mentors: list[Person],
    lead: Person,
    *,
    start: dt.date,
    agreement: dt.date | None,
    reason: str,
    actor: Actor,
    now: dt.datetime,
) -> str:
    """Make ``mentors`` (led by ``lead``) the mentee's mentors. Returns "created", "updated"
    (dates or lead changed, or an old pairing ended and a new one started) or "unchanged"."""
    current = await active_pair_of(session, mentee.id)  # type: ignore[arg-type]
    if current is not None and {m.id for m in current.mentors} == {m.id for m in mentors}:
        changed = False
        pairing = current.pairing
        if (pairing.start_date, pairing.agreement_date) != (start, agreement):
            pairing.start_date, pairing.agreement_date = start, agreement
            session.add(pairing)
            changed = True
        if current.lead_id != lead.id:
            for link in (await session.exec(select(PairingMentor).where(PairingMentor.pairing_id == current.id))).all():
                link.is_lead = link.person_id == lead.id
                session.add(link)
            changed = True
        await ensure_roles(session, mentee, mentors)
        return "updated" if changed else "unchanged"
    outcome = "created"
    if current is not None:
        await end_pairing(session, current, start, reason, actor, now, action="pairing.rematch")
        outcome = "updated"
    pairing = Pairing(mentee_id=mentee.id, start_date=start, agreement_date=agreement, created_at=now)  # type: ignore[arg-type]
    session.add(pairing)
    await session.flush()
    for m in mentors:
        session.add(PairingMentor(pairing_id=pairing.id, person_id=m.id, is_lead=m.id == lead.id))  # type: ignore[arg-type]
    await ensure_roles(session, mentee, mentors)
    session.add(AuditLog(at=now, actor_id=actor.person_id, actor_label=actor.label, action="pairing.start",
                         target=f"pairing:{pairing.id}",
                         detail={"mentee": mentee.name, "mentors": "、".join(m.name for m in mentors)}))
    await session.flush()
    return outcome


async def dismiss_mentor(session: AsyncSession, mentor: Person, reason: str, actor: Actor, now: dt.datetime) -> list[PairView]:
    """清退: the mentor leaves every pairing. Where other mentors remain, the pairing continues with them
    (as a new pairing, the old one kept as history); a mentee left with no mentor is returned so staff
    can re-pair them. The person loses the 导师 role."""
    as_mentor = (await session.exec(select(PairingMentor.pairing_id).where(PairingMentor.person_id == mentor.id))).all()
    orphans = []
    for view in await load_pairs(session, pairing_ids=as_mentor):
        remaining = [m for m in view.mentors if m.id != mentor.id]
        if remaining:
            lead = next((m for m in remaining if m.id == view.lead_id), remaining[0])
            await set_mentors(session, view.mentee, remaining, lead, start=now.date(), agreement=view.pairing.agreement_date,
                              reason=f"导师 {mentor.name} 清退：{reason}", actor=actor, now=now)
        else:
            await end_pairing(session, view, now.date(), f"导师清退：{reason}", actor, now)
            orphans.append(view)
    role = await session.get(PersonRole, (mentor.id, str(Role.MENTOR)))
    if role is not None:
        await session.delete(role)
    session.add(AuditLog(at=now, actor_id=actor.person_id, actor_label=actor.label, action="mentor.dismiss",
                         target=f"person:{mentor.id}", detail={"name": mentor.name, "reason": reason,
                                                               "pairs": len(as_mentor)}))
    await session.flush()
    return orphans
