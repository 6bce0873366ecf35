"""一月一汇报: each 三联 liaison reports monthly on their linked units (思想动态 and 诉求 kept apart), staff
see who has and hasn't reported and close 诉求 once they are handled.

``汇报 11月 …`` stores one report per liaison, month and (optionally) unit; sending again replaces it,
so a correction is simply a new message. The monthly visit prompt points here, and the quarterly
summary lists the reports and the 诉求 still open (``report_facts``).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.clock import Clock, period_bounds
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, fold
from storage.models import MonthlyReport, Person, Role

from handlers.args import nothing_more
from handlers.sanling.liaisons import LinkedUnit, linked_units
from handlers.sanling.case_ops import local, take_ticket

router = Router()

MAX_TEXT = 2000
_MONTH = re.compile(r"^(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*月?份?$")
_CN_MONTHS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
              "十一": 11, "十二": 12}
_PARTS = re.compile(r"(思想动态|诉求)\s*[:：]?")
_SEP = " \t\n:,;：，；、\u3000"
EXAMPLE = "汇报 11月 华埠镇 思想动态：年轻干部干事热情高 诉求：希望多组织业务培训"


def parse_month(token: str, today: dt.date) -> dt.date | None:
    """``11月``, ``十一月``, ``2026-11``, ``2026年11月`` → the month's first day; None if not a month.
    A month with no year is the latest one not after ``today``'s."""
    token = fold(token).strip()
    if token.endswith("月") and token[:-1] in _CN_MONTHS:
        year, month = None, _CN_MONTHS[token[:-1]]
    elif (m := _MONTH.match(token)) and ("月" in token or m.group(1)):
        year, month = (int(m.group(1)) if m.group(1) else None), int(m.group(2))
    else:
        return None
    if not 1 <= month <= 12:
        raise UsageError("sanling/usage/no_such_month", EXAMPLE, month=month)
    if year is None:
        year = today.year if month <= today.month else today.year - 1
    return dt.date(year, month, 1)


def split_parts(text: str) -> tuple[str, str, str]:
    """(general text, 思想动态, 诉求) of a report; the markers may come in any order, or not at all."""
    pieces = _PARTS.split(text)
    general, found = pieces[0].strip(_SEP), {"思想动态": "", "诉求": ""}
    for label, body in zip(pieces[1::2], pieces[2::2]):
        found[label] = (found[label] + " " + body.strip(_SEP)).strip()
    return general, found["思想动态"], found["诉求"]


def default_month(today: dt.date) -> dt.date:
    """The month reports are due for now: the one before this (the prompt goes out on its first working day)."""
    return period_bounds("month", today.replace(day=1) - dt.timedelta(days=1))[0]


report_command = router.command(
    "汇报", "report", roles={Role.LIAISON, *STAFF_ROLES}, private_only=True, order=26,
    summary="一月一汇报：三联联系人报送联系单位的情况、思想动态和诉求；组工干部查看报送情况",
    usage="汇报 月份 [单位] 内容 [思想动态：…] [诉求：…]",
    examples=(EXAMPLE, "汇报 11月 走访 2 个单位，干部队伍稳定", "汇报"),
)


