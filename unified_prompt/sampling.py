"""Decoding options of a generation or qa run (`eval.decoding`), and what the core does
with them: sampled decoding, `n` outputs per prompt, and the best-of-n figures.

Greedy decoding (temperature 0) is the default and is the same on every local backend.
Sampling is reproducible for a fixed seed on one backend (same model, same batch size),
but each framework draws its own random numbers, so sampled texts differ across backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from unified_prompt.strict import Seed, Strict

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.backend import GenerationParams, Progress
    from unified_prompt.prompts.segments import Rendered

#: Most outputs per prompt a run may ask for (each one is a full generation).
MAX_N = 64


class DecodingSpec(Strict):
    """`eval.decoding`: how generation and qa runs decode (eval.max_new_tokens stays the
    length limit)."""

    temperature: float = Field(0.0, ge=0, le=2, description="0: greedy (the default).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling: sample among the "
                         "most likely tokens whose probability adds up to top_p.")
    n: int = Field(1, ge=1, le=MAX_N, description="Outputs per prompt; all are written to "
                   "predictions.jsonl, metrics score the first, and <metric>_best_of_<n> "
                   "scores the best of the n for each example.")
    seed: Seed | None = Field(None, description="Sampling seed; default: the experiment seed.")
    stop: list[str] | None = Field(None, description="Strings that end an output (not kept); "
                                   "default: a newline. [] generates up to max_new_tokens.")

    @model_validator(mode="after")
    def _sampled_when_several(self) -> DecodingSpec:
        if self.n > 1 and self.temperature == 0:
            raise ValueError(f"n: {self.n} outputs need sampling (temperature > 0); greedy "
                             "decoding writes the same output n times")
        return self

    @property
    def sampled(self) -> bool:
        return self.temperature > 0


def generation_params(spec: DecodingSpec, max_new_tokens: int, seed: int) -> GenerationParams:
    from unified_prompt.backend import GenerationParams

    stop = ("\n",) if spec.stop is None else tuple(spec.stop)
    return GenerationParams(max_new_tokens=max_new_tokens, temperature=spec.temperature,
                            stop=stop, seed=spec.seed if spec.seed is not None else seed,
                            top_p=spec.top_p, n=spec.n)


Generate = Callable[..., list[str]]


def repeat_for_n(generate: Generate, model: Any, prompts: Sequence[Rendered],
                 params: GenerationParams, *, batch_size: int,
                 progress: Progress | None) -> list[str]:
    """n outputs per prompt from a one-output `generate`: each prompt repeated n times in
    a row (so the n samples share batches and draw one after another from the seeded
    generator); progress counts prompts, not samples."""
    n = params.n
    done = [0]

    def per_prompt(k: int) -> None:
        before, done[0] = done[0] // n, done[0] + k
        if progress is not None and done[0] // n > before:
            progress(done[0] // n - before)

    repeated = [p for p in prompts for _ in range(n)]
    return generate(model, repeated, replace(params, n=1), batch_size=batch_size,
                    progress=per_prompt)


def nucleus_probs(logits: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """Row-wise sampling probabilities: softmax at `temperature`, then only the smallest
    set of most likely tokens whose mass reaches `top_p` kept (ties broken by id) and
    renormalised. float64 numpy, for the backends that sample with numpy."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    if top_p >= 1.0:
        return p
    order = np.argsort(-p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    before = np.cumsum(sorted_p, axis=-1) - sorted_p  # mass of the tokens ranked above
    keep_sorted = before < top_p  # the best token is always kept
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    p = np.where(keep, p, 0.0)
    return p / p.sum(axis=-1, keepdims=True)


def group(texts: Sequence[str], n: int) -> list[list[str]]:
    """Prompt-major n-per-prompt outputs as one list per prompt."""
    return [list(texts[i:i + n]) for i in range(0, len(texts), n)]


def best_of_n(score: Callable[[list[Any], list[str]], dict[str, float]], golds: Sequence[Any],
              candidates: Sequence[Sequence[str]]) -> dict[str, float]:
    """Oracle figure per metric: for each example the candidate that metric scores best on
    that example alone (the first on ties), then the metric over those picks. For
    per-example means (ROUGE, exact match, F1) it is the mean of per-example maxima; for
    corpus BLEU, corpus BLEU of the per-example best sentence-BLEU outputs.

    `score(golds, hyps)` computes every metric at once on any list of examples."""
    if not candidates:
        return {}
    n = len(candidates[0])
    per = [[score([g], [c]) for c in cands] for g, cands in zip(golds, candidates, strict=True)]
    names = list(per[0][0]) if per else []
    out: dict[str, float] = {}
    for name in names:
        picks = [cands[max(range(n), key=lambda k, s=scores: (s[k][name], -k))]
                 for cands, scores in zip(candidates, per, strict=True)]
        out[f"{name}_best_of_{n}"] = score(list(golds), picks)[name]
    return out
