"""统计: the figures staff report upward, one section per programme.

Each programme writes its section (``async def …(session, clock, config, renderer, calendar) -> str``);
:func:`sections` lists them in the order staff read them. Nothing registers itself by being imported.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.config import Config
from bot.identity import STAFF_ROLES
from bot.render import Renderer
from bot.router import Answer, Router

from handlers.mentoring.queries import week_compliance

router = Router()
Section = Callable[[AsyncSession, Clock, Config, Renderer, WorkCalendar], Awaitable[str]]


def sections() -> list[Section]:
    """统计's sections in reading order: 帮带, 信箱, 预审, 常青藤, 走访."""
    from handlers.changqing.signup import signup_figures
    from handlers.sanling.case_figures import case_stats
    from handlers.sanling.mailbox import mailbox_stats
    from handlers.sanling.visits import visit_stats

    return [mentoring_figures, mailbox_stats, case_stats, signup_figures, visit_stats]


async def mentoring_figures(session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                            calendar: WorkCalendar) -> str:
    compliance = await week_compliance(session, clock.today(), lapsed_min=config.programme.lapsed_weeks)
    return renderer.text("stats/mentoring", c=compliance)


@router.command("统计", "stats", roles=STAFF_ROLES, private_only=True, order=80, summary="工作统计（报名、信箱、周联、走访）",
                usage="统计", examples=("统计",))
async def stats(session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                calendar: WorkCalendar) -> Answer:
    parts = [await fn(session, clock, config, renderer, calendar) for fn in sections()]
    return Answer.of("stats/all", parts=[p for p in parts if p], today=clock.today())
