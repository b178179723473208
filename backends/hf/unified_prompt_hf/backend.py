"""HFBackend: the framework primitives over transformers + torch + peft.

This module imports no framework: `unified-prompt backends` and spec validation read
`capabilities` and `Options` without loading torch. Each primitive imports its submodule
on first use, and every exception leaves as a core error type (see errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from unified_prompt.backend import (
    Backend,
    Capabilities,
    GenerationParams,
    ModelInfo,
    ModelKind,
    Progress,
    TrainSession,
    TrainSetup,
)
from unified_prompt.errors import CapabilityError
from unified_prompt_hf.errors import boundary, translated
from unified_prompt_hf.options import HFOptions

if TYPE_CHECKING:
    from unified_prompt.prompts.segments import Rendered
    from unified_prompt.prompts.verbalizer import WordScores
    from unified_prompt_hf.handle import HFModel

METHODS = frozenset({"prompt_tuning", "p_tuning", "prefix_tuning", "lora", "full"})


class HFBackend(Backend):
    """Any local Hugging Face causal or masked LM, trained with peft or fully."""

    name: ClassVar[str] = "hf"
    capabilities: ClassVar[Capabilities] = Capabilities(
        score=True, exact_multi_token=True, generate=True, methods=METHODS, adapters=True,
        top_tokens=True, token_gradients=False,
        model_kinds=frozenset({ModelKind.CAUSAL, ModelKind.MASKED}),
        notes=("adapters in PEFT's format; soft prompts also as soft_prompt.safetensors",
               "masked LMs generate by filling one appended mask at a time"))
    Options: ClassVar[type[HFOptions]] = HFOptions
    options: HFOptions

    # -- models ----------------------------------------------------------------------
    def load_model(self, ref: str) -> HFModel:
        with boundary("loading a model", loading=ref):
            from unified_prompt_hf.loading import load_model

            return load_model(ref, self.options)

    @translated("reading model info")
    def model_info(self, model: HFModel) -> ModelInfo:
        from unified_prompt_hf.loading import model_info

        return model_info(model)

    # -- inference -------------------------------------------------------------------
    @translated("scoring")
    def score(self, model: HFModel, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        from unified_prompt_hf.scoring import score

        return score(model, prompts, words, batch_size=batch_size, progress=progress)

    @translated("generation")
    def generate(self, model: HFModel, prompts: Sequence[Rendered], params: GenerationParams, *,
                 batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        from unified_prompt_hf.generation import generate

        return generate(model, prompts, params, batch_size=batch_size, progress=progress)

    @translated("top tokens")
    def top_tokens(self, model: HFModel, prompts: Sequence[Rendered], k: int, *,
                   batch_size: int = 16) -> list[list[tuple[str, float]]]:
        from unified_prompt_hf.scoring import top_tokens

        return top_tokens(model, prompts, k, batch_size=batch_size)

    # -- training --------------------------------------------------------------------
    @translated("starting training")
    def start_training(self, model: HFModel, setup: TrainSetup) -> TrainSession:
        method = setup.method.method
        if method not in METHODS:
            raise CapabilityError(f"backend 'hf' cannot train finetune.method {method!r} "
                                  f"(it can: {', '.join(sorted(METHODS))})")
        from unified_prompt_hf.session import HFTrainSession

        return HFTrainSession(model, setup)

    @translated("loading an adapter")
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
