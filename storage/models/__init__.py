"""All tables. Import from here so Alembic and the app see one metadata."""

from sqlmodel import SQLModel

from .people import BindAttempt, ChatIdentity, Person, PersonRole, Role, Unit
from .mentoring import CONTACT_MODES, ContactLog, Pairing, PairingMentor, PlanItem
from .outbox import JobRun, OutboxMessage, OutboxStatus
from .system import AuditLog, LocalDelivery, ProcessedMessage
from .dingtalk import DingTalkApiUsage

metadata = SQLModel.metadata

__all__ = [
    "AuditLog", "BindAttempt", "DingTalkApiUsage", "JobRun", "LocalDelivery", "OutboxMessage", "OutboxStatus", "CONTACT_MODES", "ChatIdentity", "ContactLog", "Pairing", "PairingMentor",
    "Person", "PersonRole", "PlanItem", "ProcessedMessage", "Role", "Unit", "metadata",
]
