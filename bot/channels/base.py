"""What every channel offers the app: HTTP routes, start/stop, health, and delivery of outbox rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..inbound import Address, InboundMessage, Reply

if TYPE_CHECKING:  # the outbox (and the CLI's `bangdai outbox`) use this module without a web server
    from aiohttp import web


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


class Gate(Protocol):
    """What a platform channel asks of the gateway (``bot.gateway.Gateway``): handle a message; was one
    handled before (its replies, as a ``Replayed`` list, or None); remember an answer the channel gave
    itself. Those three are the only way a channel touches the record of handled messages."""

    async def handle(self, msg: InboundMessage, as_person: int | None = None,
                     outcome: list[str] | None = None) -> list[Reply]: ...

    async def answered(self, msg: InboundMessage) -> list[Reply] | None: ...

    async def remember(self, msg: InboundMessage, replies: list[Reply]) -> list[Reply]: ...


class Channel:
    name: str = ""
    max_batch: int = 1  # recipients one platform call can carry for an identical message
    rate_per_second: float = 10.0  # platform calls per second the outbox may make on this channel

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

    async def deliver_batch(
        self, addresses: list[Address], text: str, fmt: str, keys: list[str]
    ) -> list[DeliveryError | None]:
        """Deliver one identical message to several people; per address, None or the error.

        Channels whose platform takes several recipients in one call (DingTalk batchSend) override this
        and set ``max_batch``; the default sends one by one.
        """
        results: list[DeliveryError | None] = []
        for address, key in zip(addresses, keys):
            try:
                await self.deliver(address, text, fmt, key)
                results.append(None)
            except DeliveryError as exc:
                results.append(exc)
        return results
