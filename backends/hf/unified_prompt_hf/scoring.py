"""Label-word log-probabilities, batched, with every word of a prompt sharing its forward.

Causal LMs: each word is a continuation of the prompt (`encode_continuation`). One prompt
forward gives every word's first token; words with more tokens are fed, all at once,
against the prompt's KV cache (rows repeated per word), so the prompt is never run twice.
Masked LMs: one input per prompt with as many masks as its longest word needs; word w's
j-th token is scored at the j-th mask (masks past a shorter word's end are ignored).

The same functions, with `grad=True`, give the training losses their word scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from unified_prompt.backend import Progress
from unified_prompt.decoding import length_order
from unified_prompt.encoding import Encoded
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt.objectives import CONTRASTIVE_CAUSAL_ONLY
from unified_prompt.prompts.segments import Rendered
from unified_prompt.prompts.verbalizer import WordScores
from unified_prompt_hf.batching.pad import right_pad
from unified_prompt_hf.forward import check_soft, make_batch, prefix_length, run_continuation, run_prompt
from unified_prompt_hf.handle import HFModel

WordIds = list[list[list[int]]]  # [prompt][word] -> token ids


def prompt_budget(handle: HFModel) -> int:
    """Tokens a prompt may take (a causal prefix uses positions too)."""
    return handle.max_length - (prefix_length(handle) if handle.causal else 0)


def word_ids(handle: HFModel, prompts: Sequence[Rendered], words: Sequence[str]) -> WordIds:
    return [[handle.codec.continuation(p, w) for w in words] for p in prompts]


def _counts(ids: WordIds, device: torch.device) -> torch.Tensor:
    return torch.tensor([[len(c) for c in row] for row in ids], dtype=torch.long, device=device)


@contextmanager
def head_inputs(handle: HFModel, into: list[torch.Tensor] | None) -> Iterator[None]:
    """Collect what the LM head reads (the final hidden states) into `into`, call by call."""
    if into is None:
        yield
        return
    head = handle.module.get_output_embeddings()
    hook = head.register_forward_hook(lambda _mod, args, _out: into.append(args[0]))
    try:
        yield
    finally:
        hook.remove()


def causal_word_logprobs(handle: HFModel, prompts: Sequence[Rendered], words: Sequence[str], *,
                         grad: bool = False, naive: bool = False,
                         reps: list[torch.Tensor] | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, W) summed log-probs and (B, W) token counts; `naive` re-runs prompt + word.
    `reps`, when given, receives the (B, H) hidden state the head reads at the last prompt
    token (where every word's first token is predicted)."""
    ids = word_ids(handle, prompts, words)
    reserve = [max(len(c) for c in row) for row in ids]
    encoded = [handle.codec.causal(p, prompt_budget(handle), reserve=r)
               for p, r in zip(prompts, reserve, strict=True)]
    check_soft(handle, encoded)
    counts = _counts(ids, handle.device)
    multi = max(reserve) > 1
    if multi and naive:
        return _naive(handle, encoded, ids, grad, reps), counts
    batch = make_batch(handle, encoded)
    seen: list[torch.Tensor] | None = [] if reps is not None else None
    with head_inputs(handle, seen):
        logits, state = run_prompt(handle, batch, use_cache=multi, keep=1, grad=grad)
    if reps is not None:
        assert seen
        reps.append(seen[0][:, -1])
    first = torch.log_softmax(logits[:, -1].float(), dim=-1)
    first_ids = torch.tensor([[c[0] for c in row] for row in ids], device=first.device)
    logprob = first.gather(1, first_ids)
    if not multi:
        return logprob, counts
    assert state is not None
    pairs = [(i, w) for i, row in enumerate(ids) for w, c in enumerate(row) if len(c) > 1]
    chunk = max(1, handle.options.score_chunk)
    flat_index, sums = [], []
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        rows = torch.tensor([i for i, _ in part], device=first.device)
        feed, feed_mask = right_pad([ids[i][w][:-1] for i, w in part], handle.codec.pad,
                                    handle.device)
        target, target_mask = right_pad([ids[i][w][1:] for i, w in part], 0, handle.device)
        out = run_continuation(handle, state.select(rows), feed, feed_mask, grad=grad)
        token_lp = torch.log_softmax(out.float(), dim=-1).gather(2, target[..., None])[..., 0]
        sums.append((token_lp * target_mask).sum(1))
        flat_index.extend(i * len(words) + w for i, w in part)
    index = torch.tensor(flat_index, device=first.device)
    extra = torch.zeros(logprob.numel(), device=first.device, dtype=logprob.dtype)
    extra = extra.index_put((index,), torch.cat(sums), accumulate=True)
    return logprob + extra.view_as(logprob), counts


