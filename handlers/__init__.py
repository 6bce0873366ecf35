"""One module per domain; each exports a Router of its commands."""

from bot.router import Router

from . import mentoring, mentoring_staff, people, principles, stats


def build_router() -> Router:
    router = Router()
    router.include(people.router, mentoring.router, mentoring_staff.router, principles.router, stats.router)
    return router
