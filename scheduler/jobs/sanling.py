"""三零 jobs: the daily mailbox-overdue reminder, the monthly visit prompt (一月一走访、一月一汇报) and the
quarterly summary (一季一汇总) for staff."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlmodel import col, select

from handlers.sanling.liaisons import linked_units, unit_status, visits_between
from handlers.mentoring.staff import review_status
from handlers.mentoring.areas import area_coverage
from handlers.mentoring.pairs import load_pairs
from handlers.mentoring.reviews import POOR, reports_of
from bot.clock import day_start, period_bounds, period_name
from bot.identity import staff_ids
from handlers.sanling.reports import open_requests, report_status, reports_for
from handlers.sanling.mailbox import CATEGORIES, OVERDUE_WORKDAYS, is_overdue, mailbox_figures, staff_view
from storage.models import Inquiry, InquiryStatus, Person, Unit

from bot.notify import Notice
from bot.router import Answer

from ..registry import JobContext, job


@job("mailbox_overdue", period="day",
     description="三联信箱超期提醒：超过 3 个工作日未答复的来信，每个工作日提醒组工干部")
async def mailbox_overdue(ctx: JobContext) -> int:
    session = ctx.session
    if not ctx.calendar.is_workday(ctx.today):  # a reminder on a rest day waits for the next working day
        return 0
    inquiries = [
        i for i in (await session.exec(
            select(Inquiry).where(Inquiry.status == InquiryStatus.OPEN).order_by(Inquiry.id)
        )).all()
        if is_overdue(i, ctx.at, ctx.calendar)
    ]
    staff = await staff_ids(session)
    if not inquiries or not staff:
        return 0
    day = ctx.today.isoformat()
    notices = []
    for view in await staff_view(session, inquiries, ctx.at, ctx.calendar):
        overdue = Answer.of("sanling/job_mailbox_overdue", v=view, days=OVERDUE_WORKDAYS)
        notices += [Notice(f"mailbox-overdue:{view['q'].id}:{day}:{pid}", overdue, person_id=pid, source="mailbox_overdue")
                    for pid in staff]
    return await ctx.notify.many(session, notices)


@job("monthly_visit_prompt", period="month",
     description="一月一走访：提醒三联联系人本月走访的单位、上月走访情况和一月一汇报")
async def monthly_visit_prompt(ctx: JobContext) -> int:
    session = ctx.session
    links = await linked_units(session)
    if not links:
        return 0
    first, last = period_bounds("month", ctx.today)
    prev_first, prev_last = period_bounds("month", first - dt.timedelta(days=1))
    ids = list(links)
    this_month = await visits_between(session, first, last, ids)
    last_month = await visits_between(session, prev_first, prev_last, ids)
    names = dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids)))).all())
    month = period_name("month", ctx.today)
    return await ctx.notify.many(session, [
        Notice(f"visit-prompt:{pid}:{month}", Answer.of(
            "sanling/job_visit_prompt", name=names.get(pid, ""), month=first, prev=prev_first,
            now=unit_status(units, this_month.get(pid, [])), before=unit_status(units, last_month.get(pid, [])),
        ), person_id=pid, source="monthly_visit_prompt")
        for pid, units in links.items()
    ])


@job("quarterly_summary", period="quarter", reports="previous",
     description="一季一汇总：上一季度三联走访（按联系人、单位）和三联信箱情况，发组工干部")
async def quarterly_summary(ctx: JobContext) -> int:
    session = ctx.session
    staff = await staff_ids(session)
    if not staff:
        return 0
    this_first, _ = period_bounds("quarter", ctx.today)
    first, last = period_bounds("quarter", this_first - dt.timedelta(days=1))
    quarter = period_name("quarter", first)
    links = await linked_units(session)
    visits = await visits_between(session, first, last, list(links))
    names = dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(list(links) or [0])))).all())
    months = [first, period_bounds("month", first)[1] + dt.timedelta(days=1)]
    months.append(period_bounds("month", months[1])[1] + dt.timedelta(days=1))
    liaisons = []
    for pid, units in sorted(links.items(), key=lambda kv: names.get(kv[0], "")):
        mine = visits.get(pid, [])
        visited_months = {(v.day.year, v.day.month) for v in mine}
        liaisons.append({
            "name": names.get(pid, ""),
            "units": [dict(s, months=sorted({v.day.month for v in s["visits"]})) for s in unit_status(units, mine)],
            "months_visited": sum((m.year, m.month) in visited_months for m in months),
            "visits": len(mine),
        })
    figures = await mailbox_figures(session, first, last, ctx.at, ctx.calendar)
    categories: dict[str, int] = defaultdict(int)
    for category in (await session.exec(
        select(Inquiry.category).where(Inquiry.created_at >= day_start(first),
                                       Inquiry.created_at < day_start(last + dt.timedelta(days=1)))
    )).all():
        categories[category] += 1
    views = [v.last_mentors_in(first, last) for v in await load_pairs(session, active_only=False)
             if v.mentored_in(first, last)]
    reviews = await review_status(session, quarter, views=views)
    summary = Answer.of(
        "sanling/job_quarterly_summary", quarter=quarter, first=first, last=last, liaisons=liaisons[:30],
        more=max(0, len(liaisons) - 30), mailbox=figures, categories=[(c, categories[c]) for c in CATEGORIES if categories.get(c)],
        total_visits=sum(len(v) for v in visits.values()), reviews=reviews,
        reports=await _report_facts(session, months, first, last, names),
        reported=len(await reports_of(session, quarter, [v.id for v in views])),
        areas=await area_coverage(session, views, first, last),
        poor=[(v, reviews.reviews[v.id]) for v in views if v.id in reviews.reviews and reviews.reviews[v.id].rating == POOR],
    )
    return await ctx.notify.everyone(session, summary, {pid: f"sanling-quarterly:{pid}:{quarter}" for pid in staff},
                                     source="quarterly_summary")


async def _report_facts(session, months: list[dt.date], first: dt.date, last: dt.date, names: dict) -> dict:
    """一月一汇报 for the quarterly summary: per month who reported, the reports, and every 诉求 still open."""
    rows = await reports_for(session, first, last)
    units = dict((await session.exec(select(Unit.id, Unit.name).where(
        col(Unit.id).in_({r.unit_id for r in rows if r.unit_id} or {0})))).all())
    more_names = {r.liaison_id for r in rows} - set(names)
    if more_names:
        names = {**names, **dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(more_names)))).all())}
    listed = [{"month": r.month, "name": names.get(r.liaison_id, ""), "unit": units.get(r.unit_id, ""), "text": r.text,
               "thoughts": r.thoughts} for r in rows]
    return {"months": [await report_status(session, m) for m in months], "rows": listed[:30],
            "more": max(0, len(listed) - 30), "open": await open_requests(session)}
