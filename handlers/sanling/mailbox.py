"""三联信箱: cadres write to the organization department (anonymously if they wish), staff answer.

The inquiry's text reaches only its submitter and staff. An anonymous submitter is named in no staff
view, notification, audit entry or export; the answer still finds them, because the row keeps who
wrote it and only the submitter's own notifications are addressed with it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.clock import TZ, Clock, day_start
from bot.identity import STAFF_ROLES, Sender, staff_ids
from bot.config import Config
from bot.render import Renderer
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args, fold
from bot.calendar import WorkCalendar
from bot.inbound import ANONYMOUS_SOURCE, OutboxWriter, anonymous_key
from bot.notify import Notice, Notifier
from storage.models import Inquiry, InquiryAnswer, InquiryStatus, Person, Unit

from handlers.args import nothing_more, rest

router = Router()

MAX_INQUIRY_CHARS = 2000
OVERDUE_WORKDAYS = 3  # SPEC §4: unanswered for more than 3 working days
ANONYMOUS = "匿名"

CATEGORIES = ("待遇", "报名/专班", "其他")
# Guessing is only a first sorting for staff (who can change it); a tie goes to the earlier category.
_KEYWORDS = {
    "待遇": ("待遇", "工资", "薪", "津贴", "补贴", "补助", "奖金", "绩效", "福利", "职级", "退休", "养老", "医保",
             "公积金", "报销", "车补", "休假", "年假", "体检", "考核奖"),
    "报名/专班": ("报名", "专班", "自荐", "常青藤", "六大员", "编组", "服务组", "请缨", "参加", "加入"),
}
_CATEGORY_WORDS = {"待遇": "待遇", "报名": "报名/专班", "专班": "报名/专班", "报名/专班": "报名/专班",
                   "报名专班": "报名/专班", "其他": "其他", "其它": "其他"}
STATUS_LABELS = {InquiryStatus.OPEN: "待答复", InquiryStatus.ANSWERED: "已答复", InquiryStatus.CLOSED: "已关闭"}

_TICKET = re.compile(r"^\s*(?:第\s*)?[#＃]?\s*([0-9０-９]{1,9})\s*号?")
_SEPARATORS = " \t\n:,;：，；、\u3000"


def guess_category(text: str) -> str:
    scores = {c: sum(text.count(k) for k in words) for c, words in _KEYWORDS.items()}
    best = max(scores.values())
    return next(c for c in CATEGORIES if scores.get(c) == best) if best else "其他"


def take_ticket(raw: str) -> tuple[int, str] | None:
    """``#12 已转人社局`` → (12, "已转人社局"); None when the text does not start with a number."""
    m = _TICKET.match(raw)
    if not m:
        return None
    return int(fold(m.group(1))), raw[m.end():].lstrip(_SEPARATORS).strip()


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(TZ)


def overdue_after(inquiry: Inquiry, calendar: WorkCalendar) -> dt.datetime:
    """The moment an unanswered inquiry becomes overdue: 3 whole working days after it arrived."""
    return calendar.add_workdays(local(inquiry.created_at), OVERDUE_WORKDAYS)


def is_overdue(inquiry: Inquiry, now: dt.datetime, calendar: WorkCalendar) -> bool:
    return inquiry.status == InquiryStatus.OPEN and now > overdue_after(inquiry, calendar)


def workdays_waited(inquiry: Inquiry, today: dt.date, calendar: WorkCalendar) -> int:
    """Working days after the day it arrived, up to and including ``today``."""
    day, count = local(inquiry.created_at).date(), 0
    while day < today:
        day += dt.timedelta(days=1)
        count += calendar.is_workday(day)
    return count


async def submitter_labels(session: AsyncSession, inquiries: list[Inquiry]) -> dict[int, str]:
    """What staff see as the sender of each inquiry: ``李娜（华埠镇）``, or 匿名."""
    ids = {i.submitter_id for i in inquiries if not i.anonymous}
    names: dict[int, str] = {}
    if ids:
        rows = await session.exec(
            select(Person.id, Person.name, Unit.name)
            .join(Unit, Unit.id == Person.unit_id, isouter=True)
            .where(col(Person.id).in_(ids))
        )
        names = {pid: f"{name}（{unit}）" if unit else name for pid, name, unit in rows.all()}
    return {i.id: ANONYMOUS if i.anonymous else names.get(i.submitter_id, "") for i in inquiries}  # type: ignore[misc]


