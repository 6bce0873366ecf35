"""帮助 and 绑定: what a person can do, and linking a chat account to the roster."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit import audit
from bot.clock import Clock
from bot.config import Config
from bot.identity import Sender, staff_ids
from bot.inbound import InboundMessage
from bot.router import Answer, Commands, Router, UsageError
from bot.text import Args
from bot.notify import Notifier
from storage.models import BindAttempt, ChatIdentity, Person

router = Router()


@router.command(
    "帮助", "help", unbound=True, order=0,
    summary="查看我能用的命令", usage="帮助 [命令]", examples=("帮助", "帮助 记录"),
)
async def show_help(sender: Sender | None, args: Args, commands: Commands) -> Answer:
    roles = sender.roles if sender else None
    if topic := args.take():
        command = commands.find(topic.lower())
        if command and command.allowed(roles):
            child = command.child(args.rest())  # 帮助 编组 新建: that child alone
            if child is not None and child[0].allowed(roles):
                return Answer.of("help/command", command=child[0], children=[])
            return Answer.of("help/command", command=command, children=command.children_for(roles))
    if sender is None:
        return Answer.of("help/unbound")
    return Answer.of("help/list", sender=sender, commands=commands.visible_to(roles))


_LAST4 = re.compile(r"^[0-9]{4}$")


def lock_until(failures: list[dt.datetime], now: dt.datetime, max_failures: int, window: dt.timedelta) -> dt.datetime | None:
    """When ``max_failures`` failures fall within ``window``, the identity is locked for ``window``
    after the last of them."""
    times = sorted(failures)
    for i in range(max_failures - 1, len(times)):
        if times[i] - times[i - max_failures + 1] <= window and now < times[i] + window:
            return times[i] + window
    return None


@router.command(
    "绑定", "bind", unbound=True, listed_when_bound=False, order=1, private_only=True,
    summary="把本聊天账号绑定到花名册中的本人", usage="绑定 姓名 手机后四位", examples=("绑定 张伟 1234",),
)
async def bind(
    msg: InboundMessage, sender: Sender | None, args: Args, session: AsyncSession, clock: Clock, config: Config,
    notify: Notifier,
) -> Answer:
    """Two locks, both ``bind_max_failures`` wrong tries within ``bind_lock_minutes``: one per chat
    account, and one per roster person named, counted over every account and channel — otherwise a
    script rotating account ids guesses the phone's last four digits in minutes (issue 11). While a
    name is locked nobody can bind to it and no guess is checked; staff hear of each lock once."""
    if sender is not None:
        return Answer.of("people/already_bound", sender=sender)
    name, last4 = args.take(), args.take()
    if not name or not last4:
        raise UsageError("people/usage/bind")
    if not _LAST4.match(last4) or args:
        raise UsageError("people/usage/bind_last4")

    now = clock.now()
    window = dt.timedelta(minutes=config.programme.bind_lock_minutes)
    limit = config.programme.bind_max_failures
    account = list((
        await session.exec(
            select(BindAttempt.at).where(
                BindAttempt.channel == msg.channel,
                BindAttempt.platform_user_id == msg.sender_id,
                BindAttempt.at >= now - 2 * window,
            )
        )
    ).all())
    if until := lock_until(account, now, limit, window):
        return Answer.of("people/bind_locked", until=until.astimezone(clock.tz))

    named = (await session.exec(select(Person).where(Person.name == name, Person.active == True))).all()  # noqa: E712
    tries: list[tuple[dt.datetime, str]] = []
    if named:
        tries = [(at, f"{channel}:{user}") for at, channel, user in (await session.exec(
            select(BindAttempt.at, BindAttempt.channel, BindAttempt.platform_user_id)
            .where(BindAttempt.person_name == name, BindAttempt.at >= now - 2 * window)
        )).all()]
        if until := lock_until([at for at, _ in tries], now, limit, window):
            return Answer.of("people/bind_person_locked", until=until.astimezone(clock.tz))

    candidates = [p for p in named if p.phone and p.phone.endswith(last4)]
    if not candidates:
        return await _failed(session, notify, clock, msg, name if named else None, tries, account, now, window, limit)
    if len(candidates) > 1:
        return Answer.of("people/bind_ambiguous")
    person = candidates[0]
    taken = (
        await session.exec(
            select(ChatIdentity).where(ChatIdentity.person_id == person.id, ChatIdentity.channel == msg.channel)
        )
    ).first()
    if taken is not None:
        return Answer.of("people/bind_taken")
    session.add(
        ChatIdentity(
            channel=msg.channel, platform_user_id=msg.sender_id, person_id=person.id, linked_by="bind", created_at=now
        )
    )
    audit(session, now, person, "bind", f"person:{person.id}", channel=msg.channel)
    return Answer.of("people/bound", name=person.name)


async def _failed(session: AsyncSession, notify: Notifier, clock: Clock, msg: InboundMessage,
                  person_name: str | None,
                  tries: list[tuple[dt.datetime, str]], account: list[dt.datetime],
                  now: dt.datetime, window: dt.timedelta, limit: int) -> Answer:
    """Record a wrong try against the account and, when the name is on the roster, against the name;
    the try that locks the name tells staff (once: later tries are refused before they are counted)."""
    tz = clock.tz
    session.add(BindAttempt(channel=msg.channel, platform_user_id=msg.sender_id, person_name=person_name, at=now))
    name_locked: dt.datetime | None = None
    if person_name is not None:
        tries = tries + [(now, f"{msg.channel}:{msg.sender_id}")]
        if name_locked := lock_until([at for at, _ in tries], now, limit, window):
            locked = Answer.of(
                "people/bind_person_locked_staff", name=person_name, tries=limit,
                minutes=int(window.total_seconds() // 60), until=name_locked.astimezone(tz),
                accounts=len({who for at, who in tries if at >= now - window}))
            await notify.everyone(session, locked, {pid: f"bind-locked:{person_name}:{now.isoformat()}:{pid}"
                                                    for pid in await staff_ids(session)}, source="bind-lock")
    left = limit - len([t for t in account if t >= now - window]) - 1
    if left <= 0:  # this account's own lock says more to the one who typed it
        return Answer.of("people/bind_locked", until=(now + window).astimezone(tz))
    if name_locked is not None:
        return Answer.of("people/bind_person_locked", until=name_locked.astimezone(tz))
    return Answer.of("people/bind_failed", left=left)
