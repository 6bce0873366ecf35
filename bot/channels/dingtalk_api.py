"""DingTalk's OpenAPI over aiohttp: one shared access token, robot sends, and the monthly call count.

The SDK has no helper for proactive sends, and its token and reply helpers use blocking ``requests``
without a timeout on the event loop, so Bangdai talks to the OpenAPI itself. Every call that reached
DingTalk is counted per month in the database (standard-edition organisations get 10,000 a month).
Answers are mapped onto the outbox's errors: throttling and server trouble are transient, a refused
request is permanent.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.db import Database
from storage.models import DingTalkApiUsage

from ..clock import Clock
from .base import PermanentError, TransientError

log = logging.getLogger(__name__)

API_CALLS = Counter("bangdai_dingtalk_api_calls_total", "DingTalk OpenAPI calls that reached DingTalk", ["api"])
API_ERRORS = Counter("bangdai_dingtalk_api_errors_total", "DingTalk OpenAPI error answers, by code", ["code"])

TOKEN_PATH = "/v1.0/oauth2/accessToken"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
GROUP_SEND_PATH = "/v1.0/robot/groupMessages/send"
FILE_DOWNLOAD_PATH = "/v1.0/robot/messageFiles/download"
MEDIA_UPLOAD_PATH = "/media/upload"  # on the older host (oapi_base), token in the query
MEDIA_TTL = 2 * 24 * 3600.0  # a media_id lives 3 days; reuse one for 2
BATCH_LIMIT = 20  # userIds per batchSend

# 20 QPS per app per API: the old code and the new one, both HTTP 403.
THROTTLE_CODES = {"90018", "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}
# The organisation's monthly call allowance is spent.
QUOTA_CODES = {"90020", "Forbidden.AccessDenied.ApiCountLimitForOrg", "ApiCountLimitForOrg"}
QPS_LIMIT = 18  # our own ceiling per API in any 1 s window, under DingTalk's 20 (bursts included)
THROTTLE_PAUSE = 1.0  # seconds every call waits out after a QPS answer (the limit is per second)
QUOTA_RETRY_AFTER = 3600.0  # an exhausted month only recovers when the org buys more or the month ends
FLOW_CONTROL_RETRY_AFTER = 60.0


def _is_throttle(code: str) -> bool:
    return code in THROTTLE_CODES or "QpsLimit" in code


def _is_quota(code: str) -> bool:
    return code in QUOTA_CODES or "ApiCountLimit" in code


_MD_MARKS = re.compile(r"[#*>`_\[\]|]")


def markdown_title(text: str, limit: int = 30) -> str:
    """The notification preview of a Markdown message: its first line without Markdown marks."""
    for line in text.splitlines():
        line = _MD_MARKS.sub("", line).strip(" -")
        if line:
            return line[:limit]
    return "帮带助手"


def message_param(text: str, fmt: str) -> tuple[str, str]:
    """(msgKey, msgParam) of a robot message: Markdown as ``sampleMarkdown``, a picture (``text`` is its
    media_id) as ``sampleImageMsg``, anything else as text."""
    if fmt == "image":
        return "sampleImageMsg", json.dumps({"photoURL": text})
    if fmt == "markdown":
        return "sampleMarkdown", json.dumps({"title": markdown_title(text), "text": text}, ensure_ascii=False)
    return "sampleText", json.dumps({"content": text}, ensure_ascii=False)


class ApiUsage:
    """OpenAPI calls per month, persistent; ``current()`` is cheap enough for /healthz."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock
        self._month, self._calls = "", 0

    def month(self) -> str:
        return self.clock.now().strftime("%Y-%m")

    def current(self) -> int:
        return self._calls if self._month == self.month() else 0

    async def load(self) -> int:
        month = self.month()
        async with self.db.transaction() as session:
            row = await session.get(DingTalkApiUsage, month)
        self._month, self._calls = month, row.calls if row else 0
        return self._calls

    async def add(self, calls: int = 1) -> None:
        month, now = self.month(), self.clock.now()
        try:
            async with self.db.transaction() as session:
                insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
                stmt = insert(DingTalkApiUsage).values(month=month, calls=calls, updated_at=now)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["month"],
                    set_={"calls": DingTalkApiUsage.calls + calls, "updated_at": now},
                ).returning(DingTalkApiUsage.calls)
                total = (await session.exec(stmt)).scalar_one()  # type: ignore[call-overload]
            self._month, self._calls = month, total
        except Exception:  # a count that fails to save must never fail a send
            log.exception("could not record %d DingTalk API call(s)", calls)
            if self._month == month:
                self._calls += calls


