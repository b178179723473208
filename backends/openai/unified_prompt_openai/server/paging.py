"""Cursor pages the way the API lists things: items after the one with id `after`,
at most `limit` of them, and whether more follow; and the list envelope they go out in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def page(items: Sequence[T], after: str | None, limit: int, key: Callable[[T], Any], *,
         max_limit: int | None = None) -> tuple[list[T], bool]:
    """(the page, has_more); an unknown `after` gives an empty page."""
    start = 0
    if after is not None:
        ids = [key(x) for x in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    limit = max(1, limit if max_limit is None else min(limit, max_limit))
    return list(items[start:start + limit]), start + limit < len(items)


def list_body(data: list[dict[str, Any]], has_more: bool | None = None, *,
              cursors: bool = False, empty_cursor: str | None = None) -> dict[str, Any]:
    """The API's list envelope: {"object": "list", "data": [...]}, with `has_more` where
    the list pages, and with `cursors` first_id / last_id (the page's end items' ids;
    `empty_cursor` on an empty page: files require a string there, others allow null)."""
    body: dict[str, Any] = {"object": "list", "data": data}
    if has_more is not None:
        body["has_more"] = has_more
    if cursors:
        body["first_id"] = data[0]["id"] if data else empty_cursor
        body["last_id"] = data[-1]["id"] if data else empty_cursor
    return body
