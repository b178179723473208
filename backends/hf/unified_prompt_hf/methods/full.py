"""Full fine-tuning: every weight of a private copy of the model (the base stays as loaded).

Trainable names are the Hugging Face parameter names (tied weights once). The adapter is
a whole Hugging Face folder (save_pretrained + tokenizer).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from unified_prompt.backend import TrainSetup
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods.base import MethodState


class Full(MethodState):
    name = "full"

    def save_adapter(self, path: Path) -> None:
        from unified_prompt_hf.adapters import save_full_adapter

        save_full_adapter(self.handle, path)


def build(base: HFModel, setup: TrainSetup) -> Full:
    module = copy.deepcopy(base.module)
    if base.device.type != "cpu" and base.dtype != torch.float32:
        module = module.float()  # fp32 master weights; bf16 comes from autocast
    module.requires_grad_(True)
    params = dict(module.named_parameters())
    handle = base.derive(module=module, dtype=next(iter(params.values())).dtype,
                         method=Full.name)
    return Full(handle, params)
