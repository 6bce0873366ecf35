"""The one small message type every channel turns its payload into, and what goes back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class Reply:
    """What goes back. ``format``: "markdown", "text", "card" (Markdown whose commands WeCom shows as
    buttons) or "image" (``text`` is a chart's data, drawn by the channel that can show pictures)."""

    text: str
    format: str = "markdown"

    def as_dict(self) -> dict:
        return {"text": self.text, "format": self.format}


@dataclass(frozen=True)
class Address:
    """Where an outgoing message goes: a chat identity on a channel, or a named group."""

    channel: str
    user_id: str | None = None
    group: str | None = None
    extras: dict = field(default_factory=dict, compare=False, hash=False)
