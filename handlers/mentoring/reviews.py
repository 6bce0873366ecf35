"""季评 in full, as figures: the mentors' reports (季评汇报) of a quarter and the 帮带 whose latest 季评
is 差 and that nobody has re-paired since (待调整). No side effects and no command registration: the
季评 command, the weekly digest, the quarterly summary, the export and the console call these."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import period_name
from bot.dates import beijing_day
from storage.models import PairReview, Person, ReviewReport

from handlers.mentoring.queries import quarter_bounds
from handlers.mentoring.pairs import PairView, load_pairs

POOR = "差"


async def reports_of(session: AsyncSession, quarter: str,
                     pairing_ids: list[int] | None = None) -> dict[int, list[ReviewReport]]:
    """季评汇报 of one quarter per 帮带, each mentor's in the order they first reported."""
    query = select(ReviewReport).where(ReviewReport.quarter == quarter)
    if pairing_ids is not None:
        if not pairing_ids:
            return {}
        query = query.where(col(ReviewReport.pairing_id).in_(pairing_ids))
    out: dict[int, list[ReviewReport]] = defaultdict(list)
    for r in (await session.exec(query.order_by(ReviewReport.id))).all():
        out[r.pairing_id].append(r)
    return dict(out)


def report_quarter(today: dt.date, reviewable: list[str]) -> str:
    """The quarter a report sent today is about when the mentor names none: the last quarter while it
    can still be reviewed (the request goes out when it ends), else this one."""
    return reviewable[-1] if len(reviewable) > 1 else period_name("quarter", today)


@dataclass
class Rematch:
    """A 帮带 whose latest 季评 is 差, still mentored by the mentors it was rated under."""

    view: PairView
    review: PairReview


async def rematch_candidates(session: AsyncSession, today: dt.date,
                             views: list[PairView] | None = None) -> list[Rematch]:
    """帮带 to re-pair (SPEC §3a: 季评 差 → 调整结对): mentored today, latest 季评 差, and no mentor term
    begun since that review (a 结对 after it clears the listing; a later, better 季评 does too)."""
    every = views if views is not None else await load_pairs(session, active_only=False)
    current = {v.id: v for v in every if any(t.covers(today) for t in v.terms)}
    if not current:
        return []
    latest: dict[int, PairReview] = {}
    for r in (await session.exec(
        select(PairReview).where(col(PairReview.pairing_id).in_(list(current))).order_by(PairReview.quarter)
    )).all():
        latest[r.pairing_id] = r
    out = []
    for pid, review in latest.items():
        if review.rating != POOR:
            continue
        _, q_last = quarter_bounds(review.quarter)
        since = min(q_last, beijing_day(review.created_at))
        view = current[pid]
        if any(t.start >= since for t in view.terms):
            continue  # re-paired after the review (terms are dated by day: the same day counts)
        out.append(Rematch(view.as_of(today), review))
    return sorted(out, key=lambda r: (r.review.quarter, r.view.id))


async def mentors_to_ask(session: AsyncSession, quarter: str,
                         views: list[PairView] | None = None) -> dict[int, tuple[Person, list[PairView]]]:
    """Who is asked for a 季评汇报 at the end of ``quarter``: every mentor with a term in it who is still
    on the roster, with the 帮带 they have not reported on yet."""
    first, last = quarter_bounds(quarter)
    every = views if views is not None else await load_pairs(session, active_only=False)
    mentored = [v for v in every if v.mentored_in(first, last)]
    reported = {(r.pairing_id, r.mentor_id) for rs in (await reports_of(session, quarter)).values() for r in rs}
    out: dict[int, tuple[Person, list[PairView]]] = {}
    for v in mentored:
        for t in v.terms:
            if t.overlaps(first, last) and t.mentor.active and (v.id, t.mentor.id) not in reported:
                entry = out.setdefault(t.mentor.id, (t.mentor, []))  # type: ignore[arg-type]
                if all(x.id != v.id for x in entry[1]):
                    entry[1].append(v.last_mentors_in(first, last))
    return out

