"""导师库 as figures: everyone in the pool (the 导师 role, or an application pending or refused) with
their current mentees, 辅导次数, past mentees and incentives. No side effects: the 导师 库 command, the
export and the console call it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (ContactLog, ContactMentor, MentorCertificate, MentorIncentive, MentorNomination, Person,
                            PersonRole, Role)

from handlers.mentoring.pairs import PairView, load_pairs


@dataclass
class PoolEntry:
    person: Person
    is_mentor: bool  # holds the 导师 role now
    nomination: MentorNomination | None
    current: list[PairView] = field(default_factory=list)  # 帮带 mentored today
    past: list[tuple[PairView, dt.date, dt.date]] = field(default_factory=list)  # (帮带, from, until) ended terms
    contacts_year: int = 0  # 辅导次数 this year
    contacts_total: int = 0
    incentives: list[MentorIncentive] = field(default_factory=list)
    certificates: list[int] = field(default_factory=list)  # years

    @property
    def subsidy_total(self) -> int:
        return sum(i.amount or 0 for i in self.incentives if i.kind == "补助")


async def mentor_pool(session: AsyncSession, today: dt.date, views: list[PairView] | None = None) -> list[PoolEntry]:
    """The pool, mentors first (by name), then pending applications, then refused ones."""
    mentor_ids = set((await session.exec(select(PersonRole.person_id).where(PersonRole.role == str(Role.MENTOR)))).all())
    nominations = {n.person_id: n for n in (await session.exec(select(MentorNomination))).all()}
    ids = mentor_ids | set(nominations)
    if not ids:
        return []
    people = {p.id: p for p in (await session.exec(select(Person).where(col(Person.id).in_(ids)))).all()}
    entries = {pid: PoolEntry(people[pid], pid in mentor_ids, nominations.get(pid)) for pid in ids if pid in people}
    for v in views if views is not None else await load_pairs(session, active_only=False):
        for t in v.terms:
            entry = entries.get(t.mentor.id)  # type: ignore[arg-type]
            if entry is None:
                continue
            if t.covers(today):
                if all(x.id != v.id for x in entry.current):
                    entry.current.append(v.as_of(today))
            elif t.end is not None and t.end > t.start:
                entry.past.append((v, t.start, t.end - dt.timedelta(days=1)))
    first = dt.date(today.year, 1, 1)
    counted = (select(ContactMentor.person_id, func.count())
               .join(ContactLog, col(ContactLog.id) == ContactMentor.contact_id)
               .where(col(ContactMentor.person_id).in_(ids)).group_by(ContactMentor.person_id))
    for pid, n in (await session.exec(counted)).all():
        entries[pid].contacts_total = n
    for pid, n in (await session.exec(counted.where(ContactLog.day >= first, ContactLog.day <= today))).all():
        entries[pid].contacts_year = n
    for i in (await session.exec(select(MentorIncentive).where(col(MentorIncentive.person_id).in_(ids))
                                 .order_by(MentorIncentive.month, MentorIncentive.id))).all():
        entries[i.person_id].incentives.append(i)
    for pid, year in (await session.exec(select(MentorCertificate.person_id, MentorCertificate.year)
                                         .where(col(MentorCertificate.person_id).in_(ids)))).all():
        entries[pid].certificates.append(year)
    order = {"mentor": 0, "pending": 1, "other": 2}

    def rank(e: PoolEntry) -> tuple:
        kind = "mentor" if e.is_mentor else "pending" if e.nomination and e.nomination.status == "待审核" else "other"
        return (order[kind], e.person.name, e.person.id)

    for e in entries.values():
        e.past.sort(key=lambda x: x[1])
    return sorted(entries.values(), key=rank)


def incentive_rows(entries: list[PoolEntry]) -> list[list]:
    """激励 sheet rows for the export."""
    return [[e.person.name, i.kind, i.month, i.amount if i.amount is not None else "", i.note]
            for e in entries for i in e.incentives]


def pool_rows(entries: list[PoolEntry]) -> list[list]:
    rows = []
    for e in entries:
        n = e.nomination
        rows.append([e.person.name, "在库导师" if e.is_mentor else (n.status if n else ""), n.source if n else "",
                     n.reason if n else "", "、".join(v.mentee.name for v in e.current),
                     "；".join(f"{v.mentee.name}（{a:%Y-%m-%d}—{b:%Y-%m-%d}）" for v, a, b in e.past),
                     e.contacts_year, e.contacts_total, e.subsidy_total, "、".join(str(y) for y in sorted(e.certificates))])
    return rows
