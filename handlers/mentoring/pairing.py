"""Changing who mentors whom — shared by the pairs import and the staff chat commands.

A mentee has one 帮带 for good (SPEC §3a). 调整帮带关系, a team change, 清退 and undoing a mistake only
end and begin mentor terms (with the day and the reason); the 帮带's contacts, plan and 季评 stay where
they are. Every change is in the audit log and is described by a :class:`MentorChange`, which the chat
commands turn into private notices.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.clock import TZ
from storage.models import Pairing, PairingMentor, Person, PersonRole, Role

from handlers.mentoring.pairs import PairView, bangdai_of, load_pairs


@dataclass
class MentorChange:
    """What one change did: who began and who stopped mentoring the mentee, from which day."""

    outcome: str  # created | updated | unchanged | ended
    mentee: Person
    view: PairView | None = None
    day: dt.date | None = None
    joined: list[Person] = field(default_factory=list)
    left: list[Person] = field(default_factory=list)
    dismissed: bool = False
    reason: str = ""


async def active_pair_of(session: AsyncSession, mentee_id: int) -> PairView | None:
    """The mentee's 帮带 if someone mentors it today."""
    view = await bangdai_of(session, mentee_id)
    return view if view is not None and view.pairing.active else None


async def ensure_roles(session: AsyncSession, mentee: Person, mentors: list[Person]) -> None:
    wanted = [(mentee.id, Role.MENTEE)] + [(m.id, Role.MENTOR) for m in mentors]
    for person_id, role in wanted:
        if await session.get(PersonRole, (person_id, str(role))) is None:
            session.add(PersonRole(person_id=person_id, role=str(role)))


def _end_term(session: AsyncSession, term_row: PairingMentor, on: dt.date, reason: str, dismissed: bool = False) -> None:
    term_row.end_date = max(on, term_row.start_date)
    term_row.end_reason, term_row.dismissed = reason[:200], dismissed
    session.add(term_row)


def _close_if_empty(session: AsyncSession, pairing: Pairing, on: dt.date, reason: str) -> None:
    pairing.active, pairing.ended_on, pairing.end_reason = False, on, reason[:200]
    session.add(pairing)


async def end_pairing(session: AsyncSession, view: PairView, on: dt.date, reason: str, actor: Actor,
                      now: dt.datetime, action: str = "pairing.end") -> MentorChange:
    """结对 结束: every mentor's term ends on ``on``; the 帮带 and its record stay, waiting for new mentors."""
    left = []
    for term in view.terms:
        if term.end is None:
            _end_term(session, term.row, on, reason)
            left.append(term.mentor)
    _close_if_empty(session, view.pairing, on, reason)
    audit(session, now, actor, action, f"pairing:{view.id}", mentee=view.mentee.name,
           mentors="、".join(m.name for m in left), reason=reason, day=on.isoformat())
    await session.flush()
    return MentorChange("ended", view.mentee, view, on, [], left, False, reason)


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
    """Make ``mentors`` (led by ``lead``) the mentee's mentors from ``start``. Returns "created",
    "updated" or "unchanged" (the pairs import counts these)."""
    return (await change_mentors(session, mentee, mentors, lead, start=start, agreement=agreement,
                                 reason=reason, actor=actor, now=now, correct_start=True)).outcome


