"""预审 (三零 零跑腿): a cadre submits a procedure for the department's 钉钉预审 from a private chat.

``预审 借用顶岗`` opens a case for any guide marked ``prereview``: the guide's materials become a
checklist; the submitter sends text (``预审 材料 2 …``, ``预审 说明 …``) and files or pictures (they
go to the checklist item chosen last), then ``预审 提交``. Staff take cases in order of arrival within
the guide's working-day limit: 通过, 退回 (the case reopens and the submitter is told what to add),
转 (to another department). A 调任 guide lists departments: its case is a 联办单, 受理 once and copied to
each department (see ``sanling_joint``).

A person has at most one case open for editing at a time, so a file sent on its own has exactly one
place to go. Nobody but the submitter and staff learns that a case exists.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.calendar import WorkCalendar
from bot.clock import Clock
from bot.config import Config
from bot.identity import STAFF_ROLES, Sender, staff_ids
from bot.inbound import Attachment, Fetch, FetchError, FileTooLarge, InboundMessage
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, fold
from bot.notify import Notifier
from storage.files import FileStore
from storage.models import CaseStatus, JointPart, ReviewCase, ReviewDecision, ReviewFile, ReviewItem

from handlers.args import nothing_more
from handlers.sanling.guides import Guide, find_guides, load_guides
from handlers.sanling.case_ops import (STATUS_LABELS, checklist, due_after, files_of, local, people_labels, queue,
                               staff_views, take_ticket)
from handlers.sanling.joint import copy_to_departments

log = logging.getLogger(__name__)
router = Router()


MAX_TEXT = 2000
MAX_REASON = 500
MAX_FILES = 50  # per case: a phone full of photos is not a case file

_SEP = " \t\n:,;：，；、\u3000"
def prereviewable(config: Config) -> list[Guide]:
    return [g for g in load_guides(config.programme.guides_dir) if g.prereview]


def hint_name(guide: Guide) -> str:
    """What to type after 预审 to reach this guide (its first alias, else its title)."""
    return guide.aliases[0] if guide.aliases else guide.title


prereview_command = router.command(
    "预审", "prereview", private_only=True, order=32, attachments=True,
    summary="钉钉预审（零跑腿）：提交材料、查询进度；组工干部审核",
    usage="预审 流程名称",
    examples=("预审 借用顶岗", "预审 提交", "预审 查询"),
)


@prereview_command
async def prereview(sender: Sender, msg: InboundMessage, args: Args, session: AsyncSession, clock: Clock,
                    config: Config, fetch: Fetch | None) -> Answer:
    """预审 alone: one's cases; 预审 流程名称 opens a case; files sent alone go to the open case."""
    if msg.attachments and not args:
        return await _attach(sender, session, clock, config, msg.attachments, fetch)
    if not args:
        return await _overview(sender, session, config)
    return await _open(sender, session, clock, config, args.rest())


@dataclass(frozen=True)
class Call:
    """What every 预审 sub-command gets: the sender, the transaction, and the words after the sub-command."""

    sender: Sender
    session: AsyncSession
    clock: Clock
    config: Config
    calendar: WorkCalendar
    notify: Notifier
    tail: str
    verb: str


async def open_case(session: AsyncSession, person_id: int) -> ReviewCase | None:
    """The one case this person is still filling in (new or returned), if any."""
    return (await session.exec(
        select(ReviewCase).where(ReviewCase.submitter_id == person_id,
                                 col(ReviewCase.status).in_(CaseStatus.OPEN_FOR_SUBMITTER))
        .order_by(col(ReviewCase.id).desc()))).first()


async def _need_open(session: AsyncSession, sender: Sender) -> ReviewCase:
    case = await open_case(session, sender.id)
    if case is None:
        raise Refusal("sanling/case_none_open")
    return case


async def _overview(sender: Sender, session: AsyncSession, config: Config) -> Answer:
    mine = list((await session.exec(
        select(ReviewCase).where(ReviewCase.submitter_id == sender.id).order_by(col(ReviewCase.id).desc()).limit(10)
    )).all())
    return Answer.of("sanling/case_overview", guides=prereviewable(config), mine=mine, labels=STATUS_LABELS,
                     staff=sender.is_staff, hint=hint_name)


