"""Bounded concurrency that slows down before the host says no.

A semaphore caps requests in flight. The host's x-ratelimit-remaining-{requests,tokens}
and x-ratelimit-reset-* headers pause new requests until the window resets when the budget
left would not cover the requests already in flight; a 429's retry-after pauses everyone,
not only the request that got it (no retry storms). Optional client-side pacing caps
requests per minute for hosts that send no headers.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """'6m0s', '1s', '20ms', '1h2m3.5s' or plain seconds -> seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class RateLimiter:
    """Created inside the event loop that uses it (asyncio primitives bind to a loop)."""

    def __init__(self, concurrency: int, requests_per_minute: int | None = None) -> None:
        self._sem = asyncio.Semaphore(concurrency)
        self._interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next_start = 0.0
        self._resume_at = 0.0
        self.in_flight = 0

    def pause(self, seconds: float) -> None:
        """Hold every new request for `seconds` (a 429, or an exhausted window)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def acquire(self) -> None:
        await self._sem.acquire()
        try:
            while True:
                now = time.monotonic()
                wait = max(self._resume_at - now, self._next_start - now)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._interval:
                self._next_start = max(time.monotonic(), self._next_start) + self._interval
        except BaseException:
            self._sem.release()
            raise
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._sem.release()

    def observe(self, headers: Mapping[str, str] | None, next_tokens: int = 0) -> None:
        """Read a response's rate-limit headers; pause when the window is nearly spent."""
        if not headers:
            return
        remaining = _int(headers.get("x-ratelimit-remaining-requests"))
        if remaining is not None and remaining < max(1, self.in_flight):
            self.pause(parse_reset(headers.get("x-ratelimit-reset-requests")) or 1.0)
        tokens = _int(headers.get("x-ratelimit-remaining-tokens"))
        if tokens is not None and tokens < max(1, next_tokens * max(1, self.in_flight)):
            self.pause(parse_reset(headers.get("x-ratelimit-reset-tokens")) or 1.0)