async def change_mentors(
    session: AsyncSession, mentee: Person, mentors: list[Person], lead: Person, *, start: dt.date,
    agreement: dt.date | None, reason: str, actor: Actor, now: dt.datetime, correct_start: bool = False,
) -> MentorChange:
    """Mentors who stay keep their term; those who leave have it end on ``start``; those who join begin
    one on ``start`` — or, when their term ended that very day (a mistake being undone), it reopens.
    ``correct_start`` (the pairs import): the same mentors with another 开始日期 move their terms' start."""
    view = await bangdai_of(session, mentee.id)  # type: ignore[arg-type]
    created = view is None or not view.pairing.active
    if view is None:
        pairing = Pairing(mentee_id=mentee.id, start_date=start, agreement_date=agreement, created_at=now)  # type: ignore[arg-type]
        session.add(pairing)
        await session.flush()
        view = PairView(pairing, mentee, [])
    pairing = view.pairing
    open_terms = {t.mentor.id: t for t in view.terms if t.end is None}
    wanted = {m.id: m for m in mentors}
    changed = False
    if correct_start and set(open_terms) == set(wanted):
        for t in open_terms.values():
            if t.start != start and all(o.end is None or o.end <= start for o in view.terms if o.mentor.id == t.mentor.id and o is not t):
                t.row.start_date = start  # the import corrects the day a term began
                session.add(t.row)
                changed = True
    joined, left = [], []
    staying = [t.row for pid, t in open_terms.items() if pid in wanted]
    for pid, term in open_terms.items():
        if pid not in wanted:
            _end_term(session, term.row, start, reason)
            left.append(term.mentor)
    for pid, person in wanted.items():
        if pid in open_terms:
            continue
        undone = next((t for t in view.terms if t.mentor.id == pid and t.end == start and not t.row.dismissed), None)
        if undone is not None:
            undone.row.end_date, undone.row.end_reason = None, ""
            staying.append(undone.row)
        else:
            session.add(PairingMentor(pairing_id=pairing.id, person_id=pid, is_lead=pid == lead.id,  # type: ignore[arg-type]
                                      start_date=start, start_reason=reason[:200] if view.terms else ""))
        joined.append(person)
    for row in staying:
        if row.is_lead != (row.person_id == lead.id):
            row.is_lead = row.person_id == lead.id
            changed = True
        session.add(row)
    if agreement is not None and pairing.agreement_date != agreement:
        pairing.agreement_date = agreement
        changed = True
    if not pairing.active or pairing.start_date > start or pairing.ended_on is not None:
        pairing.active, pairing.ended_on, pairing.end_reason = True, None, ""
        pairing.start_date = min(pairing.start_date, start)
        changed = True
    session.add(pairing)
    await ensure_roles(session, mentee, mentors)
    if joined or left:
        audit(session, now, actor, "pairing.start" if created else "pairing.rematch", f"pairing:{pairing.id}",
               mentee=mentee.name, mentors="、".join(m.name for m in mentors),
               joined="、".join(m.name for m in joined), left="、".join(m.name for m in left),
               reason=reason, day=start.isoformat())
    await session.flush()
    outcome = "created" if created else "updated" if (joined or left or changed) else "unchanged"
    fresh = (await load_pairs(session, pairing_ids=[pairing.id], active_only=False))[0]  # type: ignore[list-item]
    return MentorChange(outcome, mentee, fresh, start, joined, left, False, reason)


async def dismiss_mentor(session: AsyncSession, mentor: Person, reason: str, actor: Actor,
                         now: dt.datetime) -> list[MentorChange]:
    """清退: the mentor's open terms end today, marked as 清退; the other mentors of a 导师团 go on (the
    lead passes to the next), and a mentee left with nobody keeps the 帮带, waiting for new mentors.
    The person loses the 导师 role."""
    today = now.astimezone(TZ).date()
    as_mentor = select(PairingMentor.pairing_id).where(PairingMentor.person_id == mentor.id,
                                                      col(PairingMentor.end_date).is_(None))
    changes = []
    for view in await load_pairs(session, pairing_ids=as_mentor):
        mine = [t for t in view.terms if t.end is None and t.mentor.id == mentor.id]
        was_lead = any(t.row.is_lead for t in mine)
        for t in mine:
            _end_term(session, t.row, today, reason, dismissed=True)
        rest = [t for t in view.terms if t.end is None and t.mentor.id != mentor.id]
        if not rest:
            _close_if_empty(session, view.pairing, today, f"导师清退：{reason}")
        elif was_lead:
            rest[0].row.is_lead = True
            session.add(rest[0].row)
        changes.append(MentorChange("updated" if rest else "ended", view.mentee, view, today, [], [mentor], True, reason))
    role = await session.get(PersonRole, (mentor.id, str(Role.MENTOR)))
    if role is not None:
        await session.delete(role)
    audit(session, now, actor, "mentor.dismiss", f"person:{mentor.id}", name=mentor.name, reason=reason,
           pairs=len(changes))
    await session.flush()
    return changes
