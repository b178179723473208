"""Finds backends through the `unified_prompt.backends` entry-point group, by name.

Only the named backend's module is imported, and only when asked for: listing names
reads package metadata and imports nothing.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from unified_prompt.errors import BackendError, BackendNotInstalledError

if TYPE_CHECKING:
    from unified_prompt.adapters import AdapterConverter
    from unified_prompt.backend import Backend

GROUP = "unified_prompt.backends"


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Names of installed backends (no imports)."""
    return sorted(_entry_points())


def backend_class(name: str) -> type[Backend]:
    eps = _entry_points()
    if name not in eps:
        raise BackendNotInstalledError(name, sorted(eps))
    try:
        cls = eps[name].load()
    except ImportError as exc:
        raise BackendError(
            f"backend {name!r} is installed but failed to import ({exc}); "
            f"reinstall with pip install 'unified-prompt[{name}]'") from exc
    from unified_prompt.backend import Backend

    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point {eps[name].value!r} for {name!r} is not a Backend class")
    return cls


def create_backend(name: str, options: dict[str, Any] | None = None) -> Backend:
    """An instance of the named backend with validated options."""
    cls = backend_class(name)
    return cls(cls.parse_options(options or {}))


CONVERTERS = "unified_prompt.converters"


def adapter_converter(source: str, target: str) -> AdapterConverter | None:
    """The installed converter from backend `source`'s adapter format to `target`'s, if any
    (only converters' modules are imported, never a backend's framework)."""
    from unified_prompt.adapters import AdapterConverter

    for ep in entry_points(group=CONVERTERS):
        try:
            converter = ep.load()
        except ImportError:
            continue
        if isinstance(converter, AdapterConverter) and converter.can(source, target):
            return converter
    return None
