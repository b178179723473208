"""The module `__getattr__` of packages whose public names are imported on first use, so
that importing `unified_prompt` or one of its packages loads nothing heavy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """`exports` maps a public name to `module` or `module:attribute`; the value is cached in
    the package's `namespace` (its globals()) on first use."""

    def lookup(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        value = getattr(import_module(module), attribute or name)
        namespace[name] = value
        return value

    return lookup
