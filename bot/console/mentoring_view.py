"""The console's 帮带 pages, in one module so they follow the mentoring record: a 帮带 is the mentee's
one continuing record (SPEC §3a) and who mentored it when is its dated mentor terms.

Every figure comes from ``handlers.mentoring.queries`` — the functions the chat's 本周, 季评, 考核, the
weekly jobs and the export call — on views from ``handlers.mentoring.pairs``: lapsed weeks, contacts per week,
plan progress, the quarter's 季评 and 捆绑考核 are computed there once; this module only gathers and
filters them for a page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import period_name
from handlers.mentoring.queries import (ONE_DAY, MentorVerdict, ReviewStatus, WeekMark, bundled_assessment,
                                        last_face_before, lapsed_weeks, plan_progress, review_status, week_status,
                                        weekly_marks)
from handlers.mentoring.pairs import PairView, Term, load_pairs
from storage.models import (AnnualGrade, AuditLog, ContactLog, ContactMentor, Pairing, PairingMentor, PairReview,
                            Person, PlanItem, Unit)

STRIP_WEEKS = 12
STATES = {"active": "在册", "ended": "暂无导师", "lapsed": "连续2周以上未面谈"}


def mentored_on(view: PairView, day: dt.date) -> bool:
    """Someone mentors the 帮带 on ``day`` (what 在册 means on the page, as in 周联)."""
    return any(t.covers(day) for t in view.terms)


@dataclass
class MenteeRecord:
    """One mentee's 帮带 as a row of the list: today's mentors, the last change of mentors, and the
    figures of the query functions."""

    view: PairView  # mentors as of today
    unit: str
    active: bool  # someone mentors it today
    lapsed: int | None = None  # whole weeks without 面谈 (mentored today only)
    last_face: dt.date | None = None
    weeks: list[WeekMark] = field(default_factory=list)
    plan: tuple[int, int] = (0, 0)
    review: str | None = None  # this quarter's 季评 rating; "" pending; None not mentored this quarter
    grade: AnnualGrade | None = None  # this year's 年度考核 of the mentee

    @property
    def mentee(self) -> Person:
        return self.view.mentee

    @property
    def change(self) -> dict | None:
        return self.view.latest_change()

    @property
    def former(self) -> list[str]:
        """Mentors who mentored it before and do not today, in the order they began."""
        now = {m.id for m in self.view.mentors}
        names: dict[int, str] = {}
        for t in sorted(self.view.terms, key=lambda t: (t.start, t.row.id or 0)):
            if t.mentor.id not in now and (t.end is None or t.end > t.start):  # an undone mistake covered no day
                names.setdefault(t.mentor.id, t.mentor.name)  # type: ignore[arg-type]
        return list(names.values())


async def _unit_names(session: AsyncSession, views: list[PairView]) -> dict[int, str]:
    ids = {v.mentee.unit_id for v in views if v.mentee.unit_id is not None}
    if not ids:
        return {}
    return dict((await session.exec(select(Unit.id, Unit.name).where(col(Unit.id).in_(ids)))).all())


async def _records(session: AsyncSession, views: list[PairView], today: dt.date) -> list[MenteeRecord]:
    units = await _unit_names(session, views)
    records = [MenteeRecord(v.as_of(today), units.get(v.mentee.unit_id, ""), mentored_on(v, today))  # type: ignore[arg-type]
               for v in views]
    records.sort(key=lambda r: (not r.active, r.view.id))
    return records


async def _lapsed(session: AsyncSession, records: list[MenteeRecord], today: dt.date) -> None:
    """The last 面谈 and, for 帮带 mentored today, the lapsed weeks — as 周联 and the export count them."""
    latest = await last_face_before(session, [r.view.id for r in records], today + ONE_DAY)
    for r in records:
        r.last_face = latest.get(r.view.id)
        r.lapsed = lapsed_weeks(r.view, today, r.last_face) if r.active else None


async def _fill(session: AsyncSession, records: list[MenteeRecord], today: dt.date,
                reviews: ReviewStatus) -> None:
    """The figures of the listed records only (a page of them)."""
    views = [r.view for r in records]
    ids = [v.id for v in views]
    marks = await weekly_marks(session, views, today, STRIP_WEEKS)
    plans = await plan_progress(session, ids)
    pending = {v.id for v in reviews.pending}
    mentees = [r.mentee.id for r in records]
    grades = {g.person_id: g for g in (await session.exec(
        select(AnnualGrade).where(col(AnnualGrade.person_id).in_(mentees), AnnualGrade.year == today.year))).all()
    } if mentees else {}
    for r in records:
        i = r.view.id
        r.weeks = marks.get(i, [])
        r.plan = plans.get(i, (0, 0))
        r.review = reviews.reviews[i].rating if i in reviews.reviews else "" if i in pending else None
        r.grade = grades.get(r.mentee.id)  # type: ignore[arg-type]


async def mentee_records(session: AsyncSession, today: dt.date, *, unit_id: int | None = None,
                         state: str | None = None, offset: int = 0,
                         limit: int = 50) -> tuple[list[MenteeRecord], int, list[tuple[int, str]]]:
    """A page of 帮带 filtered by the mentee's unit and by state, how many match in all, and the
    units there are to filter by."""
    views = await load_pairs(session, active_only=False)
    records = await _records(session, views, today)
    seen = {r.mentee.unit_id: r.unit for r in records if r.mentee.unit_id is not None}
    units = sorted(seen.items(), key=lambda x: x[1])
    if unit_id is not None:
        records = [r for r in records if r.mentee.unit_id == unit_id]
    if state == "active":
        records = [r for r in records if r.active]
    elif state == "ended":
        records = [r for r in records if not r.active]
    elif state == "lapsed":
        records = [r for r in records if r.active]
        await _lapsed(session, records, today)
        records = [r for r in records if r.lapsed is not None and r.lapsed >= 2]
    page = records[offset:offset + limit]
    if state != "lapsed":
        await _lapsed(session, page, today)
    await _fill(session, page, today, await review_status(session, period_name("quarter", today), views))
    return page, len(records), units


@dataclass
class MenteeHistory:
    record: MenteeRecord
    terms: list[Term]  # every mentor term, in the order they began
    events: list[dict]  # PairView.history(): who began or ended when, and why
    week: dict  # week_status: this week's contacts, 面谈, the quarter's count, plan progress (chat 本周)
    contacts: list[tuple[ContactLog, str, list[str]]]  # (contact, author, mentors who took part), newest first
    plan: list[PlanItem]
    reviews: list[PairReview]
    grades: list[AnnualGrade]
    verdicts: list[MentorVerdict]  # this year's 捆绑考核 of the mentors who mentored it this year
    min_months: int
    audit: list[AuditLog]


async def mentee_history(session: AsyncSession, mentee_id: int, today: dt.date,
                         min_months: int = 3) -> MenteeHistory | None:
    """Everything on one mentee's 帮带: every mentor term, every contact, the plan, the reviews."""
    found = (await session.exec(select(Pairing.id).where(Pairing.mentee_id == mentee_id))).first()
    if found is None:
        return None
    views = await load_pairs(session, pairing_ids=[found], active_only=False)
    record = (await _records(session, views, today))[0]
    view = record.view
    await _lapsed(session, [record], today)
    await _fill(session, [record], today, await review_status(session, period_name("quarter", today), [view]))
    week = (await week_status(session, [view], today))[0]
    # 捆绑考核 of this 帮带's mentors of the year: their verdicts need every 帮带 they mentored.
    year_first, year_last = dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)
    mentors = {t.mentor.id for t in view.terms if t.overlaps(year_first, year_last) or t.row.dismissed}
    theirs = select(PairingMentor.pairing_id).where(col(PairingMentor.person_id).in_(mentors))
    related = await load_pairs(session, pairing_ids=theirs, active_only=False) if mentors else []
    verdicts = [v for v in await bundled_assessment(session, today.year, min_months, related) if v.mentor.id in mentors]

    rows = (await session.exec(select(ContactLog, Person.name).join(Person, Person.id == ContactLog.author_id)
                               .where(ContactLog.pairing_id == view.id)
                               .order_by(col(ContactLog.day).desc(), col(ContactLog.id).desc()))).all()
    took_part: dict[int, list[str]] = {}
    for cid, name in (await session.exec(
            select(ContactMentor.contact_id, Person.name).join(Person, Person.id == ContactMentor.person_id)
            .join(ContactLog, col(ContactLog.id) == ContactMentor.contact_id)
            .where(ContactLog.pairing_id == view.id).order_by(ContactMentor.contact_id, Person.id))).all():
        took_part.setdefault(cid, []).append(name)
    contacts = [(c, name, took_part.get(c.id, [])) for c, name in rows]  # type: ignore[arg-type]
    plan = list((await session.exec(select(PlanItem).where(PlanItem.pairing_id == view.id)
                                    .order_by(PlanItem.seq))).all())
    reviews = list((await session.exec(select(PairReview).where(PairReview.pairing_id == view.id)
                                       .order_by(col(PairReview.quarter).desc()))).all())
    grades = list((await session.exec(select(AnnualGrade).where(AnnualGrade.person_id == mentee_id)
                                      .order_by(col(AnnualGrade.year).desc()))).all())
    audit = list((await session.exec(
        select(AuditLog).where(or_(AuditLog.target == f"pairing:{view.id}",
                                   (AuditLog.target == f"person:{mentee_id}") & (AuditLog.action == "grade.set")))
        .order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()))).all())
    terms = sorted(view.terms, key=lambda t: (t.start, t.row.id or 0))
    return MenteeHistory(record, terms, view.history(), week, contacts, plan, reviews, grades, verdicts,
                         min_months, audit)
