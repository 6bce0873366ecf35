"""标注: the one-tap 五带 area picker. After ``记录`` or ``计划 添加`` without an area, the answer offers the
five areas as taps; a tap can only send a fixed text, so each sends a whole command of its own —
``标注 #党建`` tags the sender's latest contact, ``标注 计划 #党建`` their latest plan item — which also
works typed. Typing the tag in the record itself (``记录 面谈 #党建 …``) stays the short way."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.identity import Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from storage.models import AREAS, ContactLog, PlanItem, Role

from .areas import AreaError, extract_area

router = Router()


def _area(words: str, example: str) -> str:
    """``#党建``, ``党建`` or the full name ``带基层党建筑堡垒``: one of the five, nothing else."""
    text = words if words.startswith(("#", "＃")) else "#" + words if words else ""
    try:
        area, rest = extract_area(text)
    except AreaError as exc:
        raise UsageError("mentoring/usage/area_unknown", example, tag=str(exc), areas=AREAS) from None
    if not area:
        raise UsageError("mentoring/usage/area_missing", example, areas=AREAS)
    if rest:
        raise UsageError("mentoring/usage/area_one", example)
    return area


tag_command = router.command(
    "标注", "tag", roles=(Role.MENTOR, Role.MENTEE), order=13,
    summary="给刚记录的联系或培养计划标注“五带”领域",
    usage="标注 #领域（最近一次联系）",
    examples=("标注 #党建",),
)


@tag_command
async def tag_area(sender: Sender, args: Args, session: AsyncSession) -> Answer:
    """标注 #党建: the sender's latest contact."""
    return await _tag(sender, args, session, plan=False)


@tag_command.sub("计划", "plan", usage="标注 计划 #领域（最近添加的培养计划）", examples=("标注 计划 #财富",))
async def tag_plan(sender: Sender, args: Args, session: AsyncSession) -> Answer:
    """标注 计划 #财富: the sender's latest plan item."""
    return await _tag(sender, args, session, plan=True)


async def _tag(sender: Sender, args: Args, session: AsyncSession, plan: bool) -> Answer:
    example = "标注 计划 #财富" if plan else "标注 #党建"
    area = _area(" ".join(args.rest().split()), example)
    if plan:
        row = (await session.exec(select(PlanItem).where(PlanItem.created_by == sender.id)
                                  .order_by(col(PlanItem.created_at).desc(), col(PlanItem.id).desc()).limit(1))).first()
    else:
        row = (await session.exec(select(ContactLog).where(ContactLog.author_id == sender.id)
                                  .order_by(col(ContactLog.created_at).desc(), col(ContactLog.id).desc()).limit(1))).first()
    if row is None:
        raise Refusal("mentoring/area_nothing", plan=plan)
    old = row.area
    row.area = area
    session.add(row)
    return Answer.of("mentoring/area_tagged", plan=plan, row=row, area=area, old=old, areas=AREAS)