async def staff_view(session: AsyncSession, inquiries: list[Inquiry], now: dt.datetime,
                     calendar: WorkCalendar) -> list[dict]:
    labels = await submitter_labels(session, inquiries)
    return [
        {"q": i, "sender": labels[i.id], "at": local(i.created_at),  # type: ignore[index]
         "waited": workdays_waited(i, now.date(), calendar), "overdue": is_overdue(i, now, calendar)}
        for i in inquiries
    ]


async def find_inquiry(session: AsyncSession, number: int) -> Inquiry:
    inquiry = await session.get(Inquiry, number)
    if inquiry is None:
        raise Refusal("sanling/mailbox_unknown", number=number)
    return inquiry


# --- the command -------------------------------------------------------------------------------------

mailbox_command = router.command(
    "信箱", "mailbox", private_only=True, order=20,
    summary="三联信箱：向组织部咨询、反映诉求（可匿名），查询答复",
    usage="信箱 内容",
    examples=("信箱 退出现职后的待遇如何落实？", "信箱 匿名 希望自荐参加招商专班", "信箱 查询"),
)


@mailbox_command
async def mailbox(sender: Sender, args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar,
                  notify: Notifier) -> Answer:
    """信箱 内容 is a letter; 信箱 #12 shows one's own letter 12."""
    raw = rest(args, "sanling/usage/mailbox_text")
    own = take_ticket(raw)
    if own is not None and not own[1]:
        return await _show(sender, session, clock, own[0], calendar)
    return await _submit(sender, session, clock, calendar, notify, raw, anonymous=False)


@mailbox_command.sub("匿名", "anonymous", "anon", usage="信箱 匿名 内容", examples=("信箱 匿名 希望自荐参加招商专班",))
async def mailbox_anonymous(sender: Sender, args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar,
                            notify: Notifier) -> Answer:
    text = rest(args, "sanling/usage/mailbox_text")
    return await _submit(sender, session, clock, calendar, notify, text, anonymous=True)


@mailbox_command.sub("查询", "我的", "list", "mine", "query", usage="信箱 查询 [#编号]", examples=("信箱 查询", "信箱 查询 #12"))
async def mailbox_mine(sender: Sender, args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar,
                       notify: Notifier) -> Answer:
    """One's own letters, or one of them; "信箱 查询 职级晋升的条件" is a letter like any other text."""
    tail = args.rest()
    ticket = take_ticket(tail) if tail else None
    if not tail:
        return await _list_own(sender, session)
    if ticket and not ticket[1]:
        return await _show(sender, session, clock, ticket[0], calendar)
    return await _submit(sender, session, clock, calendar, notify, args.whole, anonymous=False)


@mailbox_command.sub("待办", "todo", "open", roles=STAFF_ROLES, usage="信箱 待办", examples=("信箱 待办",))
async def mailbox_todo(args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar) -> Answer:
    nothing_more(args)
    return await _todo(session, clock, calendar)


@mailbox_command.sub("分类", "category", roles=STAFF_ROLES, usage="信箱 分类 #编号 类别（待遇、报名/专班、其他）",
                     examples=("信箱 分类 #12 待遇",))
