"""What the benchmarks need to tell the truth on a shared machine: a neighbour and a load gauge.

- :class:`Hog` keeps one core busy with an unrelated process (a Python loop doing arithmetic), so a
  benchmark can show what a busy neighbour does to latency — the usual situation on a county's VM.
- :class:`LoadSampler` records the machine's load average before a run and samples it (and the share
  of all cores busy, from ``/proc/stat``) once a second during it, for the report.
- :func:`machine_line` names the machine the figures came from.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time

HOG_CODE = "x = 0\nwhile True:\n    x = (x * 31 + 7) % 1000003\n"


class Hog:
    """One process spinning on one core, started and stopped by the benchmark."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", HOG_CODE])
        time.sleep(1.0)  # let the scheduler see it

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> "Hog":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores together."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class LoadSampler:
    """Load average before; load averages and the busy share of the machine's cores while running."""

    def __init__(self) -> None:
        self.before = " ".join(f"{v:.2f}" for v in os.getloadavg())
        self.samples: list[float] = []
        self._cpu0 = _cpu_times()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def during(self) -> str:
        """Stop sampling; a summary such as ``load 1.9–3.4 (mean 2.6), cores busy 1.7 of 2``."""
        self._stop.set()
        self._thread.join()
        busy0, total0 = self._cpu0
        busy1, total1 = _cpu_times()
        cores = os.cpu_count() or 1
        share = (busy1 - busy0) / (total1 - total0) * cores if total1 > total0 else float("nan")
        s = self.samples or [os.getloadavg()[0]]
        return f"load {min(s):.2f}–{max(s):.2f} (mean {sum(s) / len(s):.2f}), cores busy {share:.1f} of {cores}"


def machine_line() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{stamp} · {os.cpu_count()} CPUs ({model}) · Python {platform.python_version()} · {platform.system()} {platform.release()}"
