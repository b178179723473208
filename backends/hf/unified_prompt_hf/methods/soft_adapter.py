"""Soft-prompt adapter folders, one format for prompt tuning and P-tuning.

soft_prompt.safetensors holds soft.{slot} -> (n, hidden) raw embeddings (the encoder's
output for P-tuning), every slot; when the template has one leading slot, PEFT's pair too,
so plain PEFT loads it. Loading gives frozen slots holding the saved vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods.common import prompt_config
from unified_prompt_hf.methods.files import (
    PEFT_WEIGHTS,
    SOFT_FILE,
    save_state,
    write_meta,
)
from unified_prompt_hf.soft import SoftPrompts, SoftSlot


def leading_layout(handle: HFModel) -> str | None:
    """How a single slot-0 soft prompt sits, as PEFT (which prepends it) would see it.

    "exact": first in the input, so plain PEFT reproduces our numbers; "after_cls": a
    masked LM's [CLS] comes first (PEFT puts the soft tokens before it); None: not one
    leading slot, so PEFT's format cannot express the layout.
    """
    soft = handle.soft
    if soft is None or list(soft.counts()) != [0]:
        return None
    if handle.causal:
        return "after_bos" if handle.codec.special.add_bos else "exact"
    if handle.seq2seq and handle.codec.special.cls is None:
        return "exact"  # T5: the encoder input starts with the soft tokens
    return "after_cls"


def save(handle: HFModel, path: Path, method: str,
         params: dict[str, torch.nn.Parameter]) -> None:
    """soft_prompt.safetensors for any layout; PEFT's files for one leading slot."""
    from peft import PromptEncoderConfig, PromptTuningConfig
    from safetensors.torch import save_file

    assert handle.soft is not None
    with torch.no_grad(), handle.evaluating():
        outputs = {k: v.detach().float().cpu().contiguous()
                   for k, v in handle.soft.embeddings().items()}
    save_file({f"soft.{k}": v for k, v in outputs.items()}, str(path / SOFT_FILE))
    save_state(path, params)
    layout = leading_layout(handle)
    if layout is not None:
        n = outputs[0].shape[0]
        if method == "prompt_tuning":
            config = prompt_config(PromptTuningConfig, handle, n)
        else:
            enc = handle.soft.slots["0"].encoder
            config = prompt_config(PromptEncoderConfig, handle, n,
                                   encoder_reparameterization_type=enc.encoder_type,
                                   encoder_hidden_size=enc.hidden_size)
        config.save_pretrained(str(path))
        save_file({"prompt_embeddings": outputs[0]}, str(path / PEFT_WEIGHTS))
    write_meta(path, method, slots={str(k): v.shape[0] for k, v in outputs.items()},
               peft_files=layout is not None, peft_layout=layout)


def frozen_slot(handle: HFModel, weight: torch.Tensor) -> Any:
    """A loaded soft slot: peft's PromptEmbedding in inference mode holding the vectors."""
    from peft import PromptEmbedding, PromptTuningConfig

    n = int(weight.shape[0])
    config = prompt_config(PromptTuningConfig, handle, n, inference_mode=True)
    module = PromptEmbedding(config, handle.module.get_input_embeddings())
    module.embedding.weight = torch.nn.Parameter(weight.float(), requires_grad=False)
    return SoftSlot(module.to(handle.device), n)


def load(base: HFModel, path: Path, method: str) -> HFModel:
    from safetensors.torch import load_file

    if (path / SOFT_FILE).exists():
        raw = load_file(str(path / SOFT_FILE))
        tables = {int(k.split(".")[1]): v for k, v in raw.items()}
    else:
        tables = {0: load_file(str(path / PEFT_WEIGHTS))["prompt_embeddings"]}
    slots = {k: frozen_slot(base, v) for k, v in tables.items()}
    return base.derive(soft=SoftPrompts(slots), method=method)
