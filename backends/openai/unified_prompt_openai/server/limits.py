"""Rate limits and quota the way hosted APIs enforce them, so a client's pacing can be
tested: x-ratelimit-* headers on every response, 429 rate_limit_exceeded (with a
retry-after) over the per-minute limit, 429 insufficient_quota once the quota is spent."""

from __future__ import annotations

import threading
import time
from collections import deque


class RequestWindow:
    """Requests in the last window (60 s unless tests shorten it), against a limit."""

    def __init__(self, per_minute: int | None, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> tuple[bool, dict[str, str], float]:
        """(allowed, headers, seconds until a slot frees)."""
        if self.per_minute is None:
            return True, {}, 0.0
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] >= self.window:
                self._times.popleft()
            wait = self.window - (now - self._times[0]) if self._times else 0.0
            allowed = len(self._times) < self.per_minute
            if allowed:
                self._times.append(now)
            remaining = self.per_minute - len(self._times)
        headers = {"x-ratelimit-limit-requests": str(self.per_minute),
                   "x-ratelimit-remaining-requests": str(max(0, remaining)),
                   "x-ratelimit-reset-requests": f"{max(wait, 0.0):.3f}s"}
        return allowed, headers, max(wait, 0.001)


class Quota:
    """An account that runs out after `requests` billable requests."""

    def __init__(self, requests: int | None) -> None:
        self.left = requests
        self._lock = threading.Lock()

    def spend(self) -> bool:
        if self.left is None:
            return True
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True
