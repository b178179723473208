"""Reading request bodies defensively: a size limit enforced while the bytes arrive, strict
UTF-8, and JSON without the traps of the standard parser (NaN and Infinity literals,
duplicate keys, integers thousands of digits long, nesting deep enough to exhaust the
stack, lone surrogates). Every failure is a 4xx `invalid_request_error`, never a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

from unified_prompt_openai.server.errors import APIError

MAX_DEPTH = 64  # far deeper than any API body nests
MAX_INT_DIGITS = 40  # int64 needs 19; anything longer is no valid parameter


def too_large(size: int | str, limit: int, what: str = "request body") -> APIError:
    return APIError(413, f"The {what} is {size} bytes; this server accepts at most {limit} "
                    "bytes.", code="request_too_large")


def declared_length(headers: Any) -> int | None:
    """Content-Length as an int, None when absent; a malformed one is a 400."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise APIError(400, "The Content-Length header is not a number.")
    return int(raw)


async def read_limited(chunks: AsyncIterator[bytes], headers: Any, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it (or its declared length) passes
    `limit`: a client cannot make the server hold more than that in memory."""
    declared = declared_length(headers)
    if declared is not None and declared > limit:
        raise too_large(declared, limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(f"more than {limit}", limit)
        parts.append(chunk)
    return b"".join(parts)


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise _RejectedError(f"an integer with {len(digits)} digits is out of range")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _RejectedError(f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _RejectedError(f"{name} is not valid JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RejectedError(f"the key {key[:80]!r} appears twice in one object")
        out[key] = value
    return out


class _RejectedError(ValueError):
    """A body the parser read but will not accept."""


def _check_tree(data: Any) -> None:
    """Depth and text checks, iteratively (a recursive walk is what deep bodies attack)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = ((None, v) for v in node)
        else:
            if isinstance(node, str):
                _check_text(node)
            continue
        if depth > MAX_DEPTH:
            raise _RejectedError(f"the body nests deeper than {MAX_DEPTH} levels")
        for key, value in items:
            if key is not None:
                _check_text(key)
            stack.append((value, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _RejectedError("a string holds an unpaired UTF-16 surrogate escape") from None


def parse_json(raw: bytes) -> Any:
    """`raw` as JSON, or an APIError(400) saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, f"We could not parse the JSON body of your request: it is not "
                       f"valid UTF-8 (byte {exc.start}).") from None
    try:
        data = json.loads(text or "{}", parse_int=_int, parse_float=_float,
                          parse_constant=_constant, object_pairs_hook=_pairs)
        _check_tree(data)
    except RecursionError:
        raise APIError(400, f"We could not parse the JSON body of your request: it nests "
                       f"deeper than {MAX_DEPTH} levels.") from None
    except json.JSONDecodeError as exc:
        raise APIError(400, f"We could not parse the JSON body of your request ({exc.msg} "
                       f"at line {exc.lineno} column {exc.colno}).") from None
    except _RejectedError as exc:
        raise APIError(400, f"We could not parse the JSON body of your request: {exc}.") \
            from None
    except ValueError as exc:  # e.g. the interpreter's own integer-length limit
        raise APIError(400, f"We could not parse the JSON body of your request ({exc}).") \
            from None
    return data


async def read_json_object(request: Any, limit: int) -> dict[str, Any]:
    """A request's body as a JSON object, size-limited and strictly parsed."""
    data = parse_json(await read_limited(request.stream(), request.headers, limit))
    if not isinstance(data, dict):
        raise APIError(400, "The request body must be a JSON object.")
    return data
