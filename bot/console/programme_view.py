"""The console's views of the programmes of issue 18: the 帮带 to re-pair after a 季评 差 (with the
mentors' 季评汇报), the mentor pool, the open classes, the 常青藤 archive and the five areas.

Each figure is the one the chat command, the job or the export computes, read through the same query
function (``handlers.mentoring.reviews``, ``.pool_queries``, ``.class_queries``, ``.areas`` and
``handlers.changqing.queries``); this module only pages and groups them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import period_bounds, period_name
from handlers.changqing.queries import PersonScore, ProjectView, participants, person_archive, person_scores, projects
from handlers.mentoring.areas import AreaCoverage, area_coverage
from handlers.mentoring.class_queries import signups_of
from handlers.mentoring.pool_queries import PoolEntry, mentor_pool
from handlers.mentoring.pairs import PairView
from handlers.mentoring.reviews import Rematch, rematch_candidates, reports_of
from storage.models import ClassSignUp, OpenClass, Person, ReviewReport

ONE_DAY = dt.timedelta(days=1)


@dataclass
class RematchRow:
    """A 帮带 on the re-pairing list with the reports its mentors sent for the quarter rated 差."""

    item: Rematch
    reports: list[tuple[str, ReviewReport]]  # (mentor's name, report)


async def rematch_rows(session: AsyncSession, today: dt.date, views: list[PairView]) -> list[RematchRow]:
    """The weekly digest's and the export's 待调整 list (``rematch_candidates``), each with its 季评汇报."""
    found = await rematch_candidates(session, today, views)
    by_quarter: dict[str, list[int]] = {}
    for r in found:
        by_quarter.setdefault(r.review.quarter, []).append(r.view.id)
    reports = {q: await reports_of(session, q, ids) for q, ids in by_quarter.items()}
    rows = []
    for r in found:
        names = {t.mentor.id: t.mentor.name for t in r.view.terms}
        said = reports[r.review.quarter].get(r.view.id, [])
        rows.append(RematchRow(r, [(names.get(x.mentor_id, ""), x) for x in said]))
    return rows


def last_quarter_day(today: dt.date) -> dt.date:
    """A day of the quarter before today's."""
    return period_bounds("quarter", today)[0] - ONE_DAY


@dataclass
class Areas:
    """五带覆盖 of a set of 帮带: this quarter so far, and the last whole quarter (where an area
    untouched is the flag the quarterly summary raises)."""

    now: AreaCoverage
    before: AreaCoverage
    now_name: str
    before_name: str

    def flagged(self, pairing_id: int) -> list[str]:
        """Areas the 帮带 left untouched all last quarter ([] if nobody mentored it then)."""
        if all(v.id != pairing_id for v in self.before.views):
            return []
        return self.before.missing(pairing_id)


async def areas_of(session: AsyncSession, views: list[PairView], today: dt.date) -> Areas:
    before = last_quarter_day(today)
    return Areas(await area_coverage(session, views, *period_bounds("quarter", today)),
                 await area_coverage(session, views, *period_bounds("quarter", before)),
                 period_name("quarter", today), period_name("quarter", before))


async def pool_page(session: AsyncSession, today: dt.date, offset: int, limit: int) -> tuple[list[PoolEntry], int]:
    """A page of 导师库 as ``导师 库`` lists it, and how many entries there are."""
    entries = await mentor_pool(session, today)
    return entries[offset:offset + limit], len(entries)


@dataclass
class ClassRow:
    c: OpenClass
    host: str
    people: list[tuple[str, bool]]  # (name, checked in) of everyone who signed up or came, in sign-up order

    @property
    def came(self) -> int:
        return sum(1 for _, came in self.people if came)


async def class_page(session: AsyncSession, offset: int, limit: int) -> tuple[list[ClassRow], int]:
    """Open classes, the latest first, with sign-ups and check-ins as ``课堂 #编号`` shows them."""
    total = (await session.exec(select(func.count()).select_from(OpenClass))).one()
    classes = list((await session.exec(select(OpenClass).order_by(col(OpenClass.starts_at).desc(),
                                                                   col(OpenClass.id).desc())
                                       .offset(offset).limit(limit))).all())
    signups = await signups_of(session, [c.id for c in classes])  # type: ignore[misc]
    ids = {c.host_id for c in classes} | {s.person_id for rows in signups.values() for s in rows}
    names = dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids))))
                 .all()) if ids else {}
    rows = []
    for c in classes:
        came: list[ClassSignUp] = signups.get(c.id, [])  # type: ignore[arg-type]
        rows.append(ClassRow(c, names.get(c.host_id, ""),
                             [(names.get(s.person_id, ""), s.attended_at is not None) for s in came]))
    return rows, total


async def score_page(session: AsyncSession, year: int, offset: int, limit: int) -> tuple[list[PersonScore], int]:
    """A page of ``实绩 考核`` for a year."""
    scores = await person_scores(session, year)
    return scores[offset:offset + limit], len(scores)


async def project_page(session: AsyncSession, offset: int, limit: int) -> tuple[list[ProjectView], int]:
    """A page of ``跟进``'s 重点企业/项目 with their latest follow-up."""
    views = await projects(session)
    return views[offset:offset + limit], len(views)


@dataclass
class Archive:
    person: Person
    year: int
    score: PersonScore | None
    rows: list[tuple]  # a page of (Achievement, group name) as person_archive gives them
    names: dict[int, list[Person]]  # who took part in each
    total: int  # rows in the whole archive of the year


async def archive_of(session: AsyncSession, person_id: int, year: int, offset: int = 0,
                     limit: int = 50) -> Archive | None:
    """``实绩 档案 姓名 年份`` for one person, a page of its 实绩."""
    person = await session.get(Person, person_id)
    if person is None:
        return None
    every = await person_archive(session, person_id, year)
    rows = every[offset:offset + limit]
    score = next((s for s in await person_scores(session, year) if s.person.id == person_id), None)
    return Archive(person, year, score, rows, await participants(session, [a.id for a, _ in rows]),  # type: ignore[misc]
                   len(every))
