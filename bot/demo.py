"""``serve --demo``: a fictional programme to try every command on — 导师帮带 pairs (one a 导师团),
三联 links and a visit, a 常青藤 squad with a sign-up, a commitment and a 实绩, a 三联信箱 letter.

Loaded only into an empty database (no people yet), so a restart keeps what was changed since. The
activity is sent as chat messages through the gateway, as the people themselves would, so the demo
is built by the same code the chat runs and cannot drift from it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from storage.models import Person

from .config import REPO_ROOT
from .inbound import InboundMessage

log = logging.getLogger(__name__)
DEMO_DIR = REPO_ROOT / "data" / "demo"


async def load_demo(services: Any, directory: Path = DEMO_DIR) -> bool:
    """Load the demo unless the database already has people; True when it was loaded."""
    from handlers.sheets.squads import import_squads
    from handlers.sheets.imports import import_pairs
    from handlers.sheets.roster import import_roster
    from handlers.sheets.liaisons import import_liaisons
    from bot.identity import find_person

    from .gateway import Gateway

    async with services.db.transaction() as session:
        people = (await session.exec(select(func.count()).select_from(Person))).one()
    if people:
        log.info("demo not loaded: the database already has %d people (it keeps what was changed)", people)
        return False
    now = services.clock.now()
    steps = ((import_roster, "roster.csv"), (import_pairs, "pairs.csv"), (import_liaisons, "liaisons.csv"),
             (import_squads, "squads.csv"))
    for fn, name in steps:
        report = await fn(services.db, directory / name, now=now, actor="demo")
        if not report.ok:
            raise RuntimeError(f"demo {name}: " + "; ".join(report.lines()))
        log.info("demo %s: %s", name, report.lines()[0])
    gateway = Gateway(services)
    lines = (directory / "activity.txt").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        who, _, text = (part.strip() for part in line.partition("|"))
        async with services.db.transaction() as session:
            person = await find_person(session, who)
        msg = InboundMessage(channel="demo", sender_id=f"person:{person.id}", conversation_id="demo", text=text,
                             msg_id=f"demo-{number}", received_at=now)
        await gateway.handle(msg, as_person=person.id)
    return True
