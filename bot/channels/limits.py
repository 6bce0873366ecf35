"""Sliding-window send limits kept by a channel for limits the platform enforces per recipient.

WeCom drops a member's 31st message in a minute without any error, so waiting for the platform to
complain is not an option: the channel counts what it sent and refuses (with a retry time) before
the platform would drop.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from typing import Iterable

from ..clock import Clock


class SlidingWindow:
    """At most ``limit`` sends per ``seconds`` for each key, for every (limit, seconds) rule at once.

    A send at time t counts while ``t > now - seconds``. Time comes from the injected clock.
    """

    def __init__(self, rules: Iterable[tuple[int, float]], clock: Clock) -> None:
        self.rules = [(int(limit), float(seconds)) for limit, seconds in rules if limit > 0]
        self.clock = clock
        self.longest = max((s for _, s in self.rules), default=0.0)
        self._sent: dict[str, deque[dt.datetime]] = defaultdict(deque)

    def _recent(self, key: str, now: dt.datetime) -> deque[dt.datetime]:
        sent = self._sent[key]
        horizon = now - dt.timedelta(seconds=self.longest)
        while sent and sent[0] <= horizon:
            sent.popleft()
        return sent

    def wait(self, key: str, n: int = 1) -> float:
        """Seconds until ``n`` more sends to ``key`` fit every rule; 0.0 when they fit now."""
        now = self.clock.now()
        sent = self._recent(key, now)
        worst = 0.0
        for limit, seconds in self.rules:
            need = min(n, limit)
            window = [t for t in sent if t > now - dt.timedelta(seconds=seconds)]
            excess = len(window) + need - limit
            if excess > 0:
                leaves = window[excess - 1] + dt.timedelta(seconds=seconds)
                worst = max(worst, (leaves - now).total_seconds())
        if not sent:
            self._sent.pop(key, None)
        return worst

    def take(self, key: str, n: int = 1) -> None:
        """Count ``n`` sends to ``key`` now (counted when attempted: a send whose answer was lost may
        still have been delivered)."""
        now = self.clock.now()
        self._recent(key, now).extend([now] * n)

    def record(self, key: str, at: dt.datetime) -> None:
        """Count a send made earlier (e.g. by this service before a restart)."""
        sent = self._sent[key]
        sent.append(at)
        if len(sent) > 1 and sent[-2] > at:
            self._sent[key] = deque(sorted(sent))

    def count(self, key: str, seconds: float) -> int:
        now = self.clock.now()
        return sum(1 for t in self._sent.get(key, ()) if t > now - dt.timedelta(seconds=seconds))
