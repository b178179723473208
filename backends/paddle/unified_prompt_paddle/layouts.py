"""Canonical name <-> paddle-native name, per method: the single table, numpy only.

The training session binds these entries to live parameters; the adapter writer and
reader, and the converter, apply them to arrays in files. Native names are those of the
paddle layer holding the weights (the network for LoRA and full fine-tuning, paddlenlp's
prefix encoder, our SoftPrompts layer), i.e. the keys of the .pdparams files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unified_prompt.methods import SOFT_SLOT_METHODS
from unified_prompt_paddle.architectures import Architecture, Rule, module_map


@dataclass(frozen=True)
class Entry:
    """canonical (torch layout) = take(transpose?(native), perm, axis=perm_axis)."""

    canonical: str
    native: str
    transpose: bool = False
    perm: np.ndarray | None = None
    perm_axis: int = 0

    def to_canonical(self, native: np.ndarray) -> np.ndarray:
        v = np.asarray(native, dtype=np.float32)
        if self.transpose:
            v = v.T
        if self.perm is not None:
            v = np.take(v, self.perm, axis=self.perm_axis)
        return np.ascontiguousarray(v)

    def to_native(self, canonical: np.ndarray) -> np.ndarray:
        v = np.asarray(canonical, dtype=np.float32)
        if self.perm is not None:
            inverse = np.empty_like(self.perm)
            inverse[self.perm] = np.arange(len(self.perm))
            v = np.take(v, inverse, axis=self.perm_axis)
        if self.transpose:
            v = v.T
        return np.ascontiguousarray(v)


# -- per method ------------------------------------------------------------------------
def soft_entries(config: dict[str, Any]) -> list[Entry]:
    """config: {"soft": {"counts": {slot: n}, "encoder": None|"mlp"|"lstm"}}."""
    soft = config["soft"]
    encoder = soft.get("encoder")
    out: list[Entry] = []
    for slot in sorted(int(s) for s in soft["counts"]):
        if encoder is None:
            out.append(Entry(f"soft.{slot}", f"embedding_{slot}"))
            continue
        out.append(Entry(f"soft.{slot}.embedding", f"embedding_{slot}"))
        names: list[str] = []
        if encoder == "lstm":
            for layer in range(2):
                for suffix in ("", "_reverse"):
                    names += [f"lstm_head.{k}_l{layer}{suffix}"
                              for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            linears = (0, 2)
        else:
            linears = (0, 2, 4)
        out += [Entry(f"soft.{slot}.encoder.{n}", f"encoder_{slot}.{n}") for n in names]
        for idx in linears:
            out.append(Entry(f"soft.{slot}.encoder.mlp_head.{idx}.weight",
                             f"encoder_{slot}.mlp_head.{idx}.weight", transpose=True))
            out.append(Entry(f"soft.{slot}.encoder.mlp_head.{idx}.bias",
                             f"encoder_{slot}.mlp_head.{idx}.bias"))
    return out


def prefix_shape(hf: dict[str, Any]) -> tuple[int, int, int]:
    """(layers, kv_heads, head_dim) of a decoder's key/value cache."""
    heads = int(hf["num_attention_heads"])
    kv = int(hf.get("num_key_value_heads") or heads)
    head_dim = int(hf.get("head_dim") or int(hf["hidden_size"]) // heads)
    return int(hf["num_hidden_layers"]), kv, head_dim


def prefix_perm(hf: dict[str, Any]) -> np.ndarray:
    """perm[k] = paddlenlp's column for PEFT's column k.

    paddlenlp lays a token's prefix out as (2, layers, kv_heads, head_dim) (all keys, then
    all values); PEFT as (layers, 2, kv_heads, head_dim).
    """
    layers, kv_heads, head_dim = prefix_shape(hf)
    width = kv_heads * head_dim
    out = np.empty(layers * 2 * width, dtype=np.int64)
    for layer in range(layers):
        for kv in range(2):
            canon = (2 * layer + kv) * width
            native = (kv * layers + layer) * width
            out[canon:canon + width] = np.arange(native, native + width)
    return out


def prefix_entries(config: dict[str, Any], hf: dict[str, Any]) -> list[Entry]:
    """Names in paddlenlp's prefix encoder: nn.Sequential(embedding[, proj0, tanh, proj1])."""
    perm = prefix_perm(hf)
    if not config.get("projection"):
        return [Entry("prefix.embedding", "0.weight", perm=perm, perm_axis=1)]
    return [Entry("prefix.embedding", "0.weight"),
            Entry("prefix.transform.0.weight", "1.weight", transpose=True),
            Entry("prefix.transform.0.bias", "1.bias"),
            Entry("prefix.transform.2.weight", "3.weight", transpose=True, perm=perm),
            Entry("prefix.transform.2.bias", "3.bias", perm=perm)]


def lora_entries(config: dict[str, Any], rules: list[Rule]) -> list[Entry]:
    """config["target_modules"]: Hugging Face module paths. B's rows are output features,
    permuted like the wrapped weight's (GPT-2's fused q/k/v)."""
    modules = module_map(rules)
    perms = {r.hf[: -len(".weight")]: r.out_perm for r in rules if r.linear}
    out: list[Entry] = []
    for hf in sorted(config["target_modules"]):
        native = modules[hf]
        out.append(Entry(f"lora.{hf}.A", f"{native}.lora_A", transpose=True))
        out.append(Entry(f"lora.{hf}.B", f"{native}.lora_B", transpose=True, perm=perms[hf]))
    return out


def full_entries(rules: list[Rule]) -> list[Entry]:
    return [Entry(r.hf, r.paddle, transpose=r.transpose, perm=r.out_perm,
                  perm_axis=r.perm_axis) for r in rules]


def entries(method: str, config: dict[str, Any], hf: dict[str, Any], arch: Architecture
            ) -> list[Entry]:
    if method in SOFT_SLOT_METHODS:
        return soft_entries(config)
    if method == "prefix_tuning":
        return prefix_entries(config, hf)
    if method == "lora":
        return lora_entries(config, arch.rules(hf))
    if method == "full":
        return full_entries(arch.rules(hf))
    raise ValueError(f"unknown method {method!r}")
