"""HFBackend: the framework primitives over transformers + torch + peft.

This module imports no framework: `unified-prompt backends` and spec validation read
`capabilities` and `Options` without loading torch. Each primitive imports its submodule
on first use; every exception leaves as a core error type (the core's boundary wraps each
primitive: unified_prompt.boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from unified_prompt.backend import (
    Backend,
    Capabilities,
    Generated,
    GenerationParams,
    ModelInfo,
    ModelKind,
    Progress,
    TokenLogprob,
    TrainItem,
    TrainSession,
    TrainSetup,
)
from unified_prompt_hf.methods import MODULES as METHOD_MODULES
from unified_prompt_hf.options import HFOptions

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.distributed import Launch, World
    from unified_prompt.prompts.segments import Rendered
    from unified_prompt.prompts.verbalizer import WordScores
    from unified_prompt_hf.handle import HFModel


class HFBackend(Backend):
    """Any local Hugging Face causal, masked or encoder-decoder LM, trained with peft or fully."""

    name: ClassVar[str] = "hf"
    capabilities: ClassVar[Capabilities] = Capabilities(
        score=True, exact_multi_token=True, generate=True, methods=frozenset(METHOD_MODULES), adapters=True,
        top_tokens=True, token_gradients=True, raw_text=True,
        model_kinds=frozenset({ModelKind.CAUSAL, ModelKind.MASKED, ModelKind.SEQ2SEQ}),
        parallel=frozenset({"ddp", "fsdp"}),
        launchers=("torchrun --nproc_per_node N -m unified_prompt.cli run ...",
                   "accelerate launch --multi_gpu --num_processes N -m unified_prompt.cli run ..."),
        notes=("adapters in PEFT's format; soft prompts also as soft_prompt.safetensors",
               "finetune.parallel fsdp: FSDP2 fully_shard, for method full",
               "several processes: gloo on CPU, NCCL on GPU (one GPU per process)",
               "masked LMs generate by filling one appended mask at a time",
               "raw-text log-probs and continuation (serve) for causal models",
               "encoder-decoder models (T5, BART): the decoder writes label words and "
               "answers; no prefix_tuning"))
    Options: ClassVar[type[HFOptions]] = HFOptions
    options: HFOptions

    # -- models ----------------------------------------------------------------------
    def load_model(self, ref: str) -> HFModel:
        from unified_prompt_hf.loading import load_model

        return load_model(ref, self.options)

    def model_capabilities(self, model: HFModel) -> Capabilities:
        """Encoder-decoder models narrow the class's capabilities: no prefix tuning, no
        raw-text log-probs or continuation (their decoder does not read the prompt's text)."""
        if model.kind != ModelKind.SEQ2SEQ:
            return self.capabilities
        import dataclasses

        return dataclasses.replace(self.capabilities, raw_text=False,
                                   methods=self.capabilities.methods - {"prefix_tuning"})

    def model_info(self, model: HFModel) -> ModelInfo:
        from unified_prompt_hf.loading import model_info

        return model_info(model)

    # -- inference -------------------------------------------------------------------
    def score(self, model: HFModel, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        from unified_prompt_hf.scoring import score

        return score(model, prompts, words, batch_size=batch_size, progress=progress)

    def generate(self, model: HFModel, prompts: Sequence[Rendered], params: GenerationParams, *,
                 batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        from unified_prompt_hf.generation import generate

        return generate(model, prompts, params, batch_size=batch_size, progress=progress)

    def top_tokens(self, model: HFModel, prompts: Sequence[Rendered], k: int, *,
                   batch_size: int = 16) -> list[list[tuple[str, float]]]:
        from unified_prompt_hf.scoring import top_tokens

        return top_tokens(model, prompts, k, batch_size=batch_size)

    # -- raw text (OpenAI-compatible serving) -----------------------------------------
    def text_logprobs(self, model: HFModel, texts: Sequence[str], *, top_k: int = 0,
                      batch_size: int = 16) -> list[tuple[TokenLogprob, ...]]:
        from unified_prompt_hf.raw_text import text_logprobs

        return text_logprobs(model, texts, top_k=top_k, batch_size=batch_size)

    def generate_text(self, model: HFModel, texts: Sequence[str], params: GenerationParams, *,
                      top_k: int = 0, batch_size: int = 16) -> list[Generated]:
        from unified_prompt_hf.raw_text import generate_text

        return generate_text(model, texts, params, top_k=top_k, batch_size=batch_size)

    def render_chat(self, model: HFModel, messages: Sequence[dict[str, str]]) -> str:
        from unified_prompt_hf.raw_text import render_chat

        return render_chat(model, messages)

    # -- search primitives -----------------------------------------------------------
    def vocabulary(self, model: HFModel) -> list[str]:
        from unified_prompt_hf.search_primitives import vocabulary

        return vocabulary(model)

    def tokenize(self, model: HFModel, text: str) -> list[int]:
        from unified_prompt_hf.search_primitives import tokenize

        return tokenize(model, text)

    def token_gradients(self, model: HFModel, items: Sequence[TrainItem], setup: TrainSetup,
                        triggers: dict[int, list[int]]) -> dict[int, np.ndarray]:
        from unified_prompt_hf.search_primitives import token_gradients

        return token_gradients(model, items, setup, triggers)

    # -- training --------------------------------------------------------------------
    def start_training(self, model: HFModel, setup: TrainSetup) -> TrainSession:
        from unified_prompt_hf.session import HFTrainSession

        return HFTrainSession(model, setup)

    # -- several processes -----------------------------------------------------------
    def join_world(self, launch: Launch) -> World:
        from unified_prompt_hf.distributed import TorchWorld
        from unified_prompt_hf.loading import pick_device

        return TorchWorld(launch, pick_device(self.options).type)

    @classmethod
    def launch_command(cls, nproc: int, args: Sequence[str]) -> list[str]:
        from unified_prompt_hf.distributed import launch_command

        return launch_command(nproc, args)

    def collective_forward(self, model: Any) -> bool:
        return bool(getattr(model, "collective", False))

    def load_adapter(self, model: HFModel, path: Path) -> HFModel:
        from unified_prompt_hf.adapters import load_adapter

        return load_adapter(model, Path(path))

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        import gc
        import sys

        gc.collect()
        torch: Any = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
