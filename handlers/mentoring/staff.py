"""The organization department's side of 导师帮带: pairing and re-pairing (结对), the quarterly
review (季评), annual grades and the 捆绑考核 result (考核), and removing a mentor (清退).

Every change of who mentors whom is told privately to the mentee and to each mentor who joins or
leaves (through the outbox); the figures come from ``mentoring_queries``."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.clock import Clock, period_bounds, period_name
from bot.config import Config
from bot.identity import STAFF_ROLES, Sender
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from bot.calendar import WorkCalendar
from bot.notify import Notice, Notifier
from storage.models import (ANNUAL_GRADES, REPORT_ITEMS, REVIEW_RATINGS, AnnualGrade, PairReview, Person,
                            PersonRole, ReviewReport, Role)

from handlers.mentoring.queries import ReviewStatus, bundled_assessment, has_bangdai_in, quarter_bounds, review_status
from bot.identity import NotFound, find_person
from handlers.args import word
from handlers.mentoring.pairing import MentorChange, active_pair_of, change_mentors, dismiss_mentor, end_pairing
from handlers.mentoring.pairs import bangdai_of, load_pairs
from handlers.mentoring.reviews import POOR, report_quarter, reports_of

__all__ = ["ReviewStatus", "bundled_assessment", "review_status"]

router = Router()
_MENTOR_SPLIT = re.compile(r"[、,，;；/]+")
_QUARTER = re.compile(r"^(\d{4})[-年]?[Qq季]?([1-4])季?度?$")


def _actor(sender: Sender) -> Actor:
    return Actor.of(sender)


async def _person(session: AsyncSession, name: str) -> Person:
    try:
        return await find_person(session, name)
    except NotFound as exc:
        raise Refusal("staff/not_found", reason=exc.reason, **exc.values) from None


async def tell_change(notify: Notifier, session: AsyncSession, change: MentorChange, now: dt.datetime) -> int:
    """Tell the mentee and each mentor who joined or left, privately, what changed and from when."""
    if change.view is None or not (change.joined or change.left):
        return 0
    view = change.view.as_of(None)
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    notices = [Notice(f"bangdai-change:{view.id}:{change.mentee.id}:{stamp}",
                      Answer.of("staff/notice_mentee", c=change, view=view), person_id=change.mentee.id, source="pairing")]
    notices += [Notice(f"bangdai-change:{view.id}:{m.id}:{stamp}", Answer.of("staff/notice_joined", c=change, view=view,
                                                                             mentor=m), person_id=m.id, source="pairing")
                for m in change.joined]
    notices += [Notice(f"bangdai-change:{view.id}:{m.id}:{stamp}", Answer.of("staff/notice_left", c=change, view=view,
                                                                           mentor=m), person_id=m.id, source="pairing")
                for m in change.left]
    return await notify.many(session, notices)


pair_command = router.command(
    "结对", "pair", roles=STAFF_ROLES, private_only=True, order=60,
    summary="建立或调整帮带结对（组工干部）",
    usage="结对 徒弟 导师[、导师…] [原因]",
    examples=("结对 李娜 张伟、王芳", "结对 赵强 王芳 性格类型不匹配"),
)


@pair_command.sub("结束", "end", usage="结对 结束 徒弟 原因", examples=("结对 结束 赵强 调离本县",))
async def pair_end(sender: Sender, args: Args, session: AsyncSession, clock: Clock, notify: Notifier) -> Answer:
    now = clock.now()
    name = args.take()
    reason = args.rest()
    if not name or not reason:
        raise UsageError("staff/usage/pair_end")
    mentee = await _person(session, name)
    view = await active_pair_of(session, mentee.id)  # type: ignore[arg-type]
    if view is None:
        raise Refusal("staff/no_active_pair", name=mentee.name)
    label = view.as_of(None).label  # before the terms end
    change = await end_pairing(session, view, clock.today(), reason, _actor(sender), now)
    await tell_change(notify, session, change, now)
    return Answer.of("staff/pair_ended", label=label, reason=reason)


@pair_command.sub("确认", "confirm", usage="结对 确认 徒弟 导师 [原因]", examples=("结对 确认 李娜 张伟",))
async def pair_confirmed(sender: Sender, args: Args, session: AsyncSession, clock: Clock, notify: Notifier) -> Answer:
    """结对 after 结对's question: the newcomers named become mentors (granted the role) and pair."""
    return await _pair(sender, word(args, "staff/usage/pair"), args, session, clock, notify, confirmed=True)


@pair_command
async def pair(sender: Sender, args: Args, session: AsyncSession, clock: Clock, notify: Notifier) -> Answer:
    return await _pair(sender, word(args, "staff/usage/pair"), args, session, clock, notify, confirmed=False)


