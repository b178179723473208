"""The model handle the paddle backend gives the core: a network plus what is attached to it.

A handle is cheap to derive: a soft prompt or a prefix attaches to the shared, frozen base
network; LoRA and full fine-tuning work on their own copy, so the base handle the core
holds keeps scoring the untouched model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from unified_prompt.backend import ModelKind
from unified_prompt_paddle.architectures import Architecture, Rule
from unified_prompt_paddle.tokenizer import TextTokenizer


@dataclass
class PaddleModel:
    """What `PaddleBackend.load_model` returns and every primitive takes."""

    net: Any  # the paddlenlp *For*LM model (possibly with LoRA layers swapped in)
    arch: Architecture
    hf_config: dict[str, Any]
    rules: list[Rule]
    tokenizer: TextTokenizer
    folder: Path
    name: str
    max_length: int
    overlay: Any  # layers.SoftOverlay on the word embeddings
    total_params: int
    stop_ids: frozenset[int] = frozenset()
    soft: Any = None  # methods.soft.SoftPrompts (prompt tuning, P-tuning)
    prefix: Any = None  # paddlenlp PrefixModelForCausalLM
    lora: Any = None  # paddlenlp LoRAModel
    decoder_layout: Any = None  # seq2seq.Layout (encoder-decoder models)
    method: str = "none"
    method_config: dict[str, Any] = field(default_factory=dict)
    checksum_cache: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> ModelKind:
        return self.arch.kind

    @property
    def hidden_size(self) -> int:
        return int(self.hf_config["hidden_size"])

    @property
    def n_prefix(self) -> int:
        return int(self.prefix.prefix_config.num_prefix_tokens) if self.prefix is not None else 0

    def derive(self, **changes: Any) -> PaddleModel:
        """A new handle sharing what is not changed (the checksum cache included)."""
        return replace(self, **changes)

    def train(self, training: bool) -> None:
        """Dropout on or off everywhere (the base network and any attached encoders)."""
        for layer in (self.net, self.soft, self.prefix and self.prefix.prefix_encoder):
            if layer is not None:
                layer.train() if training else layer.eval()
