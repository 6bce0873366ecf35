"""What every channel offers the app: HTTP routes, start/stop, health, and delivery of outbox rows."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..inbound import Address


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(DeliveryError):
    """Try again later (5xx, timeout, throttling); ``retry_after`` seconds when the platform says."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Never going to work (unknown user, revoked app): recorded with the platform's reason, not retried."""


class Channel:
    name: str = ""

    def routes(self, app: web.Application) -> None:
        """Add this channel's HTTP endpoints to the service's aiohttp app."""

    async def start(self) -> None:
        """Connect (stream clients) or prepare (HTTP sessions). Must return promptly."""

    async def stop(self) -> None:
        """Disconnect cleanly; the service calls this on shutdown."""

    def health(self) -> dict[str, Any]:
        return {"state": "ok"}

    async def deliver(self, address: Address, text: str, fmt: str, key: str) -> None:
        """Deliver one message; return only once the platform accepted it, else raise a DeliveryError."""
        raise PermanentError(f"channel {self.name} cannot send")
