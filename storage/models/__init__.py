"""All tables. Import from here so Alembic and the app see one metadata."""

from sqlmodel import SQLModel

from .people import BindAttempt, ChatIdentity, Person, PersonRole, Role, Unit
from .mentoring import ANNUAL_GRADES, CONTACT_MODES, REVIEW_RATINGS, AnnualGrade, ContactLog, ContactMentor, Pairing, PairingMentor, PairReview, PlanItem
from .outbox import JobRun, OutboxMessage, OutboxStatus, RecentSend
from .sanling import Inquiry, InquiryAnswer, InquiryStatus, LiaisonLink, Visit
from .system import AuditLog, DirectoryVersion, Installation, LocalDelivery, ProcessedMessage
from .changqing import Achievement, Broadcast, BroadcastStatus, Commitment, SignUp, Squad, SquadMember
from .dingtalk import DingTalkApiUsage
from .console import ConsoleLink, ConsoleSession
from .sanling_cases import CaseStatus, JointPart, MonthlyReport, ReviewCase, ReviewDecision, ReviewFile, ReviewItem

metadata = SQLModel.metadata

__all__ = [
    "ANNUAL_GRADES", "AnnualGrade", "AuditLog", "DirectoryVersion", "Installation", "BindAttempt", "DingTalkApiUsage", "PairReview", "REVIEW_RATINGS", "JobRun", "LocalDelivery", "OutboxMessage", "OutboxStatus", "RecentSend", "CONTACT_MODES", "ChatIdentity", "ContactLog", "ContactMentor", "Pairing", "PairingMentor",
    "Person", "PersonRole", "PlanItem", "ProcessedMessage", "Role", "Unit", "metadata",
    "Inquiry", "InquiryAnswer", "InquiryStatus", "LiaisonLink", "Visit",
    "ConsoleLink", "ConsoleSession",
    "CaseStatus", "JointPart", "MonthlyReport", "ReviewCase", "ReviewDecision", "ReviewFile", "ReviewItem",
    "Achievement", "Broadcast", "BroadcastStatus", "Commitment", "SignUp", "Squad", "SquadMember",
]
