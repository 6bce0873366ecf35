"""导师库 in chat: 组织推荐 (staff) and 个人自荐 (anyone), approval by the organization department that
grants the 导师 role, the pool with each mentor's mentees and 辅导次数, incentives (体检、补助、培训) and
the 优秀导师 certificates. Every decision is audited."""

from __future__ import annotations

import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.clock import Clock
from bot.dates import beijing_day
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.config import Config
from bot.render import Renderer
from bot.text import Args
from bot.notify import Notifier
from storage.models import (INCENTIVE_KINDS, MentorIncentive, MentorNomination, NominationStatus, Person,
                            PersonRole, Role)

from handlers.args import rest, word
from handlers.mentoring.certificates import CertificateSetupError, issue_certificates
from handlers.mentoring.pool_queries import mentor_pool
from bot.identity import NotFound, find_person

router = Router()

_MONTH = re.compile(r"^(\d{4})[-年/.]?(\d{1,2})月?$")
_AMOUNT = re.compile(r"^(\d{1,6})元?$")
MAX_REASON = 500


async def _person(session: AsyncSession, name: str) -> Person:
    try:
        return await find_person(session, name)
    except NotFound as exc:
        raise Refusal("staff/not_found", reason=exc.reason, **exc.values) from None



async def _is_mentor(session: AsyncSession, person_id: int) -> bool:
    return await session.get(PersonRole, (person_id, str(Role.MENTOR))) is not None


mentor_command = router.command(
    "导师", "mentor", order=64, private_only=True,  # reasons, decisions and 补助 amounts are not for a group
    summary="导师库：个人自荐；组工干部推荐、审核、查看导师库、登记激励、颁发优秀导师证书",
    usage="导师 自荐 理由",
)
STAFF = dict(roles=STAFF_ROLES)


