"""The README's quick start works as written: a virtual environment (a Debian system Python refuses a
bare pip install), the address the service listens on, and chat lines the demo understands."""

from __future__ import annotations

import re

from bot.config import Config, REPO_ROOT
from bot.app import load_demo

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
QUICK = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```sh\n(.*?)```", QUICK, re.S)


def test_the_quick_start_makes_the_venv_and_says_where_the_service_listens():
    # One command per line or several chained with && — each step in the order it runs.
    commands = [step.strip() for block in BLOCKS for line in block.splitlines() if line.strip()
                for step in line.split("#")[0].split("&&") if step.strip()]
    venv = next(i for i, c in enumerate(commands) if re.fullmatch(r"python3 -m venv \.venv", c))
    pips = [i for i, c in enumerate(commands) if re.search(r"\bpip3? install", c)]
    assert pips and all(i > venv and commands[i].startswith(".venv/bin/pip ") for i in pips), commands
    assert all(c.startswith(".venv/bin/bangdai") for c in commands if "bangdai " in c), commands
    defaults = Config().server
    assert f"http://{defaults.host}:{defaults.port}" in QUICK
    assert "python3-venv" in QUICK  # Debian ships venv as its own package


async def test_the_quick_start_chat_lines_work_for_the_demo(bot, services):
    assert await load_demo(services)
    lines = [line[2:].strip() for block in BLOCKS for line in block.splitlines() if line.startswith("> ")]
    assert lines[0].startswith("绑定") and any(line.startswith("记录") for line in lines)
    user = re.search(r"chat --as (\w+)", QUICK).group(1)
    templates = [key for line in lines for key in (await bot.ask(user, line)).keys]
    assert not [t for t in templates if t.startswith("errors/") or t in ("mentoring/which_pair",)], templates
    assert "mentoring/logged" in templates
