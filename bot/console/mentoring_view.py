"""The console's 帮带 pages, on one module so they can follow the mentoring record when its model
changes: a 帮带 here is one mentee's record — their pairings one after another (mentors over time).

Every figure comes from ``handlers.pairs`` / ``handlers.mentoring_staff``, the functions the chat's
本周, 季评, 考核, the weekly jobs and the export use: the same lapsed weeks, plan progress and reviews.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import period_name, week_start
from handlers.pairs import PairView, contacts_between, lapsed_weeks, last_face_to_face, load_pairs, plan_progress
from storage.models import AnnualGrade, AuditLog, ContactLog, Pairing, PairReview, Person, PlanItem, Unit
from storage.models.mentoring import FACE_TO_FACE

STRIP_WEEKS = 12
STATES = {"active": "在册", "ended": "已结束", "lapsed": "连续2周以上未面谈"}


@dataclass
class MenteeRecord:
    """One mentee's 帮带: the current (or last) pairing and the ones before it."""

    current: PairView
    earlier: list[PairView]
    unit: str
    lapsed: int | None = None  # whole weeks without 面谈 (active pairings only)
    last_face: dt.date | None = None
    weeks: list[tuple[dt.date, int, bool]] = field(default_factory=list)  # (week start, contacts, 面谈?)
    plan: tuple[int, int] = (0, 0)
    review: str = ""  # this quarter's 季评 rating
    grade: str = ""  # this year's 年度考核

    @property
    def mentee(self) -> Person:
        return self.current.mentee

    @property
    def active(self) -> bool:
        return self.current.pairing.active


async def _records(session: AsyncSession, mentee_id: int | None = None) -> list[MenteeRecord]:
    """Every mentee's record (or one mentee's): pairings grouped by mentee, the current one first."""
    ids = None if mentee_id is None else select(Pairing.id).where(Pairing.mentee_id == mentee_id)
    views = await load_pairs(session, pairing_ids=ids, active_only=False)
    by_mentee: dict[int, list[PairView]] = defaultdict(list)
    for v in views:
        by_mentee[v.mentee.id].append(v)  # type: ignore[index]
    unit_ids = {v.mentee.unit_id for v in views if v.mentee.unit_id is not None}
    units = dict((await session.exec(select(Unit.id, Unit.name).where(col(Unit.id).in_(unit_ids))))
                 .all()) if unit_ids else {}
    out = []
    for pairs in by_mentee.values():
        pairs.sort(key=lambda v: (v.pairing.active, v.pairing.start_date, v.id))
        current = pairs[-1]
        out.append(MenteeRecord(current, list(reversed(pairs[:-1])), units.get(current.mentee.unit_id, "")))
    out.sort(key=lambda r: (not r.active, r.current.id))
    return out


def units_of(records: list[MenteeRecord]) -> list[tuple[int, str]]:
    """The units that have mentees, for the filter."""
    seen = {r.mentee.unit_id: r.unit for r in records if r.mentee.unit_id is not None}
    return sorted(seen.items(), key=lambda x: x[1])


async def _fill(session: AsyncSession, records: list[MenteeRecord], today: dt.date) -> None:
    """The figures of the listed records only (a page of them)."""
    ids = [r.current.id for r in records]
    latest = await last_face_to_face(session, ids)
    plans = await plan_progress(session, ids)
    first_week = week_start(today) - dt.timedelta(days=7 * (STRIP_WEEKS - 1))
    contacts = await contacts_between(session, ids, first_week, today)
    quarter = period_name("quarter", today)
    reviews = dict((await session.exec(
        select(PairReview.pairing_id, PairReview.rating).where(col(PairReview.pairing_id).in_(ids),
                                                               PairReview.quarter == quarter))).all()) if ids else {}
    mentees = [r.mentee.id for r in records]
    grades = dict((await session.exec(
        select(AnnualGrade.person_id, AnnualGrade.grade).where(col(AnnualGrade.person_id).in_(mentees),
                                                               AnnualGrade.year == today.year))).all()) if mentees else {}
    for r in records:
        p = r.current.pairing
        r.last_face = latest.get(r.current.id)
        r.lapsed = lapsed_weeks(today, p.start_date, r.last_face) if p.active else None
        r.plan = plans.get(r.current.id, (0, 0))
        r.review = reviews.get(r.current.id, "")
        r.grade = grades.get(r.mentee.id, "")
        per_week: dict[dt.date, list] = defaultdict(list)
        for c in contacts.get(r.current.id, []):
            per_week[week_start(c.day)].append(c)
        weeks = (first_week + dt.timedelta(days=7 * i) for i in range(STRIP_WEEKS))
        r.weeks = [(w, len(per_week[w]), any(c.mode == FACE_TO_FACE for c in per_week[w]))
                   for w in weeks if w >= week_start(p.start_date)]


async def mentee_records(session: AsyncSession, today: dt.date, *, unit_id: int | None = None,
                         state: str | None = None, offset: int = 0,
                         limit: int = 50) -> tuple[list[MenteeRecord], int, list[tuple[int, str]]]:
    """A page of 帮带 records filtered by the mentee's unit and by state, how many match in all, and
    the units there are to filter by."""
    records = await _records(session)
    units = units_of(records)
    if unit_id is not None:
        records = [r for r in records if r.mentee.unit_id == unit_id]
    if state == "active":
        records = [r for r in records if r.active]
    elif state == "ended":
        records = [r for r in records if not r.active]
    elif state == "lapsed":
        records = [r for r in records if r.active]
        latest = await last_face_to_face(session, [r.current.id for r in records])
        records = [r for r in records
                   if lapsed_weeks(today, r.current.pairing.start_date, latest.get(r.current.id)) >= 2]
    page = records[offset:offset + limit]
    await _fill(session, page, today)
    return page, len(records), units


@dataclass
class MenteeHistory:
    record: MenteeRecord
    pairings: list[PairView]  # newest first
    contacts: list[tuple[ContactLog, str]]  # (contact, author's name), newest first
    plan: list[PlanItem]
    reviews: list[PairReview]
    grades: list[AnnualGrade]
    audit: list[AuditLog]


async def mentee_history(session: AsyncSession, mentee_id: int, today: dt.date) -> MenteeHistory | None:
    """Everything on one mentee's 帮带, all pairings included."""
    records = await _records(session, mentee_id)
    if not records:
        return None
    record = records[0]
    await _fill(session, [record], today)
    pairings = [record.current, *record.earlier]
    ids = [v.id for v in pairings]
    rows = (await session.exec(select(ContactLog, Person.name).join(Person, Person.id == ContactLog.author_id)
                               .where(col(ContactLog.pairing_id).in_(ids))
                               .order_by(col(ContactLog.day).desc(), col(ContactLog.id).desc()))).all()
    contacts = [(c, name) for c, name in rows]
    plan = list((await session.exec(select(PlanItem).where(col(PlanItem.pairing_id).in_(ids))
                                    .order_by(PlanItem.pairing_id, PlanItem.seq))).all())
    reviews = list((await session.exec(select(PairReview).where(col(PairReview.pairing_id).in_(ids))
                                       .order_by(col(PairReview.quarter).desc()))).all())
    grades = list((await session.exec(select(AnnualGrade).where(AnnualGrade.person_id == mentee_id)
                                      .order_by(col(AnnualGrade.year).desc()))).all())
    audit = list((await session.exec(select(AuditLog).where(col(AuditLog.target).in_([f"pairing:{i}" for i in ids]))
                                     .order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()))).all())
    return MenteeHistory(record, pairings, contacts, plan, reviews, grades, audit)
