"""WeCom's HTTP API over aiohttp: the access token, app messages, group robot webhooks, and the
shape of what we send (text or markdown, at most 2048 bytes a message).

wechatpy's own client is synchronous (``requests`` on the event loop), hard-codes the host and
fetches tokens without a lock, so only its crypto is used (see PLATFORMS.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from typing import Any

import aiohttp

from ..clock import Clock
from .files import DOWNLOAD_TIMEOUT, read_body
from ..text import md_unescape

MAX_BYTES = 2048  # app text/markdown messages and robot text messages
TOKEN_ERRORS = {40014, 42001, 40082}  # invalid, expired, invalid suite token: fetch a new one once
TOKEN_MARGIN = dt.timedelta(minutes=5)  # refresh this long before WeCom says the token expires
MEDIA_REUSE = dt.timedelta(days=2)  # a media_id lives 3 days


class WeComUnavailable(Exception):
    """No usable answer: network error, timeout, HTTP status other than 200, or a body that is not JSON."""


class WeComError(Exception):
    """WeCom answered with an errcode other than 0."""

    def __init__(self, code: int, message: str, body: dict | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message, self.body = code, message, body or {}


class WeComApi:
    def __init__(self, base: str, corp_id: str, secret: str, clock: Clock, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.corp_id, self._secret, self.clock = corp_id, secret, clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._token = ""
        self._refresh_at: dt.datetime | None = None
        self.token_valid_until: dt.datetime | None = None
        self._lock = asyncio.Lock()
        self.token_fetches = 0
        self.last_token_error = ""
        self._media: dict[str, tuple[str, dt.datetime]] = {}  # sha1 of a picture -> (media_id, uploaded at)
        self._media_locks: dict[str, asyncio.Lock] = {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _json(self, method: str, path: str, params: dict[str, str], payload: Any = None,
                    form: aiohttp.FormData | None = None) -> dict:
        try:
            async with self.session().request(method, self.base + path, params=params,
                                              **({"data": form} if form is not None else {"json": payload})) as resp:
                if resp.status != 200:
                    raise WeComUnavailable(f"HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise WeComUnavailable(_scrub(f"{type(exc).__name__}: {exc}")) from None
        if not isinstance(body, dict):
            raise WeComUnavailable("answer is not a JSON object")
        code = int(body.get("errcode", 0) or 0)
        if code != 0:
            raise WeComError(code, str(body.get("errmsg", "")), body)
        return body

    async def token(self, stale: str | None = None) -> str:
        """The access token: fetched once under the lock, refreshed before it expires, or again when
        ``stale`` (a token WeCom just refused) is still the one we hold."""
        async with self._lock:
            now = self.clock.now()
            fresh = self._token and self._refresh_at is not None and now < self._refresh_at
            if fresh and (stale is None or stale != self._token):
                return self._token
            try:
                body = await self._json("GET", "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret})
            except (WeComError, WeComUnavailable) as exc:
                self.last_token_error = str(exc)
                raise
            self.token_fetches += 1
            self.last_token_error = ""
            self._token = str(body.get("access_token", ""))
            lifetime = dt.timedelta(seconds=int(body.get("expires_in", 7200) or 7200))
            self.token_valid_until = now + lifetime
            self._refresh_at = now + max(lifetime - TOKEN_MARGIN, lifetime / 2)
            return self._token

    async def call(self, path: str, payload: dict) -> dict:
        """POST an API call with the token; a token WeCom calls invalid or expired is fetched again
        once, and the call repeated once."""
        token = await self.token()
        try:
            return await self._json("POST", path, {"access_token": token}, payload)
        except WeComError as exc:
            if exc.code not in TOKEN_ERRORS:
                raise
        token = await self.token(stale=token)
        return await self._json("POST", path, {"access_token": token}, payload)

    async def send_message(self, agent_id: str, users: list[str], msgtype: str, content: str | dict) -> dict:
        """An app message: ``content`` is the text of a text/markdown message, or the whole object of
        another type (a ``template_card``)."""
        payload = {"touser": "|".join(users), "msgtype": msgtype, "agentid": _agent(agent_id),
                   msgtype: content if isinstance(content, dict) else {"content": content}, "safe": 0}
        return await self.call("/cgi-bin/message/send", payload)

    async def download_media(self, media_id: str, limit: int) -> bytes:
        """A picture or file a member sent the app (``/cgi-bin/media/get``), at most ``limit`` bytes; a
        token WeCom calls invalid is fetched again once."""
        token = await self.token()
        for attempt in (1, 2):
            try:
                async with self.session().get(self.base + "/cgi-bin/media/get", timeout=DOWNLOAD_TIMEOUT,
                                              params={"access_token": token, "media_id": media_id}) as resp:
                    if resp.status != 200:
                        raise WeComUnavailable(f"HTTP {resp.status}")
                    error = await _media_error(resp)
                    if error is None:
                        return await read_body(resp, limit)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise WeComUnavailable(_scrub(f"{type(exc).__name__}: {exc}")) from None
            if error.code not in TOKEN_ERRORS or attempt == 2:
                raise error
            token = await self.token(stale=token)
        raise WeComUnavailable("media/get: no answer")  # pragma: no cover - the loop returns or raises

    async def upload_image(self, png: bytes) -> str:
        """A picture's media_id for app messages (``/cgi-bin/media/upload?type=image``, multipart field
        ``media``; valid 3 days, so the same picture is uploaded once in 2)."""
        digest = hashlib.sha1(png).hexdigest()
        async with self._media_locks.setdefault(digest, asyncio.Lock()):  # one upload per picture at a time
            known = self._media.get(digest)
            now = self.clock.now()
            if known and now - known[1] < MEDIA_REUSE:
                return known[0]
            return await self._upload(png, digest, now)

    async def _upload(self, png: bytes, digest: str, now: dt.datetime) -> str:
        token = await self.token()
        for attempt in (1, 2):
            form = aiohttp.FormData()
            form.add_field("media", png, filename=f"{digest[:12]}.png", content_type="image/png")
            try:
                body = await self._json("POST", "/cgi-bin/media/upload", {"access_token": token, "type": "image"},
                                        form=form)
                break
            except WeComError as exc:
                if exc.code not in TOKEN_ERRORS or attempt == 2:
                    raise
                token = await self.token(stale=token)
        media_id = str(body.get("media_id") or "")
        if not media_id:
            raise WeComUnavailable("media/upload answered without a media_id")
        self._media[digest] = (media_id, now)
        return media_id

    async def update_card(self, agent_id: str, users: list[str], response_code: str, replace_name: str) -> dict:
        """Turn the tapped card's buttons into one grey line (``update_template_card``, ``button``):
        allowed once per ResponseCode, within 72 hours of the tap."""
        payload = {"userids": users, "agentid": _agent(agent_id), "response_code": response_code,
                   "button": {"replace_name": replace_name}}
        return await self.call("/cgi-bin/message/update_template_card", payload)

    async def send_webhook(self, key: str, msgtype: str, content: str | dict) -> dict:
        """A group robot message: text/markdown ``content``, or the object of an ``image`` (base64, md5)."""
        payload = {"msgtype": msgtype, msgtype: content if isinstance(content, dict) else {"content": content}}
        return await self._json("POST", "/cgi-bin/webhook/send", {"key": key}, payload)


def _scrub(text: str) -> str:
    """Error texts may quote the URL, whose query carries the secret, token or webhook key."""
    return re.sub(r"\?[^\s'\"]*", "?…", text)


def _agent(agent_id: str) -> int | str:
    return int(agent_id) if agent_id.isdigit() else agent_id


# --- what a message looks like on WeCom -----------------------------------------------------------

_MARKDOWN = re.compile(r"\*\*[^*\n]+\*\*|^#{1,6} |\[[^\]\n]+\]\([^)\s]+\)|^> |`[^`\n]+`|<font ", re.M)
_LINK = re.compile(r"(?<!\\)\[([^\]\n]+)(?<!\\)\]\(([^)\s]+)\)")  # not an escaped one someone typed


def uses_markdown(text: str) -> bool:
    """Whether the text uses markdown WeCom renders (bold, headings, links, quotes, code, font)."""
    return bool(_MARKDOWN.search(text))


def to_plain(text: str) -> str:
    """The text as a plain WeCom text message: markdown marks removed, escapes undone."""
    text = _LINK.sub(r"\1 \2", text)
    text = re.sub(r"\*\*([^*\n]+)\*\*", r"\1", text)
    text = re.sub(r"^#{1,6} ", "", text, flags=re.M)
    return md_unescape(text)  # the renderer escaped what people typed; plain text shows it as typed


def split_message(text: str, limit: int = MAX_BYTES) -> list[str]:
    """Cut a message into parts of at most ``limit`` UTF-8 bytes at line boundaries; a single line
    longer than that is cut between characters, never inside one."""
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        pieces = _cut_line(line, limit)
        for piece in pieces:
            n = len(piece.encode())
            extra = n + (1 if current else 0)
            if current and size + extra > limit:
                parts.append("\n".join(current))
                current, size = [], 0
                extra = n
            current.append(piece)
            size += extra
    if current:
        parts.append("\n".join(current))
    # Blank lines at a cut are noise at the top or bottom of a part.
    return [p.strip("\n") for p in parts if p.strip()]


def _cut_line(line: str, limit: int) -> list[str]:
    if len(line.encode()) <= limit:
        return [line]
    pieces, current, size = [], [], 0
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += n
    pieces.append("".join(current))
    return pieces


async def _media_error(resp: aiohttp.ClientResponse) -> WeComError | None:
    """``media/get`` answers the file itself, or JSON with an errcode when it cannot."""
    if "json" not in resp.headers.get("Content-Type", "") and "text/plain" not in resp.headers.get("Content-Type", ""):
        return None
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        return None
    if not isinstance(body, dict) or not int(body.get("errcode", 0) or 0):
        return None
    return WeComError(int(body["errcode"]), str(body.get("errmsg", "")), body)
