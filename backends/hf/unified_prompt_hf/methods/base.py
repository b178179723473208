"""What every method hands the training session: a new handle and its named parameters.

`params` maps the framework-neutral names documented in `unified_prompt.backend`
(soft.{slot}, prefix.embedding, lora.{module}.A/B, Hugging Face names for full) to the
live torch parameters, so trainable_state / load_trainable_state / checkpoints are one
loop over this dict for every method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from unified_prompt_hf.handle import HFModel


class MethodState(ABC):
    name: str

    def __init__(self, handle: HFModel, params: dict[str, torch.nn.Parameter]) -> None:
        self.handle = handle
        self.params = params

    @abstractmethod
    def save_adapter(self, path: Path) -> None:
        """Write this method's adapter files (PEFT format where PEFT has one)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Undo changes made to modules shared with the base handle."""
