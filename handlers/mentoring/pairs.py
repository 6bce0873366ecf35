"""导师帮带 as the chat commands see it: each mentee's 帮带 with its mentors over time, loaded with people.

A 帮带 is the mentee's one continuing record (SPEC §3a); who mentors it is a list of dated terms. A view
names the mentors *as of a day* (today for chat; the end of a period for reports) and keeps every term
for the history. The figures built on these views live in ``mentoring_queries``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import Select, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.directory import memo
from storage.models import Pairing, PairingMentor, Person


@dataclass
class Term:
    """One mentor's term in a 帮带: ``start`` up to, not including, ``end`` (None while open)."""

    mentor: Person
    row: PairingMentor

    @property
    def start(self) -> dt.date:
        return self.row.start_date

    @property
    def end(self) -> dt.date | None:
        return self.row.end_date

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or self.end > day)

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        """Has at least one day in ``first``..``last`` (a term that covers no day overlaps nothing)."""
        return self.start <= last and (self.end is None or self.end > max(first, self.start))

    def days_in(self, first: dt.date, last: dt.date) -> int:
        lo = max(first, self.start)
        hi = last + dt.timedelta(days=1) if self.end is None else min(last + dt.timedelta(days=1), self.end)
        return max(0, (hi - lo).days)


@dataclass
class PairView:
    """One 帮带 with its people: the mentee, every mentor term, and the mentors as of ``on`` (lead
    first; ``on`` None means the open terms, i.e. today's mentors)."""

    pairing: Pairing
    mentee: Person
    terms: list[Term] = field(default_factory=list)
    on: dt.date | None = None

    @property
    def id(self) -> int:
        assert self.pairing.id is not None
        return self.pairing.id

    def terms_on(self, day: dt.date | None) -> list[Term]:
        live = [t for t in self.terms if (t.end is None if day is None else t.covers(day))]
        return sorted(live, key=lambda t: (not t.row.is_lead, t.row.start_date, t.mentor.id))

    @property
    def mentors(self) -> list[Person]:
        seen: dict[int, Person] = {}
        for t in self.terms_on(self.on):
            seen.setdefault(t.mentor.id, t.mentor)  # type: ignore[arg-type]
        return list(seen.values())

    @property
    def lead_id(self) -> int | None:
        return next((t.mentor.id for t in self.terms_on(self.on) if t.row.is_lead), None)

    def as_of(self, day: dt.date | None) -> PairView:
        return PairView(self.pairing, self.mentee, self.terms, day)

    def mentored_in(self, first: dt.date, last: dt.date) -> bool:
        return any(t.overlaps(first, last) for t in self.terms)

    def last_mentors_in(self, first: dt.date, last: dt.date) -> PairView:
        """The view as of the last day in ``first``..``last`` on which someone mentored."""
        ends = [min(last, t.end - dt.timedelta(days=1)) if t.end else last for t in self.terms if t.overlaps(first, last)]
        return self.as_of(max(ends) if ends else last)

    @property
    def mentor_names(self) -> str:
        return "、".join(m.name for m in self.mentors) or "（暂无导师）"

    @property
    def label(self) -> str:
        """``张伟、王芳 — 李娜``: mentors, then mentee, as staff reports show a 帮带."""
        return f"{self.mentor_names} — {self.mentee.name}"

    def is_mentor(self, person_id: int) -> bool:
        return any(m.id == person_id for m in self.mentors)

    def people_ids(self) -> list[int]:
        return [m.id for m in self.mentors] + [self.mentee.id]  # type: ignore[list-item]

    def counterparts(self, person_id: int) -> list[Person]:
        """Whom ``person_id`` talks to in this pair: a mentee talks to the mentors, a mentor to the mentee."""
        if self.mentee.id == person_id:
            return list(self.mentors)
        return [self.mentee]

    def counterpart_label(self, person_id: int) -> str:
        if self.mentee.id == person_id:
            return "导师 " + self.mentor_names
        return "徒弟 " + self.mentee.name

    def history(self) -> list[dict]:
        """Changes of mentors in order, for people to read: who began or ended when, and why."""
        events = []
        for t in sorted(self.terms, key=lambda t: (t.start, t.row.id or 0)):
            events.append({"day": t.start, "kind": "start", "name": t.mentor.name, "reason": t.row.start_reason})
            if t.end is not None:
                events.append({"day": t.end, "kind": "dismissed" if t.row.dismissed else "end", "name": t.mentor.name,
                               "reason": t.row.end_reason})
        return sorted(events, key=lambda e: (e["day"], e["kind"] == "start"))


    def latest_change(self) -> dict | None:
        """The last change of mentors, for views: ``{day, joined, left, reason}`` (None if none ever)."""
        events = [e for e in self.history() if e["kind"] != "start" or e["reason"]]
        if not events:
            return None
        day = events[-1]["day"]
        on_day = [e for e in self.history() if e["day"] == day]
        joined = [e["name"] for e in on_day if e["kind"] == "start"]
        left = [e["name"] for e in on_day if e["kind"] != "start"]
        joined, left = [n for n in joined if n not in left], [n for n in left if n not in joined]
        # The reason of someone who joined or left, not of a same-day term that was undone.
        reason = next((e["reason"] for e in reversed(on_day) if e["reason"] and e["name"] in joined + left), "")
        return {"day": day, "joined": joined, "left": left, "reason": reason}


