"""Portability tests as a product: one spec's runs on several frameworks, compared.

    from unified_prompt import portability

    result = portability.check("spec.yaml", backends=["hf", "paddle"], tolerance={"prob": 1e-3})
    result.assert_agrees()                      # raises PortabilityError with the comparison

    comparison = portability.compare_runs(["runs/a", "runs/b"])   # finished runs

The CLI's `compare` and `matrix` commands are thin layers over these.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Tolerance": "unified_prompt.portability.compare",
    "Comparison": "unified_prompt.portability.compare",
    "PairComparison": "unified_prompt.portability.compare",
    "compare_runs": "unified_prompt.portability.compare",
    "check": "unified_prompt.portability.matrix",
    "run_matrix": "unified_prompt.portability.matrix",
    "PortabilityResult": "unified_prompt.portability.matrix",
    "PortabilityError": "unified_prompt.portability.matrix",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from unified_prompt.portability.compare import (
        Comparison,
        PairComparison,
        Tolerance,
        compare_runs,
    )
    from unified_prompt.portability.matrix import (
        PortabilityError,
        PortabilityResult,
        check,
        run_matrix,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unified_prompt.portability' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