async def _pair(sender: Sender, first: str, args: Args, session: AsyncSession, clock: Clock, notify: Notifier,
                confirmed: bool) -> Answer:
    now = clock.now()
    words = args.take()
    if words is None:
        raise UsageError("staff/usage/pair_mentors")
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
    if not mentors:
        raise UsageError("staff/usage/pair_mentors")
    reason = args.rest()
    view = await bangdai_of(session, mentee.id)  # type: ignore[arg-type]
    current = {m.id for m in view.mentors} if view is not None else set()
    roles = set((await session.exec(
        select(PersonRole.person_id).where(PersonRole.role == str(Role.MENTOR),
                                           PersonRole.person_id.in_([m.id for m in mentors]))  # type: ignore[attr-defined]
    )).all())
    newcomers = [m for m in mentors if m.id not in roles and m.id not in current]
    if newcomers and not confirmed:
        return Answer.of("staff/pair_confirm", mentee=mentee, mentors=mentors, newcomers=newcomers, words=words,
                         reason=reason)
    before = view.as_of(None).mentor_names if view is not None and view.pairing.active else None
    change = await change_mentors(session, mentee, mentors, mentors[0], start=clock.today(), agreement=None,
                                  reason=reason or "组织部调整帮带关系", actor=_actor(sender), now=now)
    await tell_change(notify, session, change, now)
    return Answer.of("staff/paired", outcome=change.outcome, mentee=mentee, mentors=mentors, before=before,
                     reason=reason or "组织部调整帮带关系", change=change)


def reviewable_quarters(today: dt.date, grace_days: int, calendar: WorkCalendar) -> list[str]:
    """The quarters a 季评 may be given for today: this one, and the last one until ``grace_days``
    working days after it ended."""
    this_first, _ = period_bounds("quarter", today)
    last_end = this_first - dt.timedelta(days=1)
    quarters = [period_name("quarter", today)]
    deadline = calendar.add_workdays(dt.datetime.combine(last_end, dt.time()), grace_days).date()
    if today <= deadline:
        quarters.append(period_name("quarter", last_end))
    return quarters


def _quarter_word(token: str) -> str | None:
    m = _QUARTER.match(token)
    return f"{m.group(1)}-Q{m.group(2)}" if m else None


REPORT_WORDS = {  # 季评 汇报 <item> …: the words a mentor may use for each item of the report
    "工作": "done", "做法": "done", "情况": "done", "帮带情况": "done",
    "问题": "problems", "存在问题": "problems",
    "整改": "fixes", "整改方向": "fixes",
    "下步": "next_focus", "下步重点": "next_focus", "重点": "next_focus",
}
_LABELLED = re.compile(r"(" + "|".join(sorted(REPORT_WORDS, key=len, reverse=True)) + r")\s*[:：]")


def split_report(text: str) -> dict[str, str]:
    """A report in one message: labelled parts (``工作：… 问题：… 整改：… 下步：…``) go to their items;
    text without labels is all 帮带情况 (what was done)."""
    parts = _LABELLED.split(text)
    if len(parts) == 1:
        return {"done": text.strip()}
    out: dict[str, str] = {}
    if parts[0].strip():
        out["done"] = parts[0].strip(" ；;，,。\n")
    for word, body in zip(parts[1::2], parts[2::2]):
        body = body.strip().rstrip("；;，,").strip()
        key = REPORT_WORDS[word]
        out[key] = (out[key] + "；" + body) if out.get(key) and body else (body or out.get(key, ""))
    return {k: v for k, v in out.items() if v}


review_command = router.command(
    "季评", "review", roles={*STAFF_ROLES, Role.MENTOR}, private_only=True, order=61,
    summary="帮带季度评议：导师汇报本季度帮带情况；组工干部查看汇报并评议",
    usage=("导师：季评（看自己的汇报）；组工干部：季评 [季度]；季评 [季度] 徒弟（看汇报）；"
           "季评 [季度] 徒弟 评价 [评语]（评价：好、较好、一般、差；季度如 2026Q3）"),
    examples=("季评", "季评 李娜", "季评 李娜 较好 帮带扎实，下季度重点补群众工作", "季评 2026Q3 李娜 好"),
)


@review_command.sub("汇报", "report", usage="季评 汇报 [季度] [徒弟] [工作|问题|整改|下步] 内容",
                    examples=("季评 汇报 李娜 问题 群众工作经验不足", "季评 汇报 工作 每周面谈一次，带着跑了三个村"))
async def review_report(sender: Sender, args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar,
                        config: Config) -> Answer:
    allowed = reviewable_quarters(clock.today(), config.programme.review_grace_working_days, calendar)
    return await _report(sender, args, session, clock, allowed)


