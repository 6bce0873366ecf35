"""No module imports upward. The layers are docs/ARCHITECTURE.md's, top to bottom:

1. wiring — ``bot/app.py`` (which also loads ``serve --demo``'s sample programme) and ``bot/cli.py`` may
   import anything;
2. ``scheduler/`` (jobs, the outbox and its dispatchers, which hand rows to the channels);
3. the front ends — ``bot/channels/`` and ``bot/console/`` (its pages, which call the domain query modules);
4. ``bot/gateway.py``;
5. ``handlers/`` (commands, and the domain query modules jobs and the console call);
6. the core every layer above uses — the rest of ``bot/`` (router, render, notify, audit, identity,
   calendar, clock, config, the inbound/outbound contracts, services) and ``bot/console/auth.py`` (sign-in
   links and sessions, shared by the 控制台 command and the pages);
7. ``storage/``, which imports nothing above it.

A module may import its own layer or any below. Every ``import`` counts, those inside functions too:
a lazy import upward is still the lower layer knowing the upper one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "scheduler", "storage")
WIRING = {"bot.app", "bot.cli"}


def layer(module: str) -> int:
    """The layer of a dotted module name of ours (see the module docstring)."""
    if module in WIRING:
        return 1
    if module == "bot.console.auth":
        return 6
    if module.startswith("scheduler"):
        return 2
    if module.startswith(("bot.channels", "bot.console")):
        return 3
    if module == "bot.gateway":
        return 4
    if module.startswith("handlers"):
        return 5
    if module.startswith("bot"):
        return 6
    if module.startswith("storage"):
        return 7
    raise ValueError(module)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:  # alembic scripts: storage's own, run by storage/migrate.py
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of one of our packages in ``path``, relative ones resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # ``from bot import identity`` imports the module bot.identity, not the package
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in ALL else base for alias in node.names]
        else:
            continue
        out += [(node.lineno, name) for name in sorted(set(names)) if name.split(".")[0] in PACKAGES]
    return out


ALL = modules()


def test_the_layer_map_covers_every_module() -> None:
    assert {"bot.app", "bot.gateway", "bot.channels.wecom", "handlers.sanling.mailbox", "scheduler.outbox",
            "storage.db"} <= set(ALL)
    for name in ALL:
        layer(name)  # raises for a module the map does not place


@pytest.mark.parametrize("module", sorted(ALL))
def test_no_module_imports_upward(module: str) -> None:
    own = layer(module)
    upward = [f"line {line}: {name} (layer {layer(name)})" for line, name in imported(module, ALL[module])
              if layer(name) < own]
    assert not upward, f"{module} (layer {own}) imports upward: {upward}"


def test_the_walk_sees_relative_lazy_and_package_imports() -> None:
    """The checker itself: relative imports resolve, imports inside functions count."""
    found = {name for _, name in imported("bot.config", ALL["bot.config"])}
    assert "bot.calendar" in found  # ``from .calendar import WorkCalendar`` inside _check_calendar
    found = {name for _, name in imported("handlers.changqing.common", ALL["handlers.changqing.common"])}
    assert "bot.identity" in found  # ``from bot import identity``
    assert layer("scheduler.outbox") < layer("bot.channels.wecom") == layer("bot.console.web") < layer("bot.gateway")
    assert layer("bot.gateway") < layer("handlers.mentoring.queries") < layer("bot.router") < layer("storage.db")
