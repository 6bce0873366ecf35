"""The organization department's side of 导师帮带: pairing and re-pairing (结对), the quarterly
review (季评), annual grades and the 捆绑考核 result (考核), and removing a mentor (清退)."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, period_name
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from storage.models import ANNUAL_GRADES, REVIEW_RATINGS, AnnualGrade, AuditLog, Pairing, PairReview, Person

from .pairing_ops import Actor, NotFound, active_pair_of, dismiss_mentor, end_pairing, find_person, set_mentors
from .pairs import PairView, load_pairs

router = Router()
_MENTOR_SPLIT = re.compile(r"[、,，;；/]+")


def _actor(sender: Sender) -> Actor:
    return Actor(sender.name, sender.id)


async def _person(session: AsyncSession, name: str) -> Person:
    try:
        return await find_person(session, name)
    except NotFound as exc:
        raise Refusal("staff/not_found", reason=str(exc)) from None


@router.command(
    "结对", "pair", roles=STAFF_ROLES, private_only=True, order=60,
    summary="建立或调整帮带结对（组工干部）",
    usage="结对 徒弟 导师[、导师…] [原因]；结束：结对 结束 徒弟 原因",
    examples=("结对 李娜 张伟、王芳", "结对 赵强 王芳 性格类型不匹配", "结对 结束 赵强 调离本县"),
)
async def pair(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    first = args.take()
    if first is None:
        raise UsageError("请写上徒弟和导师的姓名")
    now = clock.now()
    if first in ("结束", "end"):
        name = args.take()
        reason = args.rest()
        if not name or not reason:
            raise UsageError("结束结对请写上徒弟姓名和原因", "结对 结束 赵强 调离本县")
        mentee = await _person(session, name)
        view = await active_pair_of(session, mentee.id)  # type: ignore[arg-type]
        if view is None:
            raise Refusal("staff/no_active_pair", name=mentee.name)
        await end_pairing(session, view, now.date(), reason, _actor(sender), now)
        return Answer.of("staff/pair_ended", view=view, reason=reason)
    words = args.take()
    if words is None:
        raise UsageError("请在徒弟姓名后写上导师姓名，导师团用“、”分隔")
    mentee = await _person(session, first)
    mentors: list[Person] = []
    for word in _MENTOR_SPLIT.split(words):
        if not word:
            continue
        person = await _person(session, word)
        if person.id == mentee.id:
            raise Refusal("staff/self_mentor", name=mentee.name)
        if all(m.id != person.id for m in mentors):
            mentors.append(person)
    reason = args.rest() or "组织部调整帮带关系"
    before = await active_pair_of(session, mentee.id)  # type: ignore[arg-type]
    outcome = await set_mentors(session, mentee, mentors, mentors[0], start=now.date(),
                                agreement=None if before is None else before.pairing.agreement_date,
                                reason=reason, actor=_actor(sender), now=now)
    return Answer.of("staff/paired", outcome=outcome, mentee=mentee, mentors=mentors, before=before, reason=reason)


@dataclass
class ReviewStatus:
    """季评 of one quarter: how many active pairs were reviewed, with which ratings, and which were not."""

    quarter: str
    total: int
    counts: list[tuple[str, int]]
    pending: list[PairView]

    @property
    def reviewed(self) -> int:
        return self.total - len(self.pending)


async def review_status(session: AsyncSession, quarter: str) -> ReviewStatus:
    views = await load_pairs(session)
    done = {r.pairing_id: r for r in (await session.exec(select(PairReview).where(PairReview.quarter == quarter))).all()}
    counts: dict[str, int] = defaultdict(int)
    for r in done.values():
        counts[r.rating] += 1
    return ReviewStatus(quarter, len(views), [(k, counts[k]) for k in REVIEW_RATINGS if counts[k]],
                        [v for v in views if v.id not in done])


@router.command(
    "季评", "review", roles=STAFF_ROLES, private_only=True, order=61,
    summary="帮带季度评议（组工干部）：查看本季度未评结对，或为结对评议",
    usage="季评；季评 徒弟 评价 [评语]（评价：好、较好、一般、差）",
    examples=("季评", "季评 李娜 较好 帮带扎实，下季度重点补群众工作"),
)
async def review(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    today = clock.today()
    quarter = period_name("quarter", today)
    name = args.take()
    if name is None:
        return Answer.of("staff/review_list", s=await review_status(session, quarter))
    rating = args.take()
    if rating is None or rating not in REVIEW_RATINGS:
        raise UsageError(f"评价请写 {'、'.join(REVIEW_RATINGS)} 之一", "季评 李娜 较好 帮带扎实")
    mentee = await _person(session, name)
    view = await active_pair_of(session, mentee.id)  # type: ignore[arg-type]
    if view is None:
        raise Refusal("staff/no_active_pair", name=mentee.name)
    comment = args.rest()
    existing = (
        await session.exec(select(PairReview).where(PairReview.pairing_id == view.id, PairReview.quarter == quarter))
    ).first()
    now = clock.now()
    if existing is None:
        existing = PairReview(pairing_id=view.id, quarter=quarter, rating=rating, comment=comment,
                              reviewer_id=sender.id, created_at=now)
        updated = False
    else:
        existing.rating, existing.comment, existing.reviewer_id, existing.created_at = rating, comment, sender.id, now
        updated = True
    session.add(existing)
    session.add(AuditLog(at=now, actor_id=sender.id, actor_label=sender.name, action="pairing.review",
                         target=f"pairing:{view.id}", detail={"quarter": quarter, "rating": rating}))
    return Answer.of("staff/reviewed", view=view, quarter=quarter, rating=rating, updated=updated)


@dataclass
class MentorVerdict:
    """捆绑考核 for one mentor in one year, from the annual grades of their mentees."""

    mentor: Person
    mentees: list[tuple[Person, AnnualGrade | None]] = field(default_factory=list)

    @property
    def missing(self) -> list[Person]:
        return [p for p, g in self.mentees if g is None]

    @property
    def eligible(self) -> bool:
        """评优评先资格: every mentee graded 称职 or better."""
        return not self.missing and all(g.grade in ("优秀", "称职") for _, g in self.mentees if g)

    @property
    def preferred(self) -> bool:
        """优先确定为优秀 and the 优秀导师 certificate: eligible, and a mentee 优秀 or commended."""
        return self.eligible and any(g.grade == "优秀" or g.commended for _, g in self.mentees if g)


async def bundled_assessment(session: AsyncSession, year: int) -> list[MentorVerdict]:
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    ids = (
        await session.exec(
            select(Pairing.id).where(
                Pairing.start_date <= last, or_(col(Pairing.ended_on).is_(None), col(Pairing.ended_on) >= first)
            )
        )
    ).all()
    views = await load_pairs(session, pairing_ids=ids, active_only=False)
    grades = {
        g.person_id: g for g in (await session.exec(select(AnnualGrade).where(AnnualGrade.year == year))).all()
    }
    verdicts: dict[int, MentorVerdict] = {}
    for v in views:
        for m in v.mentors:
            verdict = verdicts.setdefault(m.id, MentorVerdict(m))  # type: ignore[arg-type]
            if all(p.id != v.mentee.id for p, _ in verdict.mentees):
                verdict.mentees.append((v.mentee, grades.get(v.mentee.id)))  # type: ignore[arg-type]
    return sorted(verdicts.values(), key=lambda x: (not x.preferred, not x.eligible, x.mentor.id))


@router.command(
    "考核", "grade", roles=STAFF_ROLES, private_only=True, order=62,
    summary="捆绑考核（组工干部）：录入徒弟年度考核，查看导师评优资格",
    usage="考核 [年份]；考核 [年份] 徒弟 等次 [表彰]（等次：优秀、称职、基本称职、不称职）",
    examples=("考核", "考核 李娜 优秀", "考核 2026 赵强 称职 表彰"),
)
async def grade(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    year = clock.today().year
    token = args.take()
    if token is not None and re.fullmatch(r"\d{4}年?", token):
        year = int(token[:4])
        if not 2000 <= year <= clock.today().year:
            raise UsageError(f"年份 {year} 不对")
        token = args.take()
    if token is None:
        return Answer.of("staff/assessment", year=year, verdicts=await bundled_assessment(session, year))
    level = args.take()
    if level is None or level not in ANNUAL_GRADES:
        raise UsageError(f"等次请写 {'、'.join(ANNUAL_GRADES)} 之一", "考核 李娜 优秀")
    extra = args.rest()
    if extra not in ("", "表彰"):
        raise UsageError("等次后面只能写“表彰”（获县委县政府以上表彰时）", "考核 赵强 称职 表彰")
    mentee = await _person(session, token)
    now = clock.now()
    existing = (
        await session.exec(select(AnnualGrade).where(AnnualGrade.person_id == mentee.id, AnnualGrade.year == year))
    ).first() or AnnualGrade(person_id=mentee.id, year=year, grade=level, created_at=now)  # type: ignore[arg-type]
    existing.grade, existing.commended, existing.recorded_by, existing.created_at = level, extra == "表彰", sender.id, now
    session.add(existing)
    session.add(AuditLog(at=now, actor_id=sender.id, actor_label=sender.name, action="grade.set",
                         target=f"person:{mentee.id}", detail={"year": year, "grade": level, "commended": extra == "表彰"}))
    return Answer.of("staff/graded", mentee=mentee, year=year, grade=existing)


@router.command(
    "清退", "dismiss", roles=STAFF_ROLES, private_only=True, order=63,
    summary="清退不合格导师（组工干部）", usage="清退 导师姓名 原因", examples=("清退 张伟 连续两个季度帮带不到位",),
)
async def dismiss(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    name, reason = args.take(), args.rest()
    if not name or not reason:
        raise UsageError("请写上导师姓名和清退原因")
    mentor = await _person(session, name)
    views = await load_pairs(session)
    if not any(v.is_mentor(mentor.id) for v in views):  # type: ignore[arg-type]
        raise Refusal("staff/not_a_mentor", name=mentor.name)
    orphans: list[PairView] = await dismiss_mentor(session, mentor, reason, _actor(sender), clock.now())
    return Answer.of("staff/dismissed", mentor=mentor, orphans=orphans,
                     changed=[v for v in views if v.is_mentor(mentor.id)])  # type: ignore[arg-type]
