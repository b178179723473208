"""unified-prompt: prompt-based and parameter-efficient fine-tuning on any backend.

Importing this package loads nothing heavy (no pydantic models, numpy, or frameworks):
the public names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unified_prompt.lazy_exports import lazy_getattr

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Experiment": "unified_prompt.runner",
    "RunResult": "unified_prompt.result",
    "load_result": "unified_prompt.result",
    "Predictor": "unified_prompt.prediction",
    "ExperimentSpec": "unified_prompt.config",
    "load_spec": "unified_prompt.config",
    "Template": "unified_prompt.prompts.template",
    "Verbalizer": "unified_prompt.prompts.verbalizer",
    "Example": "unified_prompt.data.example",
    "load_dataset": "unified_prompt.data.bundled",
    "load_file": "unified_prompt.data.loaders",
    "load_splits": "unified_prompt.data.resolve",
    "Backend": "unified_prompt.backend",
    "Capabilities": "unified_prompt.backend",
    "create_backend": "unified_prompt.registry",
    "available_backends": "unified_prompt.registry:available",
    "UnifiedPromptError": "unified_prompt.errors",
    "run_search": "unified_prompt.search.run",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from unified_prompt.backend import Backend, Capabilities
    from unified_prompt.config import ExperimentSpec, load_spec
    from unified_prompt.data.bundled import load_dataset
    from unified_prompt.data.example import Example
    from unified_prompt.data.loaders import load_file
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.errors import UnifiedPromptError
    from unified_prompt.prediction import Predictor
    from unified_prompt.prompts.template import Template
    from unified_prompt.prompts.verbalizer import Verbalizer
    from unified_prompt.registry import available as available_backends
    from unified_prompt.registry import create_backend
    from unified_prompt.result import RunResult, load_result
    from unified_prompt.runner import Experiment
    from unified_prompt.search.run import run_search


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return __all__
