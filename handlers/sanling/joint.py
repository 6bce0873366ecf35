"""调任联办单 (最多跑一次): 一科受理、一单抄告、联审经办.

When staff accept (受理) a 联办单 case, it is copied at once, privately, to every department its guide
lists: to the people named for that department in ``[sanling] department_staff``, else to the 三联
contacts linked to the department's unit. Each department records its part with ``联审 #9 同意 …``;
when the last part is in the case closes and the applicant is told, once. Staff may record a part for a
department that has nobody to do it.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.clock import Clock
from bot.config import Config
from bot.identity import Sender, staff_ids
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, fold
from bot.notify import Notifier
from storage.models import CaseStatus, JointPart, LiaisonLink, Person, ReviewCase, ReviewDecision, Unit

from handlers.sanling.case_ops import files_of, local, people_labels, take_ticket

router = Router()

RESULTS = {"同意": "同意", "通过": "同意", "agree": "同意", "不同意": "不同意", "不通过": "不同意", "disagree": "不同意"}
_SEP = " \t\n:,;：，；、\u3000"


async def reviewers_for(session: AsyncSession, config: Config, department: str) -> list[int]:
    """Who records a department's part: its configured staff, else the 三联 contacts of its unit."""
    names = config.sanling.department_staff.get(department)
    if names:
        rows = await session.exec(select(Person.id).where(col(Person.name).in_([str(n) for n in names]),
                                                          Person.active == True))  # noqa: E712
        return sorted(set(rows.all()))
    rows = await session.exec(
        select(LiaisonLink.person_id).join(Unit, Unit.id == LiaisonLink.unit_id)
        .where(Unit.name == department, LiaisonLink.active == True))  # noqa: E712
    return sorted(set(rows.all()))


async def copy_to_departments(session: AsyncSession, notify: Notifier, config: Config,
                              sender: Sender, case: ReviewCase, now: dt.datetime) -> list[dict]:
    """一单抄告: one part per listed department, each copied privately to its reviewers right away."""
    from handlers.sanling.guides import load_guides

    guide = next((g for g in load_guides(config.programme.guides_dir) if g.key == case.procedure), None)
    departments = guide.departments if guide is not None else ()
    label = (await people_labels(session, {case.submitter_id})).get(case.submitter_id, "")
    files = len(await files_of(session, case.id))  # type: ignore[arg-type]
    out = []
    for department in departments:
        reviewers = await reviewers_for(session, config, department)
        part = JointPart(case_id=case.id, department=department, reviewers=reviewers)  # type: ignore[arg-type]
        session.add(part)
        await session.flush()
        copy = Answer.of("sanling/joint_copy", c=case, department=department, sender=label,
                         files=files, many=sum(1 for _ in departments) > 1)
        await notify.everyone(session, copy, {pid: f"joint-copy:{part.id}:{pid}" for pid in reviewers}, source="case")
        out.append({"department": department, "reviewers": len(reviewers)})
    audit(session, now, sender, "case.joint_copy", f"case:{case.id}", departments=list(departments))
    return out


@router.command(
    "联审", "joint", private_only=True, order=33,
    summary="调任联办单联审：各部门录入意见",
    usage="联审 | 联审 #编号 [部门] 同意/不同意 意见",
    examples=("联审 #9 同意 编制已核准", "联审"),
)
async def joint(sender: Sender, args: Args, session: AsyncSession, clock: Clock, notify: Notifier) -> Answer:
    raw = args.rest()
    if not raw:
        return await _mine(sender, session)
    ticket = take_ticket(raw)
    if ticket is None:
        raise UsageError("sanling/usage/joint", "联审 #9 同意 编制已核准")
    number, rest = ticket
    case = await session.get(ReviewCase, number)
    parts = [] if case is None else list((await session.exec(
        select(JointPart).where(JointPart.case_id == case.id).order_by(JointPart.id))).all())
    mine = [p for p in parts if sender.id in p.reviewers or sender.is_staff]
    if case is None or not mine:
        raise Refusal("sanling/joint_unknown", number=number)
    # A person who records several departments' parts (or staff) names the department first.
    words = rest.split(maxsplit=1)
    part = next((p for p in mine if words and fold(words[0]) == p.department), None)
    if part is not None:
        rest = words[1] if len(words) > 1 else ""
    elif len(mine) == 1:
        part = mine[0]
    else:
        raise Refusal("sanling/joint_which", c=case, parts=mine)
    words = rest.lstrip(_SEP).split(maxsplit=1)
    result = RESULTS.get(fold(words[0])) if words else None
    if result is None:
        raise UsageError("sanling/usage/joint_result", f"联审 #{number} 同意 材料齐全")
    note = words[1].strip() if len(words) > 1 else ""
    if len(note) > 500:
        raise UsageError("sanling/usage/joint_note_long", f"联审 #{number} 同意 材料齐全", limit=500, length=len(note))
    if case.status != CaseStatus.JOINT:
        raise Refusal("sanling/joint_closed", c=case)
    if part.result:
        raise Refusal("sanling/joint_done", c=case, part=part)
    now = clock.now()
    part.result, part.note, part.by_id, part.at = result, note, sender.id, now
    session.add(part)
    audit(session, now, sender, "case.joint_part", f"case:{case.id}", department=part.department, result=result)
    pending = [p for p in parts if not p.result]
    if not pending:
        case.status, case.decided_at = CaseStatus.CLOSED, now
        session.add(case)
        session.add(ReviewDecision(case_id=case.id, action="办结", actor_id=sender.id, at=now))  # type: ignore[arg-type]
        audit(session, now, sender, "case.joint_close", f"case:{case.id}")
        # Keyed by the case alone: the applicant is told once, however the last part arrives.
        await notify(session, f"joint-closed:{case.id}", case.submitter_id,
                     Answer.of("sanling/joint_closed_notice", c=case, parts=parts), source="case")
        staff = await staff_ids(session)
        await notify.everyone(session, Answer.of("sanling/joint_closed_staff", c=case, parts=parts),
                              {pid: f"joint-closed-staff:{case.id}:{pid}" for pid in staff if pid != sender.id},
                              source="case")
    return Answer.of("sanling/joint_recorded", c=case, part=part, pending=pending)


async def _mine(sender: Sender, session: AsyncSession) -> Answer:
    parts = list((await session.exec(
        select(JointPart, ReviewCase).join(ReviewCase, ReviewCase.id == JointPart.case_id)
        .where(JointPart.result == "", ReviewCase.status == CaseStatus.JOINT).order_by(JointPart.id))).all())
    mine = [(p, c) for p, c in parts if sender.id in p.reviewers or sender.is_staff]
    return Answer.of("sanling/joint_mine", parts=[{"p": p, "c": c, "at": local(c.submitted_at) if c.submitted_at else None}
                                                  for p, c in mine[:30]], total=len(mine))
