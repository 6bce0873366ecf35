"""走访 (一月一走访): a 三联 liaison logs a visit to a linked unit, or sees this month's visited / not yet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock, period_bounds
from bot.config import Config
from bot.dates import DateError, check_recent
from bot.identity import Sender
from bot.render import Renderer
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from storage.models import Role, Unit, Visit

from handlers.args import day as read_day
from handlers.sanling.liaisons import LinkedUnit, linked_units, unit_status, visits_between

router = Router()
EXAMPLE = "走访 华埠镇 昨天 了解年轻干部思想动态"
_SEPARATORS = " \t\n:,;：，；、\u3000"


async def _match_unit(session: AsyncSession, units: list[LinkedUnit], raw: str) -> tuple[LinkedUnit, str]:
    """The linked unit ``raw`` starts with (full name, or a part of one name), and the rest of the text."""
    for unit in sorted(units, key=lambda u: -len(u.name)):
        if raw.startswith(unit.name):
            return unit, raw[len(unit.name):].lstrip(_SEPARATORS).strip()
    words = Args(raw)
    token = words.take() or ""
    partial = [u for u in units if token in u.name]
    if len(partial) == 1:
        return partial[0], words.rest()
    if len(partial) > 1:
        raise Refusal("sanling/visit_ambiguous", token=token, units=partial)
    known = (await session.exec(select(Unit.id).where(Unit.name == token))).first() is not None
    raise Refusal("sanling/visit_not_linked", token=token[:20], known=known, units=units)


@router.command(
    "走访", "visit", roles={Role.LIAISON}, order=25,
    summary="三联走访：记录走访联系单位；只发“走访”查看本月已走访、未走访",
    usage="走访 [单位 [日期] 内容]",
    examples=("走访 华埠镇 了解年轻干部思想动态", "走访", "走访 华埠镇 昨天 座谈年轻干部"),
)
async def visit(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config) -> Answer:
    today = clock.today()
    units = (await linked_units(session, sender.id)).get(sender.id, [])
    if not units:
        raise Refusal("sanling/visit_no_units")
    if not args:
        first, last = period_bounds("month", today)
        visits = (await visits_between(session, first, last, [sender.id])).get(sender.id, [])
        return Answer.of("sanling/visit_month", today=today, status=unit_status(units, visits))
    day = read_day(args, today, EXAMPLE)
    if not args:
        raise UsageError("sanling/usage/visit", EXAMPLE)
    unit, rest = await _match_unit(session, units, args.rest())
    words = Args(rest)
    if (later := read_day(words, today, EXAMPLE)) is not None:
        if day is not None:
            raise UsageError("sanling/usage/visit_two_days", EXAMPLE)
        day = later
    note = words.rest()
    if not note:
        raise UsageError("sanling/usage/visit_note", f"走访 {unit.name} 了解年轻干部思想动态")
    day = day or today
    try:
        check_recent(day, today, config.programme.log_max_days_back)
    except DateError as exc:
        raise UsageError.because(exc, f"走访 {unit.name} 了解年轻干部思想动态") from None
    session.add(Visit(liaison_id=sender.id, unit_id=unit.id, day=day, note=note, created_at=clock.now()))
    await session.flush()
    first, last = period_bounds("month", day)
    visits = (await visits_between(session, first, last, [sender.id])).get(sender.id, [])
    return Answer.of("sanling/visit_logged", day=day, unit=unit, status=unit_status(units, visits))


@dataclass
class VisitFigures:
    """三联走访 in one month: the figures 统计 reports and the console shows."""

    month_first: dt.date
    liaisons: int
    links: int
    done_links: int
    visits: int
    idle: int


async def visit_figures(session: AsyncSession, today: dt.date) -> VisitFigures:
    first, last = period_bounds("month", today)
    links = await linked_units(session)
    visits = await visits_between(session, first, last, list(links))
    done_links = sum(1 for pid, units in links.items() for s in unit_status(units, visits.get(pid, [])) if s["visits"])
    idle = sum(1 for pid in links if not visits.get(pid))
    return VisitFigures(first, len(links), sum(len(u) for u in links.values()), done_links,
                        sum(len(v) for v in visits.values()), idle)


async def visit_stats(session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                      calendar: WorkCalendar) -> str:
    today = clock.today()
    f = await visit_figures(session, today)
    return renderer.text(
        "sanling/stats_visits", today=today, liaisons=f.liaisons, links=f.links,
        done_links=f.done_links, visits=f.visits, idle=f.idle,
    )
