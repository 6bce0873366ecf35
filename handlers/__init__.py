"""One module per domain; each exports a Router of its commands."""

from bot.router import Router

from . import changqing_export  # noqa: F401  (adds the 常青藤 sheets to the export)

from . import (area_tags, changqing, classes, console, guides, mailbox, mentor_pool, mentoring, mentoring_staff, people,  # noqa: F401
               principles,
               sanling_case_figures, sanling_cases, sanling_joint, sanling_reports, stats, visits)


def build_router() -> Router:
    router = Router()
    router.include(people.router, mentoring.router, area_tags.router, mentoring_staff.router, principles.router, stats.router)
    router.include(mailbox.router, visits.router, guides.router)
    router.include(sanling_cases.router, sanling_joint.router, sanling_reports.router)
    router.include(changqing.router)
    router.include(mentor_pool.router, classes.router)
    router.include(console.router)
    return router
