"""LoRA through peft's get_peft_model, on a copy of the model tree that shares its weights.

Target modules: the spec's `target_modules`, else peft's per-architecture table, else the
attention projections found by name. Trainable names: lora.{module}.A (r, in) and
lora.{module}.B (out, r), {module} the Hugging Face module path. Adapter folders are
PEFT's own (PeftModel.save_pretrained / from_pretrained).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from unified_prompt.backend import TrainSetup
from unified_prompt.errors import CapabilityError
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods.base import MethodState
from unified_prompt_hf.methods.common import shared_copy, task_type
from unified_prompt_hf.methods.files import save_state, write_meta

#: Pairs tried, in order, when peft's table does not know the architecture.
FALLBACK_TARGETS = (("q_proj", "v_proj"), ("query", "value"), ("c_attn",),
                    ("query_key_value",), ("qkv_proj",), ("Wqkv",))


def default_targets(module: torch.nn.Module) -> list[str]:
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TABLE

    model_type = getattr(module.config, "model_type", "")
    known = TABLE.get(model_type)
    if isinstance(known, list):
        return list(known)
    leaves = {name.rsplit(".", 1)[-1] for name, _ in module.named_modules()}
    for names in FALLBACK_TARGETS:
        if set(names) <= leaves:
            return list(names)
    raise CapabilityError(f"cannot choose LoRA target modules for model type {model_type!r}; "
                          "set finetune.target_modules")


def _conv1d_targets(module: torch.nn.Module, targets: list[str]) -> bool:
    """GPT-2-style Conv1D layers store weights transposed; peft must be told."""
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) and name.rsplit(".", 1)[-1] in targets
               for name, m in module.named_modules())


def lora_params(inner: torch.nn.Module, adapter: str = "default") -> dict[str, Any]:
    from peft.tuners.lora import LoraLayer

    params: dict[str, Any] = {}
    for name, mod in inner.named_modules():
        if isinstance(mod, LoraLayer) and adapter in mod.lora_A:
            params[f"lora.{name}.A"] = mod.lora_A[adapter].weight
            params[f"lora.{name}.B"] = mod.lora_B[adapter].weight
    return params


class Lora(MethodState):
    name = "lora"

    def save_adapter(self, path: Path) -> None:
        self.handle.peft.save_pretrained(str(path))
        save_state(path, self.params)
        write_meta(path, self.name, peft_files=True)


def build(base: HFModel, setup: TrainSetup) -> Lora:
    from peft import LoraConfig, get_peft_model

    spec = setup.method
    module = shared_copy(base.module)
    targets = list(spec.target_modules) if spec.target_modules else default_targets(module)
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=targets, task_type=task_type(base), bias="none",
                        fan_in_fan_out=_conv1d_targets(module, targets))
    try:
        with warnings.catch_warnings():  # peft reads transformers' deprecated attribute
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(module, config)
    except ValueError as exc:
        raise CapabilityError(f"LoRA cannot target {targets} in this model ({exc})") from exc
    inner = peft_model.base_model.model
    params = lora_params(inner)
    for p in params.values():
        p.data = p.data.float()
    handle = base.derive(module=inner, peft=peft_model, method=Lora.name)
    return Lora(handle, params)


def load(base: HFModel, path: Path) -> HFModel:
    from peft import PeftModel

    module = shared_copy(base.module)
    with warnings.catch_warnings():  # peft reads transformers' deprecated attribute
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = PeftModel.from_pretrained(module, str(path), is_trainable=False)
    peft_model.eval()
    return base.derive(module=peft_model.base_model.model, peft=peft_model, method=Lora.name)
