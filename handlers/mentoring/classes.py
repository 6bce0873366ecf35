"""开放型课堂 in chat: staff or a mentor announce a class (one mentor, many mentees, often at a 现场教学点),
mentees sign up and check in with the code said at the class. The check-in code is shown only to the
host and to staff, so a check-in means the mentee was there to hear it."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import TZ, Clock, day_start, period_bounds
from bot.dates import DateError, parse_day
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, fold
from storage.models import ClassSignUp, OpenClass, Person, Role

from handlers.mentoring.class_queries import classes_attended, signups_of

router = Router()

CLASS_ROLES = {Role.MENTOR, Role.MENTEE, *STAFF_ROLES}
_NEW = re.compile(r"^(\S+?)\s*(\d{1,2})\s*[:：点]\s*(\d{2})分?\s+(\S+)\s+(.+)$", re.S)
_ID = re.compile(r"^#?(\d{1,9})$")
NEW_EXAMPLE = "课堂 新建 12月5日 14:30 湖镇镇现场教学点 基层信访工作方法"
CHECK_IN_EARLY = dt.timedelta(hours=1)  # check-in opens an hour before the start, closes at the day's end


def class_day(value: str, today: dt.date) -> dt.date:
    """``12月5日`` / ``12-05`` / ``2026-12-05``: today or later (a month-day already past is next year's)."""
    try:
        day = parse_day(value, dt.date(today.year, 12, 31))
    except DateError as exc:
        raise UsageError.because(exc, NEW_EXAMPLE) from None
    if day is None or value in ("今天", "昨天", "前天"):
        if value == "今天":
            return today
        raise UsageError("classes/usage/day", NEW_EXAMPLE)
    if day < today:
        if re.match(r"^\d{4}", fold(value)):
            raise UsageError("classes/usage/day_past", NEW_EXAMPLE, day=day)
        day = day.replace(year=day.year + 1)
    return day


async def _class(session: AsyncSession, token: str | None, example: str) -> OpenClass:
    m = _ID.match(token or "")
    if m is None:
        raise UsageError("classes/usage/number", example)
    found = await session.get(OpenClass, int(m.group(1)))
    if found is None:
        raise Refusal("classes/unknown", id=int(m.group(1)))
    return found


class_command = router.command(
    "课堂", "class", roles=CLASS_ROLES, order=14, private_only=True,  # the check-in code must not reach a group
    summary="开放型课堂：近期课堂、报名、签到（组工干部和导师可新建）",
    usage="课堂 [#编号]",
    examples=("课堂", "课堂 #3"),
)


@class_command
async def classes(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """课堂 alone lists the coming classes; 课堂 #3 shows one."""
    today = clock.today()
    if not args:
        upcoming = (await session.exec(select(OpenClass).where(col(OpenClass.starts_at) >= day_start(today))
                                       .order_by(OpenClass.starts_at).limit(10))).all()
        mine = {s.class_id for s in (await session.exec(select(ClassSignUp).where(
            ClassSignUp.person_id == sender.id, col(ClassSignUp.class_id).in_([c.id for c in upcoming])))).all()}
        attended = (await classes_attended(session, [sender.id], *period_bounds("quarter", today))).get(sender.id, 0) \
            if sender.has(Role.MENTEE) else 0
        return Answer.of("classes/list", classes=upcoming, mine=mine, can_create=_can_create(sender),
                         mentee=sender.has(Role.MENTEE), hosts=await _names(session, [c.host_id for c in upcoming]),
                         attended=attended)
    row = await _class(session, args.take(), "课堂 #3")
    if args:
        raise UsageError("classes/usage/show_only_number", "课堂 #3")
    signups = (await signups_of(session, [row.id])).get(row.id, [])  # type: ignore[arg-type]
    names = await _names(session, [row.host_id, *(s.person_id for s in signups)])
    return Answer.of("classes/one", c=row, signups=signups, names=names, host=names.get(row.host_id, ""),
                     insider=sender.is_staff or sender.id == row.host_id, mine=any(s.person_id == sender.id for s in signups),
                     mentee=sender.has(Role.MENTEE), past=row.starts_at < day_start(today))


@class_command.sub("新建", "new", roles={Role.MENTOR, *STAFF_ROLES}, usage="课堂 新建 日期 时间 地点 主题",
                   examples=(NEW_EXAMPLE,))
async def class_new(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    now = clock.now()
    m = _NEW.match(fold(args.rest()))
    if m is None:
        raise UsageError("classes/usage/new_order")
    day = class_day(m.group(1), clock.today())
    hour, minute = int(m.group(2)), int(m.group(3))
    if hour > 23 or minute > 59:
        raise UsageError("classes/usage/bad_time", hour=hour, minute=f"{minute:02d}")
    starts = dt.datetime.combine(day, dt.time(hour, minute), TZ)
    if starts < now:
        raise UsageError("classes/usage/time_past")
    place, topic = m.group(4).strip(), m.group(5).strip()
    if len(place) > 100 or len(topic) > 500:
        raise UsageError("classes/usage/place_topic_length")
    row = OpenClass(host_id=sender.id, starts_at=starts, place=place, topic=topic,
                    code=f"{secrets.randbelow(10000):04d}", created_at=now)
    session.add(row)
    await session.flush()
    return Answer.of("classes/created", c=row)


@class_command.sub("报名", "signup", roles={Role.MENTEE}, usage="课堂 报名 #编号", examples=("课堂 报名 #3",))
async def class_signup(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    now = clock.now()
    row = await _class(session, args.take(), "课堂 报名 #3")
    if args:
        raise UsageError("classes/usage/signup_only_number")
    if row.starts_at <= now:
        raise Refusal("classes/started", c=row)
    if await session.get(ClassSignUp, (row.id, sender.id)) is not None:
        return Answer.of("classes/signed_up", c=row, again=True)
    session.add(ClassSignUp(class_id=row.id, person_id=sender.id, signed_at=now))  # type: ignore[arg-type]
    return Answer.of("classes/signed_up", c=row, again=False)


@class_command.sub("签到", "checkin", roles={Role.MENTEE}, usage="课堂 签到 #编号 签到码", examples=("课堂 签到 #3 4821",))
async def class_check_in(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    now, today = clock.now(), clock.today()
    token, code = args.take(), args.take()
    if token is None or code is None or args:
        raise UsageError("classes/usage/check_in")
    row = await _class(session, token, "课堂 签到 #3 4821")
    signup = await session.get(ClassSignUp, (row.id, sender.id))
    local_day = row.starts_at.astimezone(TZ).date()
    if not (row.starts_at - CHECK_IN_EARLY <= now and today == local_day):
        raise Refusal("classes/not_now", c=row)
    if code != row.code:
        raise Refusal("classes/wrong_code", c=row)
    if signup is not None and signup.attended_at is not None:
        return Answer.of("classes/checked_in", c=row, again=True)
    signup = signup or ClassSignUp(class_id=row.id, person_id=sender.id, signed_at=now)  # type: ignore[arg-type]
    signup.attended_at = now
    session.add(signup)
    return Answer.of("classes/checked_in", c=row, again=False)


def _can_create(sender: Sender) -> bool:
    return sender.is_staff or sender.has(Role.MENTOR)


async def _names(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict((await session.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids)))).all())
