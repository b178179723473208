"""Tiny GPT-2 and ERNIE folders, beside the core's tiny Llama and BERT (unified_prompt.testing.tiny).

Written with numpy as ordinary Hugging Face folders, beside the core's tiny models and with
their real tokenizers (GPT-2 reuses the tiny Llama's byte-level BPE, ERNIE the tiny BERT's
WordPiece), so the hf backend loads the same weights and the two frameworks can be compared.
Biases are random, not zero, so a wrong q/k/v permutation cannot hide.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import numpy as np

Kind = Literal["llama", "bert", "gpt2", "ernie"]
VERSION = 1

GPT2 = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 32, "n_layer": 2,
        "n_head": 4, "n_positions": 256, "n_inner": None, "activation_function": "gelu_new",
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
        "tie_word_embeddings": True, "torch_dtype": "float32"}
ERNIE = {"architectures": ["ErnieForMaskedLM"], "model_type": "ernie", "hidden_size": 32,
         "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
         "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
         "layer_norm_eps": 1e-12, "pad_token_id": 0, "initializer_range": 0.02,
         "use_task_id": True, "task_type_vocab_size": 3, "tie_word_embeddings": True,
         "torch_dtype": "float32"}


def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.02).astype(np.float32)


def _ln(rng: np.random.Generator, prefix: str, h: int) -> dict[str, np.ndarray]:
    return {prefix + ".weight": (1 + _w(rng, h)), prefix + ".bias": _w(rng, h)}


def _gpt2(cfg: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    h, v = cfg["n_embd"], cfg["vocab_size"]
    t = "transformer."
    out = {t + "wte.weight": _w(rng, v, h), t + "wpe.weight": _w(rng, cfg["n_positions"], h),
           **_ln(rng, t + "ln_f", h)}
    for i in range(cfg["n_layer"]):
        p = f"{t}h.{i}."
        out |= {**_ln(rng, p + "ln_1", h), **_ln(rng, p + "ln_2", h),
                p + "attn.c_attn.weight": _w(rng, h, 3 * h), p + "attn.c_attn.bias": _w(rng, 3 * h),
                p + "attn.c_proj.weight": _w(rng, h, h), p + "attn.c_proj.bias": _w(rng, h),
                p + "mlp.c_fc.weight": _w(rng, h, 4 * h), p + "mlp.c_fc.bias": _w(rng, 4 * h),
                p + "mlp.c_proj.weight": _w(rng, 4 * h, h), p + "mlp.c_proj.bias": _w(rng, h)}
    return out


def _ernie(cfg: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    e = "ernie.embeddings."
    out = {e + "word_embeddings.weight": _w(rng, v, h),
           e + "position_embeddings.weight": _w(rng, cfg["max_position_embeddings"], h),
           e + "token_type_embeddings.weight": _w(rng, cfg["type_vocab_size"], h),
           e + "task_type_embeddings.weight": _w(rng, cfg["task_type_vocab_size"], h),
           **_ln(rng, e + "LayerNorm", h)}

    def dense(prefix: str, n_out: int, n_in: int) -> dict[str, np.ndarray]:
        return {prefix + ".weight": _w(rng, n_out, n_in), prefix + ".bias": _w(rng, n_out)}

    for i in range(cfg["num_hidden_layers"]):
        p = f"ernie.encoder.layer.{i}."
        out |= {**dense(p + "attention.self.query", h, h), **dense(p + "attention.self.key", h, h),
                **dense(p + "attention.self.value", h, h),
                **dense(p + "attention.output.dense", h, h),
                **_ln(rng, p + "attention.output.LayerNorm", h),
                **dense(p + "intermediate.dense", inter, h), **dense(p + "output.dense", h, inter),
                **_ln(rng, p + "output.LayerNorm", h)}
    out |= {**dense("cls.predictions.transform.dense", h, h),
            **_ln(rng, "cls.predictions.transform.LayerNorm", h),
            "cls.predictions.bias": _w(rng, v)}
    return out


def tiny_model(kind: Kind, *, seed: int = 0) -> Path:
    """The cached tiny `kind` folder, built on first use beside the core's tiny models
    (llama and bert are the core's own)."""
    from safetensors.numpy import save_file

    from unified_prompt.artifacts import atomic_dir
    from unified_prompt.assets import cache_root
    from unified_prompt.testing.tiny import tiny_model as core_tiny

    if kind in ("llama", "bert"):
        return core_tiny(kind, seed=seed)  # type: ignore[arg-type]
    dest = cache_root() / "tiny" / f"{kind}-paddle-v{VERSION}-seed{seed}"
    if (dest / "model.safetensors").exists():
        return dest
    source = core_tiny("llama" if kind == "gpt2" else "bert")
    with atomic_dir(dest) as tmp:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "vocab.txt"):
            if (source / name).exists():
                shutil.copyfile(source / name, tmp / name)
        vocab = json.loads((source / "config.json").read_text(encoding="utf-8"))["vocab_size"]
        cfg = {**(GPT2 if kind == "gpt2" else ERNIE), "vocab_size": vocab}
        rng = np.random.default_rng(seed)
        weights = _gpt2(cfg, rng) if kind == "gpt2" else _ernie(cfg, rng)
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return dest
