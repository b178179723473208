"""Loading a model folder (or alias) onto a device, and the facts ModelInfo reports.

Aliases resolve through `unified_prompt.assets.resolve_model` (which converts the shipped
GGUF once); anything else must be a local Hugging Face folder. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from unified_prompt.assets import tokenizer_checksum
from unified_prompt.backend import ModelInfo, ModelKind
from unified_prompt.errors import CapabilityError, ModelNotFoundError
from unified_prompt_hf.batching.tokenize import TextCodec
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.options import HFOptions

DEFAULT_MAX_LENGTH = 2048


def pick_device(options: HFOptions) -> torch.device:
    """The option's device, or the best one available."""
    want = options.device
    if want == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if want == "cuda" and not torch.cuda.is_available():
        raise CapabilityError("backend.options.hf.device is 'cuda' but torch sees no CUDA GPU")
    if want == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise CapabilityError("backend.options.hf.device is 'mps' but MPS is not available")
    return torch.device(want)


def pick_dtype(options: HFOptions, device: torch.device) -> torch.dtype:
    """bfloat16 on a GPU that supports it, else float32, unless the option says otherwise."""
    if options.dtype != "auto":
        return getattr(torch, options.dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def detect_kind(config: Any, forced: str) -> ModelKind:
    """Causal, masked or encoder-decoder, from the config's declared architecture (or the option)."""
    if forced != "auto":
        return ModelKind(forced)
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False) and (
            getattr(config, "model_type", "") in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES):
        return ModelKind.SEQ2SEQ
    for arch in getattr(config, "architectures", None) or []:
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return ModelKind.CAUSAL
        if arch.endswith("ForMaskedLM"):
            return ModelKind.MASKED
    model_type = getattr(config, "model_type", "")
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return ModelKind.CAUSAL
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return ModelKind.MASKED
    raise CapabilityError(f"model type {model_type!r} is neither a causal, a masked nor an "
                          "encoder-decoder LM; set backend.options.hf.kind if it is one")


def _max_length(options: HFOptions, config: Any, tokenizer: Any) -> int:
    if options.max_length is not None:
        return options.max_length
    limits = [DEFAULT_MAX_LENGTH]
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits)


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_model(ref: str, options: HFOptions) -> HFModel:
    """Resolve, load weights and tokenizer, move to the device, freeze (inference handle)."""
    from unified_prompt.assets import resolve_model

    path = resolve_model(ref, progress=False)
    _quiet()
    from transformers import AutoConfig, AutoTokenizer

    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"{ref}: not a usable Hugging Face model folder ({exc})") from exc
    kind = detect_kind(config, options.kind)
    device = pick_device(options)
    dtype = pick_dtype(options, device)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if options.attn_implementation != "auto":
        kwargs["attn_implementation"] = options.attn_implementation
    module = auto_class(kind).from_pretrained(path, **kwargs)
    module.to(device)
    module.eval()
    module.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    codec = TextCodec(tokenizer, causal=kind == ModelKind.CAUSAL)
    handle = HFModel(module=module, codec=codec, kind=kind, name=ref, path=Path(path),
                     device=device, dtype=dtype,
                     max_length=_max_length(options, config, tokenizer), options=options)
    if kind == ModelKind.SEQ2SEQ:
        from unified_prompt_hf.seq2seq import decoder_layout

        handle.shared["decoder_layout"] = lay = decoder_layout(module, tokenizer)
        if codec.special.mask is None and lay.sentinel is not None:  # T5: the mask is a sentinel
            codec.special = dataclasses.replace(codec.special, mask=lay.sentinel)
    handle.shared["total_params"] = count_params(module)
    if options.compile:
        handle.compiled = torch.compile(module, dynamic=True)
    return handle


def auto_class(kind: ModelKind) -> Any:
    """The transformers Auto class that loads a model of `kind` with its LM head."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

    return {ModelKind.CAUSAL: AutoModelForCausalLM, ModelKind.MASKED: AutoModelForMaskedLM,
            ModelKind.SEQ2SEQ: AutoModelForSeq2SeqLM}[kind]


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())




def model_info(handle: HFModel) -> ModelInfo:
    """Facts about the base model (cached: a checksum of a large folder costs a read)."""
    cached = handle.shared.get("info")
    if cached is not None:
        return cached
    from unified_prompt.assets import directory_checksum

    try:
        checksum: str | None = directory_checksum(handle.path)
    except Exception:  # a folder without weight files (e.g. sharded names) has no checksum
        checksum = None
    config = handle.module.config
    info = ModelInfo(
        name=handle.name, kind=handle.kind,
        total_params=handle.shared.get("total_params") or count_params(handle.module),
        checksum=checksum, tokenizer_checksum=tokenizer_checksum(handle.path),
        vocab_size=int(getattr(config, "vocab_size", 0) or handle.codec.vocab_size),
        extra={"architecture": (getattr(config, "architectures", None) or ["?"])[0],
               "model_type": getattr(config, "model_type", None), "path": str(handle.path),
               "device": str(handle.device), "dtype": str(handle.dtype).replace("torch.", ""),
               "max_length": handle.max_length})
    handle.shared["info"] = info
    return info
