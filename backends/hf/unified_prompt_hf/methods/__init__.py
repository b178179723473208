"""One module per training method; each builds its trainable parts on a new handle, saves
them as an adapter folder and loads that folder back (`build`, `MethodState.save_adapter`,
`load`), as peft keeps a tuner's config, model and layers in one folder.

`method_module` picks the module by the registry key (`finetune.method`), importing only
that one (it loads torch and peft).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unified_prompt.backend import TrainSetup
    from unified_prompt_hf.handle import HFModel
    from unified_prompt_hf.methods.base import MethodState

#: finetune.method -> the module implementing it.
MODULES = {"prompt_tuning": "prompt_tuning", "p_tuning": "p_tuning",
           "prefix_tuning": "prefix", "lora": "lora", "full": "full"}


def method_module(name: str) -> ModuleType:
    """The module for a method this backend declares (the core has checked the name)."""
    return import_module(f"{__name__}.{MODULES[name]}")


def build_method(base: HFModel, setup: TrainSetup) -> MethodState:
    return method_module(setup.method.method).build(base, setup)
