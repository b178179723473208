"""Prefix tuning: peft's PrefixEncoder gives every layer trained keys and values.

Trainable names: prefix.embedding (n, layers * 2 * kv_dim) and, with `projection`, the
projection MLP as prefix.transform.{0,2}.{weight,bias} (peft's names, torch layout).
Adapter folders are PEFT's (prompt_embeddings = the prefix's projected key/values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unified_prompt.backend import TrainSetup
from unified_prompt.errors import CapabilityError
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods.base import MethodState
from unified_prompt_hf.methods.common import prompt_config
from unified_prompt_hf.methods.files import PEFT_WEIGHTS, save_state, write_meta
from unified_prompt_hf.prefix_cache import PrefixKV


class PrefixTuning(MethodState):
    name = "prefix_tuning"

    def save_adapter(self, path: Path) -> None:
        from safetensors.torch import save_file

        prefix = self.handle.prefix
        assert prefix is not None
        with torch.no_grad(), self.handle.evaluating():
            flat = prefix.flat().detach().float().cpu().contiguous()
        prefix.config.save_pretrained(str(path))
        save_file({"prompt_embeddings": flat}, str(path / PEFT_WEIGHTS))
        save_state(path, self.params)
        write_meta(path, self.name, n_tokens=prefix.n_tokens, peft_files=True)


def prefix_module(base: HFModel, config: Any) -> PrefixKV:
    from peft import PrefixEncoder

    heads = config.num_attention_heads
    module = PrefixKV(PrefixEncoder(config).float().to(base.device), config.num_virtual_tokens,
                      config.num_layers, heads, config.token_dim // heads)
    module.config = config
    return module


def build(base: HFModel, setup: TrainSetup) -> PrefixTuning:
    from peft import PrefixTuningConfig

    if base.seq2seq:
        raise CapabilityError("backend 'hf': prefix_tuning is not supported on encoder-decoder "
                              f"models ({base.name}); use prompt_tuning, p_tuning, lora or full")
    spec = setup.method
    config = prompt_config(PrefixTuningConfig, base, spec.num_virtual_tokens,
                           prefix_projection=spec.projection,
                           encoder_hidden_size=spec.projection_hidden)
    prefix = prefix_module(base, config)
    params = {("prefix.embedding" if name == "embedding.weight" else f"prefix.{name}"): param
              for name, param in prefix.encoder.named_parameters()}
    return PrefixTuning(base.derive(prefix=prefix, method=PrefixTuning.name), params)


def load(base: HFModel, path: Path) -> HFModel:
    from peft import PrefixTuningConfig
    from safetensors.torch import load_file

    config = PrefixTuningConfig.from_pretrained(str(path))
    config.inference_mode = True
    config.prefix_projection = False  # the saved values are already projected
    prefix = prefix_module(base, config)
    flat = load_file(str(path / PEFT_WEIGHTS))["prompt_embeddings"]
    prefix.encoder.embedding.weight = torch.nn.Parameter(flat.float().to(base.device),
                                                         requires_grad=False)
    return base.derive(prefix=prefix, method=PrefixTuning.name)
