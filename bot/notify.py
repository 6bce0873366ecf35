"""Telling someone else: an :class:`~bot.router.Answer` rendered for another person (or a group) and
queued through the outbox in the caller's transaction.

Handlers and jobs use this one path (``notify`` is injectable; a job has ``ctx.notify``), so a notice
is worded by a template exactly as a reply is, and sent only if the change that caused it commits::

    await notify(session, f"mailbox-answer:{entry}", inquiry.submitter_id,
                 Answer.of("sanling/mailbox_answer_notice", q=inquiry, text=text), source="mailbox")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from .inbound import OutboxWriter, Outgoing, Reply
from .render import Renderer
from .router import Answer, Picture

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession


@dataclass(frozen=True)
class Notice:
    """One notice to queue: its idempotency key (a key already queued is kept as it was), the answer,
    and who gets it — a person (on their preferred chat account), a group ``(channel, name)``, or one
    exact chat account ``(channel, user id)``."""

    key: str
    answer: Answer | Picture
    person_id: int | None = None
    group: tuple[str, str] | None = None
    account: tuple[str, str] | None = None
    source: str = ""


class Notifier:
    def __init__(self, renderer: Renderer, outbox: OutboxWriter) -> None:
        self.renderer, self.outbox = renderer, outbox

    async def __call__(self, session: AsyncSession, key: str, person_id: int | None, answer: Answer | Picture, *,
                       source: str) -> bool:
        """Tell one person; True if the notice is new (not queued before under ``key``)."""
        return await self.many(session, [Notice(key, answer, person_id=person_id, source=source)]) == 1

    async def everyone(self, session: AsyncSession, answer: Answer | Picture, keys: dict[int, str], *,
                       source: str) -> int:
        """Tell several people the same thing (``keys``: person id → the key of their notice); the
        answer is rendered once. Returns how many notices are new."""
        return await self.many(session, [Notice(key, answer, person_id=pid, source=source) for pid, key in keys.items()])

    async def many(self, session: AsyncSession, notices: Iterable[Notice]) -> int:
        """Queue notices; each distinct answer (the same object given to many) is rendered once, each
        template loaded once. Returns how many are new."""
        notices = list(notices)
        replies = self.renderer.replies([n.answer for n in notices])
        return await self.queue(session, [
            Outgoing(key=n.key, body=r.text, format=r.format, person_id=n.person_id, group=n.group,
                     account=n.account, source=n.source)
            for n, r in zip(notices, replies)
        ])

    def render(self, answer: Answer | Picture) -> Reply:
        """The notice's text before it is queued, for a sender that cuts it into parts itself (a long
        ranking posted in pieces that fit WeCom's 2048 bytes)."""
        return self.renderer.reply(answer)

    async def queue(self, session: AsyncSession, messages: Sequence[Outgoing]) -> int:
        return await self.outbox.enqueue_many(session, messages)
