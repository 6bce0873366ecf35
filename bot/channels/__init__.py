"""Channel adapters: each turns its platform's payloads into InboundMessage and delivers outbox rows."""

from .base import Channel, DeliveryError, PermanentError, TransientError

__all__ = ["Channel", "DeliveryError", "PermanentError", "TransientError"]
