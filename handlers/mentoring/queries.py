"""The figures of 导师帮带, as of a period, from the dated record (SPEC §3a). No side effects and no
command registration: the chat commands, the jobs, the export and the web console all call these, so
one figure is computed in one place.

Rules, in short: a 帮带 counts in a period when one of its mentor terms has a day in it; 周联 is met
for a week when the 帮带 has a 面谈 in it (any mentor); a 帮带 is lapsed N weeks when the last N whole
weeks in which it was mentored had no 面谈; one 季评 per 帮带 per quarter; 捆绑考核 from the mentees a
mentor mentored at least ``bundle_min_months`` × 30 days in the year.

The period figures take an optional ``views`` (every 帮带, from ``load_pairs(active_only=False)``) so a
caller reporting several figures at once (the console, the reference model test) loads them once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from typing import Any

from sqlalchemy import bindparam, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import day_start, period_bounds, week_start
from storage.hot import Hot
from storage.models import (AREAS, REVIEW_RATINGS, AnnualGrade, ContactLog, ContactMentor, PairReview, Person,
                            PlanItem)
from storage.models.mentoring import FACE_TO_FACE

from handlers.mentoring.class_queries import check_ins_by_host
from handlers.mentoring.pairs import PairView, bangdai_of, load_pairs

ONE_DAY = dt.timedelta(days=1)

_CONTACTS = Hot(
    # Plain rows (``row.day``, ``row.mode``…), not ORM objects: a 帮带's quarter can hold dozens.
    select(ContactLog.id, ContactLog.pairing_id, ContactLog.author_id, ContactLog.day, ContactLog.mode, ContactLog.note,
           ContactLog.area)
    .where(col(ContactLog.pairing_id).in_(bindparam("ids", expanding=True)),
           col(ContactLog.day) >= bindparam("first"), col(ContactLog.day) <= bindparam("last"))
    .order_by(ContactLog.day, ContactLog.id)
)
# 本周's plan progress and the quarter's 五带 counts.
_PLAN_ITEMS = Hot(select(PlanItem.pairing_id, PlanItem.area, PlanItem.created_at, PlanItem.done_at)
                  .where(col(PlanItem.pairing_id).in_(bindparam("ids", expanding=True))))


async def contacts_between(
    session: AsyncSession, pairing_ids: list[int], first: dt.date, last: dt.date
) -> dict[int, list[Any]]:
    """Per 帮带, its contacts between ``first`` and ``last`` in order, as read-only rows."""
    if not pairing_ids:
        return {}
    rows = await _CONTACTS.rows(session, {"ids": pairing_ids, "first": first, "last": last})
    out: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        out[row.pairing_id].append(row)
    return out


async def plan_progress(session: AsyncSession, pairing_ids: list[int], until: dt.date | None = None) -> dict[int, tuple[int, int]]:
    """(done, total) plan items per 帮带; with ``until``, as they stood at the end of that day."""
    if not pairing_ids:
        return {}
    query = select(PlanItem.pairing_id, PlanItem.created_at, PlanItem.done_at).where(col(PlanItem.pairing_id).in_(pairing_ids))
    limit = day_start(until + ONE_DAY) if until else None
    if limit is not None:
        query = query.where(PlanItem.created_at < limit)
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for pid, _created, done_at in (await session.exec(query)).all():
        out[pid][1] += 1
        if done_at is not None and (limit is None or done_at < limit):
            out[pid][0] += 1
    return {pid: (d, t) for pid, (d, t) in out.items()}


async def last_face_before(session: AsyncSession, pairing_ids: list[int], before: dt.date) -> dict[int, dt.date]:
    """The day of each 帮带's last 面谈 before ``before``."""
    if not pairing_ids:
        return {}
    rows = await session.exec(
        select(ContactLog.pairing_id, func.max(ContactLog.day))
        .where(ContactLog.mode == FACE_TO_FACE, ContactLog.day < before, col(ContactLog.pairing_id).in_(pairing_ids))
        .group_by(ContactLog.pairing_id))
    return dict(rows.all())


def met(contacts: list[Any]) -> bool:
    """周联 is met by a 面谈, whichever mentor took part."""
    return any(c.mode == FACE_TO_FACE for c in contacts)


