"""导师帮带 in chat: 记录 a contact, 本周 status, the 培养计划."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple

from sqlalchemy import bindparam, func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, period_bounds, week_start
from bot.config import Config
from bot.dates import DateError, check_recent
from bot.identity import STAFF_ROLES, Sender
from bot.phrases import PhraseError, read_contact, space_out
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, ascii_number
from storage.hot import Hot
from storage.models import AREAS, ContactLog, ContactMentor, PlanItem, Role

from . import pairs as P
from handlers.mentoring.areas import AreaError, area_coverage, extract_area
from handlers.mentoring.queries import week_compliance, week_status

router = Router()

MODE_WORDS = {
    "面谈": "面谈", "面对面": "面谈", "当面": "面谈", "见面": "面谈", "face": "面谈",
    "电话": "电话", "phone": "电话", "call": "电话",
    "视频": "视频", "video": "视频",
    "线上": "线上", "微信": "线上", "钉钉": "线上", "online": "线上",
}
PAIR_ROLES = (Role.MENTOR, Role.MENTEE)
_LOG_CONTACT = Hot(insert(ContactLog.__table__).returning(ContactLog.__table__.c.id),  # type: ignore[arg-type,attr-defined]
                   keys=("pairing_id", "author_id", "day", "mode", "note", "area", "counterpart_id", "created_at"))
_TOOK_PART = Hot(insert(ContactMentor.__table__), keys=("contact_id", "person_id"))  # type: ignore[arg-type]
# The same contact sent again (a double tap, a resend after a slow answer) by the same person.
_SAME_CONTACT = Hot(
    select(ContactLog.id).where(
        ContactLog.pairing_id == bindparam("pairing_id"), ContactLog.author_id == bindparam("author_id"),
        ContactLog.day == bindparam("day"), ContactLog.mode == bindparam("mode"), ContactLog.note == bindparam("note"),
        ContactLog.area == bindparam("area"),
        col(ContactLog.created_at) >= bindparam("since"))
    .limit(1)
)


def _area_of(text: str, example: str) -> tuple[str, str]:
    """The 五带 area tag in ``text`` (``#党建``) and the text without it; a wrong tag is a wrong form."""
    try:
        return extract_area(text)
    except AreaError as exc:
        raise UsageError("mentoring/usage/area_unknown", example, tag=str(exc), areas=AREAS) from None


async def choose_pair(
    session: AsyncSession, sender: Sender, name: str | None, example: str = "记录 {name} 面谈 讨论工作方法"
) -> P.PairView:
    """The pair a command is about: the only one, or the one whose counterpart ``name`` names.
    ``example`` shows, with ``{name}`` filled in, how to name the pair when there are several."""
    views = await P.pairs_of(session, sender.id)
    if not views:
        raise Refusal("mentoring/no_pair")
    if name is None:
        if len(views) == 1:
            return views[0]
        # Not str.format: the example may carry what the person typed ("计划 添加 {x}").
        head, _, tail = example.partition("{name}")
        examples = [head + v.counterparts(sender.id)[0].name + tail for v in views]
        raise Refusal("mentoring/which_pair", count=len(views), examples=examples)
    matches = [v for v in views if any(p.name == name for p in v.counterparts(sender.id))]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Refusal("mentoring/ambiguous", name=name, views=matches, me=sender.id)
    mentee_only = all(v.mentee.id == sender.id for v in views)
    raise Refusal("mentoring/not_counterpart", name=name, mentee_only=mentee_only, views=views, me=sender.id)


@router.command(
    "记录", "log", roles=PAIR_ROLES, order=10,
    summary="记录一次师徒联系（周联：每周至少面谈一次）",
    usage="记录 [对方姓名] [日期] 方式 内容（方式：面谈、电话、视频、线上）",
    examples=("记录 面谈 讨论招商项目推进方法", "记录 李娜 昨天 电话 沟通信访件处理"),
)
async def log_contact(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config) -> Answer:
    today = clock.today()
    area, raw = _area_of(args.rest(), "记录 面谈 #党建 一起研究支部换届")
    names = {p.name for v in await P.pairs_of(session, sender.id) for p in v.counterparts(sender.id)}
    try:
        name, day, mode, note = astuple(read_contact(raw, today, names, MODE_WORDS))
    except PhraseError as exc:
        raise UsageError.because(exc) from None
    try:
        check_recent(day, today, config.programme.log_max_days_back)
    except DateError as exc:
        raise UsageError.because(exc) from None
    view = await choose_pair(session, sender, name)
    counterpart = None
    if name is not None and view.mentee.id == sender.id:
        counterpart = next(m.id for m in view.mentors if m.name == name)
        took_part = [counterpart]
    elif view.mentee.id != sender.id:
        counterpart = view.mentee.id
        took_part = [sender.id]
    else:
        took_part = [m.id for m in view.mentors]
    now = clock.now()
    values = {"pairing_id": view.id, "author_id": sender.id, "day": day, "mode": mode, "note": note, "area": area}
    since = now - dt.timedelta(minutes=config.programme.duplicate_contact_minutes)
    # Core statements built once, on the session's connection (storage.hot): the busiest write there is.
    repeated = await _SAME_CONTACT.first(session, {**values, "since": since}) is not None
    if not repeated:
        contact_id = await _LOG_CONTACT.scalar(session, {**values, "counterpart_id": counterpart, "created_at": now})
        await _TOOK_PART.run_each(session, [{"contact_id": contact_id, "person_id": m} for m in took_part])
    status = (await week_status(session, [view], today))[0]
    return Answer.of("mentoring/logged", day=day, mode=mode, status=status, me=sender.id,
                     this_week=day >= week_start(today), repeated=repeated, area=area, areas=AREAS)


@router.command(
    "本周", "status", order=11, private_roles=STAFF_ROLES,  # staff see every pair: not for a group
    summary="本周帮带情况（组工干部：全县周联合规情况）", usage="本周", examples=("本周",),
)
async def this_week(sender: Sender, session: AsyncSession, clock: Clock, config: Config) -> list[Answer]:
    today = clock.today()
    answers = []
    if sender.has(*PAIR_ROLES):
        views = await P.pairs_of(session, sender.id)
        if views:
            answers.append(
                Answer.of("mentoring/week", statuses=await week_status(session, views, today), me=sender.id,
                          first=week_start(today), last=week_start(today) + dt.timedelta(days=6))
            )
    if sender.is_staff:
        every = await P.load_pairs(session, active_only=False)
        answers.append(Answer.of("mentoring/week_staff", c=await week_compliance(
            session, today, lapsed_min=config.programme.lapsed_weeks, views=every),
            areas=await area_coverage(session, every, *period_bounds("quarter", today))))
    if not answers:
        raise Refusal("mentoring/no_pair")
    return answers


_ADD = ("添加", "增加", "新增", "add")
_DONE = ("完成", "done")


plan_command = router.command(
    "计划", "plan", roles=PAIR_ROLES, order=12,
    summary="培养计划：查看、添加（导师）、完成",
    usage="计划 [对方姓名] [添加 内容 | 完成 序号]",
    examples=("计划", "计划 添加 熟悉信访工作流程", "计划 完成 2"),
)


@plan_command.sub(*_ADD, usage="计划 添加 [#领域] 内容", examples=("计划 添加 熟悉信访工作流程", "计划 添加 #群众 熟悉信访工作流程"))
async def plan_add(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _add(sender, None, args, session, clock)


@plan_command.sub(*_DONE, usage="计划 完成 序号", examples=("计划 完成 2",))
async def plan_done(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _done(sender, None, args, session, clock)


@plan_command
async def plan(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    """计划 [对方姓名]: the plan; 计划 赵强 添加 … names the pair first (a mentor of several)."""
    names = {p.name for v in await P.pairs_of(session, sender.id) for p in v.counterparts(sender.id)}
    args = Args(space_out(args.rest(), names, (*_ADD, *_DONE)))  # 计划赵强添加… reads as 计划 赵强 添加 …
    name = action = args.take()
    if action is not None and action.lower() not in (*_ADD, *_DONE):
        name, action = action, args.take()
    else:
        name = None
    action = (action or "").lower()
    if action in _ADD:
        return await _add(sender, name, args, session, clock)
    if action in _DONE:
        return await _done(sender, name, args, session, clock)
    if action:
        raise UsageError("mentoring/usage/plan_action")
    views = [await choose_pair(session, sender, name)] if name else await P.pairs_of(session, sender.id)
    if not views:
        raise Refusal("mentoring/no_pair")
    items = (
        await session.exec(
            select(PlanItem).where(PlanItem.pairing_id.in_([v.id for v in views])).order_by(PlanItem.seq)  # type: ignore[attr-defined]
        )
    ).all()
    return Answer.of("mentoring/plan", views=views, items=items, me=sender.id)


async def _add(sender: Sender, name: str | None, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    area, text = _area_of(args.rest(), "计划 添加 #群众 熟悉信访工作流程")
    if not text:
        raise UsageError("mentoring/usage/plan_add", "计划 添加 熟悉信访工作流程")
    view = await choose_pair(session, sender, name, "计划 {name} 添加 " + text)
    if not view.is_mentor(sender.id):
        raise Refusal("mentoring/plan_mentor_only")
    seq = (await session.exec(select(func.coalesce(func.max(PlanItem.seq), 0)).where(PlanItem.pairing_id == view.id))).one() + 1
    session.add(PlanItem(pairing_id=view.id, seq=seq, text=text, area=area, created_by=sender.id,
                         created_at=clock.now()))
    return Answer.of("mentoring/plan_added", seq=seq, text=text, view=view, me=sender.id, area=area, areas=AREAS)


async def _done(sender: Sender, name: str | None, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    token = args.take()
    seq = ascii_number(token.lstrip("#第").rstrip("项")) if token else None
    if seq is None or args:
        raise UsageError("mentoring/usage/plan_done", "计划 完成 2")
    view = await choose_pair(session, sender, name, f"计划 {{name}} 完成 {seq}")
    item = (await session.exec(select(PlanItem).where(PlanItem.pairing_id == view.id, PlanItem.seq == seq))).first()
    if item is None:
        raise Refusal("mentoring/plan_no_item", seq=seq)
    if item.done_at is not None:
        raise Refusal("mentoring/plan_already_done", item=item)
    item.done_at, item.done_by = clock.now(), sender.id
    session.add(item)
    return Answer.of("mentoring/plan_done", item=item)
