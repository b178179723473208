"""Bearer-token auth. The key is compared in constant time and never echoed back."""

from __future__ import annotations

import hmac

from unified_prompt_openai.server.errors import APIError


def check_bearer(header: str | None, expected: str | None) -> None:
    if expected is None:
        return
    if not header or not header.lower().startswith("bearer "):
        raise APIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer "
                       "KEY' (the key this server was started with).",
                       code="missing_api_key")
    given = header[7:].strip()
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise APIError(401, "Incorrect API key provided. Use the key this server was started "
                       "with (--api-key or UNIFIED_PROMPT_SERVE_KEY).", code="invalid_api_key")
