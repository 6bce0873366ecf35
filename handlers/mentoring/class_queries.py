"""开放型课堂 as figures: check-ins per host (each one a 辅导 in 捆绑考核), classes attended per mentee,
the classes of a day. No side effects: the 课堂 command, 考核, 本周, the reminder job, the export and the
console call these."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import day_start
from storage.models import ClassSignUp, OpenClass

ONE_DAY = dt.timedelta(days=1)


def _between(first: dt.date, last: dt.date):
    return (col(OpenClass.starts_at) >= day_start(first), col(OpenClass.starts_at) < day_start(last + ONE_DAY))


async def check_ins_by_host(session: AsyncSession, first: dt.date, last: dt.date) -> dict[int, int]:
    """Per host, how many mentees checked in at their classes held in ``first``..``last``."""
    rows = await session.exec(
        select(OpenClass.host_id, func.count())
        .join(ClassSignUp, col(ClassSignUp.class_id) == OpenClass.id)
        .where(col(ClassSignUp.attended_at).is_not(None), *_between(first, last))
        .group_by(OpenClass.host_id))
    return dict(rows.all())


async def classes_attended(session: AsyncSession, person_ids: list[int], first: dt.date, last: dt.date) -> dict[int, int]:
    """Per person, the classes held in the period they checked in at."""
    if not person_ids:
        return {}
    rows = await session.exec(
        select(ClassSignUp.person_id, func.count())
        .join(OpenClass, col(OpenClass.id) == ClassSignUp.class_id)
        .where(col(ClassSignUp.person_id).in_(person_ids), col(ClassSignUp.attended_at).is_not(None),
               *_between(first, last))
        .group_by(ClassSignUp.person_id))
    return dict(rows.all())


async def classes_on(session: AsyncSession, day: dt.date) -> list[OpenClass]:
    return list((await session.exec(select(OpenClass).where(*_between(day, day)).order_by(OpenClass.starts_at))).all())


async def signups_of(session: AsyncSession, class_ids: list[int]) -> dict[int, list[ClassSignUp]]:
    out: dict[int, list[ClassSignUp]] = {}
    if class_ids:
        for s in (await session.exec(select(ClassSignUp).where(col(ClassSignUp.class_id).in_(class_ids))
                                     .order_by(ClassSignUp.signed_at))).all():
            out.setdefault(s.class_id, []).append(s)
    return out
