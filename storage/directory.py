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
- The version only grows: a session whose read is older than what the memo has seen (PostgreSQL runs
  messages side by side) neither uses nor fills it.
- What a session loads is kept only once that session commits, and only if the version has not moved
  in the meantime: data read inside a transaction that is rolled back (with whatever it wrote, by any
  means) never reaches other messages.
- A session with pending ORM changes, or that wrote a directory table, reads fresh from then on.
- Kept ORM objects are detached from their session, so a rollback cannot expire them under a later
  reader. They are read-only: code that changes a person or a pairing loads its own copy.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Hashable, Iterable, TypeVar

from sqlalchemy import TextClause, event, select
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.hot import Hot
from storage.models.system import DirectoryVersion

T = TypeVar("T")

# The tables whose rows the memo may hold; each has the version triggers (migration 0008).
DIRECTORY_TABLES = ("unit", "person", "personrole", "chatidentity", "pairing", "pairingmentor")

_KEY = "bangdai.directory"
_VERSION = Hot(select(DirectoryVersion.__table__.c.value).where(DirectoryVersion.__table__.c.id == 1))  # type: ignore[attr-defined]
_WRITES = re.compile(r"\s*(insert|update|delete|replace|with)\b", re.IGNORECASE)
MAX_ENTRIES = 20_000  # a county's roster is a few thousand people; past this the memo starts over


class DirectoryCache:
    def __init__(self) -> None:
        self.version: int | None = None
        self.entries: dict[Hashable, Any] = {}
        self.hits = 0

    async def begin(self, session: AsyncSession) -> None:
        """Read the directory version in this session's transaction and let the session use the memo."""
        self.use(session, await _VERSION.scalar(session) or 0)

    def use(self, session: AsyncSession, version: int) -> None:
        """Let the session use the memo as of ``version``, the directory version its transaction read."""
        if self.version is None or version > self.version:
            self.entries.clear()
            self.version = version
        session.sync_session.info[_KEY] = _Binding(self, version)

    def keep(self, binding: _Binding) -> None:
        """A session committed: keep what it loaded, if the directory has not changed since it looked."""
        if binding.version != self.version:
            return
        for key, value in binding.loaded.items():
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
            self.entries[key] = value


class _Binding:
    """A session's use of the memo: the version it read and what it loaded, kept if it commits."""

    __slots__ = ("cache", "version", "loaded")

    def __init__(self, cache: DirectoryCache, version: int) -> None:
        self.cache = cache
        self.version = version
        self.loaded: dict[Hashable, Any] = {}


async def memo(session: AsyncSession, key: Hashable, load: Callable[[], Awaitable[T]],
               instances: Callable[[T], Iterable[object]]) -> T:
    """``load()``'s value, from the memo when the session may use it. ``instances(value)`` lists the ORM
    objects in the value, which are detached from the session before the value is kept."""
    sync = session.sync_session
    binding: _Binding | None = sync.info.get(_KEY)
    if binding is None or binding.version != binding.cache.version or sync.new or sync.dirty or sync.deleted:
        return await load()  # no memo here, an older snapshot, or changes a query would flush first
    cache = binding.cache
    if key in cache.entries:
        cache.hits += 1
        return cache.entries[key]
    if key in binding.loaded:
        return binding.loaded[key]
    value = await load()
    if sync.info.get(_KEY) is binding:  # not forgotten by a write during the load
        for obj in instances(value):
            if obj in sync:
                sync.expunge(obj)
        binding.loaded[key] = value
    return value


def _forget(session: Session) -> None:
    """This session wrote to the directory: from now on it reads fresh, and keeps nothing it read."""
    session.info.pop(_KEY, None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    binding = session.info.pop(_KEY, None)
    if binding is not None and binding.loaded:
        binding.cache.keep(binding)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(type(obj), "__tablename__", None)
        if table in DIRECTORY_TABLES:
            _forget(session)
            return


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: Any) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(statement, "table", None)
        if getattr(table, "name", None) in DIRECTORY_TABLES:
            _forget(state.session)
    elif isinstance(statement, TextClause) and _WRITES.match(statement.text):
        _forget(state.session)  # hand-written SQL that writes: assume it touched the directory
