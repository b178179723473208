"""This backend's adapter folders, read and written with numpy (and pickle, for writing).

  lora           lora_config.json + lora_model_state.pdparams  (paddlenlp LoRAModel's files:
                 `LoRAModel.from_pretrained(model, folder)` loads them as they are)
  prefix_tuning  prefix_config.json + prefix_model_state.pdparams + pre_caches.npy
                 (PrefixModelForCausalLM's files)
  prompt/p-tun.  soft_prompt_state.pdparams (our SoftPrompts layer's state)
  full           model_state.pdparams (the network's paddle names and layout)
plus unified_prompt_paddle.json (method and settings). A .pdparams file is a pickled dict
of numpy arrays, which `paddle.load` reads; we read it back with an unpickler that builds
numpy arrays and nothing else (pdparams.py), since adapter folders come from anyone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.errors import UserInputError
from unified_prompt.untrusted import check_links_inside, read_json_object
from unified_prompt_paddle.adapter_data import AdapterData, write_json
from unified_prompt_paddle.architectures import Architecture, module_map
from unified_prompt_paddle.layouts import entries, prefix_shape
from unified_prompt_paddle.numpy_encoders import prefix_flat
from unified_prompt_paddle.pdparams import load_arrays, save_arrays

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
    save_arrays(path / WEIGHTS[data.method], native)
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
    name = LORA_CONFIG if (path / LORA_CONFIG).exists() else PREFIX_CONFIG
    cfg = read_json_object(path / name)
    try:
        if name == LORA_CONFIG:
            patterns = cfg["target_modules"]
            patterns = [patterns] if isinstance(patterns, str) else list(patterns)
            chosen = [h for h, p in module_map(arch.rules(hf)).items()
                      if any(re.fullmatch(str(pat), p) for pat in patterns)]
            if not chosen:
                raise UserInputError(f"{path / name}: target_modules {patterns} match no "
                                     f"module of this {arch.model_type} model")
            return "lora", {"r": int(cfg["r"]), "alpha": float(cfg["lora_alpha"]),
                            "dropout": float(cfg.get("lora_dropout", 0.0)),
                            "target_modules": sorted(chosen)}
        return "prefix_tuning", {"num_virtual_tokens": int(cfg["num_prefix_tokens"]),
                                 "projection": bool(cfg.get("prefix_projection")),
                                 "projection_hidden": int(cfg.get("prefix_projection_hidden_size")
                                                          or 0)}
    except KeyError as exc:
        raise UserInputError(f"{path / name}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError, re.error) as exc:
        raise UserInputError(f"{path / name}: a value has the wrong type ({exc})") from None


def _check_config(path: Path, method: str, config: Any, hf: dict[str, Any],
                  arch: Architecture) -> None:
    if method not in WEIGHTS:
        raise UserInputError(f"{path}: unknown adapter method {method!r}")
    if not isinstance(config, dict):
        raise UserInputError(f"{path / META}: config must be an object")
    if method == "lora":
        known = module_map(arch.rules(hf))
        targets = config.get("target_modules")
        if not isinstance(targets, list) or not targets:
            raise UserInputError(f"{path}: lora target_modules must be a non-empty list")
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise UserInputError(f"{path}: target_modules {unknown[:3]} are not modules of this "
                                 f"{arch.model_type} model (known: {', '.join(sorted(known)[:4])}"
                                 ", ...)")


def _check_lora_rank(path: Path, config: dict[str, Any], native: dict[str, np.ndarray],
                     table: list[Any]) -> None:
    """A and B must share the configured rank (paddle's layout: A (in, r), B (r, out))."""
    r = int(config.get("r", 0))
    for e in table:
        value = native[e.native]
        rank = value.shape[1] if e.native.endswith("lora_A") and value.ndim == 2 else \
            value.shape[0] if value.ndim == 2 else None
        if rank != r:
            raise UserInputError(f"{path}: {e.native} has shape {list(value.shape)}, which does "
                                 f"not fit rank r={r}")


def read(path: Path, hf: dict[str, Any], arch: Architecture) -> AdapterData:
    check_links_inside(path)
    if (path / META).exists():
        meta = read_json_object(path / META)
        if meta.get("format") != FORMAT:
            raise UserInputError(f"{path / META}: not a paddle adapter description")
        method, config = meta.get("method"), meta.get("config")
    else:
        method, config = _bare_config(path, hf, arch)
    _check_config(path, method, config, hf, arch)
    native = load_arrays(path / WEIGHTS[method])
    try:
        table = entries(method, config, hf, arch)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserInputError(f"{path}: the adapter settings do not fit this model ({exc})") \
            from None
    missing = [e.native for e in table if e.native not in native]
    if missing:
        raise UserInputError(f"{path}: adapter weights lack {missing[:3]}")
    if method == "lora":
        _check_lora_rank(path, config, native, table)
    try:
        state = {e.canonical: e.to_canonical(native[e.native]) for e in table}
    except (ValueError, IndexError) as exc:
        raise UserInputError(f"{path}: adapter weights have the wrong shape ({exc})") from None
    return AdapterData(method, config, state)