async def _open(sender: Sender, session: AsyncSession, clock: Clock, config: Config, query: str) -> Answer:
    guides = prereviewable(config)
    if not guides:
        raise Refusal("sanling/case_no_guides")
    matches, _ = find_guides(guides, query)
    if len(matches) != 1:
        raise Refusal("sanling/case_unknown_guide", query=query[:30], guides=guides, matches=matches, hint=hint_name)
    guide = matches[0]
    existing = await open_case(session, sender.id)
    if existing is not None:
        raise Refusal("sanling/case_already_open", c=existing, labels=STATUS_LABELS)
    now = clock.now()
    case = ReviewCase(procedure=guide.key, title=guide.title, joint=bool(guide.departments), submitter_id=sender.id,
                      limit_days=guide.review_days, created_at=now)
    session.add(case)
    await session.flush()
    for number, material in enumerate(guide.materials, start=1):
        session.add(ReviewItem(case_id=case.id, number=number, material=material[:200]))  # type: ignore[arg-type]
    audit(session, now, sender, "case.open", f"case:{case.id}", procedure=guide.key)
    await session.flush()
    return Answer.of("sanling/case_opened", c=case, g=guide, items=await checklist(session, case))


async def _item(c: Call) -> Answer:
    sender, session, tail = c.sender, c.session, c.tail
    case = await _need_open(session, sender)
    m = re.match(r"^\s*([0-9０-９]{1,3})\s*", tail)
    if not m:
        raise UsageError("sanling/usage/case_item_number")
    number, text = int(fold(m.group(1))), tail[m.end():].lstrip(_SEP).strip()
    items = await checklist(session, case)
    found = next((i for i in items if i["item"].number == number), None)
    if found is None:
        raise UsageError("sanling/usage/case_item_unknown", "预审 材料 1", number=number, count=len(items))
    if len(text) > MAX_TEXT:
        raise Refusal("sanling/case_too_long", length=len(text), limit=MAX_TEXT)
    case.current_item = number
    session.add(case)
    if text:
        item = found["item"]
        item.text = text
        session.add(item)
    await session.flush()
    return Answer.of("sanling/case_item", c=case, number=number, text=text, items=await checklist(session, case))


async def _note(c: Call) -> Answer:
    sender, session, tail = c.sender, c.session, c.tail
    case = await _need_open(session, sender)
    if not tail:
        raise UsageError("sanling/usage/case_note")
    if len(tail) > MAX_TEXT:
        raise Refusal("sanling/case_too_long", length=len(tail), limit=MAX_TEXT)
    case.note = tail
    session.add(case)
    return Answer.of("sanling/case_noted", c=case)


async def _attach(sender: Sender, session: AsyncSession, clock: Clock, config: Config,
                  attachments: tuple[Attachment, ...], fetch: Fetch | None) -> Answer:
    case = await _need_open(session, sender)
    if fetch is None:  # a channel that cannot fetch files never hands them on; kept as a clear answer
        raise Refusal("sanling/case_file_failed")
    have = len(await files_of(session, case.id))  # type: ignore[arg-type]
    if have + len(attachments) > MAX_FILES:
        raise Refusal("sanling/case_too_many_files", limit=MAX_FILES)
    limit = int(config.sanling.max_file_mb * 1024 * 1024)
    store = FileStore(config.sanling.files_dir)
    now = clock.now()
    kept = []
    for n, attachment in enumerate(attachments, start=have + 1):
        try:
            data = await fetch(attachment, limit)
        except FileTooLarge as exc:
            raise Refusal("sanling/case_file_too_large", size_=exc.size, limit=limit, name=attachment.name) from None
        except FetchError as exc:
            log.warning("case %s: a %s could not be fetched: %s", case.id, attachment.kind, exc.reason)
            raise Refusal("sanling/case_file_failed") from None
        sha = await asyncio.to_thread(store.put, data)  # hashing and writing 20 MB would stall the loop
        name = attachment.name.strip() or f"{'图片' if attachment.kind == 'picture' else '文件'}{n}"
        record = ReviewFile(case_id=case.id, item_number=case.current_item, name=name[:200], kind=attachment.kind,  # type: ignore[arg-type]
                            sha256=sha, size=len(data), received_at=now)
        session.add(record)
        kept.append(record)
    await session.flush()
    items = await checklist(session, case)
    next_item = next((i["item"].number for i in items if not i["done"]), None)
    return Answer.of("sanling/case_file_kept", c=case, files=kept, items=items, next_item=next_item)


async def _submit(c: Call) -> Answer:
    sender, session, clock = c.sender, c.session, c.clock
    case = await _need_open(session, sender)
    items = await checklist(session, case)
    missing = [i for i in items if not i["done"]]
    if missing:
        raise Refusal("sanling/case_incomplete", c=case, missing=missing)
    now = clock.now()
    again = case.status == CaseStatus.RETURNED
    case.status, case.submitted_at = CaseStatus.SUBMITTED, now
    case.first_submitted_at = case.first_submitted_at or now
    case.due_at = due_after(now, case.limit_days, c.calendar)
    session.add(case)
    session.add(ReviewDecision(case_id=case.id, action="提交", actor_id=sender.id, at=now))  # type: ignore[arg-type]
    entry = audit(session, now, sender, "case.submit", f"case:{case.id}", again=again)
    await session.flush()
    view = (await staff_views(session, [case], now, c.calendar))[0]
    await c.notify.everyone(session, Answer.of("sanling/case_new_staff", v=view, again=again),
                            {pid: f"case-new:{entry.id}:{pid}" for pid in await staff_ids(session) if pid != sender.id},
                            source="case")
    return Answer.of("sanling/case_submitted", c=case, due=local(case.due_at), again=again)


