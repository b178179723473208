"""Prefix tuning with paddlenlp.peft's PrefixModelForCausalLM on the shared, frozen network.

Causal models (Llama) continue from a Llama cache; masked LMs (BERT, ERNIE) from the
per-layer cache of paddle's nn.TransformerEncoder. paddlenlp's prefix encoder orders a
token's key/value columns differently from PEFT's; layouts.prefix_entries permutes them,
so the canonical state is PEFT's. Positions after the prefix start at n_prefix, as
Hugging Face models number tokens after a cache (forward.run applies it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind, TrainSetup
from unified_prompt.errors import CapabilityError
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.layouts import prefix_entries, prefix_shape
from unified_prompt_paddle.methods import init
from unified_prompt_paddle.methods.bindings import Bindings, bind, load_state
from unified_prompt_paddle.runtime import paddlenlp


def encoder_postprocess_past_key_value(past_key_values: Any) -> list[tuple[Any, Any]]:
    """(bs, n, layers*2, heads, head_dim) -> per layer (k, v) of (bs, heads, n, head_dim),
    the cache paddle's nn.TransformerEncoder (BERT, ERNIE) continues from."""
    from unified_prompt_paddle.runtime import paddle

    keys, values = paddle().transpose(past_key_values, perm=[2, 0, 3, 1, 4]).split(2)
    return list(zip(keys, values, strict=True))


def build(model: PaddleModel, config: dict[str, Any]) -> tuple[PaddleModel, Bindings]:
    peft = paddlenlp().peft
    from paddlenlp.peft.prefix import llama_postprocess_past_key_value

    if model.arch.model_type in ("llama", "gpt2"):  # both cache (bs, n, heads, head_dim)
        postprocess = llama_postprocess_past_key_value
    elif model.kind == ModelKind.MASKED:
        postprocess = encoder_postprocess_past_key_value
    elif model.kind == ModelKind.SEQ2SEQ:
        raise CapabilityError(f"prefix tuning on {model.arch.model_type}: paddlenlp 2.8's "
                              "PrefixModelForCausalLM has no encoder-decoder form (it feeds one "
                              "decoder-only cache); use lora or prompt_tuning")
    else:
        raise CapabilityError(f"prefix tuning is not mapped for {model.arch.model_type}")

    layers, kv_heads, _ = prefix_shape(model.hf_config)
    heads = int(model.hf_config["num_attention_heads"])
    prefix_config = peft.PrefixConfig(
        num_prefix_tokens=int(config["num_virtual_tokens"]), num_attention_heads=heads,
        multi_query_group_num=kv_heads if kv_heads != heads else None,
        num_hidden_layers=layers, hidden_size=model.hidden_size,
        prefix_projection=bool(config.get("projection")),
        prefix_projection_hidden_size=int(config.get("projection_hidden") or 1),
        prefix_dropout=0.0, dtype="float32")
    # paddlenlp's prefix container; the paddle backend calls the network itself (forward.run)
    prefix = peft.PrefixModelForCausalLM(model.net, prefix_config, postprocess)
    handle = model.derive(prefix=prefix, method="prefix_tuning", method_config=dict(config))
    return handle, bind(prefix.prefix_encoder, prefix_entries(config, model.hf_config))


def attach(model: PaddleModel, setup: TrainSetup, rng: np.random.Generator
           ) -> tuple[PaddleModel, Bindings]:
    spec = setup.method
    config = {"num_virtual_tokens": spec.num_virtual_tokens, "projection": spec.projection,
              "projection_hidden": spec.projection_hidden}
    handle, bindings = build(model, config)
    for name in sorted(bindings):
        shape = bindings[name].canonical_shape
        if name == "prefix.embedding":
            value = rng.standard_normal(shape).astype(np.float32)  # torch Embedding's N(0, 1)
        elif name.endswith("weight"):
            value, _ = init.linear(rng, shape[0], shape[1])
        else:
            n_in = bindings[name[: -len("bias")] + "weight"].canonical_shape[1]
            _, value = init.linear(rng, shape[0], n_in)
        bindings[name].load(value)
    return handle, bindings


def from_state(model: PaddleModel, config: dict[str, Any], state: dict[str, np.ndarray]
               ) -> PaddleModel:
    handle, bindings = build(model, config)
    load_state(bindings, state)
    handle.prefix.prefix_encoder.eval()
    return handle