def _naive(handle: HFModel, encoded: Sequence[Encoded], ids: WordIds, grad: bool,
           reps: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Prompt + word tokens as one sequence per (prompt, word): the reference path."""
    seqs, targets = [], []
    for enc, row in zip(encoded, ids, strict=True):
        for c in row:
            seqs.append(Encoded(enc.ids + tuple(c[:-1]), enc.soft, ()))
            targets.append(c)
    keep = max(len(t) for t in targets)
    seen: list[torch.Tensor] | None = [] if reps is not None else None
    with head_inputs(handle, seen):
        logits, _ = run_prompt(handle, make_batch(handle, seqs), keep=keep, grad=grad)
    if reps is not None:  # each prompt's first word row, at the position before that word
        assert seen
        n_words = len(ids[0])
        first_rows = torch.arange(0, len(seqs), n_words, device=logits.device)
        cols = torch.tensor([-len(row[0]) for row in ids], device=logits.device)
        reps.append(seen[0][first_rows, cols])
    lsm = torch.log_softmax(logits.float(), dim=-1)
    rows, cols, toks, owner = [], [], [], []
    for r, t in enumerate(targets):
        for j, tok in enumerate(t):
            rows.append(r)
            cols.append(keep - len(t) + j)
            toks.append(tok)
            owner.append(r)
    dev = lsm.device
    picked = lsm[torch.tensor(rows, device=dev), torch.tensor(cols, device=dev),
                 torch.tensor(toks, device=dev)]
    total = torch.zeros(len(targets), device=dev, dtype=picked.dtype)
    total = total.index_put((torch.tensor(owner, device=dev),), picked, accumulate=True)
    return total.view(len(encoded), -1)


def require_masks(encoded: Sequence[Encoded]) -> None:
    if any(not enc.masks for enc in encoded):
        raise UserInputError("a masked LM needs a {mask} slot in the template to score or "
                             "predict at")


def masked_word_logprobs(handle: HFModel, prompts: Sequence[Rendered], words: Sequence[str], *,
                         grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, W) log-probs of each word's tokens at the prompt's masks, and token counts."""
    ids = word_ids(handle, prompts, words)
    n_masks = [max(len(c) for c in row) for row in ids]
    encoded = [handle.codec.masked(p, handle.max_length, n_masks=k)
               for p, k in zip(prompts, n_masks, strict=True)]
    check_soft(handle, encoded)
    require_masks(encoded)
    batch = make_batch(handle, encoded)
    logits, _ = run_prompt(handle, batch, grad=grad)
    spots_r, spots_c = [], []
    first_spot = []
    for i, cols in enumerate(batch.mask_cols):
        first_spot.append(len(spots_r))
        spots_r.extend([i] * len(cols))
        spots_c.extend(cols)
    dev = logits.device
    lsm = torch.log_softmax(logits[torch.tensor(spots_r, device=dev),
                                   torch.tensor(spots_c, device=dev)].float(), dim=-1)
    spot, tok, owner = [], [], []
    n_words = len(words)
    for i, row in enumerate(ids):
        for w, c in enumerate(row):
            for j, t in enumerate(c):
                spot.append(first_spot[i] + j)
                tok.append(t)
                owner.append(i * n_words + w)
    picked = lsm[torch.tensor(spot, device=dev), torch.tensor(tok, device=dev)]
    total = torch.zeros(len(prompts) * n_words, device=dev, dtype=picked.dtype)
    total = total.index_put((torch.tensor(owner, device=dev),), picked, accumulate=True)
    return total.view(len(prompts), n_words), _counts(ids, dev)


def seq2seq_word_logprobs(handle: HFModel, prompts: Sequence[Rendered], words: Sequence[str]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, W) log-probs of each word written by the decoder (unified_prompt_hf.seq2seq)."""
    from unified_prompt_hf import seq2seq

    ids = word_ids(handle, prompts, words)
    return seq2seq.word_logprobs(handle, prompts, ids), _counts(ids, handle.device)


def word_logprobs(handle: HFModel, prompts: Sequence[Rendered], words: Sequence[str], *,
                  grad: bool = False, naive: bool = False,
                  reps: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    if handle.seq2seq:
        if reps is not None:
            raise CapabilityError(CONTRASTIVE_CAUSAL_ONLY)
        return seq2seq_word_logprobs(handle, prompts, words)
    if handle.causal:
        return causal_word_logprobs(handle, prompts, words, grad=grad, naive=naive, reps=reps)
    if reps is not None:
        raise CapabilityError(CONTRASTIVE_CAUSAL_ONLY)
    return masked_word_logprobs(handle, prompts, words, grad=grad)


def score(handle: HFModel, prompts: Sequence[Rendered], words: Sequence[str], *,
          batch_size: int = 16, progress: Progress | None = None,
          naive: bool = False) -> WordScores:
    """WordScores for the core: (n, W) log-probs summed over tokens, and token counts."""
    n, w = len(prompts), len(words)
    logprob = np.zeros((n, w), dtype=np.float64)
    n_tokens = np.zeros((n, w), dtype=np.int64)
    if n == 0 or w == 0:
        return WordScores(logprob, n_tokens)
    order = length_order(prompts)
    with torch.inference_mode(), handle.evaluating():
        for start in range(0, n, max(1, batch_size)):
            idx = order[start:start + batch_size]
            lp, counts = word_logprobs(handle, [prompts[i] for i in idx], words, naive=naive)
            logprob[idx] = lp.double().cpu().numpy()
            n_tokens[idx] = counts.cpu().numpy()
            if progress is not None:
                progress(len(idx))
    return WordScores(logprob, n_tokens)


def _answer_logits(handle: HFModel, prompts: Sequence[Rendered]) -> torch.Tensor:
    """(B, V) logits of the first token written at each prompt's mask."""
    if handle.seq2seq:
        from unified_prompt_hf.seq2seq import first_token_logits

        return first_token_logits(handle, prompts)
    if handle.causal:
        encoded = [handle.codec.causal(p, prompt_budget(handle), reserve=1) for p in prompts]
    else:
        encoded = [handle.codec.masked(p, handle.max_length) for p in prompts]
        require_masks(encoded)
    check_soft(handle, encoded)
    batch = make_batch(handle, encoded)
    logits, _ = run_prompt(handle, batch, keep=1 if handle.causal else None)
    if handle.causal:
        return logits[:, -1]
    return torch.stack([logits[r, cols[0]] for r, cols in enumerate(batch.mask_cols)])


def top_tokens(handle: HFModel, prompts: Sequence[Rendered], k: int, *,
               batch_size: int = 16) -> list[list[tuple[str, float]]]:
    """The k most likely tokens at each prompt's mask (next token, for causal LMs; the
    answer's first token, for encoder-decoder models)."""
    out: list[list[tuple[str, float]]] = [[] for _ in prompts]
    order = length_order(prompts)
    with torch.inference_mode(), handle.evaluating():
        for start in range(0, len(prompts), max(1, batch_size)):
            idx = order[start:start + batch_size]
            rows = _answer_logits(handle, [prompts[i] for i in idx])
            lp = torch.log_softmax(rows.float(), dim=-1)
            values, indices = lp.topk(min(k, lp.shape[-1]), dim=-1)
            for r, i in enumerate(idx):
                out[i] = [(handle.codec.token_text(int(t)), float(v))
                          for t, v in zip(indices[r].tolist(), values[r].tolist(), strict=True)]
    return out