@mentor_command.sub("自荐", "apply", usage="导师 自荐 理由", examples=("导师 自荐 在乡镇工作二十年，愿意带年轻干部",))
async def mentor_apply(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _nominate(sender, sender.person, args, session, clock, "apply")


@mentor_command.sub("推荐", "nominate", **STAFF, usage="导师 推荐 姓名 理由", examples=("导师 推荐 周敏 基层经验丰富",))
async def mentor_nominate(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    person = await _person(session, word(args, "mentor/usage/nominate"))
    return await _nominate(sender, person, args, session, clock, "nominate")


async def _nominate(sender: Sender, person: Person, args: Args, session: AsyncSession, clock: Clock,
                    action: str) -> Answer:
    now = clock.now()
    reason = rest(args, "mentor/usage/reason", limit=MAX_REASON, too_long="mentor/usage/reason_long")
    if await _is_mentor(session, person.id):  # type: ignore[arg-type]
        raise Refusal("mentor/already", name=person.name)
    row = (await session.exec(select(MentorNomination).where(MentorNomination.person_id == person.id))).first()
    if row is not None and row.status == NominationStatus.PENDING:
        raise Refusal("mentor/pending_already", name=person.name, row=row)
    row = row or MentorNomination(person_id=person.id, source="", reason="", created_at=now)  # type: ignore[arg-type]
    row.source = "组织推荐" if action == "nominate" else "个人自荐"
    row.reason, row.nominated_by, row.status, row.created_at = reason, sender.id, NominationStatus.PENDING, now
    row.decided_by, row.decided_at, row.decision_note = None, None, ""
    session.add(row)
    audit(session, now, sender, f"mentor.{action}", f"person:{person.id}", name=person.name, reason=reason)
    return Answer.of("mentor/nominated", person=person, row=row, self_applied=action == "apply")


@mentor_command.sub("通过", "approve", **STAFF, usage="导师 通过 姓名", examples=("导师 通过 周敏",))
async def mentor_approve(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _decide(sender, args, session, clock, "approve", word(args, "mentor/usage/approve"))


@mentor_command.sub("不通过", "reject", **STAFF, usage="导师 不通过 姓名 原因", examples=("导师 不通过 周敏 暂不符合条件",))
async def mentor_reject(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    name = word(args, "mentor/usage/reject")
    if not args:
        raise UsageError("mentor/usage/reject")
    return await _decide(sender, args, session, clock, "reject", name)


async def _decide(sender: Sender, args: Args, session: AsyncSession, clock: Clock, action: str, name: str) -> Answer:
    now = clock.now()
    note = args.rest()
    person = await _person(session, name)
    row = (await session.exec(select(MentorNomination).where(MentorNomination.person_id == person.id))).first()
    if row is None or row.status != NominationStatus.PENDING:
        raise Refusal("mentor/no_application", name=person.name)
    row.status = NominationStatus.APPROVED if action == "approve" else NominationStatus.REJECTED
    row.decided_by, row.decided_at, row.decision_note = sender.id, now, note
    session.add(row)
    if action == "approve" and not await _is_mentor(session, person.id):  # type: ignore[arg-type]
        session.add(PersonRole(person_id=person.id, role=str(Role.MENTOR)))  # type: ignore[arg-type]
    audit(session, now, sender, f"mentor.{action}", f"person:{person.id}", name=person.name, note=note, source=row.source)
    return Answer.of("mentor/decided", person=person, row=row, approved=action == "approve")


@mentor_command.sub("库", "pool", **STAFF, usage="导师 库", examples=("导师 库",))
async def mentor_pool_command(args: Args, session: AsyncSession, clock: Clock) -> Answer:
    if args:
        raise UsageError("mentor/usage/pool_alone")
    return Answer.of("mentor/pool", entries=await mentor_pool(session, clock.today()), year=clock.today().year)


@mentor_command.sub("激励", "incentive", **STAFF, usage="导师 激励 姓名 体检|培训 说明 | 导师 激励 姓名 补助 2026-11 300",
                    examples=("导师 激励 张伟 补助 2026-11 300", "导师 激励 张伟 体检 2026年度健康体检"))
async def mentor_incentive(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _incentive(sender, args, session, clock.now())


@mentor_command.sub("证书", "certificates", **STAFF, usage="导师 证书 [年份]", examples=("导师 证书",))
async def mentor_certificates(args: Args, session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                              notify: Notifier) -> Answer:
    token = args.take()
    year = clock.today().year
    if token is not None:
        if not re.fullmatch(r"\d{4}年?", token) or not 2000 <= int(token[:4]) <= year:
            raise UsageError("mentor/usage/bad_year", f"导师 证书 {year}", year=token)
        year = int(token[:4])
    try:
        issued = await issue_certificates(session, year, config=config, clock=clock, renderer=renderer,
                                            notify=notify)
    except CertificateSetupError as exc:
        raise Refusal("mentor/certificate_setup", reason=str(exc)) from None
    return Answer.of("mentor/certificates", year=year, issued=issued)


async def _incentive(sender: Sender, args: Args, session: AsyncSession, now) -> Answer:
    name, kind = args.take(), args.take()
    example = "导师 激励 张伟 补助 2026-11 300"
    if name is None or kind is None:
        raise UsageError("mentor/usage/incentive", example)
    if kind not in INCENTIVE_KINDS:
        raise UsageError("mentor/usage/incentive_kind", example, kinds=INCENTIVE_KINDS)
    person = await _person(session, name)
    if not await _is_mentor(session, person.id):  # type: ignore[arg-type]
        raise Refusal("staff/not_a_mentor", name=person.name)
    month, amount = f"{beijing_day(now):%Y-%m}", None
    if kind == "补助":
        m, a = _MONTH.match(args.take() or ""), _AMOUNT.match(args.take() or "")
        if m is None or a is None or not 1 <= int(m.group(2)) <= 12:
            raise UsageError("mentor/usage/allowance", example)
        month, amount = f"{m.group(1)}-{int(m.group(2)):02d}", int(a.group(1))
    note = args.rest()
    if kind != "补助" and not note:
        raise UsageError("mentor/usage/incentive_note", f"导师 激励 {person.name} {kind} " + ("2026年度健康体检" if kind == "体检" else "市委党校导师培训班"))
    if len(note) > MAX_REASON:
        raise UsageError("mentor/usage/incentive_note_long", limit=MAX_REASON, length=len(note))
    row = None
    if kind == "补助":
        row = (await session.exec(select(MentorIncentive).where(
            MentorIncentive.person_id == person.id, MentorIncentive.kind == kind, MentorIncentive.month == month))).first()
    updated = row is not None
    row = row or MentorIncentive(person_id=person.id, kind=kind, month=month, created_at=now)  # type: ignore[arg-type]
    row.amount, row.note, row.recorded_by = amount, note, sender.id
    session.add(row)
    audit(session, now, sender, "mentor.incentive", f"person:{person.id}", name=person.name, kind=kind, month=month, amount=amount, note=note)
    return Answer.of("mentor/incentive_saved", person=person, row=row, updated=updated)