@dataclass
class WeekMark:
    """One ISO week of a 帮带: its contacts, whether 周联 was met, whether anyone mentored it then."""

    first: dt.date
    contacts: int
    face: bool
    mentored: bool


async def weekly_marks(session: AsyncSession, views: list[PairView], today: dt.date, weeks: int) -> dict[int, list[WeekMark]]:
    """Per 帮带, the last ``weeks`` ISO weeks up to the one containing ``today`` (this week up to
    ``today``), from the first week anyone mentored it: the console's strip of contacts per week."""
    last_first = week_start(today)
    first = last_first - dt.timedelta(days=7 * (weeks - 1))
    contacts = await contacts_between(session, [v.id for v in views], first, today)
    out: dict[int, list[WeekMark]] = {}
    for v in views:
        per_week: dict[dt.date, list[Any]] = defaultdict(list)
        for c in contacts.get(v.id, []):
            per_week[week_start(c.day)].append(c)
        starts = [t.start for t in v.terms if t.overlaps(t.start, today)]
        begin = max(first, week_start(min(starts))) if starts else last_first + dt.timedelta(days=7)
        marks = []
        week = begin
        while week <= last_first:
            end = min(week + dt.timedelta(days=6), today)
            marks.append(WeekMark(week, len(per_week[week]), met(per_week[week]), v.mentored_in(week, end)))
            week += dt.timedelta(days=7)
        out[v.id] = marks
    return out


def lapsed_weeks(view: PairView, as_of: dt.date, last_face: dt.date | None) -> int:
    """Whole ISO weeks before the one containing ``as_of``, counted back from last week, in which the
    帮带 was mentored and had no 面谈; stops at a week with a 面谈 or one in which nobody mentored. A
    面谈 this week (up to ``as_of``) ends the lapse: ``last_face`` is the last one up to ``as_of``."""
    week = week_start(as_of) - dt.timedelta(days=7)
    if last_face is not None and last_face >= week_start(as_of):
        return 0
    n = 0
    while (last_face is None or last_face < week) and view.mentored_in(week, week + dt.timedelta(days=6)):
        n += 1
        week -= dt.timedelta(days=7)
    return n


async def week_status(session: AsyncSession, views: list[PairView], today: dt.date) -> list[dict]:
    """本周 of a mentor or mentee: per 帮带, this week's contacts, whether a 面谈 happened, the quarter's
    count and plan progress — all of the 帮带, whoever mentored it then."""
    ids = [v.id for v in views]
    first = week_start(today)
    last = first + dt.timedelta(days=6)
    q_first, q_last = period_bounds("quarter", today)
    # One read covers the week and the quarter (a week can begin in the previous quarter).
    contacts = await contacts_between(session, ids, min(first, q_first), max(last, q_last))
    # Plan progress and the quarter's 五带 counts from one read of the plan items (本周 stays at three reads).
    plans: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    areas: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(AREAS, 0))
    lo, hi = day_start(q_first), day_start(q_last + ONE_DAY)
    if ids:
        for pid, area, created, done in await _PLAN_ITEMS.rows(session, {"ids": ids}):
            plans[pid][1] += 1
            plans[pid][0] += done is not None
            if area in AREAS and (lo <= created < hi or (done is not None and lo <= done < hi)):
                areas[pid][area] += 1
    people = {t.mentor.id: t.mentor.name for v in views for t in v.terms} | {v.mentee.id: v.mentee.name for v in views}
    statuses = []
    for v in views:
        mine = contacts.get(v.id, [])
        week = [c for c in mine if first <= c.day <= last]
        quarter = [c for c in mine if q_first <= c.day <= q_last]
        counts = dict(areas[v.id])
        for c in quarter:
            if c.area in counts:
                counts[c.area] += 1
        statuses.append({
            "view": v,
            "contacts": [{"log": c, "author": people.get(c.author_id, "")} for c in week],
            "face_done": met(week),
            "quarter_count": len(quarter),
            "plan_done": plans[v.id][0],
            "plan_total": plans[v.id][1],
            "areas": counts,  # 五带: this quarter's tagged contacts and plan items per area
            "missing_areas": [tag for tag, n in counts.items() if n == 0],
        })
    return statuses


