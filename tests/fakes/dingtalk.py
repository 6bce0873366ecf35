"""A loopback DingTalk: the stream gateway, sessionWebhooks and the robot OpenAPI, on 127.0.0.1.

The real ``dingtalk-stream`` SDK connects to it like to ``api.dingtalk.com`` (point ``api_base`` at
``fake.api_base``). It behaves like the platform where Bangdai depends on it: frames whose ack does not
come are pushed again, sessionWebhooks expire, tokens expire, the OpenAPI enforces its 20-user and QPS
limits, and throttled or invalid users come back inside a 200 answer. Tests steer it with a few calls:

    fake = FakeDingTalk();  await fake.start()
    msg = await fake.push_text("staff1", "本周")                 # 1:1 (group="cid…" for a group @bot)
    msg = await fake.push_message("staff1", "audio", {"recognition": "本周", "duration": 900, "downloadCode": "d"})
    text = await fake.say("staff1", "本周")                      # push and wait for the webhook reply
    fake.sent / fake.batch_calls / fake.group_calls              # everything the bot sent
    fake.flow_control("staff1"); fake.invalid_users.add("x")     # batchSend answers
    fake.throttle(); fake.exhaust_quota(); fake.fail_open(2); fake.drop_acks(1); fake.expire_tokens()
    await fake.push_file("staff1", b"%PDF…", name="表.pdf")     # a file (kind="picture": a picture) message;
    fake.download_calls; fake.expire_download_codes()            # the bot fetches it via messageFiles/download
    await fake.close_connections(); await fake.send_disconnect()
    fake.media[media_id]; fake.images()                          # uploaded pictures, pictures sent
    await fake.tap(sent, "记录 面谈")                             # tap a dtmd:// link in a Markdown message

Nothing here imports Bangdai: benchmarks and other bots use it too.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import random
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSMsgType, web

BOT_TOPIC = "/v1.0/im/bot/messages/get"
SESSION_GONE = {"errcode": 300001, "errmsg": "session 不存在"}
MSG_KEYS = {"sampleText": ("content",), "sampleMarkdown": ("title", "text"),
            "sampleActionCard": ("title", "text", "singleTitle", "singleURL"), "sampleImageMsg": ("photoURL",)}
# The media upload API (oapi host): types and their limits, as documented; pictures by their magic bytes.
MEDIA_LIMITS = {"image": 20 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 20 * 1024 * 1024, "file": 20 * 1024 * 1024}
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
# A link in a Markdown message that, tapped, sends ``content`` as the tapping person's message.
SEND_LINK = re.compile(r"\[([^\]\n]+)\]\((dtmd://dingtalkclient/sendMessage\?[^)\s]+)\)")
THROTTLE_CODE = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
QUOTA_CODE = "Forbidden.AccessDenied.ApiCountLimitForOrg"


@dataclass
class Sent:
    """One message the bot got through to "DingTalk"."""

    via: str  # "webhook", "batchSend" or "groupSend"
    text: str
    msgtype: str  # webhook: "markdown"/"text"; OpenAPI: the msgKey
    title: str = ""
    users: list[str] = field(default_factory=list)  # who got it in a 1:1 chat
    conversation: str = ""  # the group (openConversationId) or the conversation of the webhook
    group: bool = False
    at_user_ids: list[str] = field(default_factory=list)
    reply_to: str | None = None  # msgId whose sessionWebhook carried it
    at: float = field(default_factory=time.monotonic)  # when it arrived
    image: bytes | None = None  # sampleImageMsg: the uploaded picture its photoURL (media_id) names

    def links(self) -> dict[str, str]:
        """The send-message links of a Markdown message: label -> the content a tap sends."""
        out = {}
        for label, url in SEND_LINK.findall(self.text):
            out[re.sub(r"\\(.)", r"\1", label)] = parse_qs(urlsplit(url).query).get("content", [""])[0]
        return out


@dataclass
class ApiCall:
    """One robot OpenAPI call as DingTalk received it, with what it answered."""

    api: str
    body: dict[str, Any]
    status: int
    answer: dict[str, Any]
    token: str = ""  # the access token it came with: each bot process fetches its own

    @property
    def users(self) -> list[str]:
        return list(self.body.get("userIds") or [])

    @property
    def param(self) -> dict[str, Any]:
        return json.loads(self.body.get("msgParam") or "{}")


@dataclass
class Pushed:
    """A robot message pushed to the bot, and what became of it."""

    msg_id: str
    frame_id: str
    user: str
    conversation: str
    group: bool
    frame: dict[str, Any]
    session: str = ""
    deliveries: int = 0
    acks: int = 0
    sent_at: float | None = None  # time.monotonic() of the first push
    acked_at: float | None = None  # … and of the first ack


@dataclass
class _Session:
    msg_id: str
    user: str
    conversation: str
    group: bool
    expires: float
    revoked: bool = False


class _Conn:
    def __init__(self, ws: web.WebSocketResponse, topics: set[str], number: int) -> None:
        self.ws, self.topics, self.number = ws, topics, number


class FakeDingTalk:
    def __init__(self, *, client_id: str = "ding-test-app", client_secret: str = "ding-test-secret",
                 robot_code: str | None = None, ack_timeout: float = 1.0, max_redeliveries: int = 3,
                 token_ttl: int = 7200, webhook_ttl: float = 5400.0, qps_limit: int = 20,
                 disconnect_grace: float = 1.0) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.robot_code = robot_code or client_id
        self.ack_timeout, self.max_redeliveries = ack_timeout, max_redeliveries
        self.token_ttl, self.webhook_ttl, self.qps_limit = token_ttl, webhook_ttl, qps_limit
        self.disconnect_grace = disconnect_grace
        self.api_base = ""
        # what happened
        self.sent: list[Sent] = []
        self.batch_calls: list[ApiCall] = []
        self.group_calls: list[ApiCall] = []
        self.api_calls: collections.Counter[str] = collections.Counter()  # every OpenAPI request, by api
        self.token_fetches = 0
        self.download_calls: list[ApiCall] = []  # robot messageFiles/download, as received and answered
        self.file_gets = 0  # GETs of a downloadUrl that served a file
        self.media: dict[str, bytes] = {}  # media_id -> the uploaded file
        self.uploads: list[tuple[int, dict[str, Any]]] = []  # every media upload: (HTTP status, answer)
        self.open_requests: list[dict[str, Any]] = []  # bodies POSTed to connections/open (secret included)
        self.connections_opened = 0
        self.pushed: dict[str, Pushed] = {}
        self.system_acks: list[dict[str, Any]] = []
        # what to do
        self.invalid_users: set[str] = set()
        self.groups: set[str] = set()  # openConversationIds groupMessages/send accepts
        self._flow: collections.Counter[str] = collections.Counter()
        self._throttle: list[tuple[str | None, str]] = []
        self._quota_exhausted = False
        self._fail_open: list[int] = []
        self._drop_acks = 0
        self._holds: dict[str, asyncio.Event] = {}
        # internals
        self._conns: list[_Conn] = []
        self._tickets: dict[str, set[str]] = {}
        self._tokens: dict[str, float] = {}
        self._sessions: dict[str, _Session] = {}
        self._replies: dict[str, list[Sent]] = {}
        self._by_frame: dict[str, Pushed] = {}
        self._pending: collections.deque[Pushed] = collections.deque()
        self._recent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._tasks: set[asyncio.Task] = set()
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._files: dict[str, bytes] = {}  # downloadCode -> the file sent
        self._urls: dict[str, tuple[bytes, float]] = {}  # download URL id -> (file, expiry)
        self._file_hold: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None

    # --- running ------------------------------------------------------------------------------------

    async def start(self) -> "FakeDingTalk":
        app = web.Application()
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/gateway/stream", self._stream)
        app.router.add_post("/robot/sendBySession", self._webhook)
        app.router.add_post("/v1.0/oauth2/accessToken", self._access_token)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        app.router.add_post("/v1.0/robot/messageFiles/download", self._file_download)
        app.router.add_get("/file/{id}", self._file_get)
        app.router.add_post("/media/upload", self._media_upload)  # the oapi host; here the same server
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.api_base = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for hold in self._holds.values():
            hold.set()
        await self.close_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "a condition") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked whenever the fake sees something happen)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"fake DingTalk: gave up waiting for {what}")
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except asyncio.TimeoutError:
                pass

    # --- the stream gateway -------------------------------------------------------------------------

    @property
    def active(self) -> int:
        """Open stream connections."""
        return len(self._conns)

    async def wait_connected(self, opened: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``opened`` connections have been made in all and one is open now."""
        await self.wait_until(lambda: self.connections_opened >= opened and self._conns, timeout,
                              f"stream connection #{opened}")

    def fail_open(self, times: int = 1, status: int = 500) -> None:
        """The next ``times`` connections/open requests fail with ``status``."""
        self._fail_open.extend([status] * times)

    def drop_acks(self, times: int = 1) -> None:
        """Ignore the next ``times`` acks of pushed messages, as if they were lost: the message comes again."""
        self._drop_acks += times

    async def _open(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.open_requests.append(body)
        if self._fail_open:
            status = self._fail_open.pop(0)
            return web.json_response({"code": "ServiceUnavailable", "message": "fake failure"}, status=status)
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            return web.json_response({"code": "InvalidAuthentication", "message": "clientId 或 clientSecret 不对"},
                                     status=401)
        topics = {s.get("topic") for s in body.get("subscriptions") or [] if s.get("type") == "CALLBACK"}
        ticket = uuid.uuid4().hex
        self._tickets[ticket] = topics
        host = self.api_base.replace("http://", "ws://")
        return web.json_response({"endpoint": f"{host}/gateway/stream", "ticket": ticket})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        topics = self._tickets.pop(request.query.get("ticket", ""), None)
        if topics is None:
            return web.json_response({"code": "InvalidTicket"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections_opened += 1
        conn = _Conn(ws, topics, self.connections_opened)
        self._conns.append(conn)
        self._notify()
        while self._pending and BOT_TOPIC in topics:
            await self._send(self._pending.popleft())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_ack(msg.data)
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            self._notify()
        return ws

    def _on_ack(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
            frame_id = ack["headers"]["messageId"]
        except (ValueError, KeyError, TypeError):
            return
        pushed = self._by_frame.get(frame_id)
        if pushed is None:
            self.system_acks.append(ack)
        elif self._drop_acks > 0:
            self._drop_acks -= 1
        else:
            pushed.acks += 1
            if pushed.acked_at is None:
                pushed.acked_at = time.monotonic()
        self._notify()

    async def close_connections(self, code: int = 1000) -> None:
        """Close every stream connection from the server's side (a clean close)."""
        for conn in list(self._conns):
            await conn.ws.close(code=code, message=b"server closing")

    async def send_disconnect(self) -> None:
        """The SYSTEM ``disconnect`` frame DingTalk sends before it closes a connection; it closes after
        ``disconnect_grace`` seconds if the client has not."""
        for conn in list(self._conns):
            frame = {"specVersion": "1.0", "type": "SYSTEM",
                     "headers": {"contentType": "application/json", "messageId": f"sys-{next(self._ids)}",
                                 "time": str(int(time.time() * 1000)), "topic": "disconnect"},
                     "data": json.dumps({"reason": "server maintenance"})}
            await conn.ws.send_str(json.dumps(frame))
            self._spawn(self._close_later(conn))

    async def _close_later(self, conn: _Conn) -> None:
        await asyncio.sleep(self.disconnect_grace)
        if not conn.ws.closed:
            await conn.ws.close()

    # --- pushing messages ---------------------------------------------------------------------------

    def text_data(self, user: str, text: str, *, group: str | None = None, nick: str | None = None,
                  msg_id: str | None = None, staff_id: bool = True, webhook_expired: bool = False,
                  created_ago: float = 0.0) -> tuple[dict[str, Any], str]:
        """The ``data`` of a text robot message from ``user`` (privately, or @bot in ``group``), and its session."""
        msg_id = msg_id or f"msg{next(self._ids)}{uuid.uuid4().hex[:8]}"
        now = time.time()
        conversation = group or "cid1to1" + hashlib.md5(user.encode()).hexdigest()[:12]
        session = uuid.uuid4().hex
        expires = now - 60 if webhook_expired else now + self.webhook_ttl
        self._sessions[session] = _Session(msg_id, user, conversation, group is not None, expires)
        data: dict[str, Any] = {
            "conversationId": conversation,
            "chatbotCorpId": "dingfakecorp",
            "chatbotUserId": "$:LWCP_v1:$fakebot",
            "msgId": msg_id,
            "senderNick": nick or user,
            "isAdmin": False,
            "senderId": "$:LWCP_v1:$" + hashlib.md5(user.encode()).hexdigest(),
            "sessionWebhookExpiredTime": int(expires * 1000),
            "createAt": int((now - created_ago) * 1000),
            "senderCorpId": "dingfakecorp",
            "conversationType": "2" if group else "1",
            "sessionWebhook": f"{self.api_base}/robot/sendBySession?session={session}",
            "robotCode": self.robot_code,
            "msgtype": "text",
            # In a group only messages that @ the bot arrive, the mention cut out and its space left.
            "text": {"content": f" {text}" if group else text},
        }
        if staff_id:
            data["senderStaffId"] = user
        if group:
            self.groups.add(group)
            data.update(conversationTitle=f"群 {group}", isInAtList=True,
                        atUsers=[{"dingtalkId": "$:LWCP_v1:$fakebot"}])
        return data, session

    def message_data(self, user: str, msgtype: str, content: dict[str, Any], *, group: str | None = None,
                     at_bot: bool = True, **options: Any) -> tuple[dict[str, Any], str]:
        """A robot message of another type in DingTalk's documented shape (receive-message docs; the SDKs'
        models): ``content`` is the message's ``content`` object —
        richText ``{"richText": [{"text": …}, {"type": "picture", "downloadCode": …}, …]}``,
        audio ``{"duration": ms, "downloadCode": …, "recognition": "<DingTalk's transcript>"}``,
        picture ``{"downloadCode": …}``, file ``{"downloadCode": …, "fileName": …, "spaceId": …, "fileId": …}``.
        ``at_bot=False`` in a group: a message that does not @ the robot (``isInAtList`` false)."""
        data, session = self.text_data(user, "", group=group, **options)
        del data["text"]
        data.update(msgtype=msgtype, content=content)
        if group:
            data["isInAtList"] = at_bot
            if not at_bot:
                data["atUsers"] = []
        return data, session

    async def push_message(self, user: str, msgtype: str, content: dict[str, Any], **options: Any) -> Pushed:
        data, session = self.message_data(user, msgtype, content, **options)
        return await self.push_data(data, user=user, session=session)

    async def push_text(self, user: str, text: str, *, group: str | None = None, webhook_revoked: bool = False,
                        to: int | None = None, **options: Any) -> Pushed:
        """A text message from ``user`` (a staffId) to the bot; ``group`` is an openConversationId.
        ``webhook_expired`` makes its sessionWebhook already expired, ``webhook_revoked`` makes it look
        valid while DingTalk refuses it."""
        data, session = self.text_data(user, text, group=group, **options)
        self._sessions[session].revoked = webhook_revoked
        return await self.push_data(data, user=user, session=session, to=to)

    async def push_file(self, user: str, data: bytes, *, name: str = "", kind: str = "file", expired: bool = False,
                        **options: Any) -> Pushed:
        """A file (``kind="file"``, with ``fileName``), picture or video message from ``user``; the bot gets
        only its ``downloadCode`` and must fetch the bytes through ``messageFiles/download``. ``expired``:
        the code no longer works by the time the bot asks."""
        payload, session = self.text_data(user, "", **options)
        del payload["text"]
        code = "dc" + uuid.uuid4().hex
        if not expired:
            self._files[code] = data
        content: dict[str, Any] = {"downloadCode": code}
        if kind == "file":
            content.update(fileName=name, fileId=uuid.uuid4().hex[:12], spaceId="fakespace")
        elif kind == "video":
            content.update(duration=3, videoType="mp4")
        payload.update(msgtype=kind, content=content)
        return await self.push_data(payload, user=user, session=session)

    async def send_file(self, user: str, data: bytes, *, name: str = "", kind: str = "file",
                        timeout: float = 10.0) -> str:
        """Push a file and return the reply that came back through its sessionWebhook."""
        pushed = await self.push_file(user, data, name=name, kind=kind)
        return "\n".join(s.text for s in await self.wait_reply(pushed, timeout))

    def hold_files(self) -> asyncio.Event:
        """Make downloads of files hang until the returned event is set (a slow network)."""
        self._file_hold = asyncio.Event()
        return self._file_hold

    def expire_download_codes(self) -> None:
        """Every downloadCode handed out so far stops working (they are short-lived on the platform)."""
        self._files.clear()

    async def push_data(self, data: dict[str, Any] | str, *, user: str = "", session: str = "",
                        topic: str = BOT_TOPIC, to: int | None = None) -> Pushed:
        """Push any robot message payload (a dict, or a raw ``data`` string that need not be JSON)."""
        frame_id = f"frame-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        raw = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        frame = {"specVersion": "1.0", "type": "CALLBACK",
                 "headers": {"appId": self.client_id, "connectionId": "fakeconn", "contentType": "application/json",
                             "messageId": frame_id, "time": str(int(time.time() * 1000)), "topic": topic},
                 "data": raw}
        info = data if isinstance(data, dict) else {}
        pushed = Pushed(msg_id=str(info.get("msgId", frame_id)), frame_id=frame_id, user=user,
                        conversation=str(info.get("conversationId", "")), group=info.get("conversationType") == "2",
                        frame=frame, session=session)
        self.pushed[pushed.msg_id] = pushed
        self._by_frame[frame_id] = pushed
        await self._send(pushed, to=to)
        return pushed

    async def push_frame(self, raw: str) -> None:
        """Send a raw websocket text frame as it is (to test frames that are not even JSON)."""
        for conn in list(self._conns):
            await conn.ws.send_str(raw)

    async def redeliver(self, pushed: Pushed, *, to: int | None = None) -> None:
        """Push a message again as DingTalk does when it thinks the ack came too late. ``to`` picks the
        connection (its number, in the order they opened) instead of a random one: with several
        ``serve`` processes the copy can land on another process than the first push."""
        await self._send(pushed, to=to)

    def connection_numbers(self) -> list[int]:
        """The numbers of the open connections, oldest first."""
        return [c.number for c in self._conns if not c.ws.closed]

    async def _send(self, pushed: Pushed, to: int | None = None) -> None:
        topic = pushed.frame["headers"]["topic"]
        eligible = [c for c in self._conns if topic in c.topics and not c.ws.closed]
        if to is not None:
            eligible = [c for c in eligible if c.number == to]
        if not eligible:
            self._pending.append(pushed)  # held until a connection subscribes, as the platform does
            return
        conn = random.choice(eligible)  # several connections of one app: one is picked at random
        pushed.deliveries += 1
        if pushed.sent_at is None:
            pushed.sent_at = time.monotonic()
        try:
            await conn.ws.send_str(json.dumps(pushed.frame, ensure_ascii=False))
        except ConnectionError:
            pushed.deliveries -= 1
            self._pending.append(pushed)
            return
        self._spawn(self._watch(pushed, pushed.acks))

    async def _watch(self, pushed: Pushed, acks_before: int) -> None:
        await asyncio.sleep(self.ack_timeout)
        if pushed.acks == acks_before and pushed.deliveries <= self.max_redeliveries:
            await self._send(pushed)

    async def wait_acked(self, pushed: Pushed, acks: int = 1, timeout: float = 10.0) -> None:
        await self.wait_until(lambda: pushed.acks >= acks, timeout, f"ack #{acks} of {pushed.msg_id}")

    # --- sessionWebhook -----------------------------------------------------------------------------

    def hold_replies(self, user: str) -> asyncio.Event:
        """Make webhook replies to ``user`` hang until the returned event is set (a slow DingTalk)."""
        self._holds[user] = asyncio.Event()
        return self._holds[user]

    async def _webhook(self, request: web.Request) -> web.Response:
        session = self._sessions.get(request.query.get("session", ""))
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 json"})
        if session is None or session.revoked or time.time() > session.expires:
            return web.json_response(SESSION_GONE)
        msgtype = body.get("msgtype")
        if msgtype == "markdown":
            md = body.get("markdown") or {}
            text, title = md.get("text"), md.get("title")
            if not text or not title:
                return web.json_response({"errcode": 40035, "errmsg": "缺少参数 markdown.title/text"})
        elif msgtype == "text":
            text, title = (body.get("text") or {}).get("content"), ""
            if not text:
                return web.json_response({"errcode": 40035, "errmsg": "缺少参数 text.content"})
        else:
            return web.json_response({"errcode": 40008, "errmsg": "不支持的消息类型"})
        hold = self._holds.get(session.user)
        if hold is not None:
            await hold.wait()
        at = body.get("at") or {}
        sent = Sent(via="webhook", text=text, msgtype=msgtype, title=title or "",
                    users=[] if session.group else [session.user], conversation=session.conversation,
                    group=session.group, at_user_ids=list(at.get("atUserIds") or []), reply_to=session.msg_id)
        self.sent.append(sent)
        self._replies.setdefault(session.msg_id, []).append(sent)
        self._notify()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def replies_to(self, pushed: Pushed) -> list[Sent]:
        return list(self._replies.get(pushed.msg_id, ()))

    async def wait_reply(self, pushed: Pushed, timeout: float = 10.0) -> list[Sent]:
        return await self.wait_until(lambda: self.replies_to(pushed), timeout, f"a reply to {pushed.msg_id}")

    async def say(self, user: str, text: str, *, group: str | None = None, timeout: float = 10.0) -> str:
        """Push a text and return the reply that came back through its sessionWebhook."""
        pushed = await self.push_text(user, text, group=group)
        return "\n".join(s.text for s in await self.wait_reply(pushed, timeout))

    async def wait_sent(self, count: int, *, via: str | None = None, timeout: float = 10.0) -> list[Sent]:
        def matching() -> list[Sent]:
            found = [s for s in self.sent if via is None or s.via == via]
            return found if len(found) >= count else []
        return await self.wait_until(matching, timeout, f"{count} message(s) sent via {via or 'anything'}")

    # --- the OpenAPI --------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (DingTalk answers 401)."""
        self._tokens.clear()

    def flow_control(self, *users: str, times: int = 1) -> None:
        """The next ``times`` batchSends that include these users list them in flowControlledStaffIdList."""
        for user in users:
            self._flow[user] += times

    def throttle(self, times: int = 1, *, api: str | None = None, code: str = THROTTLE_CODE) -> None:
        """The next ``times`` calls (to ``api``, "batchSend"/"groupSend", or any) get HTTP 403 ``code``."""
        self._throttle.extend([(api, code)] * times)

    def exhaust_quota(self, exhausted: bool = True) -> None:
        """The organisation's monthly calls are spent: every robot call gets 403 ApiCountLimitForOrg."""
        self._quota_exhausted = exhausted

    async def _access_token(self, request: web.Request) -> web.Response:
        self.api_calls["accessToken"] += 1
        self.token_fetches += 1
        body = await request.json()
        if body.get("appKey") != self.client_id or body.get("appSecret") != self.client_secret:
            return web.json_response({"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"},
                                     status=400)
        token = uuid.uuid4().hex
        self._tokens[token] = time.time() + self.token_ttl
        return web.json_response({"accessToken": token, "expireIn": self.token_ttl})

    def _refuse(self, request: web.Request, api: str) -> web.Response | None:
        """What DingTalk answers before looking at the body: auth, quota, throttling."""
        self.api_calls[api] += 1
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        if self._tokens.get(token, 0) < time.time():
            return web.json_response({"code": "InvalidAuthentication", "message": "不合法的access_token"}, status=401)
        if self._quota_exhausted:
            return web.json_response({"code": QUOTA_CODE, "message": "组织的API调用次数已达上限"}, status=403)
        for i, (target, code) in enumerate(self._throttle):
            if target in (None, api):
                del self._throttle[i]
                return web.json_response({"code": code, "message": "请求过于频繁"}, status=403)
        window = self._recent[api]
        now = time.monotonic()
        while window and now - window[0] > 1.0:
            window.popleft()
        if len(window) >= self.qps_limit:
            return web.json_response({"code": THROTTLE_CODE, "message": "QPS 超过限制"}, status=403)
        window.append(now)
        return None

    def _message(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, web.Response | None]:
        if body.get("robotCode") != self.robot_code:
            return None, web.json_response({"code": "invalidParameter.robotCode", "message": "robotCode 不存在"}, status=400)
        key = body.get("msgKey")
        try:
            param = json.loads(body.get("msgParam") or "")
        except (TypeError, ValueError):
            param = None
        if key not in MSG_KEYS or not isinstance(param, dict) or any(not param.get(f) for f in MSG_KEYS[key]):
            return None, web.json_response({"code": "invalidParameter.msgParam", "message": "msgKey/msgParam 不对"},
                                           status=400)
        if key == "sampleImageMsg":
            photo = str(param["photoURL"])
            if photo not in self.media and not photo.startswith(("http://", "https://")):
                return None, web.json_response({"code": "invalidParameter.photoURL",
                                                "message": "photoURL 须为图片地址或上传得到的 media_id"}, status=400)
        return param, None

    def _sent_text(self, key: str, param: dict[str, Any]) -> str:
        return param.get("text") or param.get("content") or param.get("photoURL", "")

    def images(self) -> list[Sent]:
        """Every picture message that got through (sampleImageMsg), with the picture it showed."""
        return [s for s in self.sent if s.msgtype == "sampleImageMsg"]

    async def tap(self, sent: Sent, label: str, *, user: str | None = None, group: str | None = None) -> Pushed:
        """The person taps the link ``label`` in a Markdown message: DingTalk sends the link's content as
        their own text message to the bot (in the chat the message was shown in)."""
        links = sent.links()
        if label not in links:
            raise AssertionError(f"no send-message link {label!r} in the message; links: {sorted(links)}")
        who = user or (sent.users[0] if sent.users else "")
        if not who:
            raise AssertionError("say who taps the link (user=…)")
        return await self.push_text(who, links[label], group=group or (sent.conversation if sent.group else None))

    async def _media_upload(self, request: web.Request) -> web.Response:
        """``POST /media/upload?access_token=…&type=image``, multipart with the file in ``media``."""
        self.api_calls["mediaUpload"] += 1

        def answer(code: int, message: str, **extra: Any) -> web.Response:
            body = {"errcode": code, "errmsg": message, **extra}
            self.uploads.append((200, body))
            self._notify()
            return web.json_response(body)

        if self._tokens.get(request.query.get("access_token", ""), 0) < time.time():
            return answer(40014, "不合法的access_token")
        kind = request.query.get("type", "")
        if kind not in MEDIA_LIMITS:
            return answer(40004, "不合法的媒体文件类型")
        if not request.content_type.startswith("multipart/"):
            return answer(40005, "不合法的文件类型")
        data = b""
        async for part in await request.multipart():
            if part.name == "media" and part.filename:
                data = bytes(await part.read())
        if len(data) <= 5 or len(data) > MEDIA_LIMITS[kind]:
            return answer(40006, "不合法的文件大小")
        if kind == "image" and not data.startswith(IMAGE_MAGIC):
            return answer(40005, "不合法的文件类型")
        media_id = "@lA" + uuid.uuid4().hex
        self.media[media_id] = data
        return answer(0, "ok", media_id=media_id, type=kind, created_at=int(time.time() * 1000))

    async def _batch_send(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, "batchSend")
        body = await request.json()
        if refused is None:
            users = body.get("userIds")
            param, refused = self._message(body)
            if refused is None and (not isinstance(users, list) or not 1 <= len(users) <= 20):
                refused = web.json_response({"code": "invalidParameter.userIds", "message": "userIds 为 1 到 20 个"},
                                            status=400)
        if refused is not None:
            self.batch_calls.append(ApiCall("batchSend", body, refused.status, json.loads(refused.text)))
            self._notify()
            return refused
        invalid = [u for u in users if u in self.invalid_users]
        flow = []
        for u in users:
            if u not in invalid and self._flow[u] > 0:
                self._flow[u] -= 1
                flow.append(u)
        delivered = [u for u in users if u not in invalid and u not in flow]
        answer = {"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": invalid, "flowControlledStaffIdList": flow}
        self.batch_calls.append(ApiCall("batchSend", body, 200, answer,
                                        request.headers.get("x-acs-dingtalk-access-token", "")))
        if delivered:
            self.sent.append(Sent(via="batchSend", text=self._sent_text(body["msgKey"], param),
                                  msgtype=body["msgKey"], title=param.get("title", ""), users=delivered,
                                  image=self.media.get(param.get("photoURL", ""))))
        self._notify()
        return web.json_response(answer)

    async def _file_download(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, "messageFilesDownload")
        body = await request.json()
        if refused is None and body.get("robotCode") != self.robot_code:
            refused = web.json_response({"code": "invalidParameter.robotCode", "message": "robotCode 不存在"}, status=400)
        if refused is None and body.get("downloadCode") not in self._files:
            refused = web.json_response({"code": "invalidParameter.downloadCode", "message": "downloadCode 无效或已过期"},
                                        status=400)
        if refused is not None:
            self.download_calls.append(ApiCall("messageFilesDownload", body, refused.status, json.loads(refused.text)))
            self._notify()
            return refused
        url_id = uuid.uuid4().hex
        self._urls[url_id] = (self._files[body["downloadCode"]], time.time() + 3600)
        answer = {"downloadUrl": f"{self.api_base}/file/{url_id}"}
        self.download_calls.append(ApiCall("messageFilesDownload", body, 200, answer))
        self._notify()
        return web.json_response(answer)

    async def _file_get(self, request: web.Request) -> web.Response:
        entry = self._urls.get(request.match_info["id"])
        if entry is None or entry[1] < time.time():
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>", content_type="application/xml")
        if self._file_hold is not None:
            await self._file_hold.wait()
        self.file_gets += 1
        return web.Response(body=entry[0], content_type="application/octet-stream")

    async def _group_send(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, "groupSend")
        body = await request.json()
        if refused is None:
            param, refused = self._message(body)
            if refused is None and body.get("openConversationId") not in self.groups:
                refused = web.json_response({"code": "resource.not.found", "message": "群不存在或机器人不在群内"},
                                            status=400)
        if refused is not None:
            self.group_calls.append(ApiCall("groupSend", body, refused.status, json.loads(refused.text)))
            self._notify()
            return refused
        answer = {"processQueryKey": uuid.uuid4().hex}
        self.group_calls.append(ApiCall("groupSend", body, 200, answer))
        self.sent.append(Sent(via="groupSend", text=self._sent_text(body["msgKey"], param),
                              msgtype=body["msgKey"], title=param.get("title", ""),
                              conversation=body["openConversationId"], group=True,
                              image=self.media.get(param.get("photoURL", ""))))
        self._notify()
        return web.json_response(answer)
