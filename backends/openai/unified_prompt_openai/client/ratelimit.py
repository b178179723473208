"""Bounded concurrency that slows down before the host says no.

A semaphore caps requests in flight. x-ratelimit-remaining-requests on the newest answer,
less the requests started since, is the room left in the host's window: at none, new
requests wait for x-ratelimit-reset-requests, then one goes and its answer tells how many
may follow. x-ratelimit-remaining-tokens pauses new requests until its reset when the
tokens left would not cover the requests in flight; a 429's retry-after pauses everyone,
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
        # Requests the host will still admit in its window, from the newest response's
        # x-ratelimit-remaining-requests less the requests started after that one (None:
        # unknown, e.g. a host without headers). At zero, new requests wait for the reset;
        # a sliding window then frees one slot, and that request's answer tells the rest.
        self._started = 0
        self._room: int | None = None
        self._room_ticket = 0
        self._room_reset_at = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every new request for `seconds` (a 429, or an exhausted window)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def acquire(self) -> int:
        """Wait for a slot; returns the request's ticket (its start order) for `observe`."""
        await self._sem.acquire()
        try:
            while True:
                now = time.monotonic()
                wait = max(self._resume_at - now, self._next_start - now)
                if self._room is not None and self._room <= 0:
                    if now >= self._room_reset_at:
                        # the window's oldest request has left it: one slot, whose answer
                        # tells the rest (or, with none, another slot in a second)
                        self._room = 1
                        self._room_reset_at = now + 1.0
                    else:
                        wait = max(wait, self._room_reset_at - now)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._started += 1
            if self._room is not None:
                self._room -= 1
            if self._interval:
                self._next_start = max(time.monotonic(), self._next_start) + self._interval
        except BaseException:
            self._sem.release()
            raise
        self.in_flight += 1
        return self._started

    def release(self) -> None:
        self.in_flight -= 1
        self._sem.release()

    def observe(self, headers: Mapping[str, str] | None, ticket: int,
                next_tokens: int = 0) -> None:
        """Read a response's rate-limit headers; hold new requests when the window is spent.
        `ticket` (from acquire) orders responses: an older one, arriving late, is ignored."""
        if not headers:
            return
        remaining = _int(headers.get("x-ratelimit-remaining-requests"))
        reset = parse_reset(headers.get("x-ratelimit-reset-requests")) or 1.0
        if remaining is not None and ticket >= self._room_ticket:
            self._room_ticket = ticket
            self._room = remaining - (self._started - ticket)
            self._room_reset_at = time.monotonic() + reset
        tokens = _int(headers.get("x-ratelimit-remaining-tokens"))
        if tokens is not None and tokens < max(1, next_tokens * max(1, self.in_flight)):
            self.pause(parse_reset(headers.get("x-ratelimit-reset-tokens")) or 1.0)
