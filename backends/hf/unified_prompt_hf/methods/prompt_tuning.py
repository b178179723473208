"""Prompt tuning: one peft PromptEmbedding per {soft} slot, trained directly.

Init: `text` (the slot's or spec's init text), `vocab` (peft's SAMPLE_VOCAB: embeddings of
random vocabulary tokens) or `random` (peft's RANDOM: nn.Embedding's N(0, 1)). Adapter
folders in the soft-prompt format (soft_adapter).
"""

from __future__ import annotations

from pathlib import Path

import torch

from unified_prompt.backend import TrainSetup
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods import soft_adapter
from unified_prompt_hf.methods.base import MethodState
from unified_prompt_hf.methods.common import prompt_config, slot_counts, text_init
from unified_prompt_hf.soft import SoftPrompts, SoftSlot


class PromptTuning(MethodState):
    name = "prompt_tuning"

    def save_adapter(self, path: Path) -> None:
        soft_adapter.save(self.handle, path, self.name, self.params)


def build(base: HFModel, setup: TrainSetup) -> PromptTuning:
    from peft import PromptEmbedding, PromptTuningConfig, PromptTuningInit

    spec = setup.method
    counts = slot_counts(base, setup)
    embeddings = base.module.get_input_embeddings()
    slots: dict[int, SoftSlot] = {}
    for seg in setup.soft_slots:
        n = counts[seg.slot]
        text = seg.init_text or (spec.init_text if spec.init == "text" else None)
        init = PromptTuningInit.SAMPLE_VOCAB if spec.init == "vocab" and not text \
            else PromptTuningInit.RANDOM
        config = prompt_config(PromptTuningConfig, base, n, prompt_tuning_init=init)
        module = PromptEmbedding(config, embeddings).float()
        if text:
            module.embedding.weight = torch.nn.Parameter(text_init(base, text, n))
        slots[seg.slot] = SoftSlot(module.to(base.device), n)
    soft = SoftPrompts(slots)
    handle = base.derive(soft=soft, method=PromptTuning.name)
    params = {f"soft.{k}": slot.encoder.embedding.weight for k, slot in
              ((int(k), s) for k, s in soft.slots.items())}
    return PromptTuning(handle, params)


def load(base: HFModel, path: Path) -> HFModel:
    return soft_adapter.load(base, path, PromptTuning.name)
