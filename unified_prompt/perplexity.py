"""Perplexity of each generation target given its prompt, from the backend's raw-text
log-probs (`Backend.text_logprobs`): the model's own measure of how likely the references
are, beside the n-gram metrics of what it generated.

The text scored is the prompt's text before the mask, then the target written at the mask
(with the whitespace that leads into it, as training writes it). Every token that ends past
the prompt counts; the figure is exp of the mean negative log-prob over all target tokens of
all examples (token-weighted, as language-model perplexity is reported).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from unified_prompt.backend import Backend, TokenLogprob
from unified_prompt.errors import CapabilityError, DataError
from unified_prompt.prompts.segments import Rendered


def require_perplexity(backend: Backend, model: Any | None = None) -> None:
    """Refuse, before any model work, a backend that cannot give raw-text log-probs."""
    caps = backend.model_capabilities(model) if model is not None else backend.capabilities
    if not caps.raw_text:
        raise CapabilityError(f"eval.metrics: perplexity needs raw-text log-probs, which backend "
                              f"{backend.name!r} does not give; drop perplexity from "
                              "eval.metrics (or use the hf or paddle backend)")


def target_token_logprobs(tokens: Sequence[TokenLogprob], start: int) -> list[float]:
    """Log-probs of the tokens that end past character `start` (the target's tokens)."""
    out = []
    for i, tok in enumerate(tokens):
        end = tokens[i + 1].offset if i + 1 < len(tokens) else math.inf
        if end > start and tok.logprob is not None:
            out.append(tok.logprob)
    return out


def target_perplexity(backend: Backend, model: Any, prompts: Sequence[Rendered],
                      targets: Sequence[str], batch_size: int = 16) -> float:
    require_perplexity(backend, model)
    if any(p.soft_slots for p in prompts):
        raise CapabilityError("eval.metrics: perplexity scores the prompt as raw text, which "
                              "has no place for the template's {soft} slots")
    contexts = [p.prefix_text() for p in prompts]
    texts = [c + p.mask_lead() + t for c, p, t in zip(contexts, prompts, targets, strict=True)]
    rows = backend.text_logprobs(model, texts, batch_size=batch_size)
    logprobs = [lp for c, row, t in zip(contexts, rows, targets, strict=True) if t
                for lp in target_token_logprobs(row, len(c))]
    if not logprobs:
        raise DataError("perplexity: the targets have no tokens to score")
    return math.exp(-sum(logprobs) / len(logprobs))
