"""Chat commands and domain logic, one package per programme (as ``templates/``, ``storage/models/`` and
``scheduler/jobs/`` are): ``mentoring`` (导师帮带), ``sanling`` (三零), ``changqing`` (常青藤), ``sheets``
(the department's spreadsheets in and out), and ``people``, ``stats``, ``console`` for everyone.

Importing a module registers nothing: query and operation modules (``*/queries.py``, ``pairs``,
``pairing``, ``case_ops``, …) can be called by jobs, the CLI and the console without the chat. The
commands are gathered only by :func:`build_router`.
"""

from __future__ import annotations

from bot.router import Router


def build_router() -> Router:
    """Every chat command, in the order 帮助 lists them within a role."""
    from handlers import console, people, stats
    from handlers.changqing import broadcast, projects, records, signup, squads
    from handlers.mentoring import classes, contacts, pool, principles, staff, tags
    from handlers.sanling import cases, guides, joint, mailbox, reports, visits

    router = Router()
    router.include(people.router, contacts.router, tags.router, staff.router, principles.router, stats.router)
    router.include(mailbox.router, visits.router, guides.router)
    router.include(cases.router, joint.router, reports.router)
    router.include(signup.router, broadcast.router, squads.router, records.router, projects.router)
    router.include(pool.router, classes.router)
    router.include(console.router)
    return router