async def load_pairs(
    session: AsyncSession, *, pairing_ids: Iterable[int] | Select | None = None, active_only: bool = True,
    on: dt.date | None = None,
) -> list[PairView]:
    """帮带 with their people and every mentor term, in three queries however many there are.
    ``pairing_ids`` may be a list or a subquery of ids; ``active_only`` keeps those with mentors today."""
    query = select(Pairing)
    if active_only:
        query = query.where(Pairing.active == True)  # noqa: E712
    if isinstance(pairing_ids, Select):
        query = query.where(col(Pairing.id).in_(pairing_ids))
    elif pairing_ids is not None:
        ids = list(pairing_ids)
        if not ids:
            return []
        query = query.where(col(Pairing.id).in_(ids))
    pairings = (await session.exec(query.order_by(Pairing.id))).all()
    if not pairings:
        return []
    pids = [p.id for p in pairings]
    links = (await session.exec(
        select(PairingMentor).where(col(PairingMentor.pairing_id).in_(pids)).order_by(PairingMentor.id)
    )).all()
    person_ids = {p.mentee_id for p in pairings} | {link.person_id for link in links}
    people = {
        p.id: p for p in (await session.exec(select(Person).where(col(Person.id).in_(person_ids)))).all()
    }
    terms: dict[int, list[Term]] = defaultdict(list)
    for link in links:
        terms[link.pairing_id].append(Term(people[link.person_id], link))
    return [PairView(p, people[p.mentee_id], terms[p.id], on) for p in pairings]  # type: ignore[index]


async def pairs_of(session: AsyncSession, person_id: int) -> list[PairView]:
    """The 帮带 a person is in today, as mentor or as mentee; read by most chat commands, so remembered
    while the directory is unchanged (``storage.directory``). The views are read-only."""
    views = await memo(session, ("pairs", person_id), lambda: _load_pairs_of(session, person_id),
                       lambda views: [o for v in views for o in (v.pairing, v.mentee, *(x for t in v.terms for x in (t.mentor, t.row)))])
    return [v for v in views if v.mentee.id == person_id or v.is_mentor(person_id)]


async def _load_pairs_of(session: AsyncSession, person_id: int) -> list[PairView]:
    as_mentor = select(PairingMentor.pairing_id).where(PairingMentor.person_id == person_id,
                                                       col(PairingMentor.end_date).is_(None))
    mine = select(Pairing.id).where(or_(Pairing.mentee_id == person_id, col(Pairing.id).in_(as_mentor)))
    return await load_pairs(session, pairing_ids=mine)


async def bangdai_of(session: AsyncSession, mentee_id: int) -> PairView | None:
    """The mentee's 帮带, whether or not anyone mentors it today."""
    found = (await session.exec(select(Pairing.id).where(Pairing.mentee_id == mentee_id))).first()
    return (await load_pairs(session, pairing_ids=[found], active_only=False))[0] if found else None
