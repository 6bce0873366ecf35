"""流程 (零跑腿): procedure guides for cadres, one TOML file per procedure under ``[programme] guides_dir``.

The files are read at every request, so the department edits a guide and the next 流程 shows it. A
file that cannot be read is skipped (and logged) rather than taking the others down with it.
"""

from __future__ import annotations

import difflib
import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config
from bot.router import Answer, Refusal, Router
from bot.text import Args, fold

log = logging.getLogger(__name__)
router = Router()


@dataclass(frozen=True)
class Guide:
    """干部工作流程 — one procedure: what to do, what to bring, who handles it, how long it takes."""

    key: str  # file name without .toml
    title: str
    aliases: tuple[str, ...]
    steps: tuple[str, ...]
    materials: tuple[str, ...]
    handler: str  # who handles it (科室, 地点, 电话 as the department chooses)
    time_limit: str
    basis: str  # the rules it follows
    notes: tuple[str, ...]
    example: bool  # shipped example text, to be replaced with the county's own rules
    prereview: bool = False  # 钉钉预审: can be submitted as a case with 预审 <名称>
    review_days: int = 0  # working days staff have for the decision (预审时限)
    departments: tuple[str, ...] = ()  # 联办单: the departments each case is copied to (一单抄告)


def _strings(data: dict, key: str, path: Path, required: bool) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{path.name}: {key} 应为文字列表")
    if required and not value:
        raise ValueError(f"{path.name}: {key} 不能为空")
    return tuple(v.strip() for v in value)


def _string(data: dict, key: str, path: Path, required: bool) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or required and not value.strip():
        raise ValueError(f"{path.name}: {key} 应为非空文字")
    return value.strip()


def load_guide(path: Path) -> Guide:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
    prereview = data.get("prereview", False)
    if not isinstance(prereview, bool):
        raise ValueError(f"{path.name}: prereview 应为 true 或 false")
    if prereview and not data.get("materials"):
        raise ValueError(f"{path.name}: 可预审的流程要写 materials（材料清单）")
    return Guide(
        key=path.stem,
        title=_string(data, "title", path, True),
        aliases=_strings(data, "aliases", path, False),
        steps=_strings(data, "steps", path, True),
        materials=_strings(data, "materials", path, False),
        handler=_string(data, "handler", path, True),
        time_limit=_string(data, "time_limit", path, False),
        basis=_string(data, "basis", path, False),
        notes=_strings(data, "notes", path, False),
        example=bool(data.get("example", False)),
        prereview=prereview,
        review_days=_review_days(data, path, prereview),
        departments=_strings(data, "departments", path, False),
    )


_WORKDAYS = re.compile(r"([0-9]+)\s*个?\s*工作日")


def _review_days(data: dict, path: Path, prereview: bool) -> int:
    """``review_days``, or the first "N 个工作日" of ``time_limit``; a pre-reviewable guide needs one."""
    value = data.get("review_days")
    if value is None:
        m = _WORKDAYS.search(str(data.get("time_limit", "")))
        value = int(m.group(1)) if m else 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 365:
        raise ValueError(f"{path.name}: review_days 应为 0–365 的整数")
    if prereview and not value:
        raise ValueError(f"{path.name}: 可预审的流程要写 review_days（预审时限，工作日）")
    return value


def load_guides(directory: str | Path) -> list[Guide]:
    """Every readable guide in ``directory``, by file name (number the files to order them)."""
    guides = []
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            guides.append(load_guide(path))
        except ValueError:
            log.exception("guide file skipped")
    return guides


_NOISE = re.compile(r"[\s“”\"'（）()《》〈〉【】\[\]·,，。.、:：;；!！?？]+")


def norm(text: str) -> str:
    return _NOISE.sub("", fold(text)).lower()


def find_guides(guides: list[Guide], query: str) -> tuple[list[Guide], list[Guide]]:
    """(matches, suggestions). An exact title or alias is one match; otherwise every guide whose title or
    alias contains the query (or is contained in it); with no match, the closest titles by difflib."""
    q = norm(query)
    names = {g.key: [norm(n) for n in (g.title, *g.aliases)] for g in guides}
    exact = [g for g in guides if q in names[g.key]]
    if exact:
        return exact[:1], []
    partial = [g for g in guides if any(q in n or (len(n) >= 2 and n in q) for n in names[g.key])]
    if partial:
        return partial, []
    by_name = {n: g for g in guides for n in names[g.key]}
    close = difflib.get_close_matches(q, list(by_name), n=6, cutoff=0.3)
    suggestions: list[Guide] = []
    for n in close:
        if by_name[n] not in suggestions:
            suggestions.append(by_name[n])
    return [], suggestions[:3]


@router.command(
    "流程", "guide", order=30,
    summary="干部工作流程（零跑腿）：办什么、带什么、找谁、多久",
    usage="流程 [名称或序号]", examples=("流程 公务员登记", "流程", "流程 4"),
)
async def guide(args: Args, config: Config) -> Answer:
    guides = load_guides(config.programme.guides_dir)
    if not guides:
        raise Refusal("sanling/guide_none")
    query = args.rest()
    if not query or not norm(query):
        return Answer.of("sanling/guide_list", guides=guides)
    number = fold(query).strip().lstrip("#第").rstrip("项")
    if number.isdecimal():  # the list is numbered: 流程 4
        if 1 <= int(number) <= len(guides):
            return Answer.of("sanling/guide_one", g=guides[int(number) - 1])
        raise Refusal("sanling/guide_number", number=int(number), guides=guides)
    matches, suggestions = find_guides(guides, query)
    if len(matches) == 1:
        return Answer.of("sanling/guide_one", g=matches[0])
    if matches:
        return Answer.of("sanling/guide_choose", query=query, guides=matches)
    return Answer.of("sanling/guide_unknown", query=query[:30], suggestions=suggestions, guides=guides)
