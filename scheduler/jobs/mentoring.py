"""周联 jobs: the Thursday reminder to pairs without a 面谈 this week, the Monday digest for staff."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlmodel import col, select

from typing import Any

from bot.charts import words
from bot.clock import iso_week, week_start
from bot.notify import Notice
from bot.router import Answer, Picture
from bot.identity import staff_ids
from handlers.mentoring.queries import reminder_targets, week_compliance
from handlers.mentoring.class_queries import classes_on, signups_of
from handlers.mentoring.reviews import mentors_to_ask, rematch_candidates
from handlers.mentoring.pairs import load_pairs
from storage.models import OutboxMessage, OutboxStatus, Person

from ..registry import JOBS, JobContext, job


@job("weekly_reminder", period="week", description="周联提醒：本周还没有面谈的结对，提醒导师和徒弟")
async def weekly_reminder(ctx: JobContext) -> int:
    session = ctx.session
    first = week_start(ctx.today)
    # person -> the counterparts of each 帮带 they are in with no 面谈 yet ("导师 张伟、王芳" / "徒弟 李娜")
    todo: dict[int, list[str]] = defaultdict(list)
    names: dict[int, str] = {}
    for view, people in await reminder_targets(session, ctx.today):
        for person in people:
            if person.active:
                names[person.id] = person.name  # type: ignore[index]
                todo[person.id].append(view.counterpart_label(person.id))  # type: ignore[index, arg-type]
    week = iso_week(ctx.today)
    deadline = first + dt.timedelta(days=6)
    queued = 0
    people = list(todo.items())
    for start in range(0, len(people), 5000):  # bounded memory however many people are lapsed
        queued += await ctx.notify.many(session, [
            Notice(f"weekly-reminder:{person}:{week}",
                   Answer.of("jobs/weekly_reminder", name=names[person], counterparts=sorted(items), deadline=deadline),
                   person_id=person, source="weekly_reminder")
            for person, items in people[start:start + 5000]
        ])
    return queued


@job("weekly_digest", period="week", reports="previous", description="周报：上周周联合规情况、连续未面谈结对、无法送达的提醒")
async def weekly_digest(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    last_week_day = week_start(ctx.today) - dt.timedelta(days=7)
    last_week = iso_week(last_week_day)
    compliance = await week_compliance(session, last_week_day, as_of=ctx.today,
                                      lapsed_min=services.config.programme.lapsed_weeks)
    undeliverable = (
        await session.exec(
            select(Person.name)
            .join(OutboxMessage, OutboxMessage.person_id == Person.id)
            .where(
                OutboxMessage.status.in_([OutboxStatus.UNDELIVERABLE, OutboxStatus.FAILED]),  # type: ignore[attr-defined]
                col(OutboxMessage.key).like(f"weekly-reminder:%:{last_week}"),
            )
            .order_by(Person.name)
        )
    ).all()
    extra = ctx.calendar.warnings() + services.warnings()
    digest = Answer.of("jobs/weekly_digest", c=compliance, week=last_week, undeliverable=list(undeliverable),
                       warnings=extra, rematch=await rematch_candidates(session, ctx.today))
    staff = await staff_ids(session)
    chart = await compliance_chart(ctx, last_week_day, compliance) if compliance.total else None
    notices = [Notice(f"weekly-digest:{pid}:{last_week}", digest, person_id=pid, source="weekly_digest")
               for pid in staff]
    # The same figures as a small chart (the last four weeks), where the staff member's chat shows pictures.
    notices += [Notice(f"weekly-digest-chart:{pid}:{last_week}", chart, person_id=pid, source="weekly_digest")
                for pid in staff if chart]
    return await ctx.notify.many(session, notices)


CHART_WEEKS = 4


async def compliance_chart(ctx: JobContext, last_week_day: dt.date, last: Any) -> Picture:
    """The picture of 周联 compliance over the last CHART_WEEKS weeks, ending with ``last``."""
    weeks = []
    views = await load_pairs(ctx.session, active_only=False)  # once for the four weeks
    for back in range(CHART_WEEKS - 1, 0, -1):
        c = await week_compliance(ctx.session, last_week_day - dt.timedelta(days=7 * back), as_of=ctx.today,
                                  views=views)
        if c.total:
            weeks.append(c)
    weeks.append(last)
    services = ctx.services
    rows = [{"first": c.week_first, "done": c.done_count, "total": c.total} for c in weeks]
    (title, subtitle, unit, *_), bars = words(services.renderer, "charts/compliance", weeks=rows, total=last.total,
                                              county=services.config.programme.county)
    return Picture({"kind": "compliance", "title": title, "subtitle": subtitle, "unit": unit,
                    "weeks": [{"label": label, "value": value,
                               "share": round(100 * r["done"] / r["total"], 1) if r["total"] else 0}
                              for (label, value), r in zip(bars, rows)]})


@job("review_report_request", period="quarter", reports="previous",
     description="季评汇报：季度结束时私信请导师汇报所带徒弟的帮带情况、问题、整改方向和下步重点")
async def review_report_request(ctx: JobContext) -> int:
    """Asks each mentor of the quarter just ended, privately, for the report staff rate the 季评 with;
    a mentor who already reported on every 帮带 is not asked (one message per mentor and quarter)."""
    session, services = ctx.session, ctx.services
    quarter = JOBS["review_report_request"].label(ctx.today)
    grace = services.config.programme.review_grace_working_days
    return await ctx.notify.many(session, [
        Notice(f"review-report:{pid}:{quarter}",
               Answer.of("jobs/review_report_request", name=mentor.name, quarter=quarter, views=views, grace=grace),
               person_id=pid, source="review_report_request")
        for pid, (mentor, views) in sorted((await mentors_to_ask(session, quarter)).items())
    ])


@job("class_reminder", period="day", description="开放型课堂：上课前一天提醒已报名的徒弟和授课人")
async def class_reminder(ctx: JobContext) -> int:
    session = ctx.session
    tomorrow = ctx.today + dt.timedelta(days=1)
    todo = await classes_on(session, tomorrow)
    signups = await signups_of(session, [c.id for c in todo])  # type: ignore[misc]
    notices = []
    for c in todo:
        people = [(c.host_id, True)] + [(s.person_id, False) for s in signups.get(c.id, [])]  # type: ignore[arg-type]
        for pid, host in people:
            notices.append(Notice(f"class-reminder:{c.id}:{pid}",
                                  Answer.of("jobs/class_reminder", c=c, host=host, count=len(signups.get(c.id, []))),  # type: ignore[arg-type]
                                  person_id=pid, source="class_reminder"))
    return await ctx.notify.many(session, notices)
