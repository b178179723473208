"""Adapter folders in PEFT's own format, plus the files other tools need, and loading them.

What a folder holds, by method:
  lora            adapter_config.json + adapter_model.safetensors (PeftModel.save_pretrained)
  prefix_tuning   the same two files (prompt_embeddings = the prefix's key/values)
  prompt_tuning,  soft_prompt.safetensors: soft.{slot} -> (n, hidden) raw embeddings, every
  p_tuning        slot; and, when the template has one leading slot, the PEFT pair too
  full            a whole Hugging Face model folder (save_pretrained + tokenizer)
Every folder also has hf_adapter.json (what the backend needs to load it back) and, except
full, trainable_state.safetensors under the canonical names (what another backend loads).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from unified_prompt.errors import UserInputError
from unified_prompt_hf.handle import HFModel

META_FILE = "hf_adapter.json"
SOFT_FILE = "soft_prompt.safetensors"
STATE_FILE = "trainable_state.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"


# -- saving ------------------------------------------------------------------------------
def _write_meta(path: Path, method: str, **fields: Any) -> None:
    data = {"format": "unified-prompt-hf-adapter", "version": 1, "method": method, **fields}
    (path / META_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _save_state(path: Path, params: dict[str, torch.nn.Parameter]) -> None:
    from safetensors.torch import save_file

    save_file({k: p.detach().float().cpu().contiguous() for k, p in params.items()},
              str(path / STATE_FILE))


def leading_layout(handle: HFModel) -> str | None:
    """How a single slot-0 soft prompt sits, as PEFT (which prepends it) would see it.

    "exact": first in the input, so plain PEFT reproduces our numbers; "after_cls": a
    masked LM's [CLS] comes first (PEFT puts the soft tokens before it); None: not one
    leading slot, so PEFT's format cannot express the layout.
    """
    soft = handle.soft
    if soft is None or list(soft.counts()) != [0]:
        return None
    if handle.causal:
        return "after_bos" if handle.codec.special.add_bos else "exact"
    return "after_cls"


def save_soft_adapter(handle: HFModel, path: Path, method: str,
                      params: dict[str, torch.nn.Parameter]) -> None:
    """soft_prompt.safetensors for any layout; PEFT's files for one leading slot."""
    from peft import PromptEncoderConfig, PromptTuningConfig
    from safetensors.torch import save_file

    from unified_prompt_hf.methods.common import prompt_config

    assert handle.soft is not None
    with torch.no_grad(), handle.evaluating():
        outputs = {k: v.detach().float().cpu().contiguous()
                   for k, v in handle.soft.embeddings().items()}
    save_file({f"soft.{k}": v for k, v in outputs.items()}, str(path / SOFT_FILE))
    _save_state(path, params)
    layout = leading_layout(handle)
    if layout is not None:
        n = outputs[0].shape[0]
        if method == "prompt_tuning":
            config = prompt_config(PromptTuningConfig, handle, n)
        else:
            enc = handle.soft.slots["0"].encoder
            config = prompt_config(PromptEncoderConfig, handle, n,
                                   encoder_reparameterization_type=enc.encoder_type,
                                   encoder_hidden_size=enc.hidden_size)
        config.save_pretrained(str(path))
        save_file({"prompt_embeddings": outputs[0]}, str(path / PEFT_WEIGHTS))
    _write_meta(path, method, slots={str(k): v.shape[0] for k, v in outputs.items()},
                peft_files=layout is not None, peft_layout=layout)


def save_prefix_adapter(handle: HFModel, path: Path,
                        params: dict[str, torch.nn.Parameter]) -> None:
    from safetensors.torch import save_file

    prefix = handle.prefix
    assert prefix is not None
    with torch.no_grad(), handle.evaluating():
        flat = prefix.flat().detach().float().cpu().contiguous()
    prefix.config.save_pretrained(str(path))
    save_file({"prompt_embeddings": flat}, str(path / PEFT_WEIGHTS))
    _save_state(path, params)
    _write_meta(path, "prefix_tuning", n_tokens=prefix.n_tokens, peft_files=True)


def save_lora_adapter(handle: HFModel, path: Path,
                      params: dict[str, torch.nn.Parameter]) -> None:
    handle.peft.save_pretrained(str(path))
    _save_state(path, params)
    _write_meta(path, "lora", peft_files=True)


def save_full_adapter(handle: HFModel, path: Path, state_dict: dict | None = None) -> None:
    """`state_dict`: the whole weights when the module's own are sharded (FSDP)."""
    handle.module.save_pretrained(str(path), state_dict=state_dict)
    handle.codec.tokenizer.save_pretrained(str(path))
    _write_meta(path, "full", peft_files=False)


