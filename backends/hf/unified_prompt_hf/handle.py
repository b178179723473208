"""The model handle the backend hands to the core: a base model plus any trained parts.

A handle is never changed in place by training or adapter loading: those build a new handle
(`derive`) that shares the frozen base weights, so the model the core loaded keeps giving
the same numbers.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_prompt.backend import ModelKind

if TYPE_CHECKING:
    import torch

    from unified_prompt_hf.batching.tokenize import TextCodec
    from unified_prompt_hf.options import HFOptions
    from unified_prompt_hf.prefix_cache import PrefixKV
    from unified_prompt_hf.soft import SoftPrompts


@dataclass
class HFModel:
    """A loaded model: the torch module, its tokenizer, and what was trained on top.

    module: the transformers model that is called (LoRA layers injected, for LoRA).
    soft: virtual-token embeddings per template slot (prompt tuning, P-tuning).
    prefix: trained key/value prefix (prefix tuning).
    peft: the PeftModel wrapper when peft injected layers (LoRA), kept for saving.
    """

    module: torch.nn.Module
    codec: TextCodec
    kind: ModelKind
    name: str
    path: Path
    device: torch.device
    dtype: torch.dtype
    max_length: int
    options: HFOptions
    method: str = "none"
    soft: SoftPrompts | None = None
    prefix: PrefixKV | None = None
    peft: Any = None
    compiled: Any = None
    autocast: torch.dtype | None = None
    collective: bool = False  # weights sharded across ranks (FSDP): every forward is a collective
    shared: dict[str, Any] = field(default_factory=dict)

    def derive(self, **changes: Any) -> HFModel:
        """A new handle (sharing `shared`, e.g. the cached ModelInfo); compile is not carried."""
        changes.setdefault("compiled", None)
        return dataclasses.replace(self, **changes)

    @property
    def causal(self) -> bool:
        return self.kind == ModelKind.CAUSAL

    @property
    def seq2seq(self) -> bool:
        return self.kind == ModelKind.SEQ2SEQ

    def trained_modules(self) -> list[torch.nn.Module]:
        out: list[torch.nn.Module] = [self.module]
        if self.soft is not None:
            out.append(self.soft)
        if self.prefix is not None:
            out.append(self.prefix)
        return out

    def callable(self, grad: bool) -> Any:
        """The compiled module for inference when compiled, else the module."""
        return self.compiled if (self.compiled is not None and not grad) else self.module

    @contextmanager
    def evaluating(self):
        """Eval mode (no dropout) for inference, restoring each module's mode afterwards."""
        mods = self.trained_modules()
        modes = [[m.training for m in mod.modules()] for mod in mods]
        for mod in mods:
            mod.eval()
        try:
            yield
        finally:
            for mod, flags in zip(mods, modes, strict=True):
                for m, flag in zip(mod.modules(), flags, strict=True):
                    m.training = flag
