"""统计: the figures staff report upward, one section per programme.

Each programme module registers a section; the command shows them in order::

    @stats_section(order=20)
    async def mailbox_figures(session: AsyncSession, services: Services) -> str:
        return services.renderer.text("sanling/stats", ...)
"""

from __future__ import annotations

from typing import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.identity import STAFF_ROLES
from bot.router import Answer, Router
from bot.services import Services

from .mentoring_queries import week_compliance

router = Router()
Section = Callable[[AsyncSession, Services], Awaitable[str]]
SECTIONS: list[tuple[int, Section]] = []


def stats_section(order: int) -> Callable[[Section], Section]:
    def register(fn: Section) -> Section:
        if all(existing is not fn for _, existing in SECTIONS):
            SECTIONS.append((order, fn))
            SECTIONS.sort(key=lambda s: s[0])
        return fn

    return register


@stats_section(order=10)
async def mentoring_figures(session: AsyncSession, services: Services) -> str:
    compliance = await week_compliance(session, services.clock.today(),
                                       lapsed_min=services.config.programme.lapsed_weeks)
    return services.renderer.text("stats/mentoring", c=compliance)


@router.command("统计", "stats", roles=STAFF_ROLES, private_only=True, order=80, summary="工作统计（报名、信箱、周联、走访）",
                usage="统计", examples=("统计",))
async def stats(session: AsyncSession, services: Services) -> Answer:
    parts = [await fn(session, services) for _, fn in SECTIONS]
    return Answer.of("stats/all", parts=[p for p in parts if p], today=services.clock.today())