async def mailbox_category(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    return await _recategorize(sender, session, clock, args.rest())


@mailbox_command.sub("关闭", "close", roles=STAFF_ROLES, usage="信箱 关闭 #编号 原因", examples=("信箱 关闭 #12 已当面答复",))
async def mailbox_close(sender: Sender, args: Args, session: AsyncSession, clock: Clock, notify: Notifier) -> Answer:
    return await _close(sender, session, clock, notify, args.rest())


async def _submit(sender: Sender, session: AsyncSession, clock: Clock, calendar: WorkCalendar, notify: Notifier,
                  text: str, anonymous: bool) -> Answer:
    if not text:
        raise UsageError("sanling/usage/mailbox_text", "信箱 匿名 希望自荐参加招商专班" if anonymous else None)
    if len(text) > MAX_INQUIRY_CHARS:
        raise Refusal("sanling/mailbox_too_long", length=len(text), limit=MAX_INQUIRY_CHARS)
    now = clock.now()
    inquiry = Inquiry(submitter_id=sender.id, anonymous=anonymous, category=guess_category(text), text=text,
                      created_at=now)
    session.add(inquiry)
    await session.flush()
    # An anonymous submission is audited without its writer (nor is any letter's text ever copied).
    audit(session, now, Actor(ANONYMOUS) if anonymous else sender, "mailbox.submit", f"inquiry:{inquiry.id}",
          category=inquiry.category, anonymous=anonymous)
    # An anonymous letter goes to every staff member, its writer included: leaving the writer out
    # would single them out to their colleagues (issue 11). A signed letter need not tell its writer.
    staff = [pid for pid in await staff_ids(session) if anonymous or pid != sender.id]
    view = (await staff_view(session, [inquiry], now, calendar))[0]
    await notify.everyone(session, Answer.of("sanling/mailbox_new_staff", v=view),
                          {pid: f"mailbox-new:{inquiry.id}:{pid}" for pid in staff}, source="mailbox")
    return Answer.of("sanling/mailbox_submitted", q=inquiry, deadline=overdue_after(inquiry, calendar))


async def _list_own(sender: Sender, session: AsyncSession) -> Answer:
    inquiries = (
        await session.exec(
            select(Inquiry).where(Inquiry.submitter_id == sender.id).order_by(col(Inquiry.id).desc()).limit(20)
        )
    ).all()
    total = (await session.exec(select(func.count()).select_from(Inquiry).where(Inquiry.submitter_id == sender.id))).one()
    latest = await _latest_answers(session, [i.id for i in inquiries])  # type: ignore[misc]
    return Answer.of("sanling/mailbox_mine", items=[{"q": i, "at": local(i.created_at), "answer": latest.get(i.id)}
                                                     for i in inquiries], total=total, labels=STATUS_LABELS)


async def _latest_answers(session: AsyncSession, ids: list[int]) -> dict[int, InquiryAnswer]:
    if not ids:
        return {}
    rows = (await session.exec(
        select(InquiryAnswer).where(col(InquiryAnswer.inquiry_id).in_(ids)).order_by(InquiryAnswer.id)
    )).all()
    return {a.inquiry_id: a for a in rows}


async def _show(sender: Sender, session: AsyncSession, clock: Clock, number: int, calendar: WorkCalendar) -> Answer:
    inquiry = await session.get(Inquiry, number)
    # Someone else's inquiry answers exactly like a missing one: its existence is not theirs to know.
    if inquiry is None or not sender.is_staff and inquiry.submitter_id != sender.id:
        raise Refusal("sanling/mailbox_unknown", number=number)
    answers = (await session.exec(
        select(InquiryAnswer).where(InquiryAnswer.inquiry_id == inquiry.id).order_by(InquiryAnswer.id)
    )).all()
    as_staff = sender.is_staff and inquiry.submitter_id != sender.id
    view = (await staff_view(session, [inquiry], clock.now(), calendar))[0] if as_staff else None
    return Answer.of("sanling/mailbox_one", q=inquiry, at=local(inquiry.created_at), staff=view, labels=STATUS_LABELS,
                     answers=[{"text": a.text, "at": local(a.created_at)} for a in answers],
                     closed_at=local(inquiry.closed_at) if inquiry.closed_at else None)


async def open_queue(session: AsyncSession, now: dt.datetime, calendar: WorkCalendar) -> list[dict]:
    """Every inquiry waiting for an answer, oldest first, as staff see it (``staff_view``): the queue
    ``信箱 待办`` lists and the console shows, so both count the same open and overdue."""
    inquiries = list((await session.exec(
        select(Inquiry).where(Inquiry.status == InquiryStatus.OPEN).order_by(Inquiry.id)
    )).all())
    return await staff_view(session, inquiries, now, calendar)


async def _todo(session: AsyncSession, clock: Clock, calendar: WorkCalendar) -> Answer:
    views = await open_queue(session, clock.now(), calendar)
    return Answer.of("sanling/mailbox_todo", views=views[:30], total=len(views),
                     overdue=sum(v["overdue"] for v in views), days=OVERDUE_WORKDAYS).as_card()


async def _recategorize(sender: Sender, session: AsyncSession, clock: Clock, tail: str) -> Answer:
    ticket = take_ticket(tail)
    if ticket is None or not ticket[1]:
        raise UsageError("sanling/usage/mailbox_category")
    number, word = ticket
    category = _CATEGORY_WORDS.get(fold(word).strip())
    if category is None:
        raise UsageError("sanling/usage/mailbox_category_unknown", f"信箱 分类 #{number} 待遇", word=word,
                         categories=CATEGORIES)
    inquiry = await find_inquiry(session, number)
    old = inquiry.category
    if old != category:
        inquiry.category = category
        session.add(inquiry)
        audit(session, clock.now(), sender, "mailbox.category", f"inquiry:{inquiry.id}", old=old, new=category)
    return Answer.of("sanling/mailbox_recategorized", q=inquiry, old=old)


async def _close(sender: Sender, session: AsyncSession, clock: Clock, notify: Notifier, tail: str) -> Answer:
    ticket = take_ticket(tail)
    if ticket is None or not ticket[1]:
        raise UsageError("sanling/usage/mailbox_close")
    number, reason = ticket
    if len(reason) > 500:
        raise UsageError("sanling/usage/mailbox_close_long", f"信箱 关闭 #{number} 已当面答复", limit=500,
                         length=len(reason))
    inquiry = await find_inquiry(session, number)
    if inquiry.status != InquiryStatus.OPEN:
        raise Refusal("sanling/mailbox_not_open", q=inquiry, labels=STATUS_LABELS)
    now = clock.now()
    inquiry.status, inquiry.closed_at, inquiry.close_reason = InquiryStatus.CLOSED, now, reason
    session.add(inquiry)
    entry = audit(session, now, sender, "mailbox.close", f"inquiry:{inquiry.id}", reason=reason)
    await session.flush()
    notice = Answer.of("sanling/mailbox_closed_notice", q=inquiry, at=local(inquiry.created_at))
    await notify.many(session, [_to_writer(inquiry, "closed", entry.id, notice)])  # type: ignore[arg-type]
    return Answer.of("sanling/mailbox_closed", q=inquiry)


@router.command(
    "答复", "reply", roles=STAFF_ROLES, private_only=True, order=21,
    summary="答复三联信箱来信（私信通知提问人）", usage="答复 #编号 内容",
    examples=("答复 #12 已转人社局，本周内回复",),
)
async def answer(sender: Sender, args: Args, session: AsyncSession, clock: Clock, calendar: WorkCalendar,
                 notify: Notifier, outbox: OutboxWriter) -> Answer:
    ticket = take_ticket(args.rest())
    if ticket is None:
        raise UsageError("sanling/usage/reply_number")
    number, text = ticket
    if not text:
        # "答复 #12" alone (a tapped link in 信箱 待办): the inquiry in full, and how to answer it.
        return await _show(sender, session, clock, number, calendar)
    if len(text) > MAX_INQUIRY_CHARS:
        raise Refusal("sanling/mailbox_too_long", length=len(text), limit=MAX_INQUIRY_CHARS)
    inquiry = await find_inquiry(session, number)
    if inquiry.status == InquiryStatus.CLOSED:
        raise Refusal("sanling/mailbox_not_open", q=inquiry, labels=STATUS_LABELS)
    now = clock.now()
    reply = InquiryAnswer(inquiry_id=inquiry.id, author_id=sender.id, text=text, created_at=now)  # type: ignore[arg-type]
    session.add(reply)
    first = inquiry.status == InquiryStatus.OPEN
    if first:
        inquiry.status, inquiry.answered_at = InquiryStatus.ANSWERED, now
        session.add(inquiry)
    await session.flush()
    audit(session, now, sender, "mailbox.answer", f"inquiry:{inquiry.id}", answer_id=reply.id, first=first)
    notice = Answer.of("sanling/mailbox_answer_notice", q=inquiry, at=local(inquiry.created_at), text=text)
    await notify.many(session, [_to_writer(inquiry, "answer", reply.id, notice)])  # type: ignore[arg-type]
    reachable = inquiry.submitter_id in await outbox.accounts(session, [inquiry.submitter_id])
    label = (await submitter_labels(session, [inquiry]))[inquiry.id]  # type: ignore[index]
    return Answer.of("sanling/mailbox_answered", q=inquiry, sender=label, first=first, reachable=reachable)


def _to_writer(inquiry: Inquiry, kind: str, entry: int, notice: Answer) -> Notice:
    """A notice to the letter's writer. The outbox row must carry their address to reach them; for an
    anonymous letter it is marked so every operator view (``bangdai outbox``, logs) masks the address
    and shows only "匿名来信答复 #12". Keys of signed letters' notices do not name the inquiry."""
    if inquiry.anonymous:
        return Notice(anonymous_key(inquiry.id, kind, entry), notice, person_id=inquiry.submitter_id,  # type: ignore[arg-type]
                      source=ANONYMOUS_SOURCE)
    return Notice(f"mailbox-{kind}:{entry}", notice, person_id=inquiry.submitter_id, source="mailbox")


# --- figures for 统计, the overdue job and the quarterly summary -----------------------------------------

@dataclass
class MailboxFigures:
    received: int = 0
    answered: int = 0
    closed: int = 0
    open: int = 0
    overdue: int = 0


async def mailbox_figures(session: AsyncSession, first: dt.date, last: dt.date, now: dt.datetime,
                          calendar: WorkCalendar) -> MailboxFigures:
    """Inquiries received from ``first`` to ``last`` (local days) and where each stands at ``now``."""
    rows = (await session.exec(
        select(Inquiry).where(Inquiry.created_at >= day_start(first),
                              Inquiry.created_at < day_start(last + dt.timedelta(days=1)))
    )).all()
    f = MailboxFigures(received=len(rows))
    for i in rows:
        if i.status == InquiryStatus.ANSWERED:
            f.answered += 1
        elif i.status == InquiryStatus.CLOSED:
            f.closed += 1
        else:
            f.open += 1
            f.overdue += is_overdue(i, now, calendar)
    return f


async def mailbox_stats(session: AsyncSession, clock: Clock, config: Config, renderer: Renderer,
                        calendar: WorkCalendar) -> str:
    now = clock.now()
    today = now.date()
    month = await mailbox_figures(session, today.replace(day=1), today, now, calendar)
    year = await mailbox_figures(session, dt.date(today.year, 1, 1), today, now, calendar)
    return renderer.text("sanling/stats_mailbox", month=month, year=year, today=today)


async def mailbox_sheet(session: AsyncSession, clock: Clock, calendar: WorkCalendar) -> list[tuple[str, list[str], list[list]]]:
    """三联信箱 for the workbook: an anonymous submitter is 匿名 there too; 超期 by the configured calendar."""
    inquiries = list((await session.exec(select(Inquiry).order_by(Inquiry.id))).all())
    labels = await submitter_labels(session, inquiries)
    answers: dict[int, list[str]] = {}
    for a in (await session.exec(select(InquiryAnswer).order_by(InquiryAnswer.id))).all():
        answers.setdefault(a.inquiry_id, []).append(f"{local(a.created_at):%Y-%m-%d} {a.text}")
    now = clock.now()
    rows = [
        [i.id, local(i.created_at).date(), i.category, labels[i.id], STATUS_LABELS.get(i.status, i.status),  # type: ignore[index]
         "是" if is_overdue(i, now, calendar) else "", i.text, "\n".join(answers.get(i.id, [])),  # type: ignore[arg-type]
         local(i.answered_at).date() if i.answered_at else "", i.close_reason]
        for i in inquiries
    ]
    header = ["编号", "收到日期", "分类", "来信人", "状态", "超期", "内容", "答复", "首次答复日期", "关闭原因"]
    return [("三联信箱", header, rows)]
