"""Reading a file a platform hands out by URL, without ever holding more than the caller allows."""

from __future__ import annotations

import asyncio

import aiohttp

from ..inbound import FetchError, FileTooLarge

CHUNK = 64 * 1024
# A 20 MB scan over a county network can take longer than an API call's whole timeout: a download
# may run for minutes as long as bytes keep coming.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=10, sock_read=30)


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of ``resp``, at most ``limit`` bytes: a bigger one is refused before it is all read."""
    if resp.content_length is not None and resp.content_length > limit:
        raise FileTooLarge(resp.content_length, limit)
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise FileTooLarge(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_limited(http: aiohttp.ClientSession, url: str, limit: int) -> bytes:
    """GET ``url`` (a platform's short-lived download link), at most ``limit`` bytes."""
    try:
        async with http.get(url, timeout=DOWNLOAD_TIMEOUT) as resp:
            if resp.status != 200:
                raise FetchError(f"HTTP {resp.status}")
            return await read_body(resp, limit)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise FetchError(type(exc).__name__) from None
