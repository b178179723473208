"""This backend's adapter folders, read and written with numpy and pickle only.

  lora           lora_config.json + lora_model_state.pdparams  (paddlenlp LoRAModel's files:
                 `LoRAModel.from_pretrained(model, folder)` loads them as they are)
  prefix_tuning  prefix_config.json + prefix_model_state.pdparams + pre_caches.npy
                 (PrefixModelForCausalLM's files)
  prompt/p-tun.  soft_prompt_state.pdparams (our SoftPrompts layer's state)
  full           model_state.pdparams (the network's paddle names and layout)
plus unified_prompt_paddle.json (method and settings). A .pdparams file is a pickled dict
of numpy arrays, which `paddle.load` reads.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.artifacts import read_json
from unified_prompt.errors import UserInputError
from unified_prompt_paddle.adapter_data import AdapterData, write_json
from unified_prompt_paddle.architectures import Architecture, module_map
from unified_prompt_paddle.layouts import entries, prefix_shape
from unified_prompt_paddle.numpy_encoders import prefix_flat

META = "unified_prompt_paddle.json"
FORMAT = "unified-prompt-paddle-adapter"
LORA_CONFIG, LORA_WEIGHTS = "lora_config.json", "lora_model_state.pdparams"
PREFIX_CONFIG, PREFIX_WEIGHTS = "prefix_config.json", "prefix_model_state.pdparams"
PREFIX_CACHE = "pre_caches.npy"
SOFT_WEIGHTS = "soft_prompt_state.pdparams"
FULL_WEIGHTS = "model_state.pdparams"

WEIGHTS = {"lora": LORA_WEIGHTS, "prefix_tuning": PREFIX_WEIGHTS, "prompt_tuning": SOFT_WEIGHTS,
           "p_tuning": SOFT_WEIGHTS, "full": FULL_WEIGHTS}


def is_paddle_folder(path: Path) -> bool:
    return (path / META).exists() or (path / LORA_CONFIG).exists() or \
        (path / PREFIX_CONFIG).exists()


def _save_pdparams(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        pickle.dump({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()},
                    fh, protocol=4)


def _load_pdparams(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise UserInputError(f"{path}: missing adapter weights")
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    return {k: np.asarray(v) for k, v in data.items() if isinstance(v, np.ndarray)}


# -- writing ---------------------------------------------------------------------------
def lora_config_json(data: AdapterData, hf: dict[str, Any], arch: Architecture,
                     base_name: str | None) -> dict[str, Any]:
    modules = module_map(arch.rules(hf))
    cfg = data.config
    return {"r": int(cfg["r"]), "lora_alpha": float(cfg["alpha"]),
            "lora_dropout": float(cfg.get("dropout", 0.0)),
            "target_modules": [re.escape(modules[m]) for m in cfg["target_modules"]],
            "trainable_modules": None, "trainable_bias": None, "enable_lora_list": None,
            "merge_weights": False, "tensor_parallel_degree": -1, "dtype": "float32",
            "head_dim": None, "do_qat": False, "rslora": False, "pissa": False,
            "lora_plus_scale": 1.0, "use_quick_lora": False,
            "base_model_name_or_path": base_name,
            "scaling": float(cfg["alpha"]) / int(cfg["r"])}


def prefix_config_json(data: AdapterData, hf: dict[str, Any]) -> dict[str, Any]:
    layers, kv_heads, _ = prefix_shape(hf)
    heads = int(hf["num_attention_heads"])
    cfg = data.config
    return {"prefix_dropout": 0.0, "num_prefix_tokens": int(cfg["num_virtual_tokens"]),
            "num_attention_heads": heads,
            "multi_query_group_num": kv_heads if kv_heads != heads else None,
            "num_hidden_layers": layers, "hidden_size": int(hf["hidden_size"]),
            "prefix_projection": bool(cfg.get("projection")),
            "prefix_projection_hidden_size": int(cfg.get("projection_hidden") or 0) or None,
            "tensor_parallel_degree": -1, "dtype": "float32"}


def pre_caches(data: AdapterData, hf: dict[str, Any]) -> np.ndarray:
    """(layers, 2, kv_heads, n, head_dim): what paddlenlp's save_pretrained writes."""
    layers, kv_heads, head_dim = prefix_shape(hf)
    flat = prefix_flat(data.state)  # PEFT order: (n, layers, 2, kv_heads, head_dim)
    n = flat.shape[0]
    return flat.reshape(n, layers, 2, kv_heads, head_dim).transpose(1, 2, 3, 0, 4)


def write(path: Path, data: AdapterData, hf: dict[str, Any], arch: Architecture,
          base_name: str | None = None) -> None:
    """Write `data` as a paddle-native adapter folder (manifest.json is the caller's)."""
    path.mkdir(parents=True, exist_ok=True)
    table = entries(data.method, data.config, hf, arch)
    missing = [e.canonical for e in table if e.canonical not in data.state]
    if missing:
        raise UserInputError(f"adapter state lacks {missing[:3]}")
    native = {e.native: e.to_native(data.state[e.canonical]) for e in table}
    _save_pdparams(path / WEIGHTS[data.method], native)
    if data.method == "lora":
        write_json(path / LORA_CONFIG, lora_config_json(data, hf, arch, base_name))
    elif data.method == "prefix_tuning":
        write_json(path / PREFIX_CONFIG, prefix_config_json(data, hf))
        np.save(path / PREFIX_CACHE, pre_caches(data, hf))
    write_json(path / META, {"format": FORMAT, "version": 1, "method": data.method,
                             "config": data.config, "model_type": arch.model_type})


# -- reading ---------------------------------------------------------------------------
def _bare_config(path: Path, hf: dict[str, Any], arch: Architecture) -> tuple[str, dict]:
    """Method and settings of a folder paddlenlp wrote (no unified_prompt_paddle.json)."""
    if (path / LORA_CONFIG).exists():
        cfg = read_json(path / LORA_CONFIG)
        patterns = cfg["target_modules"]
        patterns = [patterns] if isinstance(patterns, str) else patterns
        chosen = [h for h, p in module_map(arch.rules(hf)).items()
                  if any(re.fullmatch(pat, p) for pat in patterns)]
        return "lora", {"r": int(cfg["r"]), "alpha": float(cfg["lora_alpha"]),
                        "dropout": float(cfg.get("lora_dropout", 0.0)),
                        "target_modules": sorted(chosen)}
    cfg = read_json(path / PREFIX_CONFIG)
    return "prefix_tuning", {"num_virtual_tokens": int(cfg["num_prefix_tokens"]),
                             "projection": bool(cfg.get("prefix_projection")),
                             "projection_hidden": int(cfg.get("prefix_projection_hidden_size")
                                                      or 0)}


def read(path: Path, hf: dict[str, Any], arch: Architecture) -> AdapterData:
    if (path / META).exists():
        meta = read_json(path / META)
        if meta.get("format") != FORMAT:
            raise UserInputError(f"{path / META}: not a paddle adapter description")
        method, config = meta["method"], meta["config"]
    else:
        method, config = _bare_config(path, hf, arch)
    native = _load_pdparams(path / WEIGHTS[method])
    table = entries(method, config, hf, arch)
    missing = [e.native for e in table if e.native not in native]
    if missing:
        raise UserInputError(f"{path}: adapter weights lack {missing[:3]}")
    state = {e.canonical: e.to_canonical(native[e.native]) for e in table}
    return AdapterData(method, config, state)