@dataclass
class BatchResult:
    invalid: set[str] = field(default_factory=set)
    flow_controlled: set[str] = field(default_factory=set)
    process_query_key: str = ""


class OpenApi:
    """The robot OpenAPI of one DingTalk app. ``monotonic`` is injectable so tests can age the token."""

    def __init__(self, base: str, app_key: str, app_secret: str, robot_code: str, usage: ApiUsage,
                 timeout: float = 10.0, monotonic: Callable[[], float] = time.monotonic,
                 oapi_base: str = "https://oapi.dingtalk.com") -> None:
        self.base = base.rstrip("/")
        self.oapi_base = oapi_base.rstrip("/")
        self._media: dict[str, tuple[str, float]] = {}  # sha1 of a picture -> (media_id, uploaded at)
        self._media_locks: dict[str, asyncio.Lock] = {}
        self.app_key, self._app_secret, self.robot_code = app_key, app_secret, robot_code
        self.usage = usage
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.monotonic = monotonic
        self._http: aiohttp.ClientSession | None = None
        self._token = ""
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._paused_until = 0.0
        self._recent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.token_error = ""  # the last failed token fetch, shown on /healthz until one succeeds

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- the access token ---------------------------------------------------------------------------

    async def token(self) -> str:
        """The app's access token: fetched once however many callers ask at once, renewed before expiry."""
        if self._token and self.monotonic() < self._token_expires:
            return self._token
        async with self._token_lock:
            if self._token and self.monotonic() < self._token_expires:
                return self._token
            status, data = await self._post(TOKEN_PATH, {"appKey": self.app_key, "appSecret": self._app_secret},
                                            api="accessToken")
            token, expire_in = data.get("accessToken"), data.get("expireIn")
            if status != 200 or not isinstance(token, str) or not isinstance(expire_in, (int, float)):
                code = str(data.get("code") or status)
                self.token_error = f"{status} {code} {data.get('message', '')}".strip()
                API_ERRORS.labels(code).inc()
                # Wrong credentials are fixed by an operator, so the messages wait rather than fail.
                raise TransientError(f"取钉钉 access token 失败：{self.token_error}", retry_after=300)
            # Renew 5 minutes early (a tenth of the lifetime for short-lived tokens).
            self._token = token
            self._token_expires = self.monotonic() + expire_in - min(300.0, expire_in / 10)
            self.token_error = ""
            return token

    def forget_token(self) -> None:
        self._token, self._token_expires = "", 0.0

    # --- calls ------------------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any], api: str, headers: dict[str, str] | None = None
                    ) -> tuple[int, dict[str, Any]]:
        try:
            async with self.http.post(self.base + path, json=body, headers=headers or {}) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            API_ERRORS.labels("network").inc()
            raise TransientError(f"连不上钉钉接口 {api}：{type(exc).__name__} {exc}".strip()) from None
        API_CALLS.labels(api).inc()
        await self.usage.add(1)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return status, data if isinstance(data, dict) else {}

    async def call(self, path: str, body: dict[str, Any], api: str) -> dict[str, Any]:
        """POST with the token; the answer's JSON, or a TransientError / PermanentError saying why not."""
        remaining = self._paused_until - self.monotonic()
        if remaining > 0:  # throttled a moment ago: don't spend calls on answers we know
            raise TransientError("钉钉接口限流中，稍后重试", retry_after=remaining + 1)
        for attempt in (1, 2):
            token = await self.token()
            await self._within_qps(api)
            status, data = await self._post(path, body, api, {"x-acs-dingtalk-access-token": token})
            if status == 200:
                return data
            code = str(data.get("code") or status)
            message = str(data.get("message", ""))[:200]
            API_ERRORS.labels(code).inc()
            if status == 401 and attempt == 1:  # the token died early (revoked, rotated secret): once more
                self.forget_token()
                continue
            if _is_throttle(code):
                pause = THROTTLE_PAUSE * random.uniform(1, 2)
                self._paused_until = self.monotonic() + pause
                raise TransientError(f"钉钉接口限流（{code}）", retry_after=pause + 1)
            if _is_quota(code):
                raise TransientError(f"本组织本月钉钉接口调用次数已用完（{code}）", retry_after=QUOTA_RETRY_AFTER)
            if status == 429 or status >= 500:
                raise TransientError(f"钉钉接口 {api} 暂时出错：HTTP {status} {code} {message}".strip())
            raise PermanentError(f"钉钉接口 {api} 拒绝：HTTP {status} {code} {message}".strip())
        raise TransientError(f"钉钉接口 {api}：access token 无效")  # pragma: no cover - loop always returns

    async def _within_qps(self, api: str) -> None:
        """Wait until this API has had fewer than QPS_LIMIT calls in the last second (a sliding window:
        the outbox's token bucket alone allows a burst plus a second's refill inside one second)."""
        window = self._recent[api]
        while True:
            now = time.monotonic()
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) < QPS_LIMIT:
                window.append(now)
                return
            await asyncio.sleep(1.0 - (now - window[0]) + 0.001)

    async def batch_send(self, user_ids: list[str], text: str, fmt: str) -> BatchResult:
        """One identical robot message to up to 20 people (``oToMessages/batchSend``)."""
        if not 1 <= len(user_ids) <= BATCH_LIMIT:
            raise ValueError(f"batchSend takes 1 to {BATCH_LIMIT} users, not {len(user_ids)}")
        key, param = message_param(text, fmt)
        data = await self.call(BATCH_SEND_PATH, {"robotCode": self.robot_code, "userIds": user_ids,
                                                 "msgKey": key, "msgParam": param}, api="batchSend")
        return BatchResult(
            invalid=set(data.get("invalidStaffIdList") or []),
            flow_controlled=set(data.get("flowControlledStaffIdList") or []),
            process_query_key=str(data.get("processQueryKey") or ""),
        )

    async def upload_image(self, png: bytes) -> str:
        """Upload a picture with the media API (``/media/upload?type=image``, multipart field ``media``)
        and return its media_id; the same picture uploaded in the last two days is not sent again."""
        digest = hashlib.sha1(png).hexdigest()
        # Batches of one message go out several at once: the first uploads, the others wait for its id.
        lock = self._media_locks.setdefault(digest, asyncio.Lock())
        async with lock:
            known = self._media.get(digest)
            if known and self.monotonic() - known[1] < MEDIA_TTL:
                return known[0]
            return await self._upload(png, digest)

    async def _upload(self, png: bytes, digest: str) -> str:
        for attempt in (1, 2):
            token = await self.token()
            await self._within_qps("mediaUpload")
            form = aiohttp.FormData()
            form.add_field("media", png, filename=f"{digest[:12]}.png", content_type="image/png")
            try:
                async with self.http.post(f"{self.oapi_base}{MEDIA_UPLOAD_PATH}",
                                          params={"access_token": token, "type": "image"}, data=form) as resp:
                    status, raw = resp.status, await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                API_ERRORS.labels("network").inc()
                raise TransientError(f"连不上钉钉媒体上传接口：{type(exc).__name__}") from None
            API_CALLS.labels("mediaUpload").inc()
            await self.usage.add(1)
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {}
            code = str(data.get("errcode", status if status != 200 else "")) if isinstance(data, dict) else str(status)
            media_id = data.get("media_id") if isinstance(data, dict) else None
            if status == 200 and code == "0" and isinstance(media_id, str) and media_id:
                self._media[digest] = (media_id, self.monotonic())
                return media_id
            API_ERRORS.labels(code or str(status)).inc()
            message = str(data.get("errmsg", "") if isinstance(data, dict) else "")[:200]
            if code in {"40014", "42001", "88"} and attempt == 1:  # the token died early: once more
                self.forget_token()
                continue
            if _is_throttle(code) or status == 429 or status >= 500:
                raise TransientError(f"钉钉媒体上传暂时出错：{status} {code} {message}".strip(), retry_after=THROTTLE_PAUSE * 2)
            raise PermanentError(f"钉钉媒体上传拒绝：{status} {code} {message}".strip())
        raise TransientError("钉钉媒体上传：access token 无效")  # pragma: no cover - loop always returns

    async def group_send(self, open_conversation_id: str, text: str, fmt: str) -> str:
        """One robot message to a group (``groupMessages/send``); returns DingTalk's processQueryKey."""
        key, param = message_param(text, fmt)
        data = await self.call(GROUP_SEND_PATH, {"robotCode": self.robot_code, "openConversationId": open_conversation_id,
                                                 "msgKey": key, "msgParam": param}, api="groupSend")
        return str(data.get("processQueryKey") or "")

    async def download_url(self, download_code: str) -> str:
        """The short-lived URL of a file or picture someone sent the robot (``messageFiles/download``)."""
        data = await self.call(FILE_DOWNLOAD_PATH, {"downloadCode": download_code, "robotCode": self.robot_code},
                               api="messageFilesDownload")
        url = data.get("downloadUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise PermanentError("钉钉文件下载接口没有给出 downloadUrl")
        return url
