"""One module per training method: what it attaches to a model and how its weights are named.

Each `attach(model, setup, rng)` returns a derived handle and its bindings: canonical name
(backend.py's framework-neutral names) -> paddle parameter plus the layout change between
them. The session, checkpoints, adapters and conversion all go through the bindings.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: finetune.method -> the module implementing it (`attach` and `from_state`).
MODULES = {"prompt_tuning": "soft", "p_tuning": "soft", "prefix_tuning": "prefix",
           "lora": "lora", "full": "full"}


def module_for(method: str) -> ModuleType | None:
    """The module for `method` (imported on first use: it loads paddle), or None."""
    name = MODULES.get(method)
    return importlib.import_module(f"{__name__}.{name}") if name is not None else None