# -- loading -----------------------------------------------------------------------------
def adapter_method(path: Path) -> str:
    """The method of an adapter folder: ours (hf_adapter.json), plain PEFT, or a model."""
    if (path / META_FILE).exists():
        return str(json.loads((path / META_FILE).read_text(encoding="utf-8"))["method"])
    if (path / PEFT_CONFIG).exists():
        peft_type = json.loads((path / PEFT_CONFIG).read_text(encoding="utf-8")).get("peft_type")
        names = {"LORA": "lora", "PROMPT_TUNING": "prompt_tuning", "P_TUNING": "p_tuning",
                 "PREFIX_TUNING": "prefix_tuning"}
        if peft_type in names:
            return names[peft_type]
        raise UserInputError(f"{path}: PEFT adapter type {peft_type!r} is not supported")
    if (path / SOFT_FILE).exists():
        return "prompt_tuning"
    if (path / "config.json").exists():
        return "full"
    raise UserInputError(f"{path}: not an adapter folder (no {META_FILE}, {PEFT_CONFIG}, "
                         f"{SOFT_FILE} or config.json)")


def _frozen_slot(handle: HFModel, weight: torch.Tensor) -> Any:
    """A loaded soft slot: peft's PromptEmbedding in inference mode holding the vectors."""
    from peft import PromptTuningConfig

    from unified_prompt_hf.methods.common import prompt_config
    from unified_prompt_hf.soft import SoftSlot

    n = int(weight.shape[0])
    config = prompt_config(PromptTuningConfig, handle, n, inference_mode=True)
    from peft import PromptEmbedding

    module = PromptEmbedding(config, handle.module.get_input_embeddings())
    module.embedding.weight = torch.nn.Parameter(weight.float(), requires_grad=False)
    return SoftSlot(module.to(handle.device), n)


def _load_soft(base: HFModel, path: Path, method: str) -> HFModel:
    from safetensors.torch import load_file

    from unified_prompt_hf.soft import SoftPrompts

    if (path / SOFT_FILE).exists():
        raw = load_file(str(path / SOFT_FILE))
        tables = {int(k.split(".")[1]): v for k, v in raw.items()}
    else:
        tables = {0: load_file(str(path / PEFT_WEIGHTS))["prompt_embeddings"]}
    slots = {k: _frozen_slot(base, v) for k, v in tables.items()}
    return base.derive(soft=SoftPrompts(slots), method=method)


def _load_prefix(base: HFModel, path: Path) -> HFModel:
    from peft import PrefixTuningConfig
    from safetensors.torch import load_file

    from unified_prompt_hf.methods.prefix import prefix_module

    config = PrefixTuningConfig.from_pretrained(str(path))
    config.inference_mode = True
    config.prefix_projection = False  # the saved values are already projected
    prefix = prefix_module(base, config)
    flat = load_file(str(path / PEFT_WEIGHTS))["prompt_embeddings"]
    prefix.encoder.embedding.weight = torch.nn.Parameter(flat.float().to(base.device),
                                                         requires_grad=False)
    return base.derive(prefix=prefix, method="prefix_tuning")


def _load_lora(base: HFModel, path: Path) -> HFModel:
    from peft import PeftModel

    from unified_prompt_hf.methods.common import shared_copy

    module = shared_copy(base.module)
    with warnings.catch_warnings():  # peft reads transformers' deprecated attribute
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = PeftModel.from_pretrained(module, str(path), is_trainable=False)
    peft_model.eval()
    return base.derive(module=peft_model.base_model.model, peft=peft_model, method="lora")


def _load_full(base: HFModel, path: Path) -> HFModel:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForCausalLM if base.causal else AutoModelForMaskedLM
    module = cls.from_pretrained(str(path), dtype=base.dtype, local_files_only=True)
    module.to(base.device).eval().requires_grad_(False)
    return base.derive(module=module, method="full")


def load_adapter(base: HFModel, path: Path) -> HFModel:
    """A new handle: `base` with the adapter at `path` applied (base itself unchanged)."""
    if not path.is_dir():
        raise UserInputError(f"{path}: no such adapter folder")
    method = adapter_method(path)
    if method in ("prompt_tuning", "p_tuning"):
        handle = _load_soft(base, path, method)
    elif method == "prefix_tuning":
        handle = _load_prefix(base, path)
    elif method == "lora":
        handle = _load_lora(base, path)
    else:
        handle = _load_full(base, path)
    return handle