@dataclass
class WeekCompliance:
    """周联 of one ISO week over the programme, and the 帮带 lapsed as of ``as_of``."""

    week_first: dt.date
    week_last: dt.date
    total: int
    done: list[PairView]
    missing: list[PairView]
    lapsed: list[tuple[PairView, int]]  # mentored on as_of, no 面谈 in lapsed_min+ whole weeks, most first
    lapsed_min: int = 2

    @property
    def done_count(self) -> int:
        return len(self.done)


async def week_compliance(
    session: AsyncSession, day: dt.date, as_of: dt.date | None = None, lapsed_min: int = 2,
    views: list[PairView] | None = None,
) -> WeekCompliance:
    """Which 帮带 mentored in the ISO week containing ``day`` had a 面谈 in it, and which 帮带
    mentored on ``as_of`` (default ``day``) went ``lapsed_min`` or more whole weeks without one."""
    as_of = as_of or day
    first = week_start(day)
    last = first + dt.timedelta(days=6)
    views = views if views is not None else await load_pairs(session, active_only=False)
    counted = [v.last_mentors_in(first, last) for v in views if v.mentored_in(first, last)]
    faces = await face_pairs_between(session, [v.id for v in counted], first, last)
    current = [v.as_of(as_of) for v in views if any(t.covers(as_of) for t in v.terms)]
    latest = await last_face_before(session, [v.id for v in current], as_of + ONE_DAY)
    weeks = [(v, lapsed_weeks(v, as_of, latest.get(v.id))) for v in current]
    lapsed = sorted(((v, n) for v, n in weeks if n >= lapsed_min), key=lambda x: (-x[1], x[0].id))
    return WeekCompliance(first, last, len(counted), [v for v in counted if v.id in faces],
                          [v for v in counted if v.id not in faces], lapsed, lapsed_min)


async def face_pairs_between(session: AsyncSession, pairing_ids: list[int], first: dt.date, last: dt.date) -> set[int]:
    if not pairing_ids:
        return set()
    rows = await session.exec(
        select(ContactLog.pairing_id)
        .where(col(ContactLog.pairing_id).in_(pairing_ids), ContactLog.mode == FACE_TO_FACE,
               ContactLog.day >= first, ContactLog.day <= last)
        .distinct()
    )
    return set(rows.all())


async def reminder_targets(session: AsyncSession, today: dt.date,
                           views: list[PairView] | None = None) -> list[tuple[PairView, list[Person]]]:
    """周联提醒: 帮带 mentored today with no 面谈 yet this week, each with the people to remind (the
    mentee and today's mentors)."""
    views = [v.as_of(today) for v in (views if views is not None else await load_pairs(session))
             if any(t.covers(today) for t in v.terms)]
    met = await face_pairs_between(session, [v.id for v in views], week_start(today), today)
    return [(v, [v.mentee, *v.mentors]) for v in views if v.id not in met]


def quarter_bounds(label: str) -> tuple[dt.date, dt.date]:
    """``2026-Q3`` → its first and last day."""
    year, q = int(label[:4]), int(label[-1])
    return period_bounds("quarter", dt.date(year, 3 * q - 2, 1))


@dataclass
class ReviewStatus:
    """季评 of one quarter: the 帮带 mentored in it, how many were reviewed, with which ratings."""

    quarter: str
    total: int
    counts: list[tuple[str, int]]
    pending: list[PairView]
    reviews: dict[int, PairReview] = field(default_factory=dict)  # by 帮带 id

    @property
    def reviewed(self) -> int:
        return self.total - len(self.pending)


async def review_status(session: AsyncSession, quarter: str, views: list[PairView] | None = None) -> ReviewStatus:
    first, last = quarter_bounds(quarter)
    every = views if views is not None else await load_pairs(session, active_only=False)
    views = [v.last_mentors_in(first, last) for v in every if v.mentored_in(first, last)]
    ids = {v.id for v in views}
    done = {r.pairing_id: r for r in (await session.exec(select(PairReview).where(PairReview.quarter == quarter))).all()
            if r.pairing_id in ids}
    counts: dict[str, int] = defaultdict(int)
    for r in done.values():
        counts[r.rating] += 1
    return ReviewStatus(quarter, len(views), [(k, counts[k]) for k in REVIEW_RATINGS if counts[k]],
                        [v for v in views if v.id not in done], done)