@review_command
async def review(sender: Sender, args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar,
                 config: Config) -> Answer:
    today = clock.today()
    quarter = period_name("quarter", today)
    allowed = reviewable_quarters(today, config.programme.review_grace_working_days, calendar)
    if not sender.is_staff:
        if args:
            raise Refusal("staff/review_mentor_only", example="季评 汇报 工作 每周面谈一次，带着跑了三个村")
        return await _my_reports(sender, session, report_quarter(today, allowed))
    name = args.take()
    if name is not None and (asked := _quarter_word(name)) is not None:
        name = args.take()
        if name is not None and asked not in allowed:
            raise Refusal("staff/review_closed", quarter=asked, allowed=allowed,
                          grace=config.programme.review_grace_working_days)
        if asked > quarter:
            raise Refusal("staff/review_closed", quarter=asked, allowed=allowed,
                          grace=config.programme.review_grace_working_days)
        quarter = asked
    if name is None:
        status = await review_status(session, quarter)
        return Answer.of("staff/review_list", s=status,
                         reported=set(await reports_of(session, quarter, [v.id for v in status.pending]))).as_card()
    rating = args.take()
    mentee = await _person(session, name)
    first, last = quarter_bounds(quarter)
    view = await bangdai_of(session, mentee.id)  # type: ignore[arg-type]
    if view is None or not view.mentored_in(first, last):
        raise Refusal("staff/no_pair_in_quarter", name=mentee.name, quarter=quarter)
    view = view.last_mentors_in(first, last)
    existing = (
        await session.exec(select(PairReview).where(PairReview.pairing_id == view.id, PairReview.quarter == quarter))
    ).first()
    if rating is None:  # the mentors' reports, with the 季评 so far: what staff look at before rating
        return Answer.of("staff/review_one", view=view, quarter=quarter, review=existing, items=REPORT_ITEMS,
                         reports=(await reports_of(session, quarter, [view.id])).get(view.id, []),
                         names={m.id: m.name for t in view.terms for m in [t.mentor]})
    if rating not in REVIEW_RATINGS:
        raise UsageError("staff/usage/rating", "季评 李娜 较好 帮带扎实", ratings=REVIEW_RATINGS)
    comment = args.rest()
    now = clock.now()
    if existing is None:
        existing = PairReview(pairing_id=view.id, quarter=quarter, rating=rating, comment=comment,
                              reviewer_id=sender.id, created_at=now)
        updated = False
    else:
        existing.rating, existing.comment, existing.reviewer_id, existing.created_at = rating, comment, sender.id, now
        updated = True
    session.add(existing)
    audit(session, now, sender, "pairing.review", f"pairing:{view.id}", quarter=quarter, rating=rating)
    return Answer.of("staff/reviewed", view=view, quarter=quarter, rating=rating, updated=updated,
                     current=quarter == period_name("quarter", today), poor=rating == POOR,
                     active=view.pairing.active)


async def _report(sender: Sender, args: Args, session: AsyncSession, clock: Clock, allowed: list[str]) -> Answer:
    """季评 汇报 [季度] [徒弟] [项目] 内容 — a mentor's report on one 帮带 for a quarter."""
    today = clock.today()
    quarter = report_quarter(today, allowed)
    word = args.peek()
    if word is not None and (asked := _quarter_word(word)) is not None:
        if asked not in allowed:
            raise Refusal("staff/report_closed", quarter=asked, allowed=allowed)
        args.take()
        quarter = asked
    first, last = quarter_bounds(quarter)
    mine = [v.last_mentors_in(first, last) for v in await load_pairs(session, active_only=False)
            if any(t.mentor.id == sender.id and t.overlaps(first, last) for t in v.terms)]
    if not mine:
        raise Refusal("staff/report_no_pair", quarter=quarter)
    word = args.peek()
    named = [v for v in mine if word is not None and v.mentee.name == word]
    if named:
        args.take()
        view = named[0]
    elif len(mine) == 1:
        view = mine[0]
    else:
        raise Refusal("staff/report_which", quarter=quarter, views=mine)
    labelled = _LABELLED.match(args.rest()) is not None  # "工作：… 问题：…": the whole report at once
    item = None if labelled else REPORT_WORDS.get(args.peek() or "")
    if item is not None:
        args.take()
    text = args.rest()
    if not text:
        raise UsageError("staff/usage/report_text", f"季评 汇报 {view.mentee.name} 问题 群众工作经验不足")
    if len(text) > 2000:
        raise UsageError("staff/usage/report_long",
                         f"季评 汇报 {view.mentee.name} 下步 重点补基层治理")
    parts = {item: text} if item else split_report(text)
    row = (await session.exec(select(ReviewReport).where(
        ReviewReport.pairing_id == view.id, ReviewReport.quarter == quarter, ReviewReport.mentor_id == sender.id))).first()
    now = clock.now()
    if row is None:
        row = ReviewReport(pairing_id=view.id, quarter=quarter, mentor_id=sender.id, updated_at=now)
    for key, value in parts.items():
        setattr(row, key, value)
    row.updated_at = now
    session.add(row)
    return Answer.of("staff/report_saved", view=view, quarter=quarter, row=row, items=REPORT_ITEMS,
                     changed=[REPORT_ITEMS[k] for k in parts], several=len(mine) > 1)


