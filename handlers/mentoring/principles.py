"""原则: the 十帮十不帮 list, read from an operator-editable TOML file on every request."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

from bot.config import Config
from bot.router import Answer, Refusal, Router

log = logging.getLogger(__name__)
router = Router()


def load_principles(path: str | Path) -> dict:
    """``{"title", "example", "help": [...], "not_help": [...]}``; raises ValueError when the file is unusable."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    for key in ("help", "not_help"):
        items = data.get(key)
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
            raise ValueError(f"{path}: {key} must be a non-empty list of texts")
    return {
        "title": str(data.get("title", "导师制“十帮十不帮”工作原则")),
        "example": bool(data.get("example", False)),
        "help": data["help"],
        "not_help": data["not_help"],
    }


@router.command("原则", "principles", order=40, summary="导师制“十帮十不帮”工作原则", usage="原则", examples=("原则",))
async def principles(config: Config) -> Answer:
    try:
        data = load_principles(config.programme.principles_file)
    except ValueError:
        log.exception("principles file unusable")
        raise Refusal("mentoring/principles_broken") from None
    return Answer.of("mentoring/principles", **data)
