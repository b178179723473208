"""The hf backend's adapter folders (PEFT's format), read and written with safetensors.numpy.

Written exactly as the hf backend's method modules lay them out, so the hf backend (and plain
PEFT, where PEFT can express the method) loads a converted folder unchanged:
  lora           adapter_config.json + adapter_model.safetensors
  prefix_tuning  the same two files (prompt_embeddings = the prefix's key/values)
  prompt/p-tun.  soft_prompt.safetensors (soft.{slot} -> (n, hidden) vectors), and the PEFT
                 pair when the template has one soft slot (slot 0)
  full           a Hugging Face model folder (model.safetensors, config.json, tokenizer)
plus hf_adapter.json and, except full, trainable_state.safetensors (canonical names).
Reading also accepts a plain PEFT folder or a bare soft_prompt.safetensors.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.artifacts import read_json
from unified_prompt.errors import UserInputError
from unified_prompt.methods import SOFT_SLOT_METHODS
from unified_prompt_paddle.adapter_data import AdapterData, infer_config, write_json
from unified_prompt_paddle.architectures import Architecture
from unified_prompt_paddle.layouts import prefix_shape
from unified_prompt_paddle.numpy_encoders import prefix_flat, soft_outputs

META = "hf_adapter.json"
STATE = "trainable_state.safetensors"
SOFT = "soft_prompt.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_TYPES = {"LORA": "lora", "PROMPT_TUNING": "prompt_tuning", "P_TUNING": "p_tuning",
              "PREFIX_TUNING": "prefix_tuning"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt", "chat_template.jinja", "generation_config.json")


def is_hf_folder(path: Path) -> bool:
    return any((path / n).exists() for n in (META, PEFT_CONFIG, SOFT)) or \
        ((path / "config.json").exists() and (path / "model.safetensors").exists())


def _save(arrays: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()},
              str(path))


def _load(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}


# -- writing ---------------------------------------------------------------------------
def _task_type(arch: Architecture) -> str:
    return {"causal": "CAUSAL_LM", "seq2seq": "SEQ_2_SEQ_LM"}.get(arch.kind.value,
                                                                   "FEATURE_EXTRACTION")


def _prompt_config(peft_type: str, n: int, hf: dict[str, Any], arch: Architecture,
                   base_path: str | None, token_dim: int, heads: int, **extra: Any
                   ) -> dict[str, Any]:
    return {"peft_type": peft_type, "task_type": _task_type(arch), "num_virtual_tokens": n,
            "token_dim": token_dim, "num_transformer_submodules": 1,
            "num_attention_heads": heads, "num_layers": int(hf["num_hidden_layers"]),
            "base_model_name_or_path": base_path, "inference_mode": True, **extra}


def _write_meta(path: Path, method: str, **fields: Any) -> None:
    write_json(path / META, {"format": "unified-prompt-hf-adapter", "version": 1,
                             "method": method, **fields})


def soft_layout(arch: Architecture, add_bos: bool, slots: list[int]) -> str | None:
    """Where one leading slot sits relative to what PEFT prepends (the hf backend's rule)."""
    if slots != [0]:
        return None
    if arch.kind.value == "causal":
        return "after_bos" if add_bos else "exact"
    if arch.kind.value == "seq2seq":  # T5's encoder input starts with the soft tokens,
        return "after_cls" if add_bos else "exact"  # BART's with <s>
    return "after_cls"


def write(path: Path, data: AdapterData, hf: dict[str, Any], arch: Architecture, *,
          base_path: Path | None = None, add_bos: bool = False) -> None:
    """Write `data` as an hf-backend adapter folder (manifest.json is the caller's)."""
    path.mkdir(parents=True, exist_ok=True)
    base = str(base_path) if base_path else None
    method = data.method
    if method == "full":
        if base_path is None:
            raise UserInputError("converting a full fine-tune needs the base model folder")
        _save(data.state, path / "model.safetensors")
        shutil.copyfile(base_path / "config.json", path / "config.json")
        for name in TOKENIZER_FILES:
            if (base_path / name).exists():
                shutil.copyfile(base_path / name, path / name)
        _write_meta(path, "full", peft_files=False)
        return
    _save(data.state, path / STATE)
    if method == "lora":
        cfg = data.config
        weights = {}
        for module in cfg["target_modules"]:
            weights[f"base_model.model.{module}.lora_A.weight"] = data.state[f"lora.{module}.A"]
            weights[f"base_model.model.{module}.lora_B.weight"] = data.state[f"lora.{module}.B"]
        _save(weights, path / PEFT_WEIGHTS)
        write_json(path / PEFT_CONFIG, {
            "peft_type": "LORA", "task_type": _task_type(arch), "r": int(cfg["r"]),
            "lora_alpha": cfg["alpha"], "lora_dropout": float(cfg.get("dropout", 0.0)),
            "target_modules": sorted(cfg["target_modules"]), "bias": "none",
            "fan_in_fan_out": False, "inference_mode": True, "base_model_name_or_path": base})
        _write_meta(path, "lora", peft_files=True)
    elif method == "prefix_tuning":
        _, kv_heads, head_dim = prefix_shape(hf)
        cfg = data.config
        _save({"prompt_embeddings": prefix_flat(data.state)}, path / PEFT_WEIGHTS)
        write_json(path / PEFT_CONFIG, _prompt_config(
            "PREFIX_TUNING", int(cfg["num_virtual_tokens"]), hf, arch, base,
            kv_heads * head_dim, kv_heads, prefix_projection=bool(cfg.get("projection")),
            encoder_hidden_size=int(cfg.get("projection_hidden") or kv_heads * head_dim)))
        _write_meta(path, "prefix_tuning", n_tokens=int(cfg["num_virtual_tokens"]),
                    peft_files=True)
    elif method in SOFT_SLOT_METHODS:
        outputs = soft_outputs(data.state)
        _save({f"soft.{k}": v for k, v in outputs.items()}, path / SOFT)
        layout = soft_layout(arch, add_bos, sorted(outputs))
        if layout is not None:
            n = int(outputs[0].shape[0])
            hidden = int(hf["hidden_size"])
            extra: dict[str, Any] = {}
            peft_type = "PROMPT_TUNING"
            encoder = data.config["soft"].get("encoder")
            if method == "p_tuning" and encoder:
                peft_type = "P_TUNING"
                extra = {"encoder_reparameterization_type": encoder.upper(),
                         "encoder_hidden_size": int(data.config.get("encoder_hidden") or 0)}
            write_json(path / PEFT_CONFIG, _prompt_config(
                peft_type, n, hf, arch, base, hidden, int(hf["num_attention_heads"]), **extra))
            _save({"prompt_embeddings": outputs[0]}, path / PEFT_WEIGHTS)
        _write_meta(path, method, slots={str(k): int(v.shape[0]) for k, v in outputs.items()},
                    peft_files=layout is not None, peft_layout=layout)
    else:
        raise UserInputError(f"unknown adapter method {method!r}")


# -- reading ---------------------------------------------------------------------------
def folder_method(path: Path) -> str:
    """The method of an hf-format folder: hf_adapter.json, PEFT's type, or a model."""
    if (path / META).exists():
        return str(read_json(path / META)["method"])
    if (path / PEFT_CONFIG).exists():
        peft_type = read_json(path / PEFT_CONFIG).get("peft_type")
        if peft_type not in PEFT_TYPES:
            raise UserInputError(f"{path}: PEFT adapter type {peft_type!r} is not supported")
        return PEFT_TYPES[peft_type]
    if (path / SOFT).exists():
        return "prompt_tuning"
    if (path / "config.json").exists():
        return "full"
    raise UserInputError(f"{path}: not an adapter folder")


def _state_from_peft(path: Path, method: str, full_names: set[str]) -> dict[str, np.ndarray]:
    if method == "full":
        files = sorted(path.glob("model*.safetensors"))
        if not files:
            raise UserInputError(f"{path}: a full fine-tune folder without model.safetensors")
        weights: dict[str, np.ndarray] = {}
        for f in files:
            weights.update(_load(f))
        return {k: v for k, v in weights.items() if k in full_names}
    if method in SOFT_SLOT_METHODS:
        if (path / SOFT).exists():
            return dict(_load(path / SOFT))
        return {"soft.0": _load(path / PEFT_WEIGHTS)["prompt_embeddings"]}
    weights = _load(path / PEFT_WEIGHTS)
    if method == "prefix_tuning":
        return {"prefix.embedding": weights["prompt_embeddings"]}
    state: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        name = key.removeprefix("base_model.model.")
        for part, short in ((".lora_A.weight", "A"), (".lora_B.weight", "B"),
                            (".lora_A.default.weight", "A"), (".lora_B.default.weight", "B")):
            if name.endswith(part):
                state[f"lora.{name[: -len(part)]}.{short}"] = value
    return state


def read(path: Path, hf: dict[str, Any], arch: Architecture) -> AdapterData:
    method = folder_method(path)
    full_names = {r.hf for r in arch.rules(hf)}
    if method != "full" and (path / STATE).exists():
        state = _load(path / STATE)
    else:
        state = _state_from_peft(path, method, full_names)
    if method == "full":
        missing = sorted(full_names - set(state))
        if missing:
            raise UserInputError(f"{path}: full fine-tune lacks {missing[:3]}")
    hints: dict[str, Any] = {}
    if (path / PEFT_CONFIG).exists():
        peft = read_json(path / PEFT_CONFIG)
        hints = {"alpha": peft.get("lora_alpha"), "dropout": peft.get("lora_dropout", 0.0),
                 "projection_hidden": peft.get("encoder_hidden_size")}
    return AdapterData(method, infer_config(method, state, hints), state)
