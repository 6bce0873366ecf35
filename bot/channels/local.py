"""The local channel: a real channel over plain HTTP, for trying Bangdai without any platform.

``POST /api/local/messages`` takes ``{"user", "text", "conversation"?, "group"?, "msg_id"?,
"attachments"?}`` and answers ``{"replies": [...]}``; ``GET /api/local/inbox/{user}`` lists what the outbox delivered to that
user, oldest first. An attachment is ``{"name", "kind": "file"|"picture", "data": base64}``, carried in
the message itself (small files only: the body limit holds). A ``[local] token`` makes both require ``Authorization: Bearer <token>``; without
one both answer only requests from this machine (loopback, not relayed by a proxy), because the
channel believes the ``user`` it is told — anyone who reaches it can speak as anyone (issue 11).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import ipaddress
import json
from typing import Any, Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import Database
from storage.models import LocalDelivery

from ..clock import Clock
from ..commands import present
from ..inbound import Address, Attachment, FileTooLarge, InboundMessage, Reply
from ..text import normalise_inbound
from .base import Channel, PermanentError

MAX_BODY = 64 * 1024
Handle = Callable[[InboundMessage], Awaitable[list[Reply]]]


def _bad(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def parse_local_message(body: Any, now: dt.datetime) -> InboundMessage:
    """The inbound message a local POST describes; ValueError with the reason when it doesn't."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    user, text = body.get("user"), body.get("text")
    if not isinstance(user, str) or not user.strip():
        raise ValueError("field 'user' is required and must be a non-empty string")
    if len(user) > 128:
        raise ValueError("field 'user' is longer than 128 characters")
    if not isinstance(text, str):
        raise ValueError("field 'text' is required and must be a string")
    conversation = body.get("conversation", user)
    if not isinstance(conversation, str) or not conversation:
        raise ValueError("field 'conversation' must be a non-empty string")
    group = body.get("group", False)
    if not isinstance(group, bool):
        raise ValueError("field 'group' must be true or false")
    msg_id = body.get("msg_id")
    if msg_id is not None and (not isinstance(msg_id, str) or not msg_id or len(msg_id) > 128):
        raise ValueError("field 'msg_id' must be a non-empty string of at most 128 characters")
    attachments = _attachments(body.get("attachments", []))
    unknown = set(body) - {"user", "text", "conversation", "group", "msg_id", "attachments"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    # JSON can carry lone surrogates ("\ud800"), which no database or UTF-8 answer takes.
    return InboundMessage(
        channel="local", sender_id=normalise_inbound(user.strip()), conversation_id=normalise_inbound(conversation),
        text=normalise_inbound(text), msg_id=normalise_inbound(msg_id) if msg_id else None,
        is_group=group, received_at=now, attachments=attachments,
    )


def _attachments(value: Any) -> tuple[Attachment, ...]:
    if not isinstance(value, list) or len(value) > 10:
        raise ValueError("field 'attachments' must be a list of at most 10 objects")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "kind", "data"}:
            raise ValueError("each attachment is an object with 'name', 'kind' and 'data'")
        name, kind, data = item.get("name", ""), item.get("kind", "file"), item.get("data")
        if not isinstance(name, str) or len(name) > 200 or kind not in ("file", "picture") or not isinstance(data, str):
            raise ValueError("attachment: 'name' a string, 'kind' file or picture, 'data' base64 text")
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            raise ValueError("attachment 'data' is not base64") from None
        out.append(Attachment(kind=kind, code=data, name=name))
    return tuple(out)


async def fetch_inline(attachment: Attachment, limit: int) -> bytes:
    """The local channel's files travel inside the message: decoding is the whole fetch."""
    data = base64.b64decode(attachment.code)
    if len(data) > limit:
        raise FileTooLarge(len(data), limit)
    return data


# A reverse proxy on the same machine makes every request look local; what it relays is not.
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def is_loopback_request(request: web.Request) -> bool:
    """Whether the request comes from this machine itself, not relayed for someone else."""
    if any(h in request.headers for h in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class LocalChannel(Channel):
    name = "local"

    def __init__(self, db: Database, clock: Clock, handle: Handle, token: str = "", rate_per_second: float = 10.0) -> None:
        self.db, self.clock, self.handle, self.token = db, clock, handle, token
        self.rate_per_second = rate_per_second
        self.received = 0

    async def fetch(self, attachment: Attachment, limit: int) -> bytes:
        return await fetch_inline(attachment, limit)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/local/messages", self.post_message)
        app.router.add_get("/api/local/inbox/{user}", self.get_inbox)

    def _refused(self, request: web.Request) -> web.Response | None:
        """None when the request may use the channel; otherwise the answer that says why not."""
        if not self.token:
            if is_loopback_request(request):
                return None
            return _bad("the local channel answers only on this machine; set [local] token to use it "
                        "from elsewhere (本地渠道未设置令牌，只接受本机请求)", 403)
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return None
        return _bad("missing or wrong bearer token", 401)

    async def post_message(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _bad(f"body larger than {MAX_BODY} bytes", 413)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _bad(f"body larger than {MAX_BODY} bytes", 413)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _bad(f"body is not valid UTF-8 JSON: {exc}")
        try:
            msg = parse_local_message(body, self.clock.now())
        except ValueError as exc:
            return _bad(str(exc))
        self.received += 1
        replies = await self.handle(msg)
        shown = [{"text": present(r.text, "plain"), "format": shown_format(r.format)} for r in replies if r.format != "image"]
        return web.json_response({"replies": shown}, dumps=_dumps)

    async def get_inbox(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        user = request.match_info["user"]
        async with self.db.transaction() as session:
            rows = (await session.exec(select(LocalDelivery).where(LocalDelivery.user == user).order_by(LocalDelivery.id))).all()
        messages = [
            {"text": r.text, "format": r.format, "key": r.key, "sent_at": r.sent_at.astimezone(self.clock.tz).isoformat()}
            for r in rows
        ]
        return web.json_response({"messages": messages}, dumps=_dumps)

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "received": self.received}

    async def deliver(self, address: Address, text: str, fmt: str, key: str) -> None:
        if not address.user_id:
            raise PermanentError("local channel has no groups")
        if fmt == "image":
            return  # no pictures here: the text version of the same figures was sent beside it
        text, fmt = present(text, "plain"), shown_format(fmt)
        try:
            async with self.db.transaction() as session:
                session.add(LocalDelivery(user=address.user_id, text=text, format=fmt, key=key, sent_at=self.clock.now()))
        except IntegrityError:
            return  # already delivered under this key: the platform de-duplicates like a real one would


def shown_format(fmt: str) -> str:
    """Nothing can be tapped here: a card is its Markdown text, commands in bold."""
    return "markdown" if fmt == "card" else fmt


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
