"""Who changed what: every audit entry — chat, console, CLI, imports, jobs — is written here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditLog


class Someone(Protocol):
    """A roster person or a chat sender (both carry the person's id and name)."""

    @property
    def id(self) -> int | None: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    """Who makes a change when it is not simply the sender: an operator (``Actor("命令行")``), an import
    (``Actor("import")``), or a person named by id and label (a staff member acting through the CLI)."""

    label: str
    person_id: int | None = None

    @classmethod
    def of(cls, who: Someone) -> "Actor":
        return cls(who.name, who.id)


def audit(session: AsyncSession, now: dt.datetime, actor: Actor | Someone | None, action: str, target: str = "",
          **detail: object) -> AuditLog:
    """Add one audit entry to the caller's transaction, so it exists exactly when the change does.
    ``actor`` None is the system itself (a job, a rule). ``detail`` never carries a letter's or a
    case's text, nor an anonymous writer: the callers pass ids and labels only."""
    if actor is None:
        actor = Actor("系统")
    elif not isinstance(actor, Actor):
        actor = Actor.of(actor)
    entry = AuditLog(at=now, actor_id=actor.person_id, actor_label=actor.label, action=action, target=target,
                     detail=dict(detail))
    session.add(entry)
    return entry
