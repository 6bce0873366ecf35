"""常青藤 (Changshan): retired leading cadres answer the call (集结) and serve as one of the 六大员.

This module holds 报名, 岗位 and the 集结 figures for 统计; the broadcast, the groups with their
commitments, the achievements with the ranking and the projects live in the modules beside it.
"""

from __future__ import annotations

import datetime as dt
import difflib

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.config import Config
from bot.identity import Sender
from bot.render import Renderer
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, ascii_number
from storage.models import Broadcast, BroadcastStatus, Person, PersonRole, Role, SignUp
from storage.models.changqing import SIX_ROLES

from handlers.changqing.common import retired_cadres

router = Router()
FIRST_SHOWN = 5


def resolve_role(word: str) -> str:
    """One of the 六大员 by its name or its number in 岗位; otherwise a refusal naming the closest."""
    if word in SIX_ROLES:
        return word
    number = ascii_number(word)
    if number is not None and 1 <= number <= len(SIX_ROLES):
        return SIX_ROLES[number - 1]
    containing = [r for r in SIX_ROLES if word in r]
    close = containing + [r for r in difflib.get_close_matches(word, SIX_ROLES, n=3, cutoff=0.3) if r not in containing]
    raise Refusal("changqing/role_unknown", word=word, close=close[:3], roles=SIX_ROLES)


def counted(query):
    """Limit a query over SignUp to the sign-ups that count: active people who still hold 退职干部.
    Every 集结 figure goes through this, so the parts always add up to the whole."""
    return (
        query.join(Person, col(Person.id) == SignUp.person_id)
        .join(PersonRole, (PersonRole.person_id == SignUp.person_id) & (PersonRole.role == Role.RETIRED.value))
        .where(Person.active == True)  # noqa: E712
    )


async def signup_counts(session: AsyncSession) -> tuple[int, int]:
    """(retired cadres signed up, retired cadres in all) — active people holding the role."""
    total = len(await retired_cadres(session))
    signed = (await session.exec(counted(select(func.count()).select_from(SignUp)))).one()
    return signed, total


@router.command(
    "报名", "signup", roles={Role.RETIRED}, order=40,
    summary="报名参加常青藤行动（集结），可同时选择六大员岗位", usage="报名 [岗位]",
    examples=("报名 招商引资联络员", "报名"),
)
async def sign_up(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    word = args.take()
    if args:
        raise UsageError("changqing/usage/signup_one_role")
    role = resolve_role(word) if word else None
    now = clock.now()
    record = (await session.exec(select(SignUp).where(SignUp.person_id == sender.id))).first()
    first_time = record is None
    previous = record.role if record else ""
    if record is None:
        record = SignUp(person_id=sender.id, role=role or "", signed_at=now, updated_at=now)
        session.add(record)
    elif role and role != record.role:
        record.role, record.updated_at = role, now
        session.add(record)
    await session.flush()
    signed, total = await signup_counts(session)
    return Answer.of("changqing/signed_up", first_time=first_time, role=record.role, previous=previous,
                     changed=bool(role) and role != previous and not first_time, signed=signed, total=total)


@router.command(
    "岗位", "roles", order=41,
    summary="常青藤“六大员”岗位及职责", usage="岗位", examples=("岗位",),
)
async def posts() -> Answer:
    return Answer.of("changqing/posts", roles=SIX_ROLES).as_card()  # WeCom: a 报名 button per post


async def signup_figures(session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                         calendar: WorkCalendar) -> str:
    """集结: how many of the retired cadres answered, for which roles, and how fast."""
    signed, total = await signup_counts(session)
    by_role = dict((await session.exec(
        counted(select(SignUp.role, func.count()).select_from(SignUp)).group_by(col(SignUp.role))
    )).all())
    first_call = (await session.exec(
        select(Broadcast.sent_at).where(Broadcast.status == BroadcastStatus.SENT).order_by(col(Broadcast.sent_at))
    )).first()
    first = (await session.exec(
        counted(select(Person.name, SignUp.signed_at).select_from(SignUp))
        .order_by(col(SignUp.signed_at), col(SignUp.id)).limit(FIRST_SHOWN)
    )).all()
    within_day = None
    if first_call is not None:  # answers to the call: from the first broadcast to a day after it
        within_day = (await session.exec(
            counted(select(func.count()).select_from(SignUp)).where(
                SignUp.signed_at >= first_call, SignUp.signed_at <= first_call + dt.timedelta(hours=24))
        )).one()
    tz = clock.tz
    return renderer.text(
        "changqing/stats", signed=signed, total=total, roles=SIX_ROLES, by_role=by_role,
        unassigned=by_role.get("", 0), first_call=first_call.astimezone(tz) if first_call else None,
        within_day=within_day,
        first=[{"name": n, "at": t.astimezone(tz),
                "after": _after(first_call, t) if first_call else None} for n, t in first],
    )


def _after(call: dt.datetime, at: dt.datetime) -> str:
    minutes = int((at - call).total_seconds() // 60)
    if minutes < 0:
        return "广播前"
    if minutes < 60:
        return f"广播后 {minutes} 分钟"
    return f"广播后 {minutes // 60} 小时 {minutes % 60} 分"