async def _my_reports(sender: Sender, session: AsyncSession, quarter: str) -> Answer:
    first, last = quarter_bounds(quarter)
    mine = [v.last_mentors_in(first, last) for v in await load_pairs(session, active_only=False)
            if any(t.mentor.id == sender.id and t.overlaps(first, last) for t in v.terms)]
    reports = await reports_of(session, quarter, [v.id for v in mine])
    rows = [(v, next((r for r in reports.get(v.id, []) if r.mentor_id == sender.id), None)) for v in mine]
    return Answer.of("staff/report_mine", quarter=quarter, rows=rows, items=REPORT_ITEMS)


@router.command(
    "考核", "grade", roles=STAFF_ROLES, private_only=True, order=62,
    summary="捆绑考核（组工干部）：录入徒弟年度考核，查看导师评优资格",
    usage="考核 [年份]；考核 [年份] 徒弟 等次 [表彰]（等次：优秀、称职、基本称职、不称职）",
    examples=("考核", "考核 李娜 优秀", "考核 2026 赵强 称职 表彰"),
)
async def grade(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config) -> Answer:
    year = clock.today().year
    token = args.take()
    if token is not None and re.fullmatch(r"\d{4}年?", token):
        year = int(token[:4])
        if not 2000 <= year <= clock.today().year:
            raise UsageError("staff/usage/bad_year", year=year)
        token = args.take()
    min_months = config.programme.bundle_min_months
    if token is None:
        return Answer.of("staff/assessment", year=year, min_months=min_months,
                         verdicts=await bundled_assessment(session, year, min_months))
    level = args.take()
    if level is None or level not in ANNUAL_GRADES:
        raise UsageError("staff/usage/grade_level", "考核 李娜 优秀", grades=ANNUAL_GRADES)
    extra = args.rest()
    if extra not in ("", "表彰"):
        raise UsageError("staff/usage/grade_extra", "考核 赵强 称职 表彰")
    mentee = await _person(session, token)
    if not await has_bangdai_in(session, mentee.id, year):  # type: ignore[arg-type]
        raise Refusal("staff/grade_no_pair", name=mentee.name, year=year)
    now = clock.now()
    existing = (
        await session.exec(select(AnnualGrade).where(AnnualGrade.person_id == mentee.id, AnnualGrade.year == year))
    ).first() or AnnualGrade(person_id=mentee.id, year=year, grade=level, created_at=now)  # type: ignore[arg-type]
    existing.grade, existing.commended, existing.recorded_by, existing.created_at = level, extra == "表彰", sender.id, now
    session.add(existing)
    audit(session, now, sender, "grade.set", f"person:{mentee.id}", year=year, grade=level, commended=extra == "表彰")
    return Answer.of("staff/graded", mentee=mentee, year=year, grade=existing)


@router.command(
    "清退", "dismiss", roles=STAFF_ROLES, private_only=True, order=63,
    summary="清退不合格导师（组工干部）", usage="清退 导师姓名 原因", examples=("清退 张伟 连续两个季度帮带不到位",),
)
async def dismiss(sender: Sender, args: Args, session: AsyncSession, clock: Clock, notify: Notifier) -> Answer:
    name, reason = args.take(), args.rest()
    if not name or not reason:
        raise UsageError("staff/usage/dismiss")
    mentor = await _person(session, name)
    views = await load_pairs(session)
    if not any(v.is_mentor(mentor.id) for v in views):  # type: ignore[arg-type]
        raise Refusal("staff/not_a_mentor", name=mentor.name)
    now = clock.now()
    changes = await dismiss_mentor(session, mentor, reason, _actor(sender), now)
    for change in changes:
        change.view = (await load_pairs(session, pairing_ids=[change.view.id], active_only=False))[0]  # type: ignore[union-attr]
        await tell_change(notify, session, change, now)
    return Answer.of("staff/dismissed", mentor=mentor, orphans=[c.view for c in changes if c.outcome == "ended"],
                     changed=[c.view for c in changes])
