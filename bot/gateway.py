"""One way through the house: de-duplicate, resolve the sender, route, call, render, remember.

A message is handled in one transaction together with the record that it was handled, so a
redelivered message answers the same replies and writes nothing, and a failure leaves nothing half
written. Handlers never see which platform a message came from.

The gateway alone owns that record (``ProcessedMessage``) for every channel: "was this handled?" is
:meth:`Gateway.answered`, "remember this answer" (one a channel made itself, say to a picture it cannot
read) is :meth:`Gateway.remember`; channels ask these instead of reading the table.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import replace
from typing import Any

from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.hot import Hot
from storage.models import ProcessedMessage

from .identity import Sender, resolve_sender, sender_for_person
from .inbound import Attachment, Fetch, FetchError, FileTooLarge, InboundMessage, Reply
from .router import Answer, Command, Refusal, UsageError
from .services import Services
from .text import Args, Trusted, clean, near_miss, normalise_inbound

log = logging.getLogger(__name__)

_REMEMBER = Hot(insert(ProcessedMessage.__table__),  # type: ignore[arg-type]
                keys=("channel", "sender_id", "msg_id", "received_at", "replies"))

MESSAGES = Counter("bangdai_messages_total", "Inbound messages by channel and outcome", ["channel", "outcome"])


class _FetchLater(Exception):
    """A handler asked for a file's bytes inside its transaction: roll back, fetch, run it again."""

    def __init__(self, limit: int) -> None:
        super().__init__("fetch later")
        self.limit = limit


