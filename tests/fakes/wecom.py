"""A loopback WeCom: the parts of qyapi.weixin.qq.com Bangdai talks to, behaving as WeCom does.

- ``GET /cgi-bin/gettoken``: tokens that expire (``expires_in`` 7200 s on the shared test clock);
- ``POST /cgi-bin/message/send``: 40014/42001 for unknown/expired tokens, ``invaliduser`` for members
  it doesn't know (81013 when none is valid), scripted errors (45009, 45033, …), and WeCom's two
  silent behaviours: a member's messages beyond 30 a minute are *dropped* with an ``ok`` answer, and
  content beyond 2048 bytes is *truncated*. Both are recorded (``dropped``, ``truncated``) so tests can
  assert they never happened;
- ``POST /cgi-bin/webhook/send``: 93000 for an unknown key, 45009 beyond 20 a minute per robot,
  40058 for content over 2048 bytes.

:class:`WeComCallbacks` builds callbacks exactly as WeCom does — the message XML encrypted with the
corp's EncodingAESKey and corp id by wechatpy's crypto, signed with the callback Token — to POST to
the real endpoint.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
        self.media: dict[str, tuple[bytes, str]] = {}  # media_id -> (bytes, file name) members have sent
        self.media_gets = 0
        self._ids = itertools.count(1)
        self.base = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.message_send)
        app.router.add_post("/cgi-bin/webhook/send", self.webhook_send)
        app.router.add_get("/cgi-bin/media/get", self.media_get)
        return app

    def add_media(self, data: bytes, name: str = "") -> str:
        """A picture or file a member sends: WeCom keeps it (three days) under the media_id it returns."""
        media_id = f"media{next(self._ids)}{secrets.token_hex(4)}"
        self.media[media_id] = (data, name)
        return media_id

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
        entry = self.media.get(request.query.get("media_id", ""))
        if entry is None:
            return self._err(40007, "invalid media_id")
        self.media_gets += 1
        data, name = entry
        return web.Response(body=data, content_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="{name or "file"}"'})

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
        if msgtype not in ("text", "markdown"):
            return self._err(40008, "invalid message type")
        content = str((body.get(msgtype) or {}).get("content") or "")
        if len(content.encode()) > MAX_BYTES:
            self.webhook_refused.append((key, 40058))
            return self._err(40058, f"content exceed max length {MAX_BYTES}")
        posts.append(Sent(key, msgtype, content, now))
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
