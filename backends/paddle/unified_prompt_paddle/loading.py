"""Hugging Face folders (config.json + safetensors + tokenizer.json) into paddlenlp models.

The weights are the very arrays the hf backend loads, renamed and transposed by the
architecture's rules, so both frameworks compute the same function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind
from unified_prompt.errors import ModelNotFoundError
from unified_prompt_paddle.architectures import Architecture, Rule, architecture_for, read_config
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.layers import SoftOverlay, exact_layer_norms, make_tied_head
from unified_prompt_paddle.runtime import paddle, paddlenlp
from unified_prompt_paddle.tokenizer import TextTokenizer, load_tokenizer


def read_hf_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of model.safetensors (or its shards) as float32 numpy arrays."""
    from safetensors.numpy import load_file

    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise ModelNotFoundError(f"{folder}: no model.safetensors (the paddle backend loads "
                                 "safetensors checkpoints)")
    out: dict[str, np.ndarray] = {}
    for f in files:
        for k, v in load_file(str(f)).items():
            out[k] = v.astype(np.float32, copy=False)
    return out


def build_net(arch: Architecture, hf: dict[str, Any],
              state: dict[str, np.ndarray] | None = None) -> Any:
    """A paddlenlp model of the right shape holding `state` (paddle names and layouts).

    Built lazily and without paddlenlp's random init (10 s of Gaussians for a 135M model):
    parameters in `state` get their values directly; any others (BERT's unused pooler)
    are initialised normally.
    """
    pd = paddle()
    transformers = paddlenlp().transformers
    from paddlenlp.transformers.model_utils import no_init_weights

    config = getattr(transformers, arch.config_class)(**arch.paddle_config(hf))
    with no_init_weights(), pd.LazyGuard():
        net = getattr(transformers, arch.paddle_class)(config)
    set_state(net, state or {})
    for name, param in net.named_parameters():
        if not state or name not in state:
            param.initialize()
    if arch.model_type == "llama" and arch.tied(hf):
        net.lm_head = make_tied_head(net.get_input_embeddings())
    if arch.kind == ModelKind.MASKED:
        eps = float(hf.get("layer_norm_eps", 1e-12))
        for layer in net.sublayers():
            if isinstance(layer, pd.nn.LayerNorm):
                layer._epsilon = eps
    exact_layer_norms(net)
    return net


def _lookup(weights: dict[str, np.ndarray], name: str, base: str) -> np.ndarray | None:
    """A weight by its *ForMaskedLM/ForCausalLM name, or by the bare-model name."""
    if name in weights:
        return weights[name]
    if name.startswith(base + "."):
        return weights.get(name[len(base) + 1:])
    if name.startswith("model."):
        return weights.get(name[len("model."):])
    return None


