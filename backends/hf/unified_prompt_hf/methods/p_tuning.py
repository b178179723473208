"""P-tuning: one peft PromptEncoder (MLP or LSTM reparameterisation) per {soft} slot.

Trainable names: soft.{slot}.embedding (the encoder's input table) and
soft.{slot}.encoder.{param} with peft's parameter names (mlp_head.0.weight, lstm_head...).
Adapter folders in the soft-prompt format (soft_adapter): the encoder's output vectors,
so a loaded adapter needs no encoder.
"""

from __future__ import annotations

from pathlib import Path

from unified_prompt.backend import TrainSetup
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods import soft_adapter
from unified_prompt_hf.methods.base import MethodState
from unified_prompt_hf.methods.common import prompt_config, slot_counts
from unified_prompt_hf.soft import SoftPrompts, SoftSlot


class PTuning(MethodState):
    name = "p_tuning"

    def save_adapter(self, path: Path) -> None:
        soft_adapter.save(self.handle, path, self.name, self.params)


def build(base: HFModel, setup: TrainSetup) -> PTuning:
    from peft import PromptEncoder, PromptEncoderConfig

    spec = setup.method
    counts = slot_counts(base, setup)
    slots: dict[int, SoftSlot] = {}
    for seg in setup.soft_slots:
        n = counts[seg.slot]
        config = prompt_config(PromptEncoderConfig, base, n,
                               encoder_reparameterization_type=spec.encoder.upper(),
                               encoder_hidden_size=spec.encoder_hidden)
        slots[seg.slot] = SoftSlot(PromptEncoder(config).float().to(base.device), n)
    soft = SoftPrompts(slots)
    params = {}
    for key, slot in soft.slots.items():
        for name, param in slot.encoder.named_parameters():
            if name == "embedding.weight":
                params[f"soft.{key}.embedding"] = param
            else:
                params[f"soft.{key}.encoder.{name}"] = param
    return PTuning(base.derive(soft=soft, method=PTuning.name), params)


def load(base: HFModel, path: Path) -> HFModel:
    return soft_adapter.load(base, path, PTuning.name)
