"""How long staff wait for the CLI — run by hand, not a test.

    python bench/cli_bench.py [--runs 10] [--database-url URL] [--hog]

Runs ``bangdai --help``, ``bangdai jobs list`` and ``bangdai outbox`` (against a migrated SQLite file in a
temporary directory, or ``--database-url``) ``--runs`` times each, in turn, and prints per command the
median and best wall time and the median CPU time (user + system of the child). Wall time on a shared
machine depends on the neighbours, so the machine's load average is printed before and after, and CPU
time — what the command itself costs — beside it. ``--hog`` keeps one core busy meanwhile
(``bench/hog.py``), to see the command on a machine that is not idle.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from hog import Hog, LoadSampler, machine_line  # noqa: E402

COMMANDS = (["--help"], ["jobs", "list"], ["outbox"])


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot.cli", *argv], env=env, cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"bangdai {' '.join(argv)} failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database-url")
    parser.add_argument("--hog", action="store_true", help="keep one core busy with an unrelated process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env["BANGDAI_DATABASE__URL"] = args.database_url or f"sqlite+aiosqlite:///{tmp}/cli.db"
        subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        print(machine_line())
        hog = Hog() if args.hog else None
        if hog:
            hog.start()
        sampler = LoadSampler()
        print(f"load before: {sampler.before}" + ("  (hog running)" if hog else ""))
        try:
            rows = []
            for argv in COMMANDS:
                runs = [run_once(argv, env, tmp) for _ in range(args.runs)]
                walls = [w for w, _ in runs]
                cpus = [c for _, c in runs]
                rows.append((" ".join(argv), statistics.median(walls), min(walls), statistics.median(cpus)))
        finally:
            if hog:
                hog.stop()
        print(f"load during: {sampler.during()}")
        print("| command | median wall s | best wall s | median CPU s |")
        print("|---|---:|---:|---:|")
        for name, med, best, cpu in rows:
            print(f"| `bangdai {name}` | {med:.2f} | {best:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
