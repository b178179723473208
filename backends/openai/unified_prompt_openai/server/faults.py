"""Injected faults, so clients can be tested against what real hosts do under load:
a fraction of requests answered 429 (with retry-after-ms and retry-after), 500, or a
connection dropped mid-response. A seeded generator makes a run repeatable."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence


class FaultInjector:
    def __init__(self, rate: float, kinds: Sequence[str], seed: int | None = None) -> None:
        self.rate = rate
        self.kinds = tuple(kinds)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {k: 0 for k in self.kinds}

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        if self.rate <= 0 or not self.kinds:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.injected[kind] += 1
            return kind
