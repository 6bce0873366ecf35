"""All tables. Import from here so Alembic and the app see one metadata."""

from sqlmodel import SQLModel

from .people import BindAttempt, ChatIdentity, Person, PersonRole, Role, Unit
from .mentoring import ANNUAL_GRADES, AREAS, CONTACT_MODES, REPORT_ITEMS, ReviewReport, REVIEW_RATINGS, AnnualGrade, ContactLog, ContactMentor, Pairing, PairingMentor, PairReview, PlanItem
from .outbox import JobRun, OutboxMessage, OutboxStatus, RecentSend
from .sanling import Inquiry, InquiryAnswer, InquiryStatus, LiaisonLink, Visit
from .system import AuditLog, DirectoryVersion, Installation, LocalDelivery, ProcessedMessage
from .changqing import Achievement, AchievementMember, ProjectFollowUp, SquadProject, Broadcast, BroadcastStatus, Commitment, SignUp, Squad, SquadMember
from .dingtalk import DingTalkApiUsage
from .classes import ClassSignUp, OpenClass
from .mentor_pool import (INCENTIVE_KINDS, NOMINATION_SOURCES, MentorCertificate, MentorIncentive, MentorNomination,
                          NominationStatus)
from .console import ConsoleLink, ConsoleSession
from .sanling_cases import CaseStatus, JointPart, MonthlyReport, ReviewCase, ReviewDecision, ReviewFile, ReviewItem

metadata = SQLModel.metadata

__all__ = [
    "ANNUAL_GRADES", "AchievementMember", "ProjectFollowUp", "SquadProject", "ClassSignUp", "OpenClass", "INCENTIVE_KINDS", "NOMINATION_SOURCES", "MentorCertificate", "MentorIncentive", "MentorNomination", "NominationStatus", "AREAS", "REPORT_ITEMS", "ReviewReport", "AnnualGrade", "AuditLog", "DirectoryVersion", "Installation", "BindAttempt", "DingTalkApiUsage", "PairReview", "REVIEW_RATINGS", "JobRun", "LocalDelivery", "OutboxMessage", "OutboxStatus", "RecentSend", "CONTACT_MODES", "ChatIdentity", "ContactLog", "ContactMentor", "Pairing", "PairingMentor",
    "Person", "PersonRole", "PlanItem", "ProcessedMessage", "Role", "Unit", "metadata",
    "Inquiry", "InquiryAnswer", "InquiryStatus", "LiaisonLink", "Visit",
    "ConsoleLink", "ConsoleSession",
    "CaseStatus", "JointPart", "MonthlyReport", "ReviewCase", "ReviewDecision", "ReviewFile", "ReviewItem",
    "Achievement", "Broadcast", "BroadcastStatus", "Commitment", "SignUp", "Squad", "SquadMember",
]
