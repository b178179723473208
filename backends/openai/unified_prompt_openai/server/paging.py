"""Cursor pages the way the API lists things: items after the one with id `after`,
at most `limit` of them, and whether more follow."""

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
