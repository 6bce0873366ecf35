"""The one small message type every channel turns its payload into, and what goes back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable


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