async def _withdraw(c: Call) -> Answer:
    sender, session, clock = c.sender, c.session, c.clock
    case = await _need_open(session, sender)
    now = clock.now()
    case.status, case.decided_at = CaseStatus.WITHDRAWN, now
    session.add(case)
    audit(session, now, sender, "case.withdraw", f"case:{case.id}")
    return Answer.of("sanling/case_withdrawn", c=case)


async def _find(session: AsyncSession, sender: Sender, number: int, readers: bool = False) -> ReviewCase:
    """The case if this sender may see it: staff, the submitter, and (``readers``) a department's
    reviewer it was copied to. Someone else's case answers exactly like a missing one."""
    case = await session.get(ReviewCase, number)
    if case is None or not sender.is_staff and case.submitter_id != sender.id and not (
            readers and case.joint and await _copied_to(session, case, sender.id)):
        raise Refusal("sanling/case_unknown", number=number)
    return case


async def _copied_to(session: AsyncSession, case: ReviewCase, person_id: int) -> bool:
    parts = (await session.exec(select(JointPart).where(JointPart.case_id == case.id))).all()
    return any(person_id in p.reviewers for p in parts)


async def _query(c: Call) -> Answer:
    sender, session, tail = c.sender, c.session, c.tail
    if not tail:
        mine = list((await session.exec(
            select(ReviewCase).where(ReviewCase.submitter_id == sender.id).order_by(col(ReviewCase.id).desc()).limit(20)
        )).all())
        return Answer.of("sanling/case_mine", cases=mine, labels=STATUS_LABELS,
                         due={c.id: local(c.due_at) for c in mine if c.due_at})
    ticket = take_ticket(tail)
    if ticket is None or ticket[1]:
        raise UsageError("sanling/usage/case_query", "预审 查询 #7")
    case = await _find(session, sender, ticket[0], readers=True)
    decisions = list((await session.exec(
        select(ReviewDecision).where(ReviewDecision.case_id == case.id).order_by(ReviewDecision.id))).all())
    parts = list((await session.exec(
        select(JointPart).where(JointPart.case_id == case.id).order_by(JointPart.id))).all())
    labels = await people_labels(session, {case.submitter_id} | {d.actor_id for d in decisions})
    as_staff = case.submitter_id != sender.id  # staff, or a department's reviewer of a 联办单
    return Answer.of("sanling/case_one", c=case, labels=STATUS_LABELS, items=await checklist(session, case),
                     decisions=[{"d": d, "at": local(d.at), "by": labels.get(d.actor_id, "")} for d in decisions],
                     parts=parts, staff=as_staff, can_decide=as_staff and sender.is_staff,
                     sender=labels.get(case.submitter_id, ""),
                     due=local(case.due_at) if case.due_at else None)


def _ticket_and_text(tail: str, example: str, what: str | None) -> tuple[int, str]:
    """``#7`` and the text after it; ``what`` (a reason template) when that text is required."""
    ticket = take_ticket(tail)
    if ticket is None:
        raise UsageError("sanling/usage/case_number", example)
    if what and not ticket[1]:
        raise UsageError(what, example.replace("#7", f"#{ticket[0]}"))
    if len(ticket[1]) > MAX_REASON:
        raise UsageError("sanling/usage/case_text_long", example.replace("#7", f"#{ticket[0]}"), limit=MAX_REASON,
                         length=len(ticket[1]))
    return ticket


async def _waiting(session: AsyncSession, sender: Sender, number: int) -> ReviewCase:
    case = await _find(session, sender, number)
    if case.status != CaseStatus.SUBMITTED:
        raise Refusal("sanling/case_not_waiting", c=case, labels=STATUS_LABELS)
    return case


async def _decide(session: AsyncSession, call: Call, sender: Sender, case: ReviewCase, now, action: str,
                  reason: str, notice: str, **values) -> None:
    """Record a staff decision, audit it and tell the submitter privately."""
    session.add(ReviewDecision(case_id=case.id, action=action, actor_id=sender.id, reason=reason, at=now))  # type: ignore[arg-type]
    entry = audit(session, now, sender, f"case.{notice}", f"case:{case.id}", step=action, reason=reason)
    await session.flush()
    await call.notify(session, f"case-{notice}:{entry.id}", case.submitter_id,
                      Answer.of(f"sanling/case_{notice}_notice", c=case, reason=reason,
                                items=await checklist(session, case), **values), source="case")


