"""Keeps API keys out of messages, URLs and anything else that might be printed or saved."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_KEY_LIKE = re.compile(r"\b(sk|sess|org|proj)-[A-Za-z0-9_\-*]{6,}")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with each secret, bearer tokens and key-like strings replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    text = _BEARER.sub(r"\1<redacted>", text)
    return _KEY_LIKE.sub(lambda m: f"{m.group(1)}-<redacted>", text)


def public_url(url: str) -> str:
    """A base URL without user:password@ or query string, fit for logs and metrics."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
