"""Errors in the OpenAI shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import os
import re
from typing import Any

# Absolute paths that start with one of this machine's top-level folders (/tmp, /home,
# /usr, ...): never shown to a client, while API paths such as /v1/files stay readable.
_ROOTS = sorted((e.name for e in os.scandir("/") if e.is_dir()), key=len, reverse=True) \
    if os.name == "posix" else []
_ALTERNATIVES = "|".join(map(re.escape, _ROOTS))
_PATH = re.compile(rf"(?<![\w.])/(?:{_ALTERNATIVES})(?:/[^\s'\"(),:;]*)?") if _ROOTS else None


def redact_paths(text: str) -> str:
    """`text` with every server file path replaced by its last component."""
    if _PATH is None:
        return text
    return _PATH.sub(lambda m: "<server path>/" + m.group(0).rstrip("/").rsplit("/", 1)[-1]
                     if m.group(0).count("/") > 1 else "<server path>", text)


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, code=self.code, param=self.param)


def error_body(message: str, *, type: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": redact_paths(message), "type": type, "param": param,
                      "code": code}}


def not_found(what: str, ident: str, param: str | None = None) -> APIError:
    return APIError(404, f"No {what} found with id '{ident}'.", code=f"{what}_not_found"
                    .replace(" ", "_"), param=param)