async def _approve(c: Call) -> Answer:
    sender, session, clock, config, tail, verb = c.sender, c.session, c.clock, c.config, c.tail, c.verb
    example = "预审 受理 #7" if verb == "accept" else "预审 通过 #7"
    number, opinion = _ticket_and_text(tail, example, None)
    case = await _waiting(session, sender, number)
    now = clock.now()
    if case.joint:
        parts = await copy_to_departments(session, c.notify, config, sender, case, now)
        case.status = CaseStatus.JOINT
        session.add(case)
        await _decide(session, c, sender, case, now, "受理", opinion, "accepted", parts=parts)
        return Answer.of("sanling/case_accepted", c=case, parts=parts)
    if verb == "accept":
        raise UsageError("sanling/usage/case_not_joint", f"预审 通过 #{number}")
    case.status, case.decided_at = CaseStatus.APPROVED, now
    session.add(case)
    await _decide(session, c, sender, case, now, "通过", opinion, "approved")
    return Answer.of("sanling/case_approved", c=case)


async def _return(c: Call) -> Answer:
    sender, session, clock, tail = c.sender, c.session, c.clock, c.tail
    number, reason = _ticket_and_text(tail, "预审 退回 #7 缺少借用协议原件", "sanling/usage/case_return_reason")
    case = await _waiting(session, sender, number)
    if await open_case(session, case.submitter_id) is not None:
        # The submitter has started another case meanwhile; two open cases would leave files nowhere to go.
        raise Refusal("sanling/case_return_blocked", c=case)
    now = clock.now()
    case.status, case.return_reason, case.returns = CaseStatus.RETURNED, reason, case.returns + 1
    case.due_at = None
    session.add(case)
    await _decide(session, c, sender, case, now, "退回", reason, "returned")
    return Answer.of("sanling/case_returned", c=case, reason=reason)


async def _transfer(c: Call) -> Answer:
    sender, session, clock, tail = c.sender, c.session, c.clock, c.tail
    number, where = _ticket_and_text(tail, "预审 转 #7 人社局", "sanling/usage/case_transfer_to")
    if len(where) > 100:
        raise UsageError("sanling/usage/department_length", f"预审 转 #{number} 人社局")
    case = await _waiting(session, sender, number)
    now = clock.now()
    case.status, case.decided_at, case.transferred_to = CaseStatus.TRANSFERRED, now, where
    session.add(case)
    await _decide(session, c, sender, case, now, "转办", where, "transferred")
    return Answer.of("sanling/case_transferred", c=case)


async def _todo(c: Call) -> Answer:
    views = await staff_views(c.session, await queue(c.session), c.clock.now(), c.calendar)
    return Answer.of("sanling/case_todo", views=views[:30], total=len(views), overdue=sum(v["overdue"] for v in views))


def _declare(verb: str, handler: Callable[[Call], Awaitable[Answer]], *words: str, usage: str,
             examples: tuple[str, ...], staff: bool = False, alone: bool = False) -> None:
    """One 预审 sub-command: its words and roles declared, the shared :class:`Call` built for it."""
    async def run(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config,
                  calendar: WorkCalendar, notify: Notifier) -> Answer:
        if alone:
            nothing_more(args)
        return await handler(Call(sender, session, clock, config, calendar, notify, args.rest(), verb))

    run.__name__ = run.__qualname__ = f"prereview_{verb}"
    prereview_command.sub(*words, roles=STAFF_ROLES if staff else None, usage=usage, examples=examples)(run)


_declare("item", _item, "材料", "item", usage="预审 材料 序号 [内容]", examples=("预审 材料 2 借调事由：招商专班重点项目",))
_declare("note", _note, "说明", "note", usage="预审 说明 内容", examples=("预审 说明 借用期限 6 个月，派出单位已同意",))
_declare("submit", _submit, "提交", "submit", usage="预审 提交", examples=("预审 提交",), alone=True)
_declare("query", _query, "查询", "我的", "query", "mine", usage="预审 查询 [#编号]", examples=("预审 查询", "预审 查询 #7"))
_declare("withdraw", _withdraw, "撤回", "withdraw", usage="预审 撤回", examples=("预审 撤回",), alone=True)
_declare("todo", _todo, "待办", "todo", usage="预审 待办", examples=("预审 待办",), staff=True, alone=True)
_declare("approve", _approve, "通过", "同意", "approve", usage="预审 通过 #编号 [意见]", examples=("预审 通过 #7",),
         staff=True)
_declare("accept", _approve, "受理", "accept", usage="预审 受理 #编号", examples=("预审 受理 #7",), staff=True)
_declare("return", _return, "退回", "return", usage="预审 退回 #编号 原因", examples=("预审 退回 #7 缺少借用协议原件",),
         staff=True)
_declare("transfer", _transfer, "转", "转办", "transfer", usage="预审 转 #编号 部门", examples=("预审 转 #7 人社局",),
         staff=True)
