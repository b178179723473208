"""Every request the backend sends goes through here: AsyncOpenAI with its own retries off,
our retry policy, the rate limiter, the response cache and the accounting.

The seam is one method, `send(what, call)`, where `call(client)` makes one SDK call: the
rest of the client never sees retries, pauses or error translation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from unified_prompt.errors import ModelNotFoundError, QuotaExceededError
from unified_prompt_openai.client.accounting import Accounting
from unified_prompt_openai.client.cache import ResponseCache, cacheable, request_key
from unified_prompt_openai.client.errors import translate
from unified_prompt_openai.client.hosts import Connection
from unified_prompt_openai.client.loop import LoopThread
from unified_prompt_openai.client.ratelimit import RateLimiter
from unified_prompt_openai.client.retry import RetryPolicy, status_of
from unified_prompt_openai.options import OpenAIOptions

T = TypeVar("T")


def _raw_type() -> Any:
    """The SDK's HTTP response class (httpx2): asking for it returns the response as is."""
    import httpx2

    return httpx2.Response


ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}


def _azure_not_found(err: ModelNotFoundError) -> ModelNotFoundError:
    """Azure answers 404 for a deployment it does not have: say how models map to them."""
    out = ModelNotFoundError(f"{err}. On Azure a request names a deployment: map the spec's "
                             "model to its deployment with backend.options.openai.azure."
                             "deployments")
    out.status = getattr(err, "status", 404)  # type: ignore[attr-defined]
    out.detail = getattr(err, "detail", "")  # type: ignore[attr-defined]
    return out


class Transport:
    def __init__(self, options: OpenAIOptions, accounting: Accounting) -> None:
        self.options = options
        self.accounting = accounting
        self.connection = Connection.from_options(options)
        self.base_url = self.connection.base_url
        self.host = self.connection.host
        self.secrets = options.secrets()
        self.policy = RetryPolicy(options.retry)
        self.cache = ResponseCache(options.resolved_cache_dir()) if options.cache else None
        self._loop: LoopThread | None = None
        self._client: Any = None
        self._limiter: RateLimiter | None = None
        self.fatal: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def loop(self) -> LoopThread:
        if self._loop is None:
            self._loop = LoopThread()
        return self._loop

    def run(self, coro: Any) -> Any:
        return self.loop.run(coro)

    async def client(self) -> Any:
        """The SDK's async client (AsyncOpenAI, or AsyncAzureOpenAI for Azure's classic
        API), made on first use inside the loop (imports the SDK)."""
        if self._client is None:
            self._client = self.connection.make_client(timeout=self.options.timeout)
            self._limiter = RateLimiter(self.options.concurrency,
                                        self.options.requests_per_minute)
        return self._client

    @property
    def limiter(self) -> RateLimiter:
        assert self._limiter is not None, "client() first"
        return self._limiter

    def close(self) -> None:
        if self._loop is not None:
            if self._client is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    self._loop.run(self._client.close())
            self._loop.close()
            self._loop = None
            self._client = None
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    # -- the one seam ------------------------------------------------------------------
    async def send(self, what: str, call: Callable[[Any], Awaitable[T]], *,
                   next_tokens: int = 0, retry_connection: bool = True) -> T:
        """`call(client)` with retries, pauses and error translation; returns its result.

        `retry_connection=False` is for requests that are not safe to repeat blindly after
        a dropped connection (creating a job): the caller checks and decides.
        """
        import openai

        client = await self.client()
        attempt = 0
        while True:
            ticket = await self.limiter.acquire()
            if self.fatal is not None:  # out of quota / bad key: send nothing more
                self.limiter.release()
                raise self.fatal
            try:
                result = await call(client)
            except (openai.APIError, OSError) as exc:
                self.limiter.release()
                decision = self.policy.decide(exc, attempt)
                if isinstance(exc, openai.APIConnectionError) and not retry_connection:
                    decision = type(decision)(False, reason="not safe to repeat")
                self.accounting.record_error(status_of(exc), retried=decision.retry)
                if isinstance(exc, openai.APIStatusError):
                    self.limiter.observe(exc.response.headers, ticket)
                    if exc.status_code == 429 and decision.retry:
                        self.limiter.pause(decision.delay)
                if not decision.retry:
                    err = translate(exc, host=self.host, what=what, secrets=self.secrets,
                                    key_variable=self.connection.key_variable)
                    if isinstance(err, QuotaExceededError):
                        self.fatal = err
                    if isinstance(err, ModelNotFoundError) and self.connection.azure:
                        err = _azure_not_found(err)
                    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
                        raise err from None  # the SDK body may echo a (masked) key
                    raise err from exc
                await asyncio.sleep(decision.delay)
                attempt += 1
                continue
            except BaseException:
                self.limiter.release()
                raise
            self.limiter.release()
            headers = getattr(result, "headers", None)
            if headers is not None:
                self.limiter.observe(headers, ticket, next_tokens)
            return result

    # -- completions with cache and accounting ----------------------------------------
    def cache_key(self, api: str, body: dict[str, Any]) -> str | None:
        """The key a deterministic request is cached under; None when it is not cached."""
        if self.cache is None or not cacheable(body):
            return None
        return request_key(self.connection.cache_scope, ENDPOINTS[api],
                           self.connection.wire_body(body))

    def cached(self, key: str | None) -> dict[str, Any] | None:
        """The cached response under `key`, if any (not counted: see `complete`)."""
        return self.cache.get(key) if key is not None and self.cache is not None else None

    def is_cached(self, key: str | None) -> bool:
        """Whether a response is cached under `key` (its body is read only when used)."""
        return key is not None and self.cache is not None and self.cache.contains(key)

    async def complete(self, api: str, body: dict[str, Any], *, est_prompt: int,
                       est_completion: int, what: str) -> dict[str, Any]:
        """One chat or legacy completion as a JSON dict (read leniently by callers)."""
        key = self.cache_key(api, body)
        hit = self.cached(key)
        if hit is not None:
            self.accounting.record_cached()
            return hit
        model = str(body.get("model"))  # accounted and priced as the spec names it
        wire = self.connection.wire_body(body)  # sent as the host names it (a deployment)
        reservation = self.accounting.reserve(model, est_prompt, est_completion)
        path = ENDPOINTS[api]
        try:
            # The SDK's documented escape hatch for a ready-made body: the typed methods
            # transform every parameter and build pydantic models of the response, which
            # cost more client CPU than the request itself at a few hundred requests/s.
            # (On Azure's classic API the SDK's client puts the body's model in the path.)
            raw = await self.send(what, lambda c: c.post(path, body=wire, cast_to=_raw_type()),
                                  next_tokens=est_prompt + est_completion)
        finally:
            self.accounting.release(reservation)
        data = json.loads(raw.text)
        usage = data.get("usage") or {}
        self.accounting.record(model, int(usage.get("prompt_tokens") or est_prompt),
                               int(usage.get("completion_tokens") or 0))
        if key is not None:
            self.cache.put(key, data)
        return data
