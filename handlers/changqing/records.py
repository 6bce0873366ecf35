"""常青藤 实绩 (achievement records weighted by a difficulty coefficient) and the monthly 排行 that
晾晒比拼 shows every group."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.clock import Clock
from bot.config import Config
from bot.identity import STAFF_ROLES, Sender
from bot.charts import words
from bot.render import Renderer
from bot.router import Answer, Picture, Refusal, Router, UsageError
from bot.text import Args
from storage.models import Achievement, AchievementMember, Person, Role, Squad, SquadMember, Unit
from storage.models.changqing import COEFFICIENT_MAX, COEFFICIENT_MIN

from handlers.args import nothing_more, rest, ticket
from handlers.changqing.common import find_person, month_bounds, previous_month
from handlers.changqing.queries import participants, person_archive, person_scores
from handlers.changqing.squads import squad_id_of

router = Router()

MAX_ACHIEVEMENT_CHARS = 1000
LIST_LIMIT = 20


@dataclass
class RankRow:
    rank: int
    squad: str
    task_force: str
    count: int  # achievements that count (not voided)
    score: float  # their coefficients summed


async def month_ranking(session: AsyncSession, day: dt.date) -> list[RankRow]:
    """Every group, ranked by this month's weighted achievements; equal scores share a rank."""
    start, end = month_bounds(day)
    totals = dict(
        (sid, (n, s))
        for sid, n, s in (
            await session.exec(
                select(Achievement.squad_id, func.count(), func.sum(Achievement.coefficient))
                .where(Achievement.created_at >= start, Achievement.created_at < end,
                       col(Achievement.voided_at).is_(None))
                .group_by(col(Achievement.squad_id))
            )
        ).all()
    )
    squads = (await session.exec(select(Squad.id, Squad.name, Unit.name).join(Unit, col(Unit.id) == Squad.task_force_id))).all()
    rows = [
        (name, tf, totals.get(sid, (0, 0.0))[0], round(float(totals.get(sid, (0, 0.0))[1] or 0), 2))
        for sid, name, tf in squads
    ]
    rows.sort(key=lambda r: (-r[3], -r[2], r[0]))
    ranked: list[RankRow] = []
    for i, (name, tf, count, score) in enumerate(rows):
        rank = ranked[-1].rank if ranked and ranked[-1].score == score else i + 1
        ranked.append(RankRow(rank, name, tf, count, score))
    return ranked


def month_label(day: dt.date) -> str:
    return f"{day.year}年{day.month}月"


def ranking_picture(renderer: Any, rows: list[RankRow], month: str, county: str) -> Picture:
    """The month's ranking as a bar chart (晾晒比拼 is meant to be seen): one bar per group."""
    (title, subtitle, unit, *_), bars = words(renderer, "charts/ranking", rows=rows, month=month, county=county)
    return Picture({"kind": "ranking", "title": title, "subtitle": subtitle, "unit": unit,
                    "rows": [{"label": label, "value": value, "score": row.score}
                             for (label, value), row in zip(bars, rows)]})


# --- 实绩 ------------------------------------------------------------------------------------------

async def _achievement(session: AsyncSession, number: int) -> Achievement:
    found = await session.get(Achievement, number)
    if found is None:
        raise Refusal("changqing/achievement_unknown", number=number)
    return found


def parse_coefficient(token: str | None) -> float:
    try:
        value = Decimal(token or "")
    except InvalidOperation:
        raise UsageError("changqing/usage/coefficient_number") from None
    if not value.is_finite():
        raise UsageError("changqing/usage/coefficient_number")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise UsageError("changqing/usage/coefficient_decimals")
    if not Decimal(str(COEFFICIENT_MIN)) <= value <= Decimal(str(COEFFICIENT_MAX)):
        raise Refusal("changqing/coefficient_range", value=str(value), low=COEFFICIENT_MIN, high=COEFFICIENT_MAX)
    return float(value)


achievement_command = router.command(
    "实绩", "achievement", roles={Role.RETIRED, *STAFF_ROLES}, order=44, private_roles=STAFF_ROLES,
    summary="常青藤实绩：记录本组的一项实绩；不带内容查看本月实绩（组工干部：系数、作废）",
    usage="实绩 [内容]", examples=("实绩 协调万洋众创项目土地指标", "实绩"),
)
STAFF_ONLY = dict(roles=STAFF_ROLES, private_only=True)


