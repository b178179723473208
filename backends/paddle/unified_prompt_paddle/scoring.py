"""Label-word log-probabilities, differentiable, for causal and masked models.

Causal: the context runs once with a key/value cache; every word's first token is read
from the context's last position, and only the remaining tokens of multi-token words run
again, on the cache (rows repeated per word). Masked: one input per prompt with as many
masks as its longest word; word w's j-th token is scored at the j-th mask (the masks past
a shorter word's end stay in the input). Both are the hf backend's arithmetic.
Training and scoring share this code, so the loss is computed from exactly the numbers
`score` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind
from unified_prompt.encoding import encode_causal, encode_continuation, encode_masked
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt.objectives import CONTRASTIVE_CAUSAL_ONLY
from unified_prompt.prompts.segments import Rendered
from unified_prompt_paddle.forward import (
    cached_encoder,
    expand_cache,
    gather_rows,
    head,
    log_softmax,
    make_batch,
    run,
    soft_offsets,
)
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.runtime import paddle, to_tensor


@dataclass
class WordIds:
    """Token ids of every (prompt, word) pair."""

    ids: list[list[list[int]]]  # [prompt][word] -> ids

    @property
    def n_tokens(self) -> np.ndarray:
        return np.array([[len(w) for w in row] for row in self.ids], dtype=np.int64)

    @property
    def longest(self) -> int:
        return max(len(w) for row in self.ids for w in row)


def word_ids(model: PaddleModel, prompts: Sequence[Rendered], words: Sequence[str]) -> WordIds:
    encode = cached_encoder(model)
    out = []
    for prompt in prompts:
        row = []
        for word in words:
            ids = encode_continuation(prompt, word, encode)
            if not ids:
                raise UserInputError(f"label word {word!r} has no tokens in this tokenizer")
            row.append(ids)
        out.append(row)
    return WordIds(out)


def prompt_budget(model: PaddleModel) -> int:
    """Tokens a prompt may take: a causal model's prefix uses positions too."""
    return model.max_length - model.n_prefix


def word_logprobs(model: PaddleModel, prompts: Sequence[Rendered], wids: WordIds,
                  reps: list[Any] | None = None) -> Any:
    """(len(prompts), n_words) tensor of summed log-probs (keeps the autograd graph).
    `reps`, when given, receives the (B, H) hidden state the head reads at the last prompt
    token of a causal LM."""
    if model.kind == ModelKind.MASKED:
        if reps is not None:
            raise CapabilityError(CONTRASTIVE_CAUSAL_ONLY)
        return _masked(model, prompts, wids)
    if model.kind == ModelKind.SEQ2SEQ:
        if reps is not None:
            raise CapabilityError(CONTRASTIVE_CAUSAL_ONLY)
        from unified_prompt_paddle.seq2seq import word_logprobs as seq2seq_word_logprobs

        return seq2seq_word_logprobs(model, prompts, wids)
    return _causal(model, prompts, wids, reps)


def _causal(model: PaddleModel, prompts: Sequence[Rendered], wids: WordIds,
            reps: list[Any] | None = None) -> Any:
    pd = paddle()
    tok = model.tokenizer
    encode = cached_encoder(model)
    budget = prompt_budget(model)
    enc = [encode_causal(p, encode, tok.special, max_length=budget,
                         reserve=max(len(w) for w in row))
           for p, row in zip(prompts, wids.ids, strict=True)]
    if any(len(e) == 0 for e in enc):
        raise UserInputError("a causal model needs at least one token before the label word "
                             "(the template starts with {mask})")
    batch = make_batch(enc, tok.special.pad or 0, soft_offsets(model))
    b, n_words = len(prompts), len(wids.ids[0])
    hidden, cache = run(model, batch.ids, batch.mask, batch.positions, batch.soft,
                        use_cache=wids.longest > 1)
    last = gather_rows(hidden, np.arange(b), batch.lengths - 1)
    if reps is not None:
        reps.append(last)
    first = log_softmax(head(model, last))  # (B, V)
    firsts = np.array([[w[0] for w in row] for row in wids.ids], dtype=np.int64)
    scores = pd.take_along_axis(first, to_tensor(firsts), axis=1)  # (B, W)
    multi = [(i, j) for i in range(b) for j in range(n_words) if len(wids.ids[i][j]) > 1]
    if not multi:
        return scores
    rows = np.array([i for i, _ in multi], dtype=np.int64)
    conts = [wids.ids[i][j] for i, j in multi]
    width = max(len(c) for c in conts) - 1
    ids = np.full((len(multi), width), tok.special.pad or 0, dtype=np.int64)
    targets = np.zeros((len(multi), width), dtype=np.int64)
    valid = np.zeros((len(multi), width), dtype=np.float32)
    for k, cont in enumerate(conts):
        ids[k, :len(cont) - 1] = cont[:-1]
        targets[k, :len(cont) - 1] = cont[1:]
        valid[k, :len(cont) - 1] = 1.0
    mask = np.concatenate([batch.mask[rows], (valid > 0).astype(np.int64)], axis=1)
    positions = batch.lengths[rows][:, None] + np.arange(width, dtype=np.int64)[None, :]
    hidden2, _ = run(model, ids, mask, positions, past=expand_cache(cache, rows))
    logp = log_softmax(head(model, hidden2))  # (R, width, V)
    picked = pd.take_along_axis(logp, to_tensor(targets[:, :, None]), axis=2)[:, :, 0]
    rest = (picked * to_tensor(valid)).sum(axis=1)  # (R,)
    # scatter the continuation sums back into (B, W)
    flat = np.array([i * n_words + j for i, j in multi], dtype=np.int64)
    extra = pd.zeros([b * n_words], dtype=rest.dtype)
    extra = pd.scatter(extra, to_tensor(flat), rest, overwrite=True)
    return scores + extra.reshape([b, n_words])


def _masked(model: PaddleModel, prompts: Sequence[Rendered], wids: WordIds) -> Any:
    pd = paddle()
    tok = model.tokenizer
    encode = cached_encoder(model)
    b, n_words = len(prompts), len(wids.ids[0])
    enc = [encode_masked(p, encode, tok.special, max_length=model.max_length,
                         n_masks=max(len(w) for w in row))
           for p, row in zip(prompts, wids.ids, strict=True)]
    if any(not e.masks for e in enc):
        raise UserInputError("a masked LM needs a {mask} slot in the template to score at")
    batch = make_batch(enc, tok.special.pad or 0, soft_offsets(model))
    hidden, _ = run(model, batch.ids, batch.mask, batch.positions, batch.soft)
    rows = np.array([i for i, e in enumerate(enc) for _ in e.masks], dtype=np.int64)
    cols = np.array([m for e in enc for m in e.masks], dtype=np.int64)
    first = np.cumsum([0] + [len(e.masks) for e in enc])[:-1]
    logp = log_softmax(head(model, gather_rows(hidden, rows, cols)))  # (all masks, V)
    spot, token, owner = [], [], []
    for i, row in enumerate(wids.ids):
        for w, ids in enumerate(row):
            for j, t in enumerate(ids):
                spot.append(first[i] + j)
                token.append(t)
                owner.append(i * n_words + w)
    picked = pd.gather_nd(logp, to_tensor(np.stack([spot, token], axis=1).astype(np.int64)))
    total = pd.zeros([b * n_words], dtype=picked.dtype)
    total = pd.index_add(total, to_tensor(np.array(owner, np.int64)), 0, picked)
    return total.reshape([b, n_words])