@report_command.sub("情况", "status", roles=STAFF_ROLES, usage="汇报 情况 [月份]", examples=("汇报 情况", "汇报 情况 11月"))
async def report_status_command(args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _status(session, args.rest(), clock.today())


@report_command.sub("诉求", "requests", roles=STAFF_ROLES, usage="汇报 诉求", examples=("汇报 诉求",))
async def report_requests(args: Args, session: AsyncSession) -> Answer:
    nothing_more(args)
    return Answer.of("sanling/report_requests", items=await open_requests(session))


@report_command.sub("办结", "close", roles=STAFF_ROLES, usage="汇报 办结 #编号 答复",
                    examples=("汇报 办结 #3 已协调人社局安排培训",))
async def report_close(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _close(sender, session, clock, args.rest())


@report_command
async def report(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """汇报 月份 … saves a liaison's report of the month; 汇报 alone lists their last ones."""
    today = clock.today()
    if not sender.has(Role.LIAISON):
        raise Refusal("sanling/report_not_liaison")
    if not args:
        return await _mine(sender, session, today)
    month = parse_month(args.take() or "", today)
    if month is None:
        raise UsageError("sanling/usage/report_month", EXAMPLE)
    if month > today:
        raise UsageError("sanling/usage/report_future", EXAMPLE)
    if (today.year - month.year) * 12 + today.month - month.month > 12:
        raise UsageError("sanling/usage/report_too_old", EXAMPLE)
    units = (await linked_units(session, sender.id)).get(sender.id, [])
    unit, text = _unit_prefix(units, args.rest())
    general, thoughts, requests = split_parts(text)
    if not (general or thoughts or requests):
        raise UsageError("sanling/usage/report_text", EXAMPLE)
    if max(len(general), len(thoughts), len(requests)) > MAX_TEXT:
        raise Refusal("sanling/case_too_long", length=len(text), limit=MAX_TEXT)
    now = clock.now()
    key = unit.id if unit else 0
    row = (await session.exec(select(MonthlyReport).where(
        MonthlyReport.liaison_id == sender.id, MonthlyReport.month == month, MonthlyReport.unit_key == key))).first()
    replaced = row is not None
    if row is None:
        row = MonthlyReport(liaison_id=sender.id, month=month, unit_id=unit.id if unit else None, unit_key=key,
                            created_at=now, updated_at=now)
    row.text, row.thoughts, row.requests, row.updated_at = general, thoughts, requests, now
    row.requests_closed_at, row.requests_answer = None, ""
    session.add(row)
    await session.flush()
    audit(session, now, sender, "report.save", f"report:{row.id}", month=month.isoformat(), replaced=replaced)
    return Answer.of("sanling/report_saved", r=row, unit=unit, month=month, replaced=replaced)


def _unit_prefix(units: list[LinkedUnit], raw: str) -> tuple[LinkedUnit | None, str]:
    """The linked unit the text starts with (its full name), and the rest; else no unit."""
    for unit in sorted(units, key=lambda u: -len(u.name)):
        if raw.startswith(unit.name):
            return unit, raw[len(unit.name):].lstrip(_SEP).strip()
    return None, raw


async def _mine(sender: Sender, session: AsyncSession, today: dt.date) -> Answer:
    rows = list((await session.exec(select(MonthlyReport).where(MonthlyReport.liaison_id == sender.id)
                                    .order_by(col(MonthlyReport.month).desc(), MonthlyReport.id).limit(12))).all())
    units = (await linked_units(session, sender.id)).get(sender.id, [])
    names = {u.id: u.name for u in units}
    return Answer.of("sanling/report_mine", rows=rows, names=names, due=default_month(today), units=units)


async def reports_for(session: AsyncSession, first: dt.date, last: dt.date) -> list[MonthlyReport]:
    return list((await session.exec(select(MonthlyReport).where(MonthlyReport.month >= first, MonthlyReport.month <= last)
                                    .order_by(MonthlyReport.month, MonthlyReport.id))).all())


async def open_requests(session: AsyncSession) -> list[dict]:
    """诉求 not yet closed by staff, oldest first, with who raised them."""
    rows = list((await session.exec(select(MonthlyReport).where(MonthlyReport.requests != "",
                                                                col(MonthlyReport.requests_closed_at).is_(None))
                                    .order_by(MonthlyReport.month, MonthlyReport.id))).all())
    names = dict((await session.exec(select(Person.id, Person.name).where(
        col(Person.id).in_({r.liaison_id for r in rows} or {0})))).all())
    return [{"r": r, "name": names.get(r.liaison_id, "")} for r in rows]


async def report_status(session: AsyncSession, month: dt.date) -> dict:
    """Which liaisons have reported for ``month`` and which not."""
    links = await linked_units(session)
    reported = set((await session.exec(select(MonthlyReport.liaison_id).where(MonthlyReport.month == month))).all())
    names = dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(list(links) or [0])))).all())
    done = sorted(names.get(p, "") for p in links if p in reported)
    missing = sorted(names.get(p, "") for p in links if p not in reported)
    return {"month": month, "done": done, "missing": missing}


async def _status(session: AsyncSession, tail: str, today: dt.date) -> Answer:
    month = default_month(today)
    if tail:
        month = parse_month(tail, today)  # type: ignore[assignment]
        if month is None:
            raise UsageError("sanling/usage/not_a_month", "汇报 情况 11月", text=tail[:10])
    status = await report_status(session, month)
    return Answer.of("sanling/report_status", **status, requests=len(await open_requests(session)))


async def _close(sender: Sender, session: AsyncSession, clock: Clock, tail: str) -> Answer:
    ticket = take_ticket(tail)
    if ticket is None or not ticket[1]:
        raise UsageError("sanling/usage/report_close")
    number, answer = ticket
    if len(answer) > 500:
        raise UsageError("sanling/usage/report_close_long", f"汇报 办结 #{number} 已协调人社局安排培训", limit=500,
                         length=len(answer))
    row = await session.get(MonthlyReport, number)
    if row is None or not row.requests:
        raise Refusal("sanling/report_unknown", number=number)
    if row.requests_closed_at is not None:
        raise Refusal("sanling/report_closed_already", r=row, at=local(row.requests_closed_at))
    now = clock.now()
    row.requests_closed_at, row.requests_answer = now, answer
    session.add(row)
    audit(session, now, sender, "report.request_close", f"report:{row.id}")
    return Answer.of("sanling/report_request_closed", r=row)
