"""Checking, before anything is loaded or spent, that a backend has what a strategy needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unified_prompt.errors import CapabilityError
from unified_prompt.search.strategies import STRATEGIES, strategy_class
from unified_prompt.search.strategies.base import PRIMITIVES

if TYPE_CHECKING:
    from unified_prompt.backend import Backend


def missing_primitives(backend: Backend, needs: tuple[str, ...]) -> list[str]:
    caps = backend.capabilities
    return [p for p in needs if not getattr(caps, p)]


def strategies_for(backend: Backend) -> list[str]:
    """The strategies whose target primitives this backend declares."""
    return [name for name in STRATEGIES
            if not missing_primitives(backend, strategy_class(name).needs)]


def require(strategy: str, needs: tuple[str, ...], backend: Backend, role: str = "target") -> None:
    """Raise CapabilityError naming the missing primitive, the backend and what would run."""
    missing = missing_primitives(backend, needs)
    if not missing:
        return
    what = " and ".join(PRIMITIVES[p] for p in missing)
    others = [s for s in strategies_for(backend) if s != strategy] if role == "target" else []
    hint = (f"; strategies that run on {backend.name!r}: {', '.join(others)}" if others else "")
    raise CapabilityError(
        f"search strategy {strategy!r} needs {what} on its {role} backend, which backend "
        f"{backend.name!r} does not provide (Capabilities.{missing[0]} is "
        f"False){hint}")