@achievement_command
async def achievement(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """实绩 内容 records one for the sender's group; 实绩 alone lists this month's."""
    now = clock.now()
    text = args.rest()
    squad_id = await squad_id_of(session, sender.id)
    if not text:
        return await _list(session, squad_id, sender, clock.today())
    if squad_id is None:
        raise Refusal("changqing/achievement_no_squad", staff=sender.is_staff)
    if len(text) > MAX_ACHIEVEMENT_CHARS:
        raise UsageError("changqing/usage/achievement_too_long", limit=MAX_ACHIEVEMENT_CHARS, length=len(text))
    record = Achievement(squad_id=squad_id, author_id=sender.id, text=text, created_at=now)
    session.add(record)
    await session.flush()
    session.add(AchievementMember(achievement_id=record.id, person_id=sender.id))  # type: ignore[arg-type]
    squad = await session.get(Squad, squad_id)
    count = (await session.exec(
        select(func.count()).select_from(Achievement).where(
            Achievement.squad_id == squad_id, Achievement.created_at >= month_bounds(clock.today())[0],
            col(Achievement.voided_at).is_(None))
    )).one()
    return Answer.of("changqing/achievement_saved", number=record.id, squad=squad.name if squad else "", count=count,
                     month=month_label(clock.today()))


@achievement_command.sub("系数", "coefficient", **STAFF_ONLY, usage="实绩 系数 #编号 系数（0.5–3.0）",
                         examples=("实绩 系数 #5 1.5",))
async def set_coefficient(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    record = await _achievement(session, ticket(args, "changqing/usage/achievement_number"))
    squad = await session.get(Squad, record.squad_id)
    value = parse_coefficient(args.take())
    nothing_more(args)
    if record.voided_at is not None:
        raise Refusal("changqing/achievement_voided_already", number=record.id, reason=record.void_reason)
    old = record.coefficient
    record.coefficient = value
    session.add(record)
    audit(session, clock.now(), sender, "changqing.achievement.coefficient", f"achievement:{record.id}",
          old=old, new=value, squad=squad.name if squad else "")
    return Answer.of("changqing/achievement_coefficient", number=record.id, old=old, new=value,
                     squad=squad.name if squad else "")


@achievement_command.sub("作废", "void", **STAFF_ONLY, usage="实绩 作废 #编号 原因", examples=("实绩 作废 #5 重复记录",))
async def void(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    record = await _achievement(session, ticket(args, "changqing/usage/achievement_number"))
    squad = await session.get(Squad, record.squad_id)
    reason = rest(args, "changqing/usage/void_reason", limit=200, too_long="changqing/usage/void_reason_long")
    if record.voided_at is not None:
        raise Refusal("changqing/achievement_voided_already", number=record.id, reason=record.void_reason)
    record.voided_at, record.void_reason = clock.now(), reason
    session.add(record)
    audit(session, clock.now(), sender, "changqing.achievement.void", f"achievement:{record.id}", reason=reason,
          squad=squad.name if squad else "")
    return Answer.of("changqing/achievement_voided", number=record.id, reason=reason, squad=squad.name if squad else "")


async def month_achievements(session: AsyncSession, day: dt.date, squad_id: int | None = None,
                             limit: int | None = LIST_LIMIT, offset: int = 0) -> list[dict]:
    """实绩 recorded in the month of ``day``, newest first, with group and author: what ``实绩`` lists
    and the console pages through (voided ones included, marked)."""
    start, end = month_bounds(day)
    query = (
        select(Achievement, Squad.name, Person.name)
        .join(Squad, col(Squad.id) == Achievement.squad_id)
        .join(Person, col(Person.id) == Achievement.author_id)
        .where(Achievement.created_at >= start, Achievement.created_at < end)
        .order_by(col(Achievement.id).desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    if squad_id is not None:
        query = query.where(Achievement.squad_id == squad_id)
    return [{"a": a, "squad": s, "author": p} for a, s, p in (await session.exec(query)).all()]


async def _list(session: AsyncSession, squad_id: int | None, sender: Sender, today: dt.date) -> Answer:
    if squad_id is None and not sender.is_staff:
        raise Refusal("changqing/achievement_no_squad", staff=False)
    rows = await month_achievements(session, today, squad_id, LIST_LIMIT)
    squad = await session.get(Squad, squad_id) if squad_id is not None else None
    return Answer.of("changqing/achievement_list", rows=rows, squad=squad.name if squad else None,
                     month=month_label(today), limit=LIST_LIMIT, staff=sender.is_staff)


# --- 个人实绩档案 and 专项考核 ------------------------------------------------------------------------

_SPLIT = re.compile(r"[、,，;；/\s]+")


def _year(token: str | None, today: dt.date, example: str) -> int | None:
    if token is None:
        return None
    if not re.fullmatch(r"\d{4}年?", token) or not 2000 <= int(token[:4]) <= today.year:
        raise UsageError("changqing/usage/bad_year", example, year=token)
    return int(token[:4])


@achievement_command.sub("参与", "members", usage="实绩 参与 #编号 姓名、姓名", examples=("实绩 参与 #5 李忠兴、赵建国",))
async def take_part(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """实绩 参与 #5 李忠兴、赵建国 — who took part (replaces the list; the author or staff)."""
    record = await _achievement(session, ticket(args, "changqing/usage/achievement_number"))
    names = [n for n in _SPLIT.split(args.rest()) if n]
    if not names:
        raise UsageError("changqing/usage/members_names", f"实绩 参与 #{record.id} 李忠兴、赵建国")
    if not sender.is_staff and sender.id != record.author_id:
        raise Refusal("changqing/achievement_members_not_yours", number=record.id)
    if record.voided_at is not None:
        raise Refusal("changqing/achievement_voided_already", number=record.id, reason=record.void_reason)
    members = set((await session.exec(select(SquadMember.person_id).where(SquadMember.squad_id == record.squad_id))).all())
    people: list[Person] = []
    for name in names:
        person = await find_person(session, name)
        if person.id not in members:
            squad = await session.get(Squad, record.squad_id)
            raise Refusal("changqing/achievement_member_outside", name=person.name, squad=squad.name if squad else "")
        if all(p.id != person.id for p in people):
            people.append(person)
    for old in (await session.exec(select(AchievementMember).where(AchievementMember.achievement_id == record.id))).all():
        await session.delete(old)
    await session.flush()
    for person in people:
        session.add(AchievementMember(achievement_id=record.id, person_id=person.id))  # type: ignore[arg-type]
    audit(session, clock.now(), sender, "changqing.achievement.members", f"achievement:{record.id}",
          members=[p.name for p in people])
    return Answer.of("changqing/achievement_members", number=record.id, names=[p.name for p in people])


@achievement_command.sub("档案", "archive", private_only=True, usage="实绩 档案 [姓名] [年份]",
                         examples=("实绩 档案", "实绩 档案 2026"))
async def archive(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """实绩 档案 [姓名] [年份] — a person's own 实绩 of the year and 专项考核 score (others' for staff)."""
    today = clock.today()
    person: Person = sender.person
    token = args.take()
    year = _year(token, today, "实绩 档案 2026") if token and token[0].isdigit() else None
    if token is not None and year is None:
        if not sender.is_staff:
            raise Refusal("changqing/archive_own_only")
        person = await find_person(session, token)
        year = _year(args.take(), today, f"实绩 档案 {person.name} 2026")
    if args:
        raise UsageError("changqing/usage/archive_extra", "实绩 档案 2026")
    year = year or today.year
    score = next((s for s in await person_scores(session, year) if s.person.id == person.id), None)
    rows = await person_archive(session, person.id, year)  # type: ignore[arg-type]
    names = await participants(session, [a.id for a, _ in rows])  # type: ignore[misc]
    return Answer.of("changqing/archive", person=person, year=year, rows=rows, score=score, names=names,
                     me=person.id == sender.id)


@achievement_command.sub("考核", "scores", **STAFF_ONLY, usage="实绩 考核 [年份]", examples=("实绩 考核 2026", "实绩 考核"))
async def scores(args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """实绩 考核 [年份] — everyone's 专项考核 score for the year (staff)."""
    today = clock.today()
    year = _year(args.take(), today, "实绩 考核 2026") or today.year
    if args:
        raise UsageError("changqing/usage/scores_extra", "实绩 考核 2026")
    return Answer.of("changqing/scores", year=year, rows=await person_scores(session, year))


# --- 排行 ------------------------------------------------------------------------------------------

@router.command(
    "排行", "ranking", order=45,
    summary="常青藤本月各组实绩排行（按难度系数加权）", usage="排行 [上月]", examples=("排行", "排行 上月"),
)
async def ranking(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config,
                  renderer: Renderer) -> list[Answer | Picture]:
    day = clock.today()
    word = args.take()
    if word in ("上月", "last"):
        day = previous_month(day)
    elif word is not None:
        raise UsageError("changqing/usage/ranking_month", "排行 上月")
    if args:
        raise UsageError("changqing/usage/ranking_month", "排行 上月")
    rows = await month_ranking(session, day)
    mine = None
    if (squad_id := await squad_id_of(session, sender.id)) is not None:
        squad = await session.get(Squad, squad_id)
        mine = next((r for r in rows if squad and r.squad == squad.name), None)
    text = Answer.of("changqing/ranking", rows=rows, month=month_label(day), mine=mine, post=False)
    if not rows:
        return [text]
    # The text stays for channels that show no pictures; the others show both.
    return [text, ranking_picture(renderer, rows, month_label(day), config.programme.county)]
