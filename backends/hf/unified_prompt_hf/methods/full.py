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
from unified_prompt_hf.methods.files import write_meta


class Full(MethodState):
    name = "full"

    def save_adapter(self, path: Path, state_dict: dict | None = None) -> None:
        """`state_dict`: the whole weights when the module's own are sharded (FSDP)."""
        self.handle.module.save_pretrained(str(path), state_dict=state_dict)
        self.handle.codec.tokenizer.save_pretrained(str(path))
        write_meta(path, self.name, peft_files=False)


def build(base: HFModel, setup: TrainSetup) -> Full:
    module = copy.deepcopy(base.module)
    if base.device.type != "cpu" and base.dtype != torch.float32:
        module = module.float()  # fp32 master weights; bf16 comes from autocast
    module.requires_grad_(True)
    params = dict(module.named_parameters())
    handle = base.derive(module=module, dtype=next(iter(params.values())).dtype,
                         method=Full.name)
    return Full(handle, params)


def load(base: HFModel, path: Path) -> HFModel:
    from unified_prompt_hf.loading import auto_class

    module = auto_class(base.kind).from_pretrained(str(path), dtype=base.dtype, local_files_only=True)
    module.to(base.device).eval().requires_grad_(False)
    return base.derive(module=module, method=Full.name)
