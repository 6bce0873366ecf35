"""The Stream-mode connection to DingTalk, kept alive by us rather than by the SDK's ``start()``.

``dingtalk-stream`` 0.24.3 does the protocol well — subscriptions, frame parsing, routing to handlers,
acks — and is used for all of that. Its connection loop is not: ``start()`` swallows ``CancelledError``
(no clean stop), reconnects without delay after a clean server close and every 10 s forever after a
failed open, and ``open_connection()`` POSTs with blocking ``requests`` (no timeout) on the event loop
to a URL frozen at import. So this module opens the connection itself with aiohttp against
``[dingtalk] api_base``, reconnects with exponential backoff and jitter, and stops on request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import random
import socket
import time
from typing import Any, Callable
from urllib.parse import quote_plus

import aiohttp
import dingtalk_stream
import websockets
# websockets ≥ 14 imports this submodule lazily; the SDK's own except clauses name it, and without an
# early import a bad open-connection answer surfaces as AttributeError instead of a reconnect.
import websockets.exceptions
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, ChatbotMessage, Credential
from dingtalk_stream.frames import Headers
from dingtalk_stream.version import VERSION_STRING
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

OPEN_CONNECTION_PATH = "/v1.0/gateway/connections/open"
HEALTHY_AFTER = 30.0  # a connection that lasted this long resets the backoff

RECONNECTS = Counter("bangdai_dingtalk_reconnects_total", "DingTalk stream (re)connection attempts after a loss")
CONNECTED = Gauge("bangdai_dingtalk_connected", "1 while the DingTalk stream is connected")
FRAMES_UNPARSEABLE = Counter("bangdai_dingtalk_unparseable_frames_total", "DingTalk frames that could not be read")


class OpenConnectionError(Exception):
    """DingTalk would not open a stream connection (bad credentials, server trouble)."""


class _SdkClient(dingtalk_stream.DingTalkStreamClient):
    """The SDK's client for subscriptions, routing and acks; its connection methods are never used."""

    def open_connection(self):  # noqa: D102 - blocking requests without a timeout: must not run here
        raise RuntimeError("StreamConnection opens the connection with aiohttp")

    async def start(self):  # noqa: D102 - swallows CancelledError: StreamConnection supervises instead
        raise RuntimeError("StreamConnection runs the connection")

    def subscriptions(self) -> list[dict[str, str]]:
        """What the SDK's own open_connection() would subscribe to."""
        topics = [{"type": "EVENT", "topic": "*"}] if self._is_event_required else []
        return topics + [{"type": "CALLBACK", "topic": t} for t in self.callback_handler_map]


class BotMessageHandler(CallbackHandler):
    """Robot messages (``/v1.0/im/bot/messages/get``): hand the payload over and acknowledge at once.

    The SDK acks only after ``process`` returns and sends no ack at all when it raises, so this never
    waits for anything and never raises: the work happens in the task ``accept`` starts.
    """

    def __init__(self, accept: Callable[[Any], None]) -> None:
        super().__init__()
        self.logger = log
        self.accept = accept

    async def process(self, message: CallbackMessage):
        try:
            self.accept(message.data)
        except Exception:
            log.exception("DingTalk robot message %s could not be taken in; acknowledged anyway",
                          message.headers.message_id)
        return AckMessage.STATUS_OK, "OK"


