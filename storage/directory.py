"""A per-process memo of the directory — who is who and who is paired with whom — read on every message.

Every message needs its sender (chat account → person, unit, roles) and most need the sender's pairs:
four to five queries that almost never change between messages. The directory tables (units, people,
roles, chat accounts, pairings, their mentors) carry database triggers that bump one counter,
``directoryversion.value``, on every insert, update or delete — from this process, another ``serve``, the
CLI, an import or a hand-written SQL statement alike (migration 0008). A message reads the counter once
(:meth:`DirectoryCache.begin`); while it is unchanged, what was loaded before is still what the database
holds, so :func:`memo` hands it back without a query. When it changed, everything is dropped.

Rules that keep this honest:
- Only sessions that called :meth:`DirectoryCache.begin` use the memo; every other reader loads fresh.
- A value is kept only if the counter has not moved since its session read it (a concurrent message may
  have seen a newer one), and never after its own session wrote a directory table (its own writes bump
  the counter only at commit, as far as other sessions see).
- Kept ORM objects are detached from their session, so a rollback cannot expire them under a later
  reader. They are read-only: code that changes a person or a pairing loads its own copy.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Hashable, Iterable, TypeVar

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models.system import DirectoryVersion

T = TypeVar("T")

# The tables whose rows the memo may hold; each has the version triggers (migration 0008).
DIRECTORY_TABLES = ("unit", "person", "personrole", "chatidentity", "pairing", "pairingmentor")

_KEY = "bangdai.directory"
_VERSION = select(DirectoryVersion.__table__.c.value).where(DirectoryVersion.__table__.c.id == 1)  # type: ignore[attr-defined]
MAX_ENTRIES = 20_000  # a county's roster is a few thousand people; past this the memo starts over


class DirectoryCache:
    def __init__(self) -> None:
        self.version: int | None = None
        self.entries: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    async def begin(self, session: AsyncSession) -> None:
        """Read the directory version in this session's transaction and let the session use the memo."""
        connection = await session.connection()
        version = (await connection.execute(_VERSION)).scalar() or 0
        if version != self.version:
            self.entries.clear()
            self.version = version
        session.sync_session.info[_KEY] = (self, version)


async def memo(session: AsyncSession, key: Hashable, load: Callable[[], Awaitable[T]],
               instances: Callable[[T], Iterable[object]]) -> T:
    """``load()``'s value, from the memo when the session may use it. ``instances(value)`` lists the ORM
    objects in the value, which are detached from the session before the value is kept."""
    bound = session.sync_session.info.get(_KEY)
    if bound is None:
        return await load()
    cache, version = bound
    if key in cache.entries:
        cache.hits += 1
        return cache.entries[key]
    cache.misses += 1
    value = await load()
    if cache.version == version and session.sync_session.info.get(_KEY) is bound:
        for obj in instances(value):
            if obj in session.sync_session:
                session.sync_session.expunge(obj)
        if len(cache.entries) >= MAX_ENTRIES:
            cache.entries.clear()
        cache.entries[key] = value
    return value


def _forget(session: Session) -> None:
    """This session wrote to the directory: from now on it reads fresh, and nobody keeps what it read."""
    bound = session.info.pop(_KEY, None)
    if bound is not None:
        bound[0].entries.clear()


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(type(obj), "__tablename__", None)
        if table in DIRECTORY_TABLES:
            _forget(session)
            return


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in DIRECTORY_TABLES:
            _forget(state.session)
