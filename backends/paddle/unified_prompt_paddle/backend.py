"""PaddleBackend: the core's contract on PaddlePaddle + PaddleNLP.

This module must stay import-light (no paddle, no paddlenlp): `unified-prompt backends`
reads `capabilities` and `Options` from the class without loading a framework. paddle and
paddlenlp errors leave every primitive as core errors (the core's boundary wraps them:
unified_prompt.boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from unified_prompt.backend import (
    Backend,
    BackendOptions,
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
from unified_prompt_paddle.methods import MODULES as METHOD_MODULES

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.distributed import Launch, World
    from unified_prompt.prompts.segments import Rendered
    from unified_prompt.prompts.verbalizer import WordScores
    from unified_prompt_paddle.handle import PaddleModel


class PaddleOptions(BackendOptions):
    max_length: int | None = Field(None, ge=8, description="Cap on prompt tokens "
                                   "(default: the model's limit, at most 2048).")
    threads: int | None = Field(None, ge=1, description="CPU math threads (default: one per "
                                "core).")


class PaddleBackend(Backend):
    name = "paddle"
    capabilities = Capabilities(
        score=True, exact_multi_token=True, generate=True,
        methods=frozenset(METHOD_MODULES),
        adapters=True, top_tokens=True, token_gradients=True, raw_text=True,
        model_kinds=frozenset({ModelKind.CAUSAL, ModelKind.MASKED, ModelKind.SEQ2SEQ}),
        parallel=frozenset({"ddp"}),
        launchers=("python -m paddle.distributed.launch --nproc_per_node N "
                   "$(command -v unified-prompt) run ...",),
        notes=("PaddlePaddle 3.3 + PaddleNLP 2.8 on CPU, float32",
               "finetune.parallel fsdp: no; paddle's group-sharded stages refuse the CPU "
               "('group_sharded_parallel only support gpu, xpu and custom_device now')",
               "loads Hugging Face folders (Llama, GPT-2, BERT, ERNIE, T5, BART) by weight-name mapping",
               "adapters in paddlenlp's formats; unified-prompt convert <-> hf (PEFT)"))
    Options = PaddleOptions

    def __init__(self, options: BackendOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._models: dict[str, PaddleModel] = {}

    # -- models ----------------------------------------------------------------------
    def load_model(self, ref: str) -> PaddleModel:
        from unified_prompt.assets import resolve_model
        from unified_prompt_paddle.loading import load_folder

        folder = resolve_model(ref, progress=False)
        key = str(Path(folder).resolve())
        if self.options.threads:
            from unified_prompt_paddle.runtime import paddle, set_threads

            paddle()
            set_threads(self.options.threads)
        if key not in self._models:
            self._models[key] = load_folder(Path(folder), max_length=self.options.max_length,
                                            name=ref)
        return self._models[key]

    def model_capabilities(self, model: PaddleModel) -> Capabilities:
        """Encoder-decoder models: no prefix tuning (paddlenlp's prefix container is
        decoder-only) and no raw-text log-probs (the serving endpoints continue causal text)."""
        if model.kind != ModelKind.SEQ2SEQ:
            return self.capabilities
        from dataclasses import replace

        return replace(self.capabilities, methods=self.capabilities.methods - {"prefix_tuning"},
                       raw_text=False)

    def model_info(self, model: PaddleModel) -> ModelInfo:
        if "model" not in model.checksum_cache:
            from unified_prompt.assets import directory_checksum

            model.checksum_cache["model"] = directory_checksum(model.folder)
        return ModelInfo(name=model.name, kind=model.kind, total_params=model.total_params,
                         checksum=model.checksum_cache["model"],
                         tokenizer_checksum=model.tokenizer.checksum,
                         vocab_size=int(model.hf_config["vocab_size"]),
                         extra={"architecture": model.arch.paddle_class,
                                "method": model.method})

    # -- inference -------------------------------------------------------------------
    def score(self, model: PaddleModel, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        import numpy as np

        from unified_prompt.decoding import length_order
        from unified_prompt.prompts.verbalizer import WordScores
        from unified_prompt_paddle.runtime import paddle
        from unified_prompt_paddle.scoring import word_ids, word_logprobs

        n = len(prompts)
        logprob = np.zeros((n, len(words)), dtype=np.float64)
        n_tokens = np.zeros((n, len(words)), dtype=np.int64)
        if n == 0 or not words:
            return WordScores(logprob, n_tokens)
        model.train(False)
        order = length_order(prompts)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            chunk = [prompts[i] for i in idx]
            wids = word_ids(model, chunk, words)
            with paddle().no_grad():
                logprob[idx] = word_logprobs(model, chunk, wids).numpy()
            n_tokens[idx] = wids.n_tokens
            if progress:
                progress(len(chunk))
        return WordScores(logprob, n_tokens)

    def generate(self, model: PaddleModel, prompts: Sequence[Rendered], params: GenerationParams,
                 *, batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        from unified_prompt_paddle.generation import generate

        model.train(False)
        return generate(model, list(prompts), params, batch_size, progress)

    def top_tokens(self, model: PaddleModel, prompts: Sequence[Rendered], k: int, *,
                   batch_size: int = 16) -> list[list[tuple[str, float]]]:
        from unified_prompt_paddle.generation import top_tokens

        model.train(False)
        return top_tokens(model, list(prompts), k, batch_size)

    # -- raw text (OpenAI-compatible serving) ----------------------------------------------
    def text_logprobs(self, model: PaddleModel, texts: Sequence[str], *, top_k: int = 0,
                      batch_size: int = 16) -> list[tuple[TokenLogprob, ...]]:
        from unified_prompt_paddle.raw_text import text_logprobs

        model.train(False)
        return text_logprobs(model, list(texts), top_k, batch_size)

    def generate_text(self, model: PaddleModel, texts: Sequence[str], params: GenerationParams,
                      *, top_k: int = 0, batch_size: int = 16) -> list[Generated]:
        from unified_prompt_paddle.raw_text import generate_text

        model.train(False)
        return generate_text(model, list(texts), params, top_k, batch_size)

    def render_chat(self, model: PaddleModel, messages: Sequence[dict[str, str]]) -> str:
        from unified_prompt_paddle.chat import render_chat

        return render_chat(model, messages)

    # -- search primitives -----------------------------------------------------------
    def vocabulary(self, model: PaddleModel) -> list[str]:
        from unified_prompt_paddle.search_primitives import vocabulary

        return vocabulary(model)

    def tokenize(self, model: PaddleModel, text: str) -> list[int]:
        return model.tokenizer.encode_text(text)

    def token_gradients(self, model: PaddleModel, items: Sequence[TrainItem], setup: TrainSetup,
                        triggers: dict[int, list[int]]) -> dict[int, np.ndarray]:
        from unified_prompt_paddle.search_primitives import token_gradients

        return token_gradients(model, list(items), setup, triggers)

    # -- training --------------------------------------------------------------------
    def start_training(self, model: PaddleModel, setup: TrainSetup) -> TrainSession:
        from unified_prompt_paddle.session import PaddleTrainSession

        return PaddleTrainSession(model, setup)

    # -- several processes -----------------------------------------------------------
    def join_world(self, launch: Launch) -> World:
        from unified_prompt_paddle.distributed import PaddleWorld

        return PaddleWorld(launch)

    @classmethod
    def launch_command(cls, nproc: int, args: Sequence[str]) -> list[str]:
        from unified_prompt_paddle.distributed import launch_command

        return launch_command(nproc, args)

    def load_adapter(self, model: PaddleModel, path: Path) -> PaddleModel:
        from unified_prompt_paddle.adapters import load_adapter

        return load_adapter(model, Path(path))

    def close(self) -> None:
        self._models.clear()

