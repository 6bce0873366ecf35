"""导师帮带 facts the commands, the jobs and the exports share: who is paired with whom, and how
each pair is keeping 周联 (at least one 面谈 a week)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Row, Select, bindparam, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import week_start
from storage.directory import memo
from storage.models import ContactLog, Pairing, PairingMentor, Person, PlanItem
from storage.models.mentoring import FACE_TO_FACE


@dataclass
class PairView:
    """One pairing with its people loaded: the mentee, the mentors (lead first)."""

    pairing: Pairing
    mentee: Person
    mentors: list[Person]
    lead_id: int | None

    @property
    def id(self) -> int:
        assert self.pairing.id is not None
        return self.pairing.id

    @property
    def mentor_names(self) -> str:
        return "、".join(m.name for m in self.mentors)

    @property
    def label(self) -> str:
        """``张伟、王芳 — 李娜``: mentors, then mentee, as staff reports show a pair."""
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


async def load_pairs(
    session: AsyncSession, *, pairing_ids: Iterable[int] | Select | None = None, active_only: bool = True
) -> list[PairView]:
    """Pairings with their people, in three queries however many pairs there are. ``pairing_ids`` may be
    a list or a subquery of ids."""
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
    links = (
        await session.exec(select(PairingMentor).where(col(PairingMentor.pairing_id).in_(pids)))
    ).all()
    person_ids = {p.mentee_id for p in pairings} | {link.person_id for link in links}
    people = {
        p.id: p for p in (await session.exec(select(Person).where(col(Person.id).in_(person_ids)))).all()
    }
    mentors: dict[int, list[PairingMentor]] = defaultdict(list)
    for link in links:
        mentors[link.pairing_id].append(link)
    views = []
    for p in pairings:
        ordered = sorted(mentors[p.id], key=lambda link: (not link.is_lead, link.person_id))
        lead = next((link.person_id for link in ordered if link.is_lead), None)
        views.append(PairView(p, people[p.mentee_id], [people[link.person_id] for link in ordered], lead))
    return views


async def pairs_of(session: AsyncSession, person_id: int) -> list[PairView]:
    """The active pairings a person is in, as mentor or as mentee; read by most chat commands, so
    remembered while the directory is unchanged (``storage.directory``). The views are read-only."""
    views = await memo(session, ("pairs", person_id), lambda: _load_pairs_of(session, person_id),
                       lambda views: [o for v in views for o in (v.pairing, v.mentee, *v.mentors)])
    return list(views)


async def _load_pairs_of(session: AsyncSession, person_id: int) -> list[PairView]:
    as_mentor = select(PairingMentor.pairing_id).where(PairingMentor.person_id == person_id)
    mine = select(Pairing.id).where(or_(Pairing.mentee_id == person_id, col(Pairing.id).in_(as_mentor)))
    return await load_pairs(session, pairing_ids=mine)


# Built once: chat commands run these on every 本周 and 记录.
_CONTACTS = (
    # Plain rows (``row.day``, ``row.mode``…), not ORM objects: a pair's quarter can hold dozens.
    select(ContactLog.pairing_id, ContactLog.author_id, ContactLog.day, ContactLog.mode, ContactLog.note)
    .where(col(ContactLog.pairing_id).in_(bindparam("ids", expanding=True)),
           col(ContactLog.day) >= bindparam("first"), col(ContactLog.day) <= bindparam("last"))
    .order_by(ContactLog.day, ContactLog.id)
)
_PLAN_PROGRESS = (
    select(PlanItem.pairing_id, func.count(), func.count(PlanItem.done_at))
    .where(col(PlanItem.pairing_id).in_(bindparam("ids", expanding=True)))
    .group_by(PlanItem.pairing_id)
)


async def contacts_between(
    session: AsyncSession, pairing_ids: list[int], first: dt.date, last: dt.date
) -> dict[int, list[Row]]:
    """Per pairing, its contacts between ``first`` and ``last`` in order, as read-only rows."""
    if not pairing_ids:
        return {}
    rows = (await session.exec(_CONTACTS, params={"ids": pairing_ids, "first": first, "last": last})).all()
    out: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        out[row.pairing_id].append(row)
    return out


async def contact_counts(session: AsyncSession, pairing_ids: list[int], first: dt.date, last: dt.date) -> dict[int, int]:
    if not pairing_ids:
        return {}
    rows = await session.exec(
        select(ContactLog.pairing_id, func.count())
        .where(col(ContactLog.pairing_id).in_(pairing_ids), ContactLog.day >= first, ContactLog.day <= last)
        .group_by(ContactLog.pairing_id)
    )
    return dict(rows.all())


async def last_face_to_face(session: AsyncSession, pairing_ids: list[int] | None = None) -> dict[int, dt.date]:
    query = select(ContactLog.pairing_id, func.max(ContactLog.day)).where(ContactLog.mode == FACE_TO_FACE)
    if pairing_ids is not None:
        query = query.where(col(ContactLog.pairing_id).in_(pairing_ids))
    rows = await session.exec(query.group_by(ContactLog.pairing_id))
    return dict(rows.all())


async def plan_progress(session: AsyncSession, pairing_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(done, total) plan items per pairing."""
    if not pairing_ids:
        return {}
    rows = await session.exec(_PLAN_PROGRESS, params={"ids": pairing_ids})
    return {pid: (done, total) for pid, total, done in rows.all()}