def _local_ip() -> str:
    """The address the SDK reports as ``localIp`` (a UDP socket: nothing is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("8.8.8.8", 80))
            return s.getsockname()[0]
    except OSError:
        return ""


class StreamConnection:
    """One app's stream: open, read frames, route them through the SDK, reconnect, stop."""

    def __init__(self, api_base: str, client_id: str, client_secret: str, accept: Callable[[Any], None], *,
                 base_delay: float = 1.0, max_delay: float = 60.0, timeout: float = 10.0) -> None:
        self.open_url = api_base.rstrip("/") + OPEN_CONNECTION_PATH
        self.client = _SdkClient(Credential(client_id, client_secret), logger=log)
        self.client.register_callback_handler(ChatbotMessage.TOPIC, BotMessageHandler(accept))
        self.base_delay, self.max_delay = base_delay, max_delay
        self.timeout = timeout
        self.state = "stopped"  # stopped, connecting, connected, reconnecting
        self.last_error = ""
        self.reconnects = 0
        self.connected_at: float | None = None  # wall time, for /healthz
        self.down_since: float | None = time.monotonic()
        self._task: asyncio.Task | None = None
        self._frames: set[asyncio.Task] = set()
        self._disconnect_asked = False
        self._local_ip = ""

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task and not self._task.done():
            return
        self.client.pre_start()
        self._local_ip = await asyncio.to_thread(_local_ip)
        self._task = asyncio.create_task(self._run(), name="dingtalk-stream")

    async def stop(self, timeout: float = 3.0) -> None:
        """Close the connection and end the loop; our loop, unlike the SDK's, lets cancellation through."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)  # a close handshake gets a moment, no more
        for frame in list(self._frames):
            frame.cancel()
        self._set_state("stopped")

    def _set_state(self, state: str) -> None:
        self.state = state
        connected = state == "connected"
        CONNECTED.set(1 if connected else 0)
        if connected:
            self.connected_at, self.down_since = time.time(), None
        elif self.down_since is None:
            self.connected_at, self.down_since = None, time.monotonic()

    def down_for(self) -> float:
        """Seconds since the stream was last connected (0 while it is)."""
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: half to all of base·2^attempt, capped."""
        cap = min(self.max_delay, self.base_delay * 2 ** min(attempt, 30))
        return random.uniform(cap / 2, cap)

    # --- the loop -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._set_state("connecting" if attempt == 0 else "reconnecting")
            opened_at: float | None = None
            self._disconnect_asked = False
            try:
                endpoint = await self.open_connection()
                opened_at = time.monotonic()
                await self._read(endpoint)
                self.last_error = "DingTalk asked to reconnect" if self._disconnect_asked else "DingTalk closed the connection"
            except asyncio.CancelledError:
                raise
            except websockets.exceptions.ConnectionClosed as exc:
                self.last_error = f"connection lost: {exc}"
            except OpenConnectionError as exc:
                self.last_error = str(exc)
            except Exception as exc:  # a network error, a bad answer: log it, wait, try again
                self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("DingTalk stream: %s", self.last_error)
            healthy = opened_at is not None and time.monotonic() - opened_at >= HEALTHY_AFTER
            attempt = 0 if (healthy or self._disconnect_asked) else attempt + 1
            self._set_state("reconnecting")
            self.reconnects += 1
            RECONNECTS.inc()
            await asyncio.sleep(self.delay(attempt))

    async def open_connection(self) -> str:
        """POST the subscription to DingTalk's gateway; the websocket URI with its one-time ticket."""
        body = {
            "clientId": self.client.credential.client_id,
            "clientSecret": self.client.credential.client_secret,
            "subscriptions": self.client.subscriptions(),
            "ua": f"dingtalk-sdk-python/v{VERSION_STRING}-union",
            "localIp": self._local_ip,
        }
        headers = {"Accept": "application/json",
                   "User-Agent": f"DingTalkStream/1.0 SDK/{VERSION_STRING} Python/{platform.python_version()} (Bangdai)"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http:
                async with http.post(self.open_url, json=body, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise OpenConnectionError(f"open connection failed: {type(exc).__name__} {exc}".strip()) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict) or not answer.get("endpoint") or not answer.get("ticket"):
            code = answer.get("code", "") if isinstance(answer, dict) else ""
            raise OpenConnectionError(f"open connection refused: HTTP {status} {code}".strip())
        return f"{answer['endpoint']}?ticket={quote_plus(str(answer['ticket']))}"

    async def _read(self, uri: str) -> None:
        async with websockets.connect(uri, open_timeout=self.timeout, close_timeout=2, max_size=4 * 2**20) as ws:
            self.client.websocket = ws
            self._set_state("connected")
            self.last_error = ""
            log.info("DingTalk stream connected")
            async for raw in ws:
                task = asyncio.create_task(self._route(ws, raw))
                self._frames.add(task)
                task.add_done_callback(self._frames.discard)

    async def _route(self, ws: Any, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                raise ValueError("not an object")
        except ValueError:
            FRAMES_UNPARSEABLE.inc()
            log.warning("DingTalk sent a frame that is not JSON (%d bytes); ignored", len(raw))
            return
        try:
            result = await self.client.route_message(frame)
        except websockets.exceptions.ConnectionClosed:
            return  # the ack could not go out; DingTalk redelivers and the msgId de-duplicates
        except Exception as exc:
            # A payload the SDK cannot parse (the ``data`` string is not JSON, …): acknowledge it, or
            # DingTalk would push it again and again.
            FRAMES_UNPARSEABLE.inc()
            headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
            log.warning("DingTalk frame %s (%s %s) unreadable, acknowledged: %s", headers.get("messageId"),
                        frame.get("type"), headers.get("topic"), type(exc).__name__)
            await self._ack(ws, headers.get("messageId"))
            return
        if result == self.client.TAG_DISCONNECT:
            self._disconnect_asked = True
            await ws.close()

    async def _ack(self, ws: Any, message_id: Any) -> None:
        if not message_id:
            return
        ack = AckMessage()
        ack.headers.message_id = message_id
        ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        ack.data = {"response": "OK"}
        try:
            await ws.send(json.dumps(ack.to_dict()))
        except websockets.exceptions.ConnectionClosed:
            pass

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "connected_since": self.connected_at,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }
