"""DingTalk (钉钉 / 浙政钉): robot messages in over Stream mode, replies and outbox messages out.

In: every robot message is acknowledged the moment it arrives and handled in a task after, so a slow
database never delays an ack (a late ack makes DingTalk push the message again 16–60 s later). The
message's ``msgId`` de-duplicates: in memory for what this process has seen, and through the gateway
(``Gateway.answered``, its record of handled messages) for redeliveries after a restart or to another
process.
Messages of one sender in one conversation are handled in the order they came.

Out: a reply goes as Markdown to the message's ``sessionWebhook`` while it is valid, @-mentioning the
sender in a group; after that through the OpenAPI. Outbox messages always use the OpenAPI: identical
messages to several people in one ``batchSend`` of up to 20, groups by their configured name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import aiohttp
from dingtalk_stream import ChatbotMessage
from prometheus_client import Counter
from .. import charts
from ..commands import present
from ..inbound import Address, Attachment, FetchError, InboundMessage, Reply
from ..text import md_escape
from .base import Channel, DeliveryError, Gate, PermanentError, TransientError
from .dingtalk_api import BATCH_LIMIT, FLOW_CONTROL_RETRY_AFTER, ApiUsage, OpenApi, markdown_title
from .dingtalk_stream import StreamConnection
from .files import read_limited

log = logging.getLogger(__name__)

RECEIVED = Counter("bangdai_dingtalk_received_total", "DingTalk robot messages received, by kind", ["kind"])
DUPLICATES = Counter("bangdai_dingtalk_duplicates_total", "DingTalk robot messages pushed again and ignored")
REPLIES = Counter("bangdai_dingtalk_replies_total", "Replies to DingTalk messages, by path", ["path"])
PROACTIVE = Counter("bangdai_dingtalk_proactive_sends_total", "Outbox messages sent through the OpenAPI, by outcome",
                    ["kind", "outcome"])

GROUP = "2"  # conversationType: "1" private, "2" group
WEBHOOK_MARGIN = 5.0  # seconds: a sessionWebhook this close to its expiry is treated as expired
FRESH = 5.0  # seconds: a message younger than this, first seen by this process, cannot be a redelivery
REMEMBERED = 10_000  # msgIds kept in memory
QUOTA_WARN_SHARE = 0.8
DOWN_WARN_AFTER = 60.0  # seconds without a connection before /healthz warns


READABLE = ("text", "richText", "audio")


def message_text(message: ChatbotMessage) -> str:
    """The words of a robot message, "" when it has none.

    text: ``text.content``; richText: its text parts in order, as one message (pictures between them
    are left out); audio: DingTalk's own transcript ``content.recognition``. Pictures, files and
    videos carry only a ``downloadCode``.
    """
    kind = message.message_type
    if kind == "text":
        return (message.text.content if message.text else "") or ""
    if kind == "richText":
        parts = (message.rich_text_content.rich_text_list if message.rich_text_content else None) or []
        words = [str(p["text"]).strip() for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return " ".join(w for w in words if w)
    if kind == "audio":
        content = message.extensions.get("content")
        recognition = content.get("recognition") if isinstance(content, dict) else None
        return recognition.strip() if isinstance(recognition, str) else ""
    return ""


FILE_KINDS = {"file": "file", "picture": "picture", "video": "video"}


def _attachments(message: ChatbotMessage) -> tuple[Attachment, ...]:
    """The file of a picture, file or video message (its ``content.downloadCode``), or nothing."""
    kind = FILE_KINDS.get(message.message_type or "")
    content = message.extensions.get("content") if kind else None
    if not isinstance(content, dict) or not isinstance(content.get("downloadCode"), str) or not content["downloadCode"]:
        return ()
    name = content.get("fileName") if isinstance(content.get("fileName"), str) else ""
    return (Attachment(kind=kind, code=content["downloadCode"], name=name[:200]),)  # type: ignore[arg-type]


class _WebhookFailed(Exception):
    pass


class _Invalid(PermanentError):
    """DingTalk listed the user in ``invalidStaffIdList``."""


class _FlowControlled(TransientError):
    """DingTalk listed the user in ``flowControlledStaffIdList`` (inside a 200 answer)."""


def _outcome(error: DeliveryError | None) -> str:
    if error is None:
        return "sent"
    if isinstance(error, _Invalid):
        return "invalid"
    if isinstance(error, _FlowControlled):
        return "flow_controlled"
    return "error"


class DingTalkChannel(Channel):
    name = "dingtalk"
    max_batch = BATCH_LIMIT

    def __init__(self, services: Any, gateway: Gate) -> None:
        self.services = services
        self.gateway = gateway
        self.config = config = services.config.dingtalk
        self.rate_per_second = config.rate_per_second
        self.usage = ApiUsage(services.db, services.clock)
        self.api = OpenApi(config.api_base, config.client_id, config.client_secret.reveal(), config.robot_code or config.client_id,
                           self.usage, timeout=config.http_timeout_seconds, oapi_base=config.oapi_base)
        self.stream = StreamConnection(config.api_base, config.client_id, config.client_secret.reveal(), self.accept,
                                       base_delay=config.reconnect_base_seconds, max_delay=config.reconnect_max_seconds,
                                       timeout=config.http_timeout_seconds)
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._order: dict[str, tuple[asyncio.Lock, int]] = {}
        self._started = time.time()
        self.received = 0
        self.last_message_at: dt.datetime | None = None
        self.platform_notice = ""  # e.g. DingTalk's own "quota exhausted" push, shown on /healthz
        services.warning_sources.append(self.quota_warnings)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = time.time()
        try:
            await self.usage.load()
        except Exception:
            log.exception("could not read this month's DingTalk API count")
        await self.stream.start()

    async def stop(self) -> None:
        """Stop reading, let replies in flight finish for a moment, close the HTTP sessions."""
        await self.stream.stop(timeout=2.0)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
            for task in list(self._tasks):
                task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.api.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.http_timeout_seconds))
        return self._http

    # --- in -----------------------------------------------------------------------------------------

    def accept(self, data: Any) -> None:
        """Take one robot message payload in; called by the stream handler before the ack, so it only
        looks at the payload and starts a task."""
        if not isinstance(data, dict):
            RECEIVED.labels("unparseable").inc()
            log.warning("DingTalk robot message without a JSON object payload; acknowledged and dropped")
            return
        if data.get("msgtype") == "text" and "text" not in data:
            # What DingTalk pushes when the organisation's quota is spent: no text, an errorMessage.
            RECEIVED.labels("unparseable").inc()
            self.platform_notice = str(data.get("errorMessage") or "消息没有文字内容")[:200]
            log.warning("DingTalk pushed a message without text: %s", self.platform_notice)
            return
        try:
            message = ChatbotMessage.from_dict(data)
        except Exception as exc:
            RECEIVED.labels("unparseable").inc()
            log.warning("DingTalk robot message could not be read (%s); acknowledged and dropped", type(exc).__name__)
            return
        msg_id = message.message_id
        if not msg_id or not (message.sender_staff_id or message.sender_id) or not message.conversation_id:
            RECEIVED.labels("unparseable").inc()
            log.warning("DingTalk robot message without msgId, sender or conversation; dropped")
            return
        if message.conversation_type == GROUP and message.is_in_at_list is not True:
            # A group message that does not @ the bot is not for it (DingTalk says so in isInAtList).
            RECEIVED.labels("not_for_bot").inc()
            return
        seen = f"{message.sender_staff_id or message.sender_id}\x00{msg_id}"  # per sender, as the gateway's record
        if seen in self._seen:
            DUPLICATES.inc()
            return
        self._seen[seen] = None
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        RECEIVED.labels(message.message_type if message.message_type in READABLE else
                        "file" if message.message_type in FILE_KINDS else "other").inc()
        self.received += 1
        self.last_message_at = self.services.clock.now()
        created = (message.create_at or 0) / 1000 if isinstance(message.create_at, (int, float)) else 0
        # This process's memory covers what it saw itself; only an older message can be a redelivery of
        # something handled before a restart or by another process, so only those cost a look-up.
        maybe_seen = not (created >= self._started and time.time() - created < FRESH)
        task = asyncio.create_task(self._process(message, maybe_seen), name=f"dingtalk-{msg_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def _in_order(self, key: str) -> AsyncIterator[None]:
        lock, users = self._order.get(key) or (asyncio.Lock(), 0)
        self._order[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._order[key]
            if users <= 1:
                del self._order[key]
            else:
                self._order[key] = (lock, users - 1)

    async def _process(self, message: ChatbotMessage, maybe_seen: bool) -> None:
        sender = message.sender_staff_id or message.sender_id
        try:
            async with self._in_order(f"{message.conversation_id}\x00{sender}"):
                # (On SQLite the database itself serves transactions one at a time, in order.)
                if maybe_seen and await self.gateway.answered(self.inbound(message, text="")) is not None:
                    DUPLICATES.inc()
                    return
                text, attachments = message_text(message), _attachments(message)
                if text or attachments:
                    replies = await self.gateway.handle(self.inbound(message, attachments, text))
                    if message.message_type == "audio" and replies:
                        # What DingTalk heard leads the answer, so a mishearing is seen at once.
                        heard = self.services.renderer.text("dingtalk/heard", text=text)
                        replies[0] = Reply(f"{heard}\n\n{replies[0].text}", replies[0].format)
                else:
                    replies = await self._not_text(message)
                if getattr(replies, "replayed", False):
                    # A copy handled by another process (or a moment ago): it has answered already.
                    DUPLICATES.inc()
                    return
                for reply in replies:
                    await self.reply(message, reply)
        except Exception:
            log.exception("DingTalk message %s failed", message.message_id)

    def inbound(self, message: ChatbotMessage, attachments: tuple[Attachment, ...] = (),
                text: str | None = None) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            sender_id=message.sender_staff_id or message.sender_id,
            conversation_id=message.conversation_id,
            text=message_text(message) if text is None else text,
            msg_id=message.message_id,
            is_group=message.conversation_type == GROUP,
            sender_name=message.sender_nick or "",
            received_at=self.services.clock.now(),
            attachments=attachments,
        )

    async def fetch(self, attachment: Attachment, limit: int) -> bytes:
        """A file or picture sent to the robot: its downloadCode becomes a short-lived URL (one OpenAPI
        call), read up to ``limit`` bytes."""
        try:
            url = await self.api.download_url(attachment.code)
        except DeliveryError as exc:
            raise FetchError(exc.reason) from None
        return await read_limited(self.http, url, limit)

    async def _not_text(self, message: ChatbotMessage) -> list[Reply]:
        """A picture, a file, a voice message DingTalk could not transcribe…: one line saying what is
        understood, remembered by the gateway like any answer (a copy gets ``Replayed``, not posted)."""
        template = "dingtalk/not_heard" if message.message_type == "audio" else "dingtalk/text_only"
        reply = Reply(self.services.renderer.text(template))
        return await self.gateway.remember(self.inbound(message, text=""), [reply])

    # --- replies ------------------------------------------------------------------------------------

    async def _prepared(self, text: str, fmt: str, group: bool = False) -> tuple[str, str]:
        """What DingTalk is sent for a body: Markdown with tappable commands (``dtmd://`` links), plain
        text with the commands in words, or a picture uploaded with the media API (its media_id).

        In a group the commands stay words: a tapped link sends its text to the group without @-ing
        the robot, and only messages that @ it reach the robot."""
        if fmt == "image":
            try:
                png = await charts.render(text)
            except charts.ChartError as exc:
                raise PermanentError(str(exc)) from None
            return await self.api.upload_image(png), "image"
        if fmt in ("markdown", "card"):  # a card's buttons are its command links here
            return present(text, "plain" if group else "dingtalk"), "markdown"
        return present(text, "plain"), fmt

    async def reply(self, message: ChatbotMessage, reply: Reply) -> None:
        expires = (message.session_webhook_expired_time or 0) / 1000
        # A sessionWebhook takes no uploaded pictures: those go through the OpenAPI.
        if reply.format != "image" and message.session_webhook and time.time() < expires - WEBHOOK_MARGIN:
            try:
                await self._post_webhook(message, reply)
                REPLIES.labels("webhook").inc()
                return
            except _WebhookFailed as exc:
                log.info("sessionWebhook of %s refused (%s); replying through the OpenAPI", message.message_id, exc)
        for attempt in range(3):
            try:
                await self._reply_openapi(message, reply)
                REPLIES.labels("openapi").inc()
                return
            except TransientError as exc:
                if attempt == 2:
                    error: DeliveryError = exc
                    break
                await asyncio.sleep(min(exc.retry_after or 1.0, 5.0))
            except PermanentError as exc:
                error = exc
                break
        REPLIES.labels("failed").inc()
        log.warning("reply to DingTalk message %s lost: %s", message.message_id, error.reason)

    async def _post_webhook(self, message: ChatbotMessage, reply: Reply) -> None:
        shown, fmt = await self._prepared(reply.text, reply.format, message.conversation_type == GROUP)
        reply = Reply(shown, fmt)
        text = reply.text
        body: dict[str, Any] = {}
        staff_id = message.sender_staff_id
        if message.conversation_type == GROUP:
            # DingTalk renders "@<userId>" in the text as the mention of the people in atUserIds.
            if staff_id:
                text = f"@{staff_id} {text}"
                body["at"] = {"atUserIds": [staff_id], "isAtAll": False}
            elif message.sender_id:
                text = f"@{message.sender_id} {text}"
                body["at"] = {"atDingtalkIds": [message.sender_id], "isAtAll": False}
        if reply.format == "markdown":
            body.update(msgtype="markdown", markdown={"title": markdown_title(reply.text), "text": text})
        else:
            body.update(msgtype="text", text={"content": text})
        try:
            async with self.http.post(message.session_webhook, json=body) as resp:
                status = resp.status
                answer = await resp.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise _WebhookFailed(f"{type(exc).__name__}") from None
        if status != 200 or not isinstance(answer, dict) or answer.get("errcode", 0) != 0:
            errcode = answer.get("errcode") if isinstance(answer, dict) else None
            raise _WebhookFailed(f"HTTP {status} errcode {errcode}")

    async def _reply_openapi(self, message: ChatbotMessage, reply: Reply) -> None:
        shown, fmt = await self._prepared(reply.text, reply.format, message.conversation_type == GROUP)
        reply = Reply(shown, fmt)
        if message.conversation_type == GROUP and reply.format == "image":
            await self.api.group_send(message.conversation_id, reply.text, "image")
            return
        if message.conversation_type == GROUP:
            # groupMessages/send cannot @-mention: name the sender in words instead.
            nick = md_escape(message.sender_nick or "") if reply.format == "markdown" else message.sender_nick or ""
            text = f"@{nick} {reply.text}" if nick else reply.text
            await self.api.group_send(message.conversation_id, text, reply.format)
            return
        if not message.sender_staff_id:
            raise PermanentError("发信人没有 staffId，无法通过接口单聊回复")
        error = (await self._send_users([message.sender_staff_id], reply.text, reply.format))[message.sender_staff_id]
        if error is not None:
            raise error

    # --- outbox deliveries --------------------------------------------------------------------------

    async def deliver(self, address: Address, text: str, fmt: str, key: str) -> None:
        [error] = await self.deliver_batch([address], text, fmt, [key])
        if error is not None:
            raise error

    async def deliver_batch(self, addresses: list[Address], text: str, fmt: str, keys: list[str]
                            ) -> list[DeliveryError | None]:
        results: list[DeliveryError | None] = [None] * len(addresses)
        body = text
        try:
            text, fmt_shown = await self._prepared(body, fmt)
            if any(a.group is not None for a in addresses):
                group_text, group_fmt = await self._prepared(body, fmt, group=True)
        except DeliveryError as exc:
            return [exc] * len(addresses)
        users: dict[str, list[int]] = {}
        for i, address in enumerate(addresses):
            if address.group is not None:
                results[i] = await self._send_group(address.group, group_text, group_fmt)
            elif address.user_id:
                users.setdefault(address.user_id, []).append(i)
            else:
                results[i] = PermanentError("没有收件人")
        if users:
            outcome = await self._send_users(list(users), text, fmt_shown)
            for user, indexes in users.items():
                error = outcome[user]
                PROACTIVE.labels("user", _outcome(error)).inc()
                for i in indexes:
                    results[i] = error
        return results

    async def _send_users(self, user_ids: list[str], text: str, fmt: str) -> dict[str, DeliveryError | None]:
        """batchSend in chunks of 20; per user None (accepted) or why not."""
        out: dict[str, DeliveryError | None] = {}
        for start in range(0, len(user_ids), BATCH_LIMIT):
            chunk = user_ids[start:start + BATCH_LIMIT]
            try:
                result = await self.api.batch_send(chunk, text, fmt)
            except DeliveryError as exc:
                out.update((u, exc) for u in chunk)
                continue
            for user in chunk:
                if user in result.invalid:
                    out[user] = _Invalid(f"钉钉ID {user} 无效（invalidStaffIdList）：不在本组织或已离职，请核对花名册")
                elif user in result.flow_controlled:
                    out[user] = _FlowControlled(f"钉钉对 {user} 限流（flowControlledStaffIdList），稍后重试",
                                                retry_after=FLOW_CONTROL_RETRY_AFTER)
                else:
                    out[user] = None
        return out

    async def _send_group(self, group: str, text: str, fmt: str) -> DeliveryError | None:
        conversation = self.config.groups.get(group)
        if not conversation:
            PROACTIVE.labels("group", "unknown").inc()
            return PermanentError(f"钉钉群“{group}”没有配置（[dingtalk] groups 中没有它的 openConversationId）")
        try:
            await self.api.group_send(conversation, text, fmt)
        except DeliveryError as exc:
            PROACTIVE.labels("group", "error").inc()
            return exc
        PROACTIVE.labels("group", "sent").inc()
        return None

    # --- health -------------------------------------------------------------------------------------

    def quota_warnings(self) -> list[str]:
        """The staff warning once 80 % of the month's OpenAPI calls are spent (digest and /healthz)."""
        quota, calls = self.config.monthly_api_quota, self.usage.current()
        if quota <= 0 or calls < QUOTA_WARN_SHARE * quota:
            return []
        return [self.services.renderer.text("dingtalk/quota_warning", calls=calls, quota=quota,
                                            month=self.usage.month())]

    def health(self) -> dict[str, Any]:
        stream = self.stream.health()
        warnings = list(self.quota_warnings())
        render = self.services.renderer.text
        if self.stream.state != "stopped" and self.stream.down_for() >= DOWN_WARN_AFTER:
            warnings.append(render("dingtalk/disconnected", seconds=int(self.stream.down_for()),
                                   error=stream["last_error"]))
        if self.api.token_error:
            warnings.append(render("dingtalk/token_failed", error=self.api.token_error))
        if self.platform_notice:
            warnings.append(render("dingtalk/platform_notice", notice=self.platform_notice))
        since = stream["connected_since"]
        body: dict[str, Any] = {
            "state": stream["state"],
            "connected_since": dt.datetime.fromtimestamp(since, self.services.clock.tz).isoformat() if since else None,
            "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
            "received": self.received,
            "reconnects": stream["reconnects"],
            "last_error": stream["last_error"],
            "api_calls_this_month": self.usage.current(),
            "monthly_api_quota": self.config.monthly_api_quota,
        }
        if warnings:
            body["warnings"] = warnings
        return body
