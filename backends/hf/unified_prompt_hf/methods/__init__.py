"""One module per training method; each attaches its trainable parts to a new handle.

`build_method` picks the module by the spec's registry key (`finetune.method`), importing
only that one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from unified_prompt.errors import CapabilityError

if TYPE_CHECKING:
    from unified_prompt.backend import TrainSetup
    from unified_prompt_hf.handle import HFModel
    from unified_prompt_hf.methods.base import MethodState

MODULES = {"prompt_tuning": "prompt_tuning", "p_tuning": "p_tuning",
           "prefix_tuning": "prefix", "lora": "lora", "full": "full"}


def build_method(base: HFModel, setup: TrainSetup) -> MethodState:
    name = setup.method.method
    if name not in MODULES:
        raise CapabilityError(f"backend 'hf' cannot train finetune.method {name!r}")
    module = import_module(f"unified_prompt_hf.methods.{MODULES[name]}")
    return module.build(base, setup)
