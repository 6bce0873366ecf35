"""A loopback WeCom: the parts of qyapi.weixin.qq.com Bangdai talks to, behaving as WeCom does.

- ``GET /cgi-bin/gettoken``: tokens that expire (``expires_in`` 7200 s on the shared test clock);
- ``POST /cgi-bin/message/send``: 40014/42001 for unknown/expired tokens, ``invaliduser`` for members
  it doesn't know (81013 when none is valid), scripted errors (45009, 45033, …), and WeCom's two
  silent behaviours: a member's messages beyond 30 a minute are *dropped* with an ``ok`` answer, and
  content beyond 2048 bytes is *truncated*. Both are recorded (``dropped``, ``truncated``) so tests can
  assert they never happened;
- ``POST /cgi-bin/webhook/send``: 93000 for an unknown key, 45009 beyond 20 a minute per robot,
  40058 for content over 2048 bytes; ``image`` messages must carry base64 of a PNG/JPG of at most 2 MB
  and its md5;
- ``template_card`` app messages of type ``button_interaction`` (a unique ``task_id`` of digits,
  letters and ``_-@``, 1–6 buttons with text and a key of at most 1024 bytes), and
  ``POST /cgi-bin/message/update_template_card``, which takes each ResponseCode once. A test taps a
  button with :meth:`FakeWeCom.press` and posts :meth:`WeComCallbacks.card_event` to the bot.

:class:`WeComCallbacks` builds callbacks exactly as WeCom does — the message XML encrypted with the
corp's EncodingAESKey and corp id by wechatpy's crypto, signed with the callback Token — to POST to
the real endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import itertools
import re
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import to_text

MEMBER_LIMIT = 30  # per app per member per minute (WeCom doc 90454)
ROBOT_LIMIT = 20  # per group robot per minute
MAX_BYTES = 2048
MAX_IMAGE = 2 * 1024 * 1024  # group robot images: jpg/png up to 2 MB
TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")

CORP_ID = "ww5f0c1d2e3a4b5c6d"
AGENT_ID = "1000002"
SECRET = "app-secret-for-tests"
TOKEN = "callbackToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeCom gives it


@dataclass
class Sent:
    user: str
    msgtype: str
    content: str
    at: dt.datetime


@dataclass
class Card:
    """A button card delivered to one member, and what became of it."""

    user: str
    card: dict
    at: dt.datetime
    response_code: str = ""  # issued when the member taps a button
    replaced_by: str = ""  # the replace_name an update_template_card set

    @property
    def task_id(self) -> str:
        return self.card["task_id"]

    def keys(self) -> dict[str, str]:
        return {b["text"]: b["key"] for b in self.card["button_list"]}


class FakeWeCom:
    def __init__(self, clock: Any, *, corp_id: str = CORP_ID, secret: str = SECRET, agent_id: str = AGENT_ID,
                 webhook_keys: set[str] | None = None) -> None:
        self.clock, self.corp_id, self.secret, self.agent_id = clock, corp_id, secret, agent_id
        self.token_lifetime = 7200
        self.tokens: dict[str, dt.datetime] = {}
        self.token_fetches = 0
        self.messages: list[Sent] = []  # delivered to members
        self.dropped: list[Sent] = []  # silently dropped (over 30 a minute)
        self.truncated: list[Sent] = []  # silently cut at 2048 bytes
        self.send_calls = 0
        self.invalid_users: set[str] = set()
        self.failures: list[int | None] = []  # errcodes the next message/send calls answer
        self.webhook_keys = set(webhook_keys or ())
        self.webhooks: dict[str, list[Sent]] = {}
        self.webhook_refused: list[tuple[str, int]] = []
        self.images: dict[str, list[bytes]] = {}  # webhook key -> pictures posted
        self.cards: list[Card] = []
        self.task_ids: set[str] = set()
        self.card_updates: list[dict] = []  # accepted update_template_card bodies
        self.card_update_refused: list[tuple[dict, int]] = []
        self.media: dict[str, bytes] = {}  # media_id -> uploaded file
        self.member_images: list[tuple[str, bytes]] = []  # (member, picture) app image messages delivered
        self.received_media: dict[str, tuple[bytes, str]] = {}  # media_id -> (bytes, name) members sent
        self.media_gets = 0
        self._ids = itertools.count(1)
        self.base = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)  # pictures: WeCom answers an errcode, not 413
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.message_send)
        app.router.add_post("/cgi-bin/webhook/send", self.webhook_send)
        app.router.add_post("/cgi-bin/message/update_template_card", self.update_template_card)
        app.router.add_post("/cgi-bin/media/upload", self.media_upload)
        app.router.add_get("/cgi-bin/media/get", self.media_get)
        return app

    def add_media(self, data: bytes, name: str = "") -> str:
        """A picture or file a member sends: WeCom keeps it (three days) under the media_id it returns."""
        media_id = f"media{next(self._ids)}{secrets.token_hex(4)}"
        self.received_media[media_id] = (data, name)
        return media_id

    def press(self, user: str, button: str) -> tuple[str, str, str]:
        """``user`` taps ``button`` (its text) on the latest card they got: WeCom issues a ResponseCode.
        Returns (task_id, EventKey, ResponseCode) for :meth:`WeComCallbacks.card_event`."""
        for card in reversed(self.cards):
            if card.user == user and button in card.keys():
                card.response_code = card.response_code or f"rc{secrets.token_hex(8)}"
                return card.task_id, card.keys()[button], card.response_code
        raise AssertionError(f"{user} has no card with a button {button!r}")

    # --- what tests look at and control ------------------------------------------------------------

    def inbox(self, user: str) -> list[str]:
        return [m.content for m in self.messages if m.user == user]

    def expire_tokens(self) -> None:
        """WeCom invalidated every token (e.g. the secret was reset, or they simply expired early)."""
        self.tokens.clear()

    def fail_next(self, *codes: int | None) -> None:
        """The next message/send calls answer these errcodes in turn (None: that call goes through)."""
        self.failures.extend(codes)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("the fake WeCom never saw what the test waited for")
            await asyncio.sleep(0.02)

    # --- the API -----------------------------------------------------------------------------------

    @staticmethod
    def _err(code: int, msg: str, **extra: Any) -> web.Response:
        return web.json_response({"errcode": code, "errmsg": msg, **extra})

    async def gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            return self._err(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.secret:
            return self._err(40001, "invalid credential")
        self.token_fetches += 1
        token = secrets.token_hex(16)
        self.tokens[token] = self.clock.now() + dt.timedelta(seconds=self.token_lifetime)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_lifetime})

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self.tokens:
            return self._err(40014, "invalid access_token")
        if self.clock.now() >= self.tokens[token]:
            return self._err(42001, "access_token expired")
        return None

    async def message_send(self, request: web.Request) -> web.Response:
        if (error := self._token_error(request)) is not None:
            return error
        self.send_calls += 1
        code = self.failures.pop(0) if self.failures else None
        if code is not None:
            return self._err(code, {45009: "api freq out of limit", 45033: "api concurrent out of limit"}.get(code, "error"))
        body = await request.json()
        if str(body.get("agentid")) != self.agent_id:
            return self._err(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype == "template_card":
            return self._card_send(body)
        if msgtype == "image":
            media = (body.get("image") or {}).get("media_id")
            if media not in self.media:
                return self._err(40007, "invalid media_id")
            users = [u for u in str(body.get("touser", "")).split("|") if u and u not in self.invalid_users]
            self.member_images += [(u, self.media[media]) for u in users]
            return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"msg{next(self._ids)}"})
        if msgtype not in ("text", "markdown"):
            return self._err(40008, "invalid message type")
        content = str((body.get(msgtype) or {}).get("content") or "")
        if not content:
            return self._err(44004, "empty content")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        invalid = [u for u in users if u in self.invalid_users]
        if users and len(invalid) == len(users):
            return self._err(81013, "user & party & tag all invalid", invaliduser="|".join(invalid))
        now = self.clock.now()
        for user in users:
            if user in invalid:
                continue
            raw = content.encode()
            shown = raw[:MAX_BYTES].decode(errors="ignore")
            sent = Sent(user, msgtype, shown, now)
            if len(raw) > MAX_BYTES:
                self.truncated.append(Sent(user, msgtype, content, now))
            recent = sum(1 for m in self.messages if m.user == user and m.at > now - dt.timedelta(minutes=1))
            if recent >= MEMBER_LIMIT:
                self.dropped.append(sent)  # WeCom answers ok and the member never sees it
            else:
                self.messages.append(sent)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid),
                                  "msgid": f"msg{next(self._ids)}"})

    async def media_get(self, request: web.Request) -> web.Response:
        """The file itself (with its name in Content-Disposition), or JSON with an errcode."""
        if (error := self._token_error(request)) is not None:
            return error
        media_id = request.query.get("media_id", "")
        entry = self.received_media.get(media_id) or ((self.media[media_id], "") if media_id in self.media else None)
        if entry is None:
            return self._err(40007, "invalid media_id")
        self.media_gets += 1
        data, name = entry
        return web.Response(body=data, content_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="{name or "file"}"'})

    def _card_send(self, body: dict) -> web.Response:
        card = body.get("template_card")
        if not isinstance(card, dict) or card.get("card_type") != "button_interaction":
            return self._err(40058, "template_card.card_type: only button_interaction is faked")
        task = card.get("task_id")
        if not isinstance(task, str) or not TASK_ID.match(task):
            return self._err(40058, "invalid task_id")
        if task in self.task_ids:
            return self._err(40058, "task_id already exist")
        title = (card.get("main_title") or {}).get("title")
        buttons = card.get("button_list")
        if not title and not card.get("sub_title_text"):
            return self._err(40058, "main_title.title or sub_title_text required")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
            return self._err(40058, "button_list must hold 1 to 6 buttons")
        keys = [b.get("key") for b in buttons if isinstance(b, dict)]
        if len(keys) != len(buttons) or any(not isinstance(k, str) or not k or len(k.encode()) > 1024 for k in keys) \
                or len(set(keys)) != len(keys) or any(not b.get("text") for b in buttons):
            return self._err(40058, "every button needs a text and a unique key of at most 1024 bytes")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        invalid = [u for u in users if u in self.invalid_users]
        if users and len(invalid) == len(users):
            return self._err(81013, "user & party & tag all invalid", invaliduser="|".join(invalid))
        self.task_ids.add(task)
        now = self.clock.now()
        for user in users:
            if user not in invalid:
                self.cards.append(Card(user, card, now))
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid),
                                  "msgid": f"msg{next(self._ids)}", "response_code": ""})

    async def media_upload(self, request: web.Request) -> web.Response:
        """``POST /cgi-bin/media/upload?type=image``: multipart ``media``; images are jpg/png of 5 B to 2 MB."""
        if (error := self._token_error(request)) is not None:
            return error
        kind = request.query.get("type")
        if kind not in ("image", "voice", "video", "file"):
            return self._err(40004, "invalid media type")
        if not request.content_type.startswith("multipart/"):
            return self._err(41005, "media data missing")
        data = b""
        async for part in await request.multipart():
            if part.name == "media" and part.filename:
                data = bytes(await part.read())
        if not data:
            return self._err(41005, "media data missing")
        if kind == "image" and (len(data) <= 5 or len(data) > MAX_IMAGE):
            return self._err(40009, "invalid image size")
        if kind == "image" and not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
            return self._err(40005, "invalid file type")
        media_id = f"3{secrets.token_hex(16)}"
        self.media[media_id] = data
        return web.json_response({"errcode": 0, "errmsg": "", "type": kind, "media_id": media_id,
                                  "created_at": str(int(self.clock.now().timestamp()))})

    async def update_template_card(self, request: web.Request) -> web.Response:
        """Each ResponseCode works once (and only for the member who tapped)."""
        if (error := self._token_error(request)) is not None:
            return error
        body = await request.json()
        if str(body.get("agentid")) != self.agent_id:
            return self._err(40056, "invalid agentid")
        code = body.get("response_code")
        card = next((c for c in self.cards if code and c.response_code == code), None)
        name = (body.get("button") or {}).get("replace_name")
        problem = None
        if card is None:
            problem = (40058, "invalid response_code")
        elif card.replaced_by:
            problem = (40058, "response_code already used")
        elif not isinstance(name, str) or not name:
            problem = (40058, "button.replace_name required")
        elif card.user not in (body.get("userids") or []):
            problem = (40058, "userids must name the member who tapped")
        if problem is not None:
            self.card_update_refused.append((body, problem[0]))
            return self._err(*problem)
        card.replaced_by = name
        self.card_updates.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": []})

    async def webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if key not in self.webhook_keys:
            return self._err(93000, "invalid webhook url")
        now = self.clock.now()
        posts = self.webhooks.setdefault(key, [])
        if sum(1 for p in posts if p.at > now - dt.timedelta(minutes=1)) >= ROBOT_LIMIT:
            self.webhook_refused.append((key, 45009))
            return self._err(45009, "api freq out of limit")
        body = await request.json()
        msgtype = body.get("msgtype")
        if msgtype == "image":
            return self._webhook_image(key, body.get("image"), now)
        if msgtype not in ("text", "markdown"):
            return self._err(40008, "invalid message type")
        content = str((body.get(msgtype) or {}).get("content") or "")
        if len(content.encode()) > MAX_BYTES:
            self.webhook_refused.append((key, 40058))
            return self._err(40058, f"content exceed max length {MAX_BYTES}")
        posts.append(Sent(key, msgtype, content, now))
        return web.json_response({"errcode": 0, "errmsg": "ok"})


    def _webhook_image(self, key: str, image: Any, now: dt.datetime) -> web.Response:
        if not isinstance(image, dict) or not isinstance(image.get("base64"), str) or not isinstance(image.get("md5"), str):
            return self._err(40058, "image.base64 and image.md5 required")
        try:
            data = base64.b64decode(image["base64"], validate=True)
        except (binascii.Error, ValueError):
            return self._err(40058, "invalid base64")
        if len(data) > MAX_IMAGE:
            self.webhook_refused.append((key, 40009))
            return self._err(40009, "invalid image size")
        if hashlib.md5(data).hexdigest() != image["md5"].lower():
            return self._err(40058, "image md5 not match")
        if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
            return self._err(40058, "image must be jpg or png")
        self.webhooks.setdefault(key, []).append(Sent(key, "image", image["md5"], now))
        self.images.setdefault(key, []).append(data)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class WeComCallbacks:
    """Callbacks as WeCom sends them: query (msg_signature, timestamp, nonce) and an XML body with the
    encrypted message."""

    def __init__(self, clock: Any, *, token: str = TOKEN, aes_key: str = AES_KEY, corp_id: str = CORP_ID,
                 agent_id: str = AGENT_ID) -> None:
        self.clock, self.token, self.aes_key, self.corp_id, self.agent_id = clock, token, aes_key, corp_id, agent_id
        self._msg_ids = itertools.count(7_300_000_000_000_000_001)

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def text(self, user: str, content: str, msg_id: int | None = None) -> str:
        msg_id = msg_id or next(self._msg_ids)
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{self._now()}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{self.agent_id}</AgentID></xml>")

    def event(self, user: str, event: str = "enter_agent", key: str = "") -> str:
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{self._now()}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey><AgentID>{self.agent_id}</AgentID></xml>")

    def card_event(self, user: str, task_id: str, key: str, response_code: str, create_time: int | None = None) -> str:
        """The ``template_card_event`` WeCom sends when ``user`` taps a card's button (see FakeWeCom.press)."""
        ts = create_time if create_time is not None else self._now()
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
                f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
                f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode><AgentID>{self.agent_id}</AgentID></xml>")

    def image(self, user: str, msg_id: int | None = None, media_id: str = "media1") -> str:
        msg_id = msg_id or next(self._msg_ids)
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{self._now()}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
                f"<PicUrl><![CDATA[https://wework.qpic.cn/x.jpg]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>"
                f"<MsgId>{msg_id}</MsgId><AgentID>{self.agent_id}</AgentID></xml>")

    def location(self, user: str, msg_id: int | None = None) -> str:
        msg_id = msg_id or next(self._msg_ids)
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{self._now()}</CreateTime><MsgType><![CDATA[location]]></MsgType>"
                f"<Location_X>29.13</Location_X><Location_Y>118.41</Location_Y><Scale>15</Scale>"
                f"<Label><![CDATA[开化县]]></Label><MsgId>{msg_id}</MsgId><AgentID>{self.agent_id}</AgentID></xml>")

    def seal(self, plain: str, *, timestamp: int | None = None, corp_id: str | None = None,
             token: str | None = None) -> tuple[dict[str, str], bytes]:
        """Encrypt and sign ``plain`` as WeCom does; ``corp_id``/``token`` forge a wrong one."""
        crypto = WeChatCrypto(token or self.token, self.aes_key, corp_id or self.corp_id)
        nonce = secrets.token_hex(5)
        ts = str(timestamp if timestamp is not None else self._now())
        envelope = crypto.encrypt_message(plain, nonce, ts)
        encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", envelope).group(1)
        signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", envelope).group(1)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>")
        return {"msg_signature": signature, "timestamp": ts, "nonce": nonce}, body.encode()

    def verification(self, echo: str, *, timestamp: int | None = None, corp_id: str | None = None,
                     token: str | None = None) -> dict[str, str]:
        """The query of WeCom's GET when an admin saves the callback URL: echostr encrypted, signed."""
        from wechatpy.crypto import _get_signature

        ts = str(timestamp if timestamp is not None else self._now())
        nonce = secrets.token_hex(5)
        key = WeChatCrypto(self.token, self.aes_key, self.corp_id).key
        echostr = to_text(PrpCrypto(key).encrypt(echo, corp_id or self.corp_id))
        return {"msg_signature": _get_signature(token or self.token, ts, nonce, echostr),
                "timestamp": ts, "nonce": nonce, "echostr": echostr}


@asynccontextmanager
async def serving(fake: FakeWeCom) -> AsyncIterator[FakeWeCom]:
    """The fake on a loopback port, with ``fake.base`` set to its address, for the test's duration."""
    server = TestServer(fake.app())
    await server.start_server()
    fake.base = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await server.close()


def point_at(config: Any, fake: FakeWeCom, webhooks: dict[str, str]) -> None:
    """Turn the ``[wecom]`` channel on in ``config``, talking to ``fake`` with its corp's credentials."""
    from bot.config import Secret

    w = config.wecom
    w.enabled, w.corp_id, w.agent_id, w.api_base = True, CORP_ID, AGENT_ID, fake.base
    w.secret, w.token, w.encoding_aes_key = Secret(SECRET), Secret(TOKEN), Secret(AES_KEY)
    w.webhooks = {name: Secret(key) for name, key in webhooks.items()}
    w.rate_per_second = 1000.0  # the outbox's own pacing is not under test with the fake
