"""Portability tests as a product: one spec's runs on several frameworks, compared.

    from unified_prompt import portability

    result = portability.check("spec.yaml", backends=["hf", "paddle"], tolerance={"prob": 1e-3})
    result.assert_agrees()                      # raises PortabilityError with the comparison

    comparison = portability.compare_runs(["runs/a", "runs/b"])   # finished runs

The CLI's `compare` and `matrix` commands are thin layers over these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unified_prompt.lazy_exports import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
