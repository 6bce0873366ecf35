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
from handlers.pairs import week_compliance
from storage.models import ContactLog, OutboxMessage, OutboxStatus, Pairing, PairingMentor, Person
from storage.models.mentoring import FACE_TO_FACE

from ..outbox import Outgoing
from ..registry import JobContext, job


@job("weekly_reminder", period="week", description="周联提醒：本周还没有面谈的结对，提醒导师和徒弟")
async def weekly_reminder(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    first = week_start(ctx.today)
    pairs = dict(
        (await session.exec(
            select(Pairing.id, Pairing.mentee_id).where(Pairing.active == True, Pairing.start_date <= ctx.today)  # noqa: E712
        )).all()
    )
    met = set(
        (await session.exec(
            select(ContactLog.pairing_id).where(
                ContactLog.mode == FACE_TO_FACE, ContactLog.day >= first, ContactLog.day <= ctx.today
            ).distinct()
        )).all()
    )
    lapsed = {pid: mentee for pid, mentee in pairs.items() if pid not in met}
    if not lapsed:
        return 0
    mentors: dict[int, list[int]] = defaultdict(list)
    for pid, person in (await session.exec(select(PairingMentor.pairing_id, PairingMentor.person_id))).all():
        if pid in lapsed:
            mentors[pid].append(person)
    names = dict((await session.exec(select(Person.id, Person.name).where(Person.active == True))).all())  # noqa: E712
    # person -> the counterparts of each lapsed pair they are in ("导师 张伟、王芳" / "徒弟 李娜")
    todo: dict[int, list[str]] = defaultdict(list)
    for pid, mentee in lapsed.items():
        mentor_names = "、".join(names.get(m, "") for m in sorted(mentors[pid]))
        if mentee in names:
            todo[mentee].append(f"导师 {mentor_names}")
        for m in mentors[pid]:
            if m in names:
                todo[m].append(f"徒弟 {names[mentee]}")
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


@job("weekly_digest", period="week", description="周报：上周周联合规情况、连续未面谈结对、无法送达的提醒")
async def weekly_digest(ctx: JobContext) -> int:
    session, services = ctx.session, ctx.services
    last_week_day = week_start(ctx.today) - dt.timedelta(days=7)
    last_week = iso_week(last_week_day)
    compliance = await week_compliance(session, last_week_day, as_of=ctx.today)
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
                                  undeliverable=list(undeliverable), warnings=extra)
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
    for back in range(CHART_WEEKS - 1, 0, -1):
        c = await week_compliance(ctx.session, last_week_day - dt.timedelta(days=7 * back), as_of=ctx.today)
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
