"""When to retry a failed request and how long to wait.

The SDK's own retries are switched off (max_retries=0) because it retries a 429 that says
`insufficient_quota` as if it were transient, and it cannot tell the rate limiter to pause
every request at once. Here: 408/409/429/5xx and dropped connections retry with doubling,
jittered backoff; the host's retry-after-ms / retry-after wins when present; a wait longer
than `max_retry_after` or a quota error fails at once.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from unified_prompt_openai.client.errors import is_quota_error
from unified_prompt_openai.options import RetryOptions

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: retry-after-ms, then retry-after (seconds or a date)."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = headers.get("retry-after")
    if value:
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


class RetryPolicy:
    def __init__(self, options: RetryOptions, rng: random.Random | None = None) -> None:
        self.options = options
        self.rng = rng or random.Random()

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based): doubling, capped, 0-25% jitter."""
        base = min(self.options.initial_backoff * (2.0 ** min(attempt, 30)),
                   self.options.max_backoff)
        return base * (1.0 - 0.25 * self.rng.random())

    def decide(self, exc: BaseException, attempt: int) -> Decision:
        import openai

        if attempt >= self.options.max_retries:
            return Decision(False, reason="retries exhausted")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if is_quota_error(exc):
                return Decision(False, reason="insufficient_quota")
            headers = getattr(exc.response, "headers", None)
            should = headers.get("x-should-retry") if headers is not None else None
            if should == "false":
                return Decision(False, reason="x-should-retry: false")
            if status not in RETRY_STATUSES and should != "true":
                return Decision(False, reason=f"HTTP {status}")
            asked = retry_after_seconds(headers)
            if asked is not None:
                if asked > self.options.max_retry_after:
                    return Decision(False, reason=f"host asked to wait {asked:.0f}s")
                return Decision(True, asked, f"HTTP {status}")
            return Decision(True, self.backoff(attempt), f"HTTP {status}")
        if isinstance(exc, openai.APIConnectionError):  # includes timeouts
            return Decision(True, self.backoff(attempt), type(exc).__name__)
        return Decision(False, reason=type(exc).__name__)


def status_of(exc: Any) -> str:
    """A short label for accounting: '429', '500', 'connection', 'timeout'."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    code = getattr(exc, "status_code", None)
    return str(code) if code is not None else type(exc).__name__