def _missing_head(rule: Rule, hf: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """An MLM head the checkpoint lacks (sentence-embedding BERTs): seeded, like HF's init."""
    size = int(hf["hidden_size"])
    if rule.hf.endswith("LayerNorm.weight"):
        return np.ones(size, np.float32)
    if rule.hf.endswith("dense.weight"):
        std = float(hf.get("initializer_range", 0.02))
        return (rng.standard_normal((size, size)) * std).astype(np.float32)
    if rule.hf == "cls.predictions.bias":
        return np.zeros(int(hf["vocab_size"]), np.float32)
    return np.zeros(size, np.float32)


def hf_to_paddle_state(rules: list[Rule], weights: dict[str, np.ndarray], hf: dict[str, Any],
                       base: str, where: str = "") -> dict[str, np.ndarray]:
    from unified_prompt_paddle.layouts import full_entries

    state: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    for rule, entry in zip(rules, full_entries(rules), strict=True):
        value = _lookup(weights, rule.hf, base)
        if value is None:
            if rule.hf.startswith("cls.predictions."):
                value = _missing_head(rule, hf, rng)
            else:
                raise ModelNotFoundError(f"{where}: checkpoint has no {rule.hf}")
        state[rule.paddle] = entry.to_native(value)
    return state


def set_state(net: Any, state: dict[str, np.ndarray]) -> None:
    """Copy numpy arrays into the named parameters (as float32) and buffers (BART's
    final_logits_bias; a clone's buffers keep their own dtypes), shapes checked."""
    pd = paddle()
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    with pd.no_grad():
        for name, value in state.items():
            target = params.get(name)
            if target is not None:
                value = value.astype(np.float32, copy=False)
            else:
                target = buffers[name]
            if list(target.shape) != list(value.shape):
                raise ModelNotFoundError(f"{name}: checkpoint shape {list(value.shape)} != "
                                         f"model shape {list(target.shape)}")
            target.set_value(value)


def load_folder(folder: Path, *, max_length: int | None = None, name: str | None = None
                ) -> PaddleModel:
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder}: no config.json")
    hf = read_config(folder)
    arch = architecture_for(hf, str(folder))
    tokenizer = load_tokenizer(folder, hf)
    weights = read_hf_weights(folder)
    rules = arch.rules(hf)
    state = hf_to_paddle_state(rules, weights, hf, arch.base, str(folder))
    if arch.model_type == "bart":  # paddlenlp's own forward reads these two
        if "final_logits_bias" in weights:
            state["final_logits_bias"] = weights["final_logits_bias"]
        if arch.tied(hf):
            state["lm_head_weight"] = state["bart.shared.weight"]
    net = build_net(arch, hf, state)
    net.eval()
    for param in net.parameters():
        param.stop_gradient = True
    if arch.kind == ModelKind.SEQ2SEQ:  # tied copies (encoder.embed_tokens) counted once
        total = sum(int(weights[r.hf].size) for r in rules)
    else:
        total = sum(int(v.size) for k, v in weights.items()
                    if not (k == "lm_head.weight" and arch.tied(hf)))
    return PaddleModel(net=net, arch=arch, hf_config=hf, rules=rules, tokenizer=tokenizer,
                       folder=folder, name=name or str(folder),
                       max_length=max_length or default_max_length(hf, tokenizer),
                       overlay=SoftOverlay(net.get_input_embeddings()), total_params=total,
                       stop_ids=stop_ids(folder, arch, tokenizer),
                       decoder_layout=_decoder_layout(folder, arch, hf, tokenizer))


def _decoder_layout(folder: Path, arch: Architecture, hf: dict[str, Any],
                    tokenizer: TextTokenizer) -> Any:
    if arch.kind != ModelKind.SEQ2SEQ:
        return None
    from unified_prompt_paddle.seq2seq import read_layout

    return read_layout(folder, hf, tokenizer)


DEFAULT_MAX_LENGTH = 2048


def default_max_length(hf: dict[str, Any], tokenizer: TextTokenizer) -> int:
    """The model's position limit, the tokenizer's limit, and at most 2048 (the hf backend's rule)."""
    limits = [DEFAULT_MAX_LENGTH]
    for key in ("max_position_embeddings", "n_positions"):
        value = hf.get(key)
        if isinstance(value, int) and value > 0:
            limits.append(value)
    if tokenizer.model_max_length:
        limits.append(tokenizer.model_max_length)
    return min(limits)


def stop_ids(folder: Path, arch: Architecture, tokenizer: TextTokenizer) -> frozenset[int]:
    """Tokens that end generation: the tokenizer's EOS and generation_config.json's."""
    ids = {tokenizer.special.eos} if tokenizer.special.eos is not None else set()
    gen = folder / "generation_config.json"
    if gen.is_file():
        eos = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
        ids.update([eos] if isinstance(eos, int) else [int(e) for e in eos or []])
    if arch.kind == ModelKind.MASKED:
        special = tokenizer.special
        ids.update(t for t in (special.sep, special.cls, special.pad) if t is not None)
    return frozenset(int(i) for i in ids)


def clone_net(model: PaddleModel) -> Any:
    """A separate copy of the network's weights (LoRA and full fine-tuning change it)."""
    state = {name: p.numpy() for name, p in model.net.named_parameters()}
    state.update({name: b.numpy() for name, b in model.net.named_buffers()})
    return build_net(model.arch, model.hf_config, state)
