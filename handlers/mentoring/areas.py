"""The five areas of 帮带 (五带: 思想、群众、党建、财富、治理 — SPEC §3a) as figures: how often each 帮带
touched each area in a period, through tagged contacts and plan items, and which 帮带 left an area
untouched. No side effects: 本周, the quarterly summary, the export and the console call these."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import day_start
from storage.models import AREAS, ContactLog, PlanItem

from handlers.mentoring.pairs import PairView

# "#党建" or the full name "#带基层党建筑堡垒"; "#12" (a ticket or plan number) is not a tag.
_TAG = re.compile(r"[#＃]([^\s#＃,，。;；:：、0-9][^\s#＃,，。;；:：、]*)")
_FULL = {full: tag for tag, full in AREAS.items()}


class AreaError(ValueError):
    """A tag that is not one of the five areas, or more than one tag."""


def extract_area(text: str) -> tuple[str, str]:
    """(area tag or "", the text without the tag). Raises AreaError for an unknown or a second tag."""
    found = _TAG.findall(text)
    if not found:
        return "", text
    areas = []
    for word in found:
        tag = word if word in AREAS else _FULL.get(word) or _FULL.get("带" + word)
        if tag is None:
            raise AreaError(word)
        areas.append(tag)
    if len(set(areas)) > 1:
        raise AreaError("、".join(found))
    return areas[0], re.sub(r"\s{2,}", " ", _TAG.sub("", text)).strip()


@dataclass
class AreaCoverage:
    """Per 帮带, how many tagged contacts and plan items touched each area in ``first``..``last``."""

    first: dt.date
    last: dt.date
    views: list[PairView]
    counts: dict[int, dict[str, int]]

    def of(self, pairing_id: int) -> dict[str, int]:
        return {tag: self.counts.get(pairing_id, {}).get(tag, 0) for tag in AREAS}

    def missing(self, pairing_id: int) -> list[str]:
        return [tag for tag, n in self.of(pairing_id).items() if n == 0]

    @property
    def pairs_per_area(self) -> dict[str, int]:
        """How many 帮带 touched each area at least once."""
        return {tag: sum(1 for v in self.views if self.counts.get(v.id, {}).get(tag)) for tag in AREAS}

    @property
    def untouched(self) -> list[tuple[PairView, list[str]]]:
        """帮带 with an area nobody touched in the period (flagged at the end of a quarter)."""
        return [(v, self.missing(v.id)) for v in self.views if self.missing(v.id)]


async def area_coverage(session: AsyncSession, views: list[PairView], first: dt.date, last: dt.date) -> AreaCoverage:
    """Coverage of the 帮带 in ``views`` mentored in the period: a tagged contact counts on its day, a
    tagged plan item when it was added or completed in the period."""
    views = [v for v in views if v.mentored_in(first, last)]
    ids = [v.id for v in views]
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if ids:
        for pid, area in (await session.exec(
            select(ContactLog.pairing_id, ContactLog.area)
            .where(col(ContactLog.pairing_id).in_(ids), ContactLog.area != "",
                   ContactLog.day >= first, ContactLog.day <= last))).all():
            counts[pid][area] += 1
        lo, hi = day_start(first), day_start(last + dt.timedelta(days=1))
        for pid, area, created, done in (await session.exec(
            select(PlanItem.pairing_id, PlanItem.area, PlanItem.created_at, PlanItem.done_at)
            .where(col(PlanItem.pairing_id).in_(ids), PlanItem.area != ""))).all():
            if lo <= created < hi or (done is not None and lo <= done < hi):
                counts[pid][area] += 1
    return AreaCoverage(first, last, views, {k: dict(v) for k, v in counts.items()})
