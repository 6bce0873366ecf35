"""The cheap way to talk to the bot in a test: ``await bot.ask("u1", "记录 面谈 …")``.

The real gateway, router, handlers, renderer and database (a SQLite file or PostgreSQL) on the frozen
clock — everything a chat message passes through except a channel. What comes back is what the
handlers answered (:class:`~bot.router.Answer`: template key and values), with the text the local
channel would show beside it. A test of logic asserts on the answers (a reworded template does not
break it); a test of wording reads ``.text``. What only a channel does (HTTP, DingTalk's SDK, WeCom's
crypto, the local channel's limits) is tested through the channel: ``chat`` in conftest and the fakes.
"""

from __future__ import annotations

from typing import Any

from bot.commands import present
from bot.gateway import Gateway
from bot.inbound import Attachment, InboundMessage, Reply
from bot.router import Answer, Picture

class Said(list):
    """The replies to one message, in order. Each has ``.text`` (as sent) and ``.answer`` (what it was
    rendered from; None when the gateway replayed a stored answer to a redelivered message)."""

    @property
    def answers(self) -> list[Answer | Picture | None]:
        return [r.answer for r in self]

    @property
    def keys(self) -> list[str]:
        """The template of every reply ("picture" for a chart, "replayed" for a stored answer)."""
        return [r.answer.template if isinstance(r.answer, Answer) else
                "picture" if isinstance(r.answer, Picture) else "replayed" for r in self]

    @property
    def answer(self) -> Answer:
        """The one text answer (a chart sent beside it aside); fails when there are several."""
        texts = [r.answer for r in self if not isinstance(r.answer, Picture)]
        assert len(texts) == 1 and isinstance(texts[0], Answer), self.keys
        return texts[0]

    @property
    def key(self) -> str:
        return self.answer.template

    @property
    def values(self) -> dict[str, Any]:
        return self.answer.values

    @property
    def text(self) -> str:
        """What the local channel shows: the text replies joined, one-tap commands in bold."""
        return "\n".join(present(r.text, "plain") for r in self if r.format != "image")

    def __str__(self) -> str:
        return self.text


class Bot:
    """One programme's bot in process. ``channel`` is the platform the messages claim to come from (the
    gateway treats them alike; chat accounts are per channel)."""

    def __init__(self, services: Any, channel: str = "local") -> None:
        self.services = services
        self.gateway = Gateway(services)
        self.channel = channel

    async def ask(self, user: str, text: str, *, group: bool = False, conversation: str | None = None,
                  msg_id: str | None = None, attachments: tuple[Attachment, ...] = (),
                  outcome: list[str] | None = None) -> Said:
        """Send ``text`` as ``user`` (their chat id on this channel) privately, or in a group. Like the
        local channel's messages, it has no id (never de-duplicated) unless ``msg_id`` gives one."""
        msg = InboundMessage(
            channel=self.channel, sender_id=user, conversation_id=conversation or ("g1" if group else user),
            text=text, msg_id=msg_id, is_group=group, received_at=self.services.clock.now(),
            attachments=attachments,
        )
        replies: list[Reply] = await self.gateway.handle(msg, outcome=outcome)
        return Said(replies)

    async def say(self, user: str, text: str, **kw: Any) -> str:
        """The text only, as ``chat.say`` gives it over HTTP."""
        return (await self.ask(user, text, **kw)).text
