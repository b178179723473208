"""Trigger tokens chosen by gradient-guided search (AutoPrompt, Shin et al. 2020).

Trigger positions are soft slots in the template. Each iteration asks the backend for the
first-order effect of swapping each trigger for each vocabulary token (token_gradients:
the loss gradient at the trigger embeddings times the embedding matrix), takes the most
promising tokens for one position, scores each swap for real on a training minibatch and
keeps the best; a template that changed is then checked on the dev objective. The final
template writes the triggers as text, a plain hard prompt.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from unified_prompt.backend import TrainSetup
from unified_prompt.config import build_spec
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.search.slots import Position, slot_sizes, slot_template, spaced_fill, write
from unified_prompt.search.strategies.base import PlanInput, Strategy, StrategyOptions, StrategyPlan

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.prompts.template import Template
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.context import SearchContext

_WORD_START = re.compile(r"\s[A-Za-z]{2,}")
_LETTERS = re.compile(r"[A-Za-z]{2,}")


class GradientOptions(StrategyOptions):
    triggers: int = Field(3, ge=1, description="Trigger tokens (when no slots template is given).")
    position: Position = "after_text"
    slots: str | None = Field(None, description="A template with {soft:N} trigger slots.")
    init: str = Field(" the", description="Text of the token every trigger starts as.")
    batch: int = Field(8, ge=1, description="Training examples per gradient.")
    eval_batch: int = Field(16, ge=1, description="Training examples scoring each swap.")
    candidates: int = Field(8, ge=1, description="Tokens tried per iteration (top-k).")
    iterations: int = Field(40, ge=1)
    vocab: Literal["words", "all"] = Field(
        "words", description="words: only tokens that start a word and are all letters.")


class GradientSearch(Strategy):
    name = "gradient"
    summary = "trigger tokens by gradient-guided swaps, checked by real scoring (AutoPrompt)"
    Options = GradientOptions
    needs = ("score", "token_gradients")
    options: GradientOptions

    def plan(self, info: PlanInput) -> StrategyPlan:
        o = self.options
        dev = info.dev_pass
        step = o.batch + (o.candidates + 1) * o.eval_batch
        return StrategyPlan(min_calls=dev + step + dev, lines=[
            f"baseline: {dev} calls (original template on {info.n_dev} dev examples)",
            f"each iteration: gradients on {o.batch} training examples + {o.candidates + 1} "
            f"triggers x {o.eval_batch} training examples = {step} calls, then a dev check "
            f"({dev} calls) when the triggers changed",
            f"up to {o.iterations} iterations: {o.iterations * (step + dev):,} calls"])

    def _allowed(self, ctx: SearchContext, vocab: list[str]) -> np.ndarray:
        import numpy as np

        label_words = {w.strip().lower() for _, ws in ctx.original.words for w in ws} \
            if ctx.original else set()
        ok = np.zeros(len(vocab), dtype=bool)
        if self.options.vocab == "all":
            for i, text in enumerate(vocab):
                ok[i] = bool(text.strip()) and not (text.startswith("<") and text.endswith(">"))
        else:
            # whole words: tokens that start a word (" great"); a tokenizer whose tokens
            # decode without their leading space gets every all-letter token instead
            ok = np.array([bool(_WORD_START.fullmatch(t)) for t in vocab], dtype=bool)
            if not ok.any():
                ok = np.array([bool(_LETTERS.fullmatch(t)) for t in vocab], dtype=bool)
        for i, text in enumerate(vocab):
            if text.strip().lower() in label_words:
                ok[i] = False
        return ok

    def _soft_builder(self, ctx: SearchContext, slots: Template) -> PromptBuilder:
        """A builder whose prompts keep the trigger slots soft (for token_gradients)."""
        data: dict[str, Any] = ctx.spec.model_dump(mode="json", exclude_none=True)
        data["prompt"]["template"] = write(slots)
        data["finetune"] = {"method": "prompt_tuning", "num_virtual_tokens": 1}
        return PromptBuilder(build_spec(data), ctx.train)

    def search(self, ctx: SearchContext) -> None:
        import numpy as np

        assert ctx.original is not None
        o = self.options
        base = ctx.original
        slots = slot_template(base.template, o.triggers, o.position, o.slots)
        sizes = slot_sizes(slots)
        vocab = ctx.backend.vocabulary(ctx.model)
        allowed = self._allowed(ctx, vocab)
        if not allowed.any():
            from unified_prompt.errors import UserInputError

            raise UserInputError("gradient search: no vocabulary token passes the filter")
        init = ctx.backend.tokenize(ctx.model, o.init)
        start = init[0] if len(init) == 1 and allowed[init[0]] else int(np.flatnonzero(allowed)[0])
        triggers = {slot: [start] * n for slot, n in sorted(sizes.items())}
        positions = [(slot, k) for slot, n in sorted(sizes.items()) for k in range(n)]
        builder = self._soft_builder(ctx, slots)
        v = builder.verbalizer
        assert v is not None
        setup = TrainSetup(method=builder.spec.finetune, task="classification", seed=ctx.seed,
                           words=v.flat_words, word_label=v.word_label, n_labels=len(v.labels),
                           word_score=ctx.spec.prompt.word_score, soft_slots=slots.soft_slots)

        def candidate(trig: dict[int, list[int]]) -> Candidate:
            texts = {slot: "".join(vocab[i] for i in ids) for slot, ids in trig.items()}
            return base.with_(template=write(slots, spaced_fill(slots, texts)), origin="gradient")

        def shown(trig: dict[int, list[int]]) -> list[str]:
            return [vocab[i] for _, ids in sorted(trig.items()) for i in ids]

        current = candidate(triggers)
        ctx.extras["gradient"] = {"triggers": shown(triggers)}  # kept up to date: the
        ctx.consider(current, iteration=0, triggers=shown(triggers))  # budget may end it
        for it in range(1, o.iterations + 1):
            items = builder.train_items(ctx.sample(ctx.train, o.batch))
            ctx.meter.charge(ctx.objective.pricer.score([i.prompt for i in items],
                                                         len(v.flat_words)))
            grads = ctx.backend.token_gradients(ctx.model, items, setup, triggers)
            slot, k = positions[(it - 1) % len(positions)]
            row = np.where(allowed, np.asarray(grads[slot][k], dtype=float), np.inf)
            row[triggers[slot][k]] = np.inf
            order = np.argsort(row, kind="stable")[: o.candidates]
            tokens = [int(t) for t in order if np.isfinite(row[t])]
            batch = ctx.sample(ctx.train, o.eval_batch)
            best = ctx.batch_score(current, batch, iteration=it, triggers=shown(triggers))
            best_trig = None
            for tok in tokens:
                trial = {s: list(ids) for s, ids in triggers.items()}
                trial[slot][k] = tok
                score = ctx.batch_score(candidate(trial), batch, iteration=it,
                                        triggers=shown(trial))
                if score.margin > best.margin:
                    best, best_trig = score, trial
            if best_trig is not None:
                triggers = best_trig
                current = candidate(triggers)
                ctx.extras["gradient"] = {"triggers": shown(triggers)}
                ctx.consider(current, iteration=it, triggers=shown(triggers))
