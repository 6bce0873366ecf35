"""周联 jobs: the Thursday reminder to pairs without a 面谈 this week, the Monday digest for staff."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlmodel import col, select

from typing import Any

from bot.charts import words
from bot.clock import iso_week, week_start
from bot.render import picture_body
from bot.identity import staff_ids
from handlers.mentoring.queries import reminder_targets, week_compliance
from handlers.mentoring.class_queries import classes_on, signups_of
from handlers.mentoring.reviews import mentors_to_ask, rematch_candidates
from handlers.mentoring.pairs import load_pairs
from storage.models import OutboxMessage, OutboxStatus, Person

from bot.inbound import Outgoing
from ..registry import JOBS, JobContext, job


@job("weekly_reminder", period="week", description="周联提醒：本周还没有面谈的结对，提醒导师和徒弟")
async def weekly_reminder(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    first = week_start(ctx.today)
    # person -> the counterparts of each 帮带 they are in with no 面谈 yet ("导师 张伟、王芳" / "徒弟 李娜")
    todo: dict[int, list[str]] = defaultdict(list)
    names: dict[int, str] = {}
    for view, people in await reminder_targets(session, ctx.today):
        for person in people:
            if person.active:
                names[person.id] = person.name  # type: ignore[index]
                todo[person.id].append(view.counterpart_label(person.id))  # type: ignore[index, arg-type]
    render = services.renderer.renderer_for("jobs/weekly_reminder")
    week = iso_week(ctx.today)
    deadline = first + dt.timedelta(days=6)
    queued = 0
    people = list(todo.items())
    for start in range(0, len(people), 5000):  # bounded memory however many people are lapsed
        messages = [
            Outgoing(
                key=f"weekly-reminder:{person}:{week}",
                person_id=person,
                body=render(name=names[person], counterparts=sorted(items), deadline=deadline),
                source="weekly_reminder",
            )
            for person, items in people[start:start + 5000]
        ]
        queued += await services.outbox.enqueue_many(session, messages)
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
    body = services.renderer.text("jobs/weekly_digest", c=compliance, week=last_week,
                                  undeliverable=list(undeliverable), warnings=extra,
                                  rematch=await rematch_candidates(session, ctx.today))
    staff = await staff_ids(session)
    chart = await compliance_chart(ctx, last_week_day, compliance) if compliance.total else None
    messages = [
        Outgoing(key=f"weekly-digest:{pid}:{last_week}", person_id=pid, body=body, source="weekly_digest")
        for pid in staff
    ]
    # The same figures as a small chart (the last four weeks), where the staff member's chat shows pictures.
    messages += [
        Outgoing(key=f"weekly-digest-chart:{pid}:{last_week}", person_id=pid, body=chart, format="image",
                 source="weekly_digest")
        for pid in staff if chart
    ]
    return await services.outbox.enqueue_many(session, messages)


CHART_WEEKS = 4


async def compliance_chart(ctx: JobContext, last_week_day: dt.date, last: Any) -> str:
    """The picture body of 周联 compliance over the last CHART_WEEKS weeks, ending with ``last``."""
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
    return picture_body({"kind": "compliance", "title": title, "subtitle": subtitle, "unit": unit,
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
    render = services.renderer.renderer_for("jobs/review_report_request")
    grace = services.config.programme.review_grace_working_days
    messages = [
        Outgoing(key=f"review-report:{pid}:{quarter}", person_id=pid, source="review_report_request",
                 body=render(name=mentor.name, quarter=quarter, views=views, grace=grace))
        for pid, (mentor, views) in sorted((await mentors_to_ask(session, quarter)).items())
    ]
    return await services.outbox.enqueue_many(session, messages)


@job("class_reminder", period="day", description="开放型课堂：上课前一天提醒已报名的徒弟和授课人")
async def class_reminder(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    tomorrow = ctx.today + dt.timedelta(days=1)
    todo = await classes_on(session, tomorrow)
    signups = await signups_of(session, [c.id for c in todo])  # type: ignore[misc]
    render = services.renderer.renderer_for("jobs/class_reminder")
    messages = []
    for c in todo:
        people = [(c.host_id, True)] + [(s.person_id, False) for s in signups.get(c.id, [])]  # type: ignore[arg-type]
        for pid, host in people:
            messages.append(Outgoing(key=f"class-reminder:{c.id}:{pid}", person_id=pid, source="class_reminder",
                                     body=render(c=c, host=host, count=len(signups.get(c.id, [])))))  # type: ignore[arg-type]
    return await services.outbox.enqueue_many(session, messages)
