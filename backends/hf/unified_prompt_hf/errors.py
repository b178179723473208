"""Turning torch / transformers / peft exceptions into the core's error types, at the boundary.

Callers of the backend handle one error family (`unified_prompt.errors`) whatever the
framework raised; the original exception stays chained for debugging.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from unified_prompt.errors import BackendError, ModelNotFoundError, UnifiedPromptError

F = TypeVar("F", bound=Callable[..., Any])


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextmanager
def boundary(action: str, *, loading: str | None = None) -> Iterator[None]:
    """Re-raise anything that is not already a core error as BackendError.

    With `loading` (a model reference), file and format errors become ModelNotFoundError.
    """
    try:
        yield
    except UnifiedPromptError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        if loading is not None:
            raise ModelNotFoundError(
                f"hf backend: cannot load model {loading!r} ({_describe(exc)})") from exc
        raise BackendError(f"hf backend: {action} failed ({_describe(exc)})") from exc
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":
            raise BackendError(f"hf backend: out of memory during {action}; use a smaller "
                               "batch_size or max_length") from exc
        raise BackendError(f"hf backend: {action} failed ({_describe(exc)})") from exc


def translated(action: str) -> Callable[[F], F]:
    """Decorator form of `boundary` for the backend's public methods."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with boundary(action):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