def lapsed_weeks(today: dt.date, start: dt.date, last_face: dt.date | None) -> int:
    """Whole ISO weeks, before the current one, in which the pair had no 面谈.

    Counted back from last week to the week after the last 面谈, or to the pair's first week when
    there never was one. The current week is not counted: it is not over yet.
    """
    this_week = week_start(today)
    if last_face is not None and last_face >= this_week - dt.timedelta(days=7):
        return 0
    first_missing = week_start(last_face) + dt.timedelta(days=7) if last_face else week_start(start)
    if first_missing >= this_week:
        return 0
    return (this_week - first_missing).days // 7


@dataclass
class WeekCompliance:
    week_first: dt.date
    week_last: dt.date
    total: int
    done: list[PairView]
    missing: list[PairView]
    lapsed: list[tuple[PairView, int]]  # pairs with no 面谈 in 2+ whole weeks, most lapsed first

    @property
    def done_count(self) -> int:
        return len(self.done)


async def week_compliance(
    session: AsyncSession, day: dt.date, as_of: dt.date | None = None, lapsed_min: int = 2
) -> WeekCompliance:
    """Which active pairs had a 面谈 in the ISO week containing ``day``, and which pairs, as of
    ``as_of`` (default ``day``), went ``lapsed_min`` or more whole weeks without one."""
    as_of = as_of or day
    first = week_start(day)
    last = first + dt.timedelta(days=6)
    views = [v for v in await load_pairs(session) if v.pairing.start_date <= last]
    ids = [v.id for v in views]
    faces = await face_pairs_between(session, ids, first, last)
    latest = await last_face_to_face(session, ids)
    done = [v for v in views if v.id in faces]
    missing = [v for v in views if v.id not in faces]
    weeks = [(v, lapsed_weeks(as_of, v.pairing.start_date, latest.get(v.id))) for v in views]
    lapsed = sorted(((v, n) for v, n in weeks if n >= lapsed_min), key=lambda x: (-x[1], x[0].id))
    return WeekCompliance(first, last, len(views), done, missing, lapsed)


async def face_pairs_between(session: AsyncSession, pairing_ids: list[int], first: dt.date, last: dt.date) -> set[int]:
    if not pairing_ids:
        return set()
    rows = await session.exec(
        select(ContactLog.pairing_id)
        .where(
            col(ContactLog.pairing_id).in_(pairing_ids),
            ContactLog.mode == FACE_TO_FACE,
            ContactLog.day >= first,
            ContactLog.day <= last,
        )
        .distinct()
    )
    return set(rows.all())