GOOD = ("优秀", "称职")
TOP = "优秀"


@dataclass
class MentorVerdict:
    """捆绑考核 of one mentor for one year (SPEC §3a)."""

    mentor: Person
    mentees: list[tuple[Person, AnnualGrade | None]] = field(default_factory=list)  # mentored long enough
    short: list[Person] = field(default_factory=list)  # mentored in the year, but not long enough
    dismissed: bool = False  # 清退 in the year
    contacts: int = 0  # 辅导次数: contacts in the year this mentor took part in, plus 开放课堂 check-ins
    classes: int = 0  # of which: mentees checked in at this mentor's 开放课堂 in the year
    plan_done: int = 0  # 计划完成 of the counted mentees' 帮带 at the end of the year
    plan_total: int = 0

    @property
    def missing(self) -> list[Person]:
        return [p for p, g in self.mentees if g is None]

    @property
    def status(self) -> str:
        """dismissed | none | ineligible | pending | preferred | eligible."""
        if self.dismissed:
            return "dismissed"
        if not self.mentees:
            return "none"
        grades = [g for _, g in self.mentees if g is not None]
        if any(g.grade not in GOOD for g in grades):
            return "ineligible"
        if self.missing:
            return "pending"
        if all(g.grade == TOP or g.commended for g in grades):
            return "preferred"
        return "eligible"

    @property
    def eligible(self) -> bool:
        return self.status in ("eligible", "preferred")

    @property
    def preferred(self) -> bool:
        return self.status == "preferred"


_ORDER = {"preferred": 0, "eligible": 1, "pending": 2, "ineligible": 3, "none": 4, "dismissed": 5}


async def bundled_assessment(session: AsyncSession, year: int, min_months: int = 3,
                             views: list[PairView] | None = None) -> list[MentorVerdict]:
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    every = views if views is not None else await load_pairs(session, active_only=False)
    views = [v for v in every if v.mentored_in(first, last)]
    grades = {g.person_id: g for g in (await session.exec(select(AnnualGrade).where(AnnualGrade.year == year))).all()}
    plans = await plan_progress(session, [v.id for v in views], until=last)
    contacts = dict((await session.exec(
        select(ContactMentor.person_id, func.count())
        .join(ContactLog, col(ContactLog.id) == ContactMentor.contact_id)
        .where(ContactLog.day >= first, ContactLog.day <= last)
        .group_by(ContactMentor.person_id))).all())
    verdicts: dict[int, MentorVerdict] = {}
    for v in views:
        days: dict[int, int] = defaultdict(int)
        for t in v.terms:
            if t.overlaps(first, last):
                verdicts.setdefault(t.mentor.id, MentorVerdict(t.mentor))  # type: ignore[arg-type]
                days[t.mentor.id] += t.days_in(first, last)
        for mentor_id, n in days.items():
            verdict = verdicts[mentor_id]
            if n >= 30 * min_months:
                verdict.mentees.append((v.mentee, grades.get(v.mentee.id)))  # type: ignore[arg-type]
                done, total = plans.get(v.id, (0, 0))
                verdict.plan_done += done
                verdict.plan_total += total
            else:
                verdict.short.append(v.mentee)
    for v in every:  # 清退 in the year, even of a term that never covered a day
        for t in v.terms:
            if t.row.dismissed and t.end is not None and first <= t.end <= last:
                verdicts.setdefault(t.mentor.id, MentorVerdict(t.mentor)).dismissed = True  # type: ignore[arg-type]
    classes = await check_ins_by_host(session, first, last)
    for verdict in verdicts.values():
        verdict.classes = classes.get(verdict.mentor.id, 0)  # type: ignore[arg-type]
        verdict.contacts = contacts.get(verdict.mentor.id, 0) + verdict.classes
    return sorted(verdicts.values(), key=lambda x: (_ORDER[x.status], x.mentor.id))


async def has_bangdai_in(session: AsyncSession, mentee_id: int, year: int) -> bool:
    """Whether anyone mentored this person in ``year`` (a 考核 grade needs it)."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    view = await bangdai_of(session, mentee_id)
    return view is not None and view.mentored_in(first, last)
