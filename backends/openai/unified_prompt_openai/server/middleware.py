"""The traffic layer, as raw ASGI around the app: it records every exchange, adds the
simulated network latency, then applies quota, rate limits and injected faults before the
app sees the request (what a client meets on a real host, in the same order)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from unified_prompt_openai.server.auth import check_bearer
from unified_prompt_openai.server.errors import APIError, error_body
from unified_prompt_openai.server.faults import FaultInjector
from unified_prompt_openai.server.limits import Quota, RequestWindow

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]],
                   Awaitable[None]]
BILLABLE = ("/v1/chat/completions", "/v1/completions")


class TrafficMiddleware:
    def __init__(self, app: ASGIApp, *, api_key: str | None, latency_ms: float,
                 faults: FaultInjector, window: RequestWindow, quota: Quota,
                 retry_after_ms: int, log_size: int = 100_000) -> None:
        self.app = app
        self.api_key = api_key
        self.latency = latency_ms / 1000.0
        self.faults = faults
        self.window = window
        self.quota = quota
        self.retry_after_ms = retry_after_ms
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        entry: dict[str, Any] = {"method": scope["method"], "path": scope["path"],
                                 "time": time.time(), "status": None, "fault": None}
        self.log.append(entry)
        if self.latency:
            await asyncio.sleep(self.latency)
        try:  # auth here rather than as a FastAPI dependency: one check, no DI per request
            check_bearer(_header(scope, b"authorization"), self.api_key)
        except APIError as exc:
            entry["status"] = exc.status
            await _send_error(send, exc.status, exc.body(), {})
            return
        allowed, headers, wait = self.window.admit()
        if not allowed:
            entry.update(status=429, fault="rate_limit")
            await _send_error(send, 429, error_body(
                "Rate limit reached for requests per minute; retry after the reset.",
                type="requests", code="rate_limit_exceeded"),
                {**headers, "retry-after-ms": str(int(wait * 1000)),
                 "retry-after": str(max(1, round(wait)))})
            return
        if scope["path"] in BILLABLE and not self.quota.spend():
            entry.update(status=429, fault="quota")
            await _send_error(send, 429, error_body(
                "You exceeded your current quota, please check your plan and billing details.",
                type="insufficient_quota", code="insufficient_quota"), headers)
            return
        fault = self.faults.draw()
        entry["fault"] = fault
        if fault == "429":
            entry["status"] = 429
            await _send_error(send, 429, error_body(
                "Rate limit reached (injected fault).", type="requests",
                code="rate_limit_exceeded"),
                {**headers, "retry-after-ms": str(self.retry_after_ms),
                 "retry-after": str(max(1, round(self.retry_after_ms / 1000)))})
            return
        if fault == "500":
            entry["status"] = 500
            await _send_error(send, 500, error_body(
                "The server had an error while processing your request (injected fault).",
                type="server_error", code=None), headers)
            return
        if fault == "drop":
            # Headers promise a body that never comes; returning without it makes the ASGI
            # server close the connection: the client sees a dropped connection.
            entry["status"] = 0
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"1000")]})
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                if headers:
                    message = {**message, "headers": [
                        *message.get("headers", []),
                        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_error(send: Any, status: int, body: dict[str, Any],
                      headers: dict[str, str]) -> None:
    data = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            *((k.encode("latin-1"), v.encode("latin-1"))
                              for k, v in headers.items())]})
    await send({"type": "http.response.body", "body": data})
