"""Progress bars on long work (tqdm on stderr), off when not wanted."""

from __future__ import annotations

import os
import sys
from typing import Any


def progress_enabled(explicit: bool | None = None) -> bool:
    if explicit is not None:
        return explicit
    env = os.environ.get("UNIFIED_PROMPT_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def bar(total: int | None, desc: str, enabled: bool | None = None, unit: str = "ex",
        initial: int = 0) -> Any:
    """A tqdm bar when enabled, else an object with the same methods that does nothing."""
    if not progress_enabled(enabled):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr,
                dynamic_ncols=True, leave=False)
