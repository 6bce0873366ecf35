"""帮助 and 绑定: what a person can do, and linking a chat account to the roster."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import Config
from bot.identity import Sender, staff_ids
from bot.inbound import InboundMessage
from bot.router import Answer, Router, UsageError
from bot.services import Services
from bot.text import Args
from scheduler.outbox import Outgoing
from storage.models import AuditLog, BindAttempt, ChatIdentity, Person

router = Router()


@router.command(
    "帮助", "help", unbound=True, order=0,
    summary="查看我能用的命令", usage="帮助 [命令]", examples=("帮助", "帮助 记录"),
)
async def show_help(sender: Sender | None, args: Args, router: Router) -> Answer:
    roles = sender.roles if sender else None
    if topic := args.take():
        command = router.find(topic.lower())
        if command and command.allowed(roles):
            return Answer.of("help/command", command=command)
    if sender is None:
        return Answer.of("help/unbound")
    return Answer.of("help/list", sender=sender, commands=router.visible_to(roles))


_LAST4 = re.compile(r"^\d{4}$")


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
    services: Services,
) -> Answer:
    """Two locks, both ``bind_max_failures`` wrong tries within ``bind_lock_minutes``: one per chat
    account, and one per roster person named, counted over every account and channel — otherwise a
    script rotating account ids guesses the phone's last four digits in minutes (issue 11). While a
    person is locked nobody can bind to them and no guess is checked; staff hear of each lock once."""
    if sender is not None:
        return Answer.of("people/already_bound", sender=sender)
    name, last4 = args.take(), args.take()
    if not name or not last4:
        raise UsageError("请写上您的姓名和手机号后四位")
    if not _LAST4.match(last4) or args:
        raise UsageError("姓名后面请写手机号的后四位数字")

    now = clock.now()
    window = dt.timedelta(minutes=config.programme.bind_lock_minutes)
    limit = config.programme.bind_max_failures
    account = (
        await session.exec(
            select(BindAttempt.at).where(
                BindAttempt.channel == msg.channel,
                BindAttempt.platform_user_id == msg.sender_id,
                BindAttempt.at >= now - 2 * window,
            )
        )
    ).all()
    account_failures = sorted(set(account))  # one row per person named: count each try once
    if until := lock_until(account_failures, now, limit, window):
        return Answer.of("people/bind_locked", until=until.astimezone(clock.tz))

    named = (await session.exec(select(Person).where(Person.name == name, Person.active == True))).all()  # noqa: E712
    tries = await _recent_tries(session, [p.id for p in named], now - 2 * window)  # type: ignore[misc]
    for person in named:
        if until := lock_until([at for at, _ in tries.get(person.id, [])], now, limit, window):  # type: ignore[arg-type]
            return Answer.of("people/bind_person_locked", until=until.astimezone(clock.tz))

    candidates = [p for p in named if p.phone and p.phone.endswith(last4)]
    if not candidates:
        return await _failed(session, services, msg, named, tries, account_failures, now, window, limit)
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
    session.add(
        AuditLog(at=now, actor_id=person.id, actor_label=person.name, action="bind",
                 target=f"person:{person.id}", detail={"channel": msg.channel})
    )
    return Answer.of("people/bound", name=person.name)


async def _recent_tries(session: AsyncSession, person_ids: list[int], since: dt.datetime
                        ) -> dict[int, list[tuple[dt.datetime, str]]]:
    """Failed tries naming each person since ``since``: (when, which account)."""
    if not person_ids:
        return {}
    rows = (await session.exec(
        select(BindAttempt.person_id, BindAttempt.at, BindAttempt.channel, BindAttempt.platform_user_id)
        .where(col(BindAttempt.person_id).in_(person_ids), BindAttempt.at >= since)
    )).all()
    tries: dict[int, list[tuple[dt.datetime, str]]] = {}
    for pid, at, channel, user in rows:
        tries.setdefault(pid, []).append((at, f"{channel}:{user}"))
    return tries


async def _failed(session: AsyncSession, services: Services, msg: InboundMessage, named: list[Person],
                  tries: dict[int, list[tuple[dt.datetime, str]]], account_failures: list[dt.datetime],
                  now: dt.datetime, window: dt.timedelta, limit: int) -> Answer:
    """Record a wrong try against the account and every person of that name; the try that locks a
    person tells staff (once: later tries are refused before they are counted)."""
    tz = services.clock.tz
    for person in named or [None]:
        session.add(BindAttempt(channel=msg.channel, platform_user_id=msg.sender_id,
                                person_id=person.id if person else None, at=now))
    staff = await staff_ids(session)
    locked_until: dt.datetime | None = None
    for person in named:
        mine = tries.get(person.id, []) + [(now, f"{msg.channel}:{msg.sender_id}")]  # type: ignore[arg-type]
        until = lock_until([at for at, _ in mine], now, limit, window)
        if until is None:
            continue
        locked_until = until
        accounts = len({who for at, who in mine if at >= now - window})
        body = services.renderer.text("people/bind_person_locked_staff", name=person.name, tries=limit,
                                      minutes=int(window.total_seconds() // 60), accounts=accounts,
                                      until=until.astimezone(tz))
        await services.outbox.enqueue_many(session, [
            Outgoing(key=f"bind-locked:{person.id}:{now.isoformat()}:{pid}", person_id=pid, body=body, source="bind-lock")
            for pid in staff
        ])
    if locked_until is not None:
        return Answer.of("people/bind_person_locked", until=locked_until.astimezone(tz))
    failures = [t for t in account_failures if t >= now - window] + [now]
    left = limit - len(failures)
    if left <= 0:
        return Answer.of("people/bind_locked", until=(now + window).astimezone(tz))
    return Answer.of("people/bind_failed", left=left)
