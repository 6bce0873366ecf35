"""WeCom (企业微信 / 政务微信) self-built app: encrypted callbacks in, app messages and group robots out.

Inbound: WeCom calls ``callback_path`` — GET once to verify the URL, POST for every message. A POST is
checked (size, XML, signature, corp id, timestamp within ±5 minutes), answered with an empty 200 at
once (WeCom wants an answer within 5 s and retries otherwise) and handled after, in a task that
``stop()`` drains. Text goes through the gateway like any other channel, and the one-line answer to voice or other
kinds is remembered by the gateway too (``Gateway.remember``): the gateway's record of handled messages
is what makes a redelivered callback change nothing — even after a restart. Replies, and the welcome on
``enter_agent``, are queued in the outbox under keys made from WeCom's own ids and the sender
(``reply:wecom:<UserID>:<MsgId>:<n>``, ``wecom-event:<hash>``), so a retry queues nothing twice either,
and the per-member limit below applies to replies as much as to reminders.

Outbound: WeCom drops a member's messages beyond 30 a minute (1000 an hour) *silently*, so the
channel counts what it sent per member and answers :class:`TransientError` with the time the window
frees instead of sending the 31st.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import struct
import uuid
from collections import Counter as Tally, defaultdict
from typing import Any, Awaitable
from xml.parsers.expat import ExpatError

import xmltodict
from aiohttp import web
from prometheus_client import Counter
from sqlmodel import select
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from storage.models import ChatIdentity

from .. import charts
from ..commands import commands_in, present
from ..config import ConfigError
from ..identity import resolve_sender
from ..inbound import Address, Attachment, FetchError, InboundMessage, Outgoing, Reply
from .base import Channel, DeliveryError, Gate, PermanentError, TransientError
from .limits import SharedWindow
from .wecom_api import WeComApi, WeComError, WeComUnavailable, split_message, to_plain, uses_markdown

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # a WeCom callback is a few KB; anything near this is not from WeCom
MAX_SKEW = dt.timedelta(minutes=5)
THROTTLED = {45009, 45033, 45011}  # API frequency / concurrency limits: back off
THROTTLE_RETRY = 60.0
BUSY = {-1}  # "system busy"
# Errors no retry will fix until an operator changes the configuration or the content.
PERMANENT = {
    40001: "secret 不正确", 40013: "corp_id 不正确", 40056: "agent_id 不正确", 60020: "服务器 IP 不在企业可信 IP 列表",
    48002: "应用无权调用此接口", 301002: "无权操作该应用", 40008: "消息类型不正确", 44004: "消息内容为空",
    45002: "消息内容过长", 40058: "参数不合法", 93000: "群机器人 webhook key 无效", 81013: "接收人全部无效",
}
INVALID_USER = "企业微信：成员不存在或不在应用可见范围（invaliduser）"
CARD_BUTTONS = 6  # button_interaction cards take at most 6 buttons
CARD_BUTTON_CHARS = 16  # WeCom advises at most 10 characters a button; longer is cut on the phone
CARD_TITLE_CHARS = 26  # WeCom advises at most 26 characters a card title

RECEIVED = Counter("bangdai_wecom_received_total", "WeCom callbacks accepted, by kind", ["kind"])
DUPLICATES = Counter("bangdai_wecom_duplicates_total", "WeCom callbacks that were redeliveries")
REJECTED = Counter("bangdai_wecom_rejected_total", "WeCom callbacks refused, by reason", ["reason"])
SENDS = Counter("bangdai_wecom_sends_total", "Messages WeCom accepted, by kind (app, webhook)", ["kind"])
API_ERRORS = Counter("bangdai_wecom_api_errors_total", "WeCom API errors, by errcode", ["code"])
DEFERRED = Counter("bangdai_wecom_deferred_total", "Sends held back by our own per-member/robot limit", ["kind"])


# Messages whose MediaId the handler may fetch through media/get (WeCom's name → ours).
FILE_KINDS = {"image": "picture", "video": "video", "file": "file"}


def _verified(check, *args):
    """Run a wechatpy signature check or decryption, turning its failures into our refusals. The two
    exceptions are unrelated classes in wechatpy 1.8, so both are named."""
    try:
        return check(*args)
    except InvalidSignatureException:
        raise _Reject(403, "signature") from None
    except InvalidCorpIdException:
        raise _Reject(403, "corp_id") from None
    except (binascii.Error, ValueError, IndexError, struct.error, UnicodeDecodeError):
        raise _Reject(400, "malformed") from None


class _Reject(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WeComChannel(Channel):
    name = "wecom"
    max_batch = 100  # message/send takes up to 1000 users in "a|b|c"; 100 keeps a failure small

    def __init__(self, services: Any, gateway: Gate) -> None:
        self.services, self.gateway = services, gateway
        self.config = cfg = services.config.wecom
        self.clock, self.db = services.clock, services.db
        self.rate_per_second = cfg.rate_per_second
        try:
            self.crypto = WeChatCrypto(cfg.token.reveal(), cfg.encoding_aes_key.reveal(), cfg.corp_id)
        except (AssertionError, binascii.Error, ValueError):
            raise ConfigError("[wecom] encoding_aes_key 应为企业微信后台给出的 43 位 EncodingAESKey") from None
        self.api = WeComApi(cfg.api_base, cfg.corp_id, cfg.secret.reveal(), self.clock)
        # Counted in the database: every serve process on it shares one limit per member and robot.
        self.members = SharedWindow(self.db, "wecom-member",
                                    [(cfg.per_member_per_minute, 60), (cfg.per_member_per_hour, 3600)], self.clock)
        self.robots = SharedWindow(self.db, "wecom-robot", [(cfg.webhook_per_minute, 60)], self.clock)
        self._tasks: set[asyncio.Task] = set()
        self._progress: dict[str, int] = {}  # outbox key -> parts already sent of a split message
        self._stopping = False
        self.state = "created"
        self.counts: Tally[str] = Tally()
        self.rejected: Tally[str] = Tally()
        self.api_errors: Tally[str] = Tally()
        self.last_callback_at: dt.datetime | None = None
        self.config_problem = ""

    # --- lifecycle ---------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.config.callback_path, self.verify_url)
        app.router.add_post(self.config.callback_path, self.callback)

    async def start(self) -> None:
        self._stopping = False
        self.state = "ok"

    async def stop(self) -> None:
        """Refuse new callbacks, let the ones being handled finish (their replies are in the outbox
        by then), then close the HTTP session."""
        self._stopping = True
        self.state = "stopped"
        if self._tasks:
            done, pending = await asyncio.wait(set(self._tasks), timeout=4)
            for task in pending:
                task.cancel()
        await self.api.close()

    async def drain(self) -> None:
        """Wait until every accepted callback has been handled (tests, and stop())."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def health(self) -> dict[str, Any]:
        warnings = []
        missing = [k for k in ("corp_id", "agent_id") if not getattr(self.config, k)] + [
            k for k in ("secret", "token", "encoding_aes_key") if not getattr(self.config, k).reveal()
        ]
        if missing:
            warnings.append(f"企业微信配置缺少：{'、'.join(missing)}")
        if self.api.last_token_error:
            warnings.append(f"企业微信取 access_token 失败：{self.api.last_token_error}")
        if self.config.per_member_per_minute > 30 or self.config.per_member_per_hour > 1000:
            warnings.append("企业微信每人每分钟超过 30 条、每小时超过 1000 条的消息会被静默丢弃，请调低 per_member_per_minute / per_member_per_hour")
        if self.config_problem:
            warnings.append(f"企业微信发送失败：{self.config_problem}")
        return {
            "state": "error" if warnings and self.state != "stopped" else self.state,
            "received": self.counts["received"],
            "duplicates": self.counts["duplicates"],
            "rejected": dict(self.rejected),
            "sent": self.counts["sent"],
            "webhook_sent": self.counts["webhook_sent"],
            "cards_updated": self.counts["cards_updated"],
            "deferred": self.counts["deferred"],
            "api_errors": dict(self.api_errors),
            "handling": len(self._tasks),
            "token_fetches": self.api.token_fetches,
            "token_valid_until": self.api.token_valid_until.isoformat() if self.api.token_valid_until else None,
            "last_callback_at": self.last_callback_at.isoformat() if self.last_callback_at else None,
            "warnings": warnings,
        }

    # --- inbound -----------------------------------------------------------------------------------

    def _reject(self, exc: _Reject) -> web.Response:
        self.rejected[exc.reason] += 1
        REJECTED.labels(exc.reason).inc()
        log.info("wecom callback refused: %s", exc.reason)
        return web.Response(status=exc.status, text="")

    def _check_timestamp(self, request: web.Request) -> tuple[str, str, str]:
        q = request.query
        signature, timestamp, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not signature or not nonce or not timestamp.isdigit():
            raise _Reject(403, "unsigned")
        try:
            sent = dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise _Reject(403, "stale") from None
        if abs(self.clock.now() - sent) > MAX_SKEW:
            raise _Reject(403, "stale")
        return signature, timestamp, nonce

    async def verify_url(self, request: web.Request) -> web.Response:
        """GET: WeCom checks the callback URL; answer the decrypted echostr."""
        try:
            signature, timestamp, nonce = self._check_timestamp(request)
            echostr = request.query.get("echostr", "").replace(" ", "+")  # a '+' read as a space
            if not echostr:
                raise _Reject(400, "malformed")
            echo = _verified(self.crypto.check_signature, signature, timestamp, nonce, echostr)
        except _Reject as exc:
            return self._reject(exc)
        return web.Response(text=echo)

    async def callback(self, request: web.Request) -> web.Response:
        """POST: one encrypted message or event. Checked now, answered now, handled after."""
        try:
            if self._stopping:
                return web.Response(status=503, text="")
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise _Reject(413, "too_large")
            raw = await request.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise _Reject(413, "too_large")
            signature, timestamp, nonce = self._check_timestamp(request)
            try:
                outer = xmltodict.parse(raw, disable_entities=True)["xml"]
                if not isinstance(outer, dict) or not isinstance(outer.get("Encrypt"), str):
                    raise KeyError("Encrypt")
            except (ExpatError, KeyError, TypeError, ValueError):
                raise _Reject(400, "malformed") from None
            plain = _verified(self.crypto.decrypt_message, outer, signature, timestamp, nonce)
            try:
                message = parse_message(plain)
                fields = dict(message._data)  # wechatpy keeps the parsed XML here
                kind, user = str(fields.get("MsgType", "")).lower(), str(fields.get("FromUserName") or "")
                if not kind or not user:
                    raise KeyError("MsgType/FromUserName")
            except (ExpatError, KeyError, TypeError, ValueError, AttributeError):
                raise _Reject(400, "malformed") from None
        except _Reject as exc:
            return self._reject(exc)
        self.last_callback_at = self.clock.now()
        self.counts["received"] += 1
        RECEIVED.labels(kind if kind in {"text", "event"} else "file" if kind in FILE_KINDS else "other").inc()
        self._spawn(self._process(kind, user, fields))
        return web.Response(status=200, text="")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, kind: str, user: str, fields: dict) -> None:
        try:
            if kind == "text":
                new = await self._on_text(user, fields)
            elif kind in FILE_KINDS and str(fields.get("MediaId") or ""):
                new = await self._on_text(user, fields, (Attachment(
                    kind=FILE_KINDS[kind], code=str(fields["MediaId"]), name=str(fields.get("FileName") or "")[:200]),))
            elif kind == "event":
                new = await self._on_event(user, fields)
            else:
                new = await self._on_other(user, fields)
            if new is False:
                self.counts["duplicates"] += 1
                DUPLICATES.inc()
        except Exception:
            log.exception("wecom: handling a %s from %s failed", kind, user)

    async def _on_text(self, user: str, fields: dict, attachments: tuple[Attachment, ...] = ()) -> bool:
        """A text — or a picture, video or file, whose media_id the handler may fetch (``fetch``)."""
        msg_id = _msg_id(fields)
        msg = InboundMessage(
            channel=self.name, sender_id=user, conversation_id=user, text=str(fields.get("Content") or ""),
            msg_id=msg_id, received_at=self.clock.now(), attachments=attachments,
        )
        replies = await self.gateway.handle(msg)
        # A retry gets the first copy's replies (Replayed): queued again under the same keys, they are
        # kept as they were — and reach the person if the first copy stopped before queueing them.
        queued = await self.queue_to_user(
            user, [(f"reply:wecom:{user}:{msg_id}:{i}", r.text, r.format) for i, r in enumerate(replies)], source="reply"
        )
        return queued > 0 and not getattr(replies, "replayed", False)

    async def fetch(self, attachment: Attachment, limit: int) -> bytes:
        """The bytes of a media_id a member sent (valid for three days on WeCom's side)."""
        try:
            return await self.api.download_media(attachment.code, limit)
        except (WeComError, WeComUnavailable) as exc:
            raise FetchError(str(exc)) from None

    async def _on_event(self, user: str, fields: dict) -> bool | None:
        event = str(fields.get("Event") or "").lower()
        if event == "template_card_event":
            return await self._on_card_tap(user, fields)
        if event not in {"enter_agent", "subscribe"}:
            return None  # menus, location reports and the like: nothing to say
        key = "wecom-event:" + hashlib.sha1(
            "|".join(str(fields.get(f) or "") for f in ("FromUserName", "CreateTime", "Event", "EventKey", "AgentID")).encode()
        ).hexdigest()
        # One welcome a day is enough: WeCom sends enter_agent every time the app is opened.
        day_start = self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        async with self.db.transaction() as session:
            earlier = await self.services.outbox.keys_queued(session, (self.name, user), "wecom-welcome", day_start)
            if key in earlier:
                return False
            if earlier:
                return None
            sender = await resolve_sender(session, self.name, user)
        text = self.services.renderer.text("wecom/welcome", name=sender.name if sender else "")
        return await self.queue_to_user(user, [(key, text, "markdown")], source="wecom-welcome") > 0

    async def _on_card_tap(self, user: str, fields: dict) -> bool | None:
        """A button tapped on a card: its key is the command, run exactly as if typed. WeCom's retries
        carry the same fields, so the id made from them de-duplicates like a MsgId, and the card update
        is queued under a key of its own: one sign-up, one update, however often WeCom calls."""
        command = str(fields.get("EventKey") or "").strip()
        task, code = str(fields.get("TaskId") or ""), str(fields.get("ResponseCode") or "")
        if not command or not task:
            return None
        msg_id = "card" + hashlib.sha1("|".join(
            str(fields.get(f) or "") for f in ("FromUserName", "CreateTime", "EventKey", "TaskId", "AgentID")
        ).encode()).hexdigest()
        outcome: list[str] = []
        msg = InboundMessage(channel=self.name, sender_id=user, conversation_id=user, text=command,
                             msg_id=msg_id, received_at=self.clock.now())
        replies = await self.gateway.handle(msg, outcome=outcome)
        items = [(f"reply:wecom:{msg_id}:{i}", r.text, r.format) for i, r in enumerate(replies)]
        if code:
            said = "ok" if outcome and outcome[-1] in ("ok", "duplicate") else "refused"
            chosen = self.services.renderer.text("wecom/card_chosen", command=command, outcome=said)
            body = json.dumps({"response_code": code, "replace_name": chosen}, ensure_ascii=False)
            items.append((f"card-update:wecom:{msg_id}", body, "card_update"))
        return await self.queue_to_user(user, items, source="reply") > 0

    async def _on_other(self, user: str, fields: dict) -> bool:
        """Voice, a location, a link…: one line saying what is understood, remembered by the gateway
        like any answer, so a retry is known as one."""
        msg_id = _msg_id(fields)
        msg = InboundMessage(channel=self.name, sender_id=user, conversation_id=user, text="", msg_id=msg_id,
                             received_at=self.clock.now())
        replies = await self.gateway.remember(msg, [Reply(self.services.renderer.text("wecom/unsupported"))])
        queued = await self.queue_to_user(
            user, [(f"reply:wecom:{user}:{msg_id}:{i}", r.text, r.format) for i, r in enumerate(replies)], source="reply")
        return queued > 0 and not getattr(replies, "replayed", False)

    async def queue_to_user(self, user: str, items: list[tuple[str, str, str]], source: str) -> int:
        """Queue messages to one WeCom member in the outbox; a key already there is left alone.
        Returns how many are new."""
        async with self.db.transaction() as session:
            person_id = (await session.exec(
                select(ChatIdentity.person_id).where(ChatIdentity.channel == self.name, ChatIdentity.platform_user_id == user)
            )).first()
            return await self.services.outbox.enqueue_many(session, [
                Outgoing(key=key, body=body, format=fmt, source=source, person_id=person_id, account=(self.name, user))
                for key, body, fmt in items
            ])

    # --- outbound ----------------------------------------------------------------------------------

    def _shape(self, text: str, fmt: str, *, group: bool = False) -> list[tuple[str, Any]]:
        """The WeCom messages one body becomes: (msgtype, content) in order. Commands are words to type,
        except on a card, which ends with a ``button_interaction`` template card of them (app messages
        only: group robots have no buttons, and ``cards = false`` turns them off for 政务微信)."""
        plain = present(text, "plain")
        if (fmt in ("markdown", "card")) and self.config.markdown and uses_markdown(plain):
            parts: list[tuple[str, Any]] = [("markdown", p) for p in split_message(plain)]
        else:
            parts = [("text", p) for p in split_message(to_plain(plain))]
        if fmt == "card" and self.config.cards and not group:
            card = self._card(text)
            if card is not None:
                parts.append(("template_card", card))
        return parts

    def _card(self, text: str) -> dict | None:
        """A button card for the commands a message offers: a tap sends the button's key, which is the
        command itself, back as a ``template_card_event`` (at most 6 buttons, as WeCom allows)."""
        commands = list(dict.fromkeys(command for _label, command in commands_in(text)))[:CARD_BUTTONS]
        if not commands:
            return None
        title = to_plain(present(text, "plain")).strip().splitlines()[0][:CARD_TITLE_CHARS]
        hint = self.services.renderer.text("wecom/card_hint")
        return {"card_type": "button_interaction", "main_title": {"title": title, "desc": hint},
                "button_list": [{"text": c[:CARD_BUTTON_CHARS], "style": 1, "key": c} for c in commands]}

    async def deliver(self, address: Address, text: str, fmt: str, key: str) -> None:
        error = (await self.deliver_batch([address], text, fmt, [key]))[0]
        if error is not None:
            raise error

    async def deliver_batch(
        self, addresses: list[Address], text: str, fmt: str, keys: list[str]
    ) -> list[DeliveryError | None]:
        if fmt == "card_update":
            return [await self._update_card(a, text) for a in addresses]
        if fmt == "image":
            return [await self._image(a, text, k) for a, k in zip(addresses, keys)]
        parts = self._shape(text, fmt)
        results: list[DeliveryError | None] = [None] * len(addresses)
        by_start: dict[int, list[int]] = defaultdict(list)
        wanted: list[int] = []
        for i, (address, key) in enumerate(zip(addresses, keys)):
            if address.group:
                results[i] = await self._to_group(address.group, self._shape(text, fmt, group=True), key)
            elif not address.user_id:
                results[i] = PermanentError("没有企业微信 UserID")
            else:
                wanted.append(i)
        # Checked and counted together, before any send: the outbox delivers several messages at once,
        # possibly from several processes, and they must not all pass the same check.
        waits = await self.members.reserve(
            [(addresses[i].user_id or "", len(parts) - self._progress.get(keys[i], 0)) for i in wanted])
        for i, wait in zip(wanted, waits):
            if wait > 0:
                # WeCom would drop this one without a word; the outbox tries again when the window frees.
                results[i] = TransientError(f"企业微信每人每分钟最多 {self.config.per_member_per_minute} 条，稍后再发", wait)
                self.counts["deferred"] += 1
                DEFERRED.labels("member").inc()
                continue
            by_start[self._progress.get(keys[i], 0)].append(i)
        for start, members in by_start.items():
            await self._to_members(addresses, keys, members, parts, start, results)
        return results

    async def _image(self, address: Address, body: str, key: str) -> DeliveryError | None:
        """A picture: to a group robot as an ``image`` message (base64 + md5, at most 2 MB); to a member
        as an app ``image`` message of the picture uploaded with the media API."""
        try:
            png = await charts.render(body)
        except charts.ChartError as exc:
            return PermanentError(str(exc))
        if address.group:
            image = {"base64": base64.b64encode(png).decode(), "md5": hashlib.md5(png).hexdigest()}
            return await self._to_group(address.group, [("image", image)], key)
        if not address.user_id:
            return PermanentError("没有企业微信 UserID")
        [wait] = await self.members.reserve([(address.user_id, 1)])  # counted before sending
        if wait > 0:
            self.counts["deferred"] += 1
            DEFERRED.labels("member").inc()
            return TransientError(f"企业微信每人每分钟最多 {self.config.per_member_per_minute} 条，稍后再发", wait)
        try:
            media_id = await self.api.upload_image(png)
            answer = await self.api.send_message(self.config.agent_id, [address.user_id], "image", {"media_id": media_id})
        except (WeComError, WeComUnavailable) as exc:
            return self._classify(exc)
        if address.user_id in _invalid_users(answer):
            return PermanentError(INVALID_USER)
        self.counts["sent"] += 1
        SENDS.labels("app").inc()
        return None

    async def _update_card(self, address: Address, body: str) -> DeliveryError | None:
        """Show on a tapped card what was chosen (``update_template_card`` with the tap's ResponseCode)."""
        try:
            change = json.loads(body)
            await self.api.update_card(self.config.agent_id, [address.user_id or ""], change["response_code"],
                                       change["replace_name"])
        except (ValueError, KeyError, TypeError):
            return PermanentError("卡片更新数据不完整")
        except (WeComError, WeComUnavailable) as exc:
            return self._classify(exc)
        self.counts["cards_updated"] += 1
        return None

    async def _to_members(self, addresses: list[Address], keys: list[str], members: list[int],
                          parts: list[tuple[str, Any]], start: int, results: list[DeliveryError | None]) -> None:
        for n in range(start, len(parts)):
            live = [i for i in members if results[i] is None]
            if not live:
                return
            users = [addresses[i].user_id or "" for i in live]
            msgtype, content = parts[n]
            if msgtype == "template_card":  # WeCom refuses a task_id it has seen: one per send
                content = {**content, "task_id": f"bd{uuid.uuid4().hex}"}
            try:
                answer = await self.api.send_message(self.config.agent_id, users, msgtype, content)
            except (WeComError, WeComUnavailable) as exc:
                error = self._classify(exc)
                invalid = _invalid_users(exc.body) if isinstance(exc, WeComError) else set()
                for i in live:
                    results[i] = PermanentError(INVALID_USER) if addresses[i].user_id in invalid else error
                    if not isinstance(results[i], TransientError):
                        self._progress.pop(keys[i], None)
                return
            invalid = _invalid_users(answer)
            for i in live:
                if addresses[i].user_id in invalid:
                    results[i] = PermanentError(INVALID_USER)
                    self._progress.pop(keys[i], None)
                else:
                    self._progress[keys[i]] = n + 1
            accepted = len(live) - len(invalid & set(users))
            self.config_problem = ""
            self.counts["sent"] += accepted
            SENDS.labels("app").inc(accepted)
        for i in members:
            self._progress.pop(keys[i], None)

    async def _to_group(self, group: str, parts: list[tuple[str, Any]], key: str) -> DeliveryError | None:
        webhook = self.config.webhooks.get(group)
        if webhook is None:
            return PermanentError(f"没有配置名为“{group}”的企业微信群机器人（[wecom] webhooks）")
        start = self._progress.get(key, 0)
        [wait] = await self.robots.reserve([(group, len(parts) - start)])  # counted before sending (see deliver_batch)
        if wait > 0:
            self.counts["deferred"] += 1
            DEFERRED.labels("webhook").inc()
            return TransientError(f"企业微信群机器人每分钟最多 {self.config.webhook_per_minute} 条，稍后再发", wait)
        for n in range(start, len(parts)):
            try:
                await self.api.send_webhook(webhook.reveal(), *parts[n])
            except (WeComError, WeComUnavailable) as exc:
                error = self._classify(exc)
                if not isinstance(error, TransientError):
                    self._progress.pop(key, None)
                return error
            self._progress[key] = n + 1
            self.config_problem = ""
            self.counts["webhook_sent"] += 1
            SENDS.labels("webhook").inc()
        self._progress.pop(key, None)
        return None

    def _classify(self, exc: WeComError | WeComUnavailable) -> DeliveryError:
        if isinstance(exc, WeComUnavailable):
            self.api_errors["unavailable"] += 1
            API_ERRORS.labels("unavailable").inc()
            return TransientError(f"企业微信暂时无法访问：{exc}")
        code = str(exc.code)
        self.api_errors[code] += 1
        API_ERRORS.labels(code).inc()
        reason = f"企业微信 {exc.code} {exc.message}"[:300]
        if exc.code in THROTTLED:
            return TransientError(reason, THROTTLE_RETRY)
        if exc.code in PERMANENT:
            if exc.code not in {81013, 44004, 45002, 40058, 40008}:
                self.config_problem = f"{exc.code} {PERMANENT[exc.code]}"
            return PermanentError(f"{reason}（{PERMANENT[exc.code]}）")
        return TransientError(reason)  # system busy, token trouble after one refetch, unknown: retried a bounded number of times


def _msg_id(fields: dict) -> str:
    """WeCom's MsgId, or for a message without one a stable id from the fields that identify it."""
    msg_id = str(fields.get("MsgId") or "").strip()
    if msg_id:
        return msg_id
    basis = "|".join(str(fields.get(f) or "") for f in ("FromUserName", "CreateTime", "MsgType", "Content", "MediaId", "AgentID"))
    return "h" + hashlib.sha1(basis.encode()).hexdigest()


def _invalid_users(body: dict | None) -> set[str]:
    value = (body or {}).get("invaliduser") or ""
    return {u for u in str(value).split("|") if u}
