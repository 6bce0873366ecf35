"""常青藤 招募广播: one recruitment call to every retired cadre (privately) and every configured 常青藤
group, through the outbox.

Every private message has the same body, so the outbox hands them to the platform in batches
(DingTalk: 20 recipients per call). Sending the same text twice in one day needs ``广播 确认`` — a
second tap on a phone must not message 159 people again.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import Actor, audit
from bot.clock import Clock, day_start
from bot.config import Config
from bot.commands import present
from bot.identity import STAFF_ROLES, Sender
from bot.render import Renderer
from bot.router import Answer, Refusal, Router, UsageError
from bot.text import Args
from bot.inbound import OutboxWriter, Outgoing
from storage.models import Broadcast, BroadcastStatus, OutboxMessage, OutboxStatus, Person
from storage.models.changqing import SIX_ROLES

from handlers.args import nothing_more
from handlers.changqing.common import MAX_MESSAGE_BYTES, retired_cadres, utf8_len

router = Router()

PROGRAMMES = ("常青藤", "changqing")
CONFIRM_MINUTES = 30
STATUS_SHOWN = 3
KEY_PREFIX = "changqing-broadcast"
SOURCE = "changqing_broadcast"


def outbox_prefix(broadcast_id: int) -> str:
    return f"{KEY_PREFIX}:{broadcast_id}:"


def text_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def render_body(renderer: Renderer, text: str) -> str:
    """The message as it goes out: the staff's text plus how to sign up, within every platform's limit."""
    text = text.strip()
    if not text:
        raise UsageError("changqing/usage/broadcast_text", "广播 常青藤 “常青藤”行动计划启动，欢迎退出现职领导干部报名集结")
    body = renderer.text("changqing/broadcast_message", text=text, posts=SIX_ROLES)
    # Measured as WeCom text shows it (the tighter limit): a command mark is longer than its words.
    size = utf8_len(present(body, "plain"))
    if size > MAX_MESSAGE_BYTES:
        spare = MAX_MESSAGE_BYTES - (size - utf8_len(text))
        raise Refusal("changqing/broadcast_too_long", size=size, limit=MAX_MESSAGE_BYTES,
                      max_chars=max(spare, 0) // 3, over_chars=-(-(size - MAX_MESSAGE_BYTES) // 3))
    return body


async def sent_today(session: AsyncSession, digest: str, now: dt.datetime) -> Broadcast | None:
    return (
        await session.exec(
            select(Broadcast)
            .where(Broadcast.text_hash == digest, Broadcast.status == BroadcastStatus.SENT,
                   col(Broadcast.sent_at) >= day_start(now.date()))
            .order_by(col(Broadcast.id).desc())
        )
    ).first()


async def queue(session: AsyncSession, outbox: OutboxWriter, clock: Clock, config: Config, broadcast: Broadcast,
                body: str) -> dict:
    """Queue one broadcast's messages in the caller's transaction; returns what the reply reports."""
    now = clock.now()
    people = await retired_cadres(session)
    targets = config.changqing.targets()
    if not people and not targets:
        raise Refusal("changqing/broadcast_nobody")
    prefix = outbox_prefix(broadcast.id)  # type: ignore[arg-type]
    # A card: on WeCom the sign-up commands are buttons; elsewhere the same Markdown with links or words.
    messages = [Outgoing(f"{prefix}person:{pid}", body, person_id=pid, source=SOURCE, format="card") for pid in people]
    messages += [Outgoing(f"{prefix}group:{ch}:{name}", body, group=(ch, name), source=SOURCE) for ch, name in targets]
    await outbox.enqueue_many(session, messages)
    reachable = await outbox.accounts(session, people)
    missing = [name for pid, name in people.items() if pid not in reachable]
    broadcast.status, broadcast.sent_at = BroadcastStatus.SENT, now
    broadcast.people, broadcast.no_account, broadcast.groups = len(people), len(missing), len(targets)
    session.add(broadcast)
    audit(session, now, Actor(broadcast.actor_label, broadcast.actor_id), "changqing.broadcast",
          f"broadcast:{broadcast.id}", people=len(people), groups=len(targets), no_account=len(missing))
    return {"id": broadcast.id, "people": len(people), "reachable": len(people) - len(missing), "missing": missing,
            "groups": [f"{name}（{'钉钉' if ch == 'dingtalk' else '企业微信'}）" for ch, name in targets]}


async def broadcast(session: AsyncSession, text: str, actor: Actor, *, renderer: Renderer, outbox: OutboxWriter,
                    clock: Clock, config: Config, confirmed: bool = False) -> Answer:
    """Send a broadcast now; an identical one already sent today waits for confirmation instead
    (in chat a pending row for 广播 确认; at the CLI ``confirmed`` comes from ``--confirm``)."""
    body = render_body(renderer, text)
    now = clock.now()
    digest = text_hash(text)
    record = Broadcast(text=text.strip(), text_hash=digest, status=BroadcastStatus.PENDING, actor_id=actor.person_id,
                       actor_label=actor.label, created_at=now)
    earlier = await sent_today(session, digest, now)
    if earlier is not None and not confirmed:
        if actor.person_id is None:
            return Answer.of("changqing/broadcast_confirm", earlier=earlier, at=earlier.sent_at.astimezone(now.tzinfo),
                             cli=True, minutes=CONFIRM_MINUTES)
        for old in await _pending(session, actor.person_id, now):
            old.status = BroadcastStatus.CANCELLED
            session.add(old)
        session.add(record)
        return Answer.of("changqing/broadcast_confirm", earlier=earlier, at=earlier.sent_at.astimezone(now.tzinfo),
                         cli=False, minutes=CONFIRM_MINUTES)
    session.add(record)
    await session.flush()
    return Answer.of("changqing/broadcast_queued", r=await queue(session, outbox, clock, config, record, body),
                     repeat=earlier is not None)


async def _pending(session: AsyncSession, person_id: int, now: dt.datetime) -> list[Broadcast]:
    since = now - dt.timedelta(minutes=CONFIRM_MINUTES)
    return list((await session.exec(
        select(Broadcast).where(Broadcast.actor_id == person_id, Broadcast.status == BroadcastStatus.PENDING,
                                Broadcast.created_at >= since)
        .order_by(col(Broadcast.id).desc())
    )).all())


async def status(session: AsyncSession, tz: dt.tzinfo, limit: int = STATUS_SHOWN) -> Answer:
    """The latest broadcasts, each with what the outbox did with its messages."""
    latest = list((await session.exec(
        select(Broadcast).where(Broadcast.status == BroadcastStatus.SENT)
        .order_by(col(Broadcast.id).desc()).limit(limit)
    )).all())
    items = []
    for b in latest:
        like = col(OutboxMessage.key).like(f"{outbox_prefix(b.id)}%")  # type: ignore[arg-type]
        counts = dict((await session.exec(
            select(OutboxMessage.status, func.count()).where(like).group_by(col(OutboxMessage.status))
        )).all())
        problems = (await session.exec(
            select(OutboxMessage.status, OutboxMessage.last_error, OutboxMessage.group_name, Person.name)
            .join(Person, col(Person.id) == OutboxMessage.person_id, isouter=True)
            .where(like, col(OutboxMessage.status).in_([OutboxStatus.FAILED, OutboxStatus.UNDELIVERABLE]))
            .order_by(col(OutboxMessage.id)).limit(10)
        )).all()
        items.append({
            "b": b,
            "at": b.sent_at.astimezone(tz),  # type: ignore[union-attr]
            "sent": counts.get(OutboxStatus.SENT, 0),
            "waiting": counts.get(OutboxStatus.QUEUED, 0) + counts.get(OutboxStatus.SENDING, 0),
            "failed": counts.get(OutboxStatus.FAILED, 0),
            "undeliverable": counts.get(OutboxStatus.UNDELIVERABLE, 0),
            "problems": [{"who": name or group or "", "why": error, "status": st} for st, error, group, name in problems],
        })
    return Answer.of("changqing/broadcast_status", items=items)


broadcast_command = router.command(
    "广播", "broadcast", roles=STAFF_ROLES, private_only=True, order=60,
    summary="常青藤招募广播：私信全部退职干部并发到常青藤群",
    usage="广播 常青藤 文案",
    examples=("广播 常青藤 “常青藤”行动计划启动，欢迎退出现职领导干部报名集结", "广播 状态"),
)


@broadcast_command
async def broadcast_to_whom(args: Args) -> Answer:
    """广播 alone, or to someone there is no programme for: say who can be broadcast to."""
    word = args.take()
    if word is None:
        raise UsageError("changqing/usage/broadcast_what")
    raise UsageError("changqing/usage/broadcast_target", word=word)


@broadcast_command.sub(*PROGRAMMES, usage="广播 常青藤 文案",
                       examples=("广播 常青藤 “常青藤”行动计划启动，欢迎退出现职领导干部报名集结",))
async def broadcast_command_changqing(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config,
                                      renderer: Renderer, outbox: OutboxWriter) -> Answer:
    return await broadcast(session, args.rest(), Actor.of(sender), renderer=renderer, outbox=outbox,
                           clock=clock, config=config)


@broadcast_command.sub("状态", "status", usage="广播 状态", examples=("广播 状态",))
async def broadcast_status(args: Args, session: AsyncSession, clock: Clock) -> Answer:
    nothing_more(args)
    return await status(session, clock.tz)


@broadcast_command.sub("确认", "confirm", usage="广播 确认", examples=("广播 确认",))
async def broadcast_confirm(sender: Sender, args: Args, session: AsyncSession, clock: Clock, config: Config,
                            renderer: Renderer, outbox: OutboxWriter) -> Answer:
    record = await _the_pending(sender, args, session, clock)
    body = render_body(renderer, record.text)
    return Answer.of("changqing/broadcast_queued", r=await queue(session, outbox, clock, config, record, body),
                     repeat=True)


@broadcast_command.sub("取消", "cancel", usage="广播 取消", examples=("广播 取消",))
async def broadcast_cancel(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer:
    record = await _the_pending(sender, args, session, clock)
    record.status = BroadcastStatus.CANCELLED
    session.add(record)
    return Answer.of("changqing/broadcast_cancelled")


async def _the_pending(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Broadcast:
    """The sender's latest broadcast awaiting 确认 (older ones are cancelled: one answer settles them all)."""
    nothing_more(args)
    pending = await _pending(session, sender.id, clock.now())
    if not pending:
        raise Refusal("changqing/broadcast_nothing_pending", minutes=CONFIRM_MINUTES)
    record, *older = pending
    for old in older:
        old.status = BroadcastStatus.CANCELLED
        session.add(old)
    return record