class _Prefetched:
    """The ``fetch`` a handler is given. Downloads never run inside a transaction (on SQLite that would
    stop every other message for as long as the file takes): the first call raises :class:`_FetchLater`,
    the gateway rolls back, fetches the message's files through the channel, and runs the handler again,
    which now gets the bytes (or the same error) at once. A refusal before any fetch costs no download."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.done: dict[Attachment, bytes | FetchError] = {}

    async def __call__(self, attachment: Attachment, limit: int) -> bytes:
        if attachment not in self.done:
            raise _FetchLater(limit)
        result = self.done[attachment]
        if isinstance(result, FetchError):
            raise result
        if len(result) > limit:
            raise FileTooLarge(len(result), limit)
        return result

    async def load(self, attachments: tuple[Attachment, ...], limit: int) -> None:
        for attachment in attachments:
            try:
                self.done[attachment] = await self.fetch(attachment, limit)
            except FetchError as exc:
                self.done[attachment] = exc


class Replayed(list):
    """The replies of a message handled before (a redelivered copy): the same answers, and nothing done.
    Channels that answer over HTTP return them again; channels that post replies themselves (DingTalk)
    do not post them twice — the copy may have been handled by another ``serve`` process."""

    replayed = True


class _Refused(Exception):
    def __init__(self, replies: list[Reply]) -> None:
        super().__init__("refused")
        self.replies = replies


def normalised(msg: InboundMessage) -> InboundMessage:
    """The message with text and ids every layer can store and print (:func:`normalise_inbound`),
    whichever channel it came from."""
    fields = {name: normalise_inbound(value) for name, value in
              (("text", msg.text), ("sender_id", msg.sender_id), ("conversation_id", msg.conversation_id),
               ("msg_id", msg.msg_id), ("sender_name", msg.sender_name)) if value}
    changed = {k: v for k, v in fields.items() if v != getattr(msg, k)}
    return replace(msg, **changed) if changed else msg


class Gateway:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def handle(self, msg: InboundMessage, as_person: int | None = None,
                     outcome: list[str] | None = None) -> list[Reply]:
        """Handle one inbound message. ``as_person`` (the CLI's ``bangdai do --as``) acts as that roster
        person instead of resolving the chat account. ``outcome``, when given, gets "ok", "refused",
        "duplicate" or "error" appended (a WeCom card says "已报名" only when the sign-up went in)."""
        msg = normalised(msg)
        said = outcome if outcome is not None else []
        fetcher = self.services.fetchers.get(msg.channel)
        fetch = _Prefetched(fetcher) if msg.attachments and fetcher is not None else None
        for attempt in (1, 2):
            try:
                try:
                    return await self._handle_once(msg, as_person, said, fetch)
                except _FetchLater as later:
                    # A platform's retry of a file message would fetch the file again just to roll it
                    # back: before a download (and only then) the look-up is worth its statement.
                    stored = await self.answered(msg)
                    if stored is not None:
                        said.append("duplicate")
                        return stored
                    await fetch.load(msg.attachments, later.limit)  # type: ignore[union-attr]
                    return await self._handle_once(msg, as_person, said, fetch)
            except IntegrityError:
                # A concurrent copy of this message won the race: answer what it answered.
                stored = await self.answered(msg)
                if stored is not None:
                    said.append("duplicate")
                    return stored
                if attempt == 2:
                    log.exception("message %s/%s failed twice on a constraint", msg.channel, msg.msg_id)
            except Exception:
                log.exception("message %s/%s failed", msg.channel, msg.msg_id)
                break
        MESSAGES.labels(msg.channel, "error").inc()
        said.append("error")
        return [self.services.renderer.reply(Answer.of("errors/internal"))]

    async def answered(self, msg: InboundMessage) -> Replayed | None:
        """Was this message handled before (by this process or another, before a restart or not)? Its
        replies if so, as :class:`Replayed` (counted as a duplicate), else None. Keyed by the sender
        too: a message id is not a key to someone else's answers (platform ids are per sender on some
        platforms, and the local channel takes whatever id it is given)."""
        msg = normalised(msg)
        if not msg.msg_id:
            return None
        async with self.services.db.transaction() as session:
            row = (
                await session.exec(
                    select(ProcessedMessage.replies).where(
                        ProcessedMessage.channel == msg.channel, ProcessedMessage.sender_id == msg.sender_id,
                        ProcessedMessage.msg_id == msg.msg_id,
                    )
                )
            ).first()
        if row is None:
            return None
        MESSAGES.labels(msg.channel, "duplicate").inc()
        return Replayed(Reply(**r) for r in row)

    async def remember(self, msg: InboundMessage, replies: list[Reply]) -> list[Reply]:
        """Remember an answer a channel gave without the router (a picture or a voice message it
        could not read), like any handled message's: ``replies`` when this is the first copy, or the
        first copy's replies as :class:`Replayed` when another got here before."""
        msg = normalised(msg)
        if not msg.msg_id:
            return replies
        try:
            async with self.services.db.transaction() as session:
                await self._remember(session, msg, replies)
        except IntegrityError:
            return await self.answered(msg) or Replayed()
        return replies

    async def _remember(self, session: AsyncSession, msg: InboundMessage, replies: list[Reply]) -> None:
        """Record the message as handled, with its replies, in the transaction of its effects. A
        concurrent copy of the same message fails here on the primary key, and its effects roll back."""
        await _REMEMBER.rows(session, {"channel": msg.channel, "sender_id": msg.sender_id, "msg_id": msg.msg_id,
                                       "received_at": self.services.clock.now(),
                                       "replies": [r.as_dict() for r in replies]})

    async def _handle_once(self, msg: InboundMessage, as_person: int | None, said: list[str],
                           fetch: "_Prefetched | None" = None) -> list[Reply]:
        renderer = self.services.renderer
        try:
            # No look-up first: a copy of a message handled before fails on the primary key of its
            # record at the end, its effects roll back, and ``handle`` answers the stored replies.
            # Copies are rare; the look-up would cost every message a statement.
            async with self.services.db.transaction() as session:
                try:
                    answers = await self._dispatch(session, msg, as_person, fetch)
                except (Refusal, UsageError) as exc:
                    # Render while the loaded rows are still live, then roll back whatever was written.
                    raise _Refused([renderer.reply(self._refusal_answer(exc))]) from exc
                replies = [renderer.reply(a) for a in answers]
                if msg.msg_id:
                    await self._remember(session, msg, replies)
            MESSAGES.labels(msg.channel, "ok").inc()
            said.append("ok")
            return replies
        except _Refused as refused:
            if msg.msg_id:  # the refusal is remembered like any answer
                async with self.services.db.transaction() as session:
                    await self._remember(session, msg, refused.replies)
            MESSAGES.labels(msg.channel, "refused").inc()
            said.append("refused")
            return refused.replies

    def _refusal_answer(self, exc: Refusal | UsageError) -> Answer:
        if isinstance(exc, Refusal):
            return exc.answer
        command = exc.command
        return Answer.of(
            "errors/usage",
            # The reason's own template; what it quotes of the person's text is escaped like any value.
            reason=self.services.renderer.text(exc.reason, command=command, **exc.values),
            usage=command.usage if command else "",
            example=exc.example or (command.examples[0] if command else Trusted("")),
            children=getattr(exc, "children", []),
            why=exc.reason,  # the reason's key, for whoever reads the answer rather than its text
        )

    async def _dispatch(self, session: AsyncSession, msg: InboundMessage, as_person: int | None = None,
                        fetch: "_Prefetched | None" = None) -> list[Answer]:
        config = self.services.config.programme
        text = clean(msg.text)
        if len(text) > config.max_text_chars:
            raise Refusal("errors/too_long", limit=config.max_text_chars, length=len(text))
        await self.services.db.directory.begin(session)
        if as_person is not None:
            sender = await sender_for_person(session, as_person, msg.channel)
        else:
            sender = await resolve_sender(session, msg.channel, msg.sender_id)
        router = self.services.router
        matched = router.match(text) if text else None
        if matched is None and msg.attachments and not text and router.for_attachments() is not None:
            matched = (router.for_attachments(), "")  # a file or picture on its own belongs to its case
        if sender is not None and not sender.active:  # off the roster: 帮助 says so, everything else is refused
            if matched is not None and matched[0].keyword == "帮助":
                return [Answer.of("people/deactivated", name=sender.name)]
            raise Refusal("people/deactivated", name=sender.name)
        if matched is None:
            if sender is None:
                raise Refusal("errors/need_bind")
            visible = router.visible_to(sender.roles)
            meant = near_miss(text, [w for c in visible for w in (c.keyword, c.alias)])
            raise Refusal("errors/unknown", text=text[:20], commands=visible[:6], meant=meant)
        command, rest = matched
        roles = sender.roles if sender else None
        self._check(msg, sender, command)
        whole = rest
        child = command.child(rest)
        if child is not None:  # 编组 新建 …: the child's own roles and private flag, before it runs
            command, rest = child
            self._check(msg, sender, command)
        try:
            if command.handler is None:  # a parent that only has children: which one?
                raise UsageError("errors/usage/which_child")
            result = await self._call(command, session, msg, sender, Args(rest, whole), fetch)
        except UsageError as exc:
            exc.command = command
            exc.children = command.children_for(roles)  # a parent's answer lists the children this sender may use
            raise
        return result if isinstance(result, list) else [result]

    @staticmethod
    def _check(msg: InboundMessage, sender: Sender | None, command: Command) -> None:
        """A private command in a group, or a command the sender's roles do not allow, is refused
        from its declaration before any handler runs."""
        roles = sender.roles if sender else None
        if msg.is_group and command.private_for(roles):
            raise Refusal("errors/private_only", command=command)
        if not command.allowed(roles):
            if sender is None:
                raise Refusal("errors/need_bind")
            # A sub-command someone may not use names the siblings they may (导师 推荐 → 导师 自荐).
            others = [c for c in command.parent.children_for(roles) if c is not command][:3] if command.parent else []
            raise Refusal("errors/not_allowed", command=command, roles=sorted(command.roles or ()), others=others)

    async def _call(
        self, command: Command, session: AsyncSession, msg: InboundMessage, sender: Sender | None, args: Args,
        fetch: "_Prefetched | None" = None,
    ) -> Any:
        s = self.services
        available = {
            "msg": msg,
            "sender": sender,
            "args": args,
            "session": session,
            "clock": s.clock,
            "calendar": s.calendar,
            "config": s.config,
            "command": command,
            "renderer": s.renderer,
            "outbox": s.outbox,
            "notify": s.notify,
            "commands": s.router,  # as a Commands: find and list, nothing to register
            "fetch": fetch,
        }
        # Router.command checked the parameters against INJECTABLE when the handler was declared.
        result = command.handler(**{p: available[p] for p in command.params})
        return await result if inspect.isawaitable(result) else result
