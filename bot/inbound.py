"""The one small message type every channel turns its payload into, and what goes back: a reply, or
an :class:`Outgoing` message queued through an :class:`OutboxWriter` (the outbox itself lives in
``scheduler/outbox.py``; handlers, jobs and channels see only these contracts)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Protocol, Sequence

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession


@dataclass(frozen=True)
class Attachment:
    """A file or picture that came with a message: what the platform gave to fetch it later (a
    DingTalk downloadCode, a WeCom media_id, the local channel's inline data), never the bytes."""

    kind: str  # "file", "picture", "video"
    code: str
    name: str = ""


class FetchError(Exception):
    """A file could not be fetched from the platform (expired code, platform error): ``reason`` is for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileTooLarge(FetchError):
    """The file is bigger than the limit the caller gave; nothing of it is kept."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.size, self.limit = size, limit


# A channel's way to get an attachment's bytes, at most ``limit`` of them (FileTooLarge beyond).
Fetch = Callable[[Attachment, int], Awaitable[bytes]]


@dataclass(frozen=True)
class InboundMessage:
    """A text someone sent the bot, as the gateway sees it — the same for every platform."""

    channel: str  # "local", "dingtalk", "wecom"
    sender_id: str  # the platform's user id (DingTalk senderStaffId, WeCom UserID, local user)
    conversation_id: str
    text: str
    msg_id: str | None = None  # the platform's message id; None means "never de-duplicate"
    is_group: bool = False
    sender_name: str = ""
    received_at: dt.datetime | None = None
    attachments: tuple[Attachment, ...] = ()  # files and pictures; their bytes come from the channel's Fetch


@dataclass(frozen=True)
class Reply:
    """What goes back. ``format``: "markdown", "text", "card" (Markdown whose commands WeCom shows as
    buttons) or "image" (``text`` is a chart's data, drawn by the channel that can show pictures)."""

    text: str
    format: str = "markdown"
    # What it was rendered from (an Answer or a Picture), for whoever handled the message in process
    # (the CLI, tests asserting on template keys); never stored or sent. None for a replayed reply.
    answer: Any = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"text": self.text, "format": self.format}


@dataclass(frozen=True)
class Address:
    """Where an outgoing message goes: a chat identity on a channel, or a named group."""

    channel: str
    user_id: str | None = None
    group: str | None = None
    extras: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: to a person (resolved to their preferred chat account), to a group, or to
    one exact chat account (a reply must reach the account that wrote, bound or not)."""

    key: str
    body: str
    person_id: int | None = None
    group: tuple[str, str] | None = None  # (channel, group name)
    account: tuple[str, str] | None = None  # (channel, platform user id)
    format: str = "markdown"
    source: str = ""


# Notices to the writer of an anonymous 三联信箱 letter. Their rows keep the address (the answer must
# reach the writer), but no operator view shows it beside the ticket (``scheduler.outbox.operator_view``).
ANONYMOUS_SOURCE = "mailbox-anonymous"


def anonymous_key(ticket: int, kind: str, entry: int) -> str:
    """The idempotency key of a notice to an anonymous letter's writer (``kind``: answer, closed)."""
    return f"mailbox-anon:{ticket}:{kind}:{entry}"


class OutboxWriter(Protocol):
    """What handlers, jobs and channels need of the outbox: queue messages inside their own transaction
    (a key already queued is kept as it was), and where a person would get one."""

    async def enqueue(self, session: AsyncSession, message: Outgoing) -> bool: ...

    async def enqueue_many(self, session: AsyncSession, messages: Sequence[Outgoing]) -> int: ...

    async def accounts(self, session: AsyncSession, person_ids: Iterable[int]) -> dict[int, tuple[str, str]]: ...

    async def keys_queued(self, session: AsyncSession, account: tuple[str, str], source: str,
                          since: dt.datetime) -> list[str]: ...


class OutboxService(OutboxWriter, Protocol):
    """The outbox as the running service holds it: the writer, and what operators read (CLI, console,
    /healthz)."""

    async def counts(self) -> dict[str, int]: ...

    async def problems(self, limit: int = 50, offset: int = 0) -> list[Any]: ...

    async def retry(self, ids: Iterable[int]) -> int: ...
