"""Turns the SDK's exceptions into the core's error types at the boundary.

Each message says what happened and what to do, carries the request id when the host sent
one, and never the key: messages are scrubbed and the SDK exception (whose body may echo a
masked key) is not chained for credential errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unified_prompt.errors import (
    AuthenticationError,
    BackendError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    UnifiedPromptError,
    UserInputError,
)
from unified_prompt_openai.client.redact import scrub

QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})


def error_fields(exc: Any) -> tuple[str | None, str | None, str]:
    """(code, type, message) from an SDK APIStatusError, read leniently from its body."""
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    code = getattr(exc, "code", None) or (err.get("code") if isinstance(err, dict) else None)
    etype = getattr(exc, "type", None) or (err.get("type") if isinstance(err, dict) else None)
    message = err.get("message") if isinstance(err, dict) and err.get("message") else str(exc)
    return code, etype, str(message)


def is_quota_error(exc: Any) -> bool:
    code, etype, _ = error_fields(exc)
    return getattr(exc, "status_code", None) == 429 and (code in QUOTA_CODES
                                                        or etype in QUOTA_CODES)


def request_id(exc: Any) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers.get("x-request-id") if headers is not None else None


def translate(exc: BaseException, *, host: str, what: str,
              secrets: Sequence[str | None] = (), key_variable: str = "OPENAI_API_KEY"
              ) -> UnifiedPromptError:
    """The core error for an SDK exception raised while doing `what` against `host`;
    `.status` carries the HTTP status (None for connection errors). `secrets` (the key,
    credential headers) are scrubbed from every message."""
    err = _translate(exc, host=host, what=what, secrets=tuple(secrets),
                     key_variable=key_variable)
    if not hasattr(err, "status"):
        err.status = getattr(exc, "status_code", None)  # type: ignore[attr-defined]
    if not hasattr(err, "detail"):  # the host's own words (the probe quotes them)
        detail = error_fields(exc)[2] if hasattr(exc, "status_code") else str(exc)
        err.detail = scrub(detail, *secrets)[:200]  # type: ignore[attr-defined]
    return err


def _translate(exc: BaseException, *, host: str, what: str, secrets: tuple[str | None, ...],
               key_variable: str) -> UnifiedPromptError:
    import openai

    if isinstance(exc, UnifiedPromptError):
        return exc
    rid = request_id(exc)
    suffix = f" (request id {rid})" if rid else ""
    if isinstance(exc, openai.APIStatusError):
        code, _, message = error_fields(exc)
        message = scrub(message, *secrets)
        status = exc.status_code
        if status == 401:
            return AuthenticationError(
                f"{host} rejected the API key while {what}: {message}{suffix}. Set {key_variable} "
                "(or backend.options.openai.api_key) to a valid key for this host.")
        if status == 403:
            return AuthenticationError(f"{host} refused {what} for this key or organization: "
                                       f"{message}{suffix}")
        if is_quota_error(exc):
            return QuotaExceededError(
                f"{host}: the account is out of quota ({code}) while {what}: {message}{suffix}. "
                "Retrying cannot help; add credit or raise the limit, then rerun with --resume.")
        if status == 429:
            return RateLimitError(f"{host} kept rate-limiting {what} after every retry: "
                                  f"{message}{suffix}")
        if status == 404:
            return ModelNotFoundError(f"{host}: not found while {what}: {message}{suffix}")
        if status in (400, 422):
            return UserInputError(f"{host} rejected {what}: {message}{suffix}")
        return BackendError(f"{host} failed {what} with HTTP {status}: {message}{suffix}")
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(f"{host} timed out {what} after every retry{suffix}")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f": {type(cause).__name__}" if cause is not None else ""
        return BackendError(f"cannot reach {host} while {what}{detail} (after every retry); "
                            "check OPENAI_BASE_URL and that the host is up")
    return BackendError(f"{what} against {host} failed: {scrub(str(exc), *secrets)}")
