"""Greedy (or seeded sampling) decoding, and next-token top-k.

Our own loop rather than paddlenlp's `generate`: it must see soft prompts and prefixes
exactly as scoring and training do, and stop on the core's stop strings. Causal models
decode on a key/value cache; masked LMs fill one mask after what they have written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from unified_prompt.backend import GenerationParams, ModelKind, Progress
from unified_prompt.decoding import finish, length_order, mask_after
from unified_prompt.encoding import Encoded, encode_causal, encode_masked
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.segments import Rendered
from unified_prompt.sampling import nucleus_probs, repeat_for_n
from unified_prompt_paddle.forward import gather_rows, head, log_softmax, make_batch, run
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.runtime import paddle
from unified_prompt_paddle.scoring import cached_encoder, prompt_budget, soft_offsets


def pick_tokens(logits: np.ndarray, params: GenerationParams, rng: np.random.Generator
                ) -> np.ndarray:
    """Greedy (argmax) at temperature 0, else a seeded draw from the softmax."""
    if params.temperature <= 0:
        return logits.argmax(axis=-1)
    p = nucleus_probs(logits, params.temperature, params.top_p)
    return np.array([rng.choice(len(row), p=row) for row in p])


def _masked_batch(model: PaddleModel, prompts: Sequence[Rendered],
                  params: GenerationParams) -> list[str]:
    """A masked LM writes one token at a time into a single mask after what it wrote."""
    pd = paddle()
    tok = model.tokenizer
    mask_id = tok.special.mask
    if mask_id is None:
        raise UserInputError("this masked LM's tokenizer has no mask token")
    encode = cached_encoder(model)
    base = [encode_masked(p, encode, tok.special, max_length=model.max_length,
                          n_masks=params.max_new_tokens + 1) for p in prompts]
    if any(not e.masks for e in base):
        raise UserInputError("a masked LM needs a {mask} slot in the template to generate at")
    rng = np.random.default_rng(params.seed)
    stops = [s for s in params.stop if s]
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    with pd.no_grad():
        for _ in range(params.max_new_tokens):
            live = [i for i in range(len(prompts)) if not done[i]]
            if not live:
                break
            enc = [mask_after(base[i], out[i], mask_id) for i in live]
            batch = make_batch(enc, tok.special.pad or 0, soft_offsets(model))
            hidden, _ = run(model, batch.ids, batch.mask, batch.positions, batch.soft)
            cols = np.array([e.masks[0] for e in enc])
            logits = head(model, gather_rows(hidden, np.arange(len(live)), cols)).numpy()
            for i, token in zip(live, pick_tokens(logits, params, rng), strict=True):
                if int(token) in model.stop_ids:
                    done[i] = True
                    continue
                out[i].append(int(token))
                done[i] = any(s in tok.decode(out[i]) for s in stops)
    return [finish(tok.decode(ids), p, params.stop) for ids, p in zip(out, prompts, strict=True)]


@dataclass
class Decoded:
    """What one row generated: token ids, their log-probs and the best alternatives."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    ended: bool = False  # an end token or a stop string finished it (not the length)


def decode_causal(model: PaddleModel, enc: Sequence[Encoded], params: GenerationParams,
                  stopped: Callable[[list[int]], bool], *, logprobs: bool = False,
                  top_k: int = 0) -> list[Decoded]:
    """Greedy or sampled continuation of encoded contexts on a key/value cache.

    Rows are right-padded; each new token goes after every row's context (the mask skips
    the padding, positions continue each row's own count). `stopped(ids)` says whether a
    row's tokens so far end it; an end token ends a row without being kept.
    """
    pd = paddle()
    tok = model.tokenizer
    batch = make_batch(enc, tok.special.pad or 0, soft_offsets(model))
    rng = np.random.default_rng(params.seed)
    b = len(enc)
    out = [Decoded() for _ in range(b)]
    done = np.zeros(b, dtype=bool)
    with pd.no_grad():
        hidden, cache = run(model, batch.ids, batch.mask, batch.positions, batch.soft,
                            use_cache=True)
        logits = head(model, gather_rows(hidden, np.arange(b), batch.lengths - 1))
        mask = batch.mask
        for step in range(params.max_new_tokens):
            logp = log_softmax(logits).numpy() if logprobs or top_k else None
            nxt = pick_tokens(logits.numpy(), params, rng)
            for i in np.flatnonzero(~done):
                token = int(nxt[i])
                if token in model.stop_ids:
                    out[i].ended = done[i] = True
                    continue
                row = out[i]
                row.ids.append(token)
                if logp is not None:
                    row.logprobs.append(float(logp[i, token]))
                    row.top.append(_top(logp[i], top_k))
                row.ended = done[i] = stopped(row.ids)
            if done.all() or step == params.max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((b, 1), np.int64)], axis=1)
            positions = (batch.lengths + step)[:, None]
            hidden, cache = run(model, nxt[:, None].astype(np.int64), mask, positions,
                                past=cache, use_cache=True)
            logits = head(model, hidden[:, 0])
    return out


def _top(logp: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k most likely tokens, best first (ties by id): a partition, not a full-vocabulary
    sort, since this runs for every generated token."""
    if k <= 0:
        return []
    part = np.argpartition(-logp, k - 1)[:k] if k < len(logp) else np.arange(len(logp))
    best = part[np.lexsort((part, -logp[part]))]
    return [(int(t), float(logp[t])) for t in best]


def generate_batch(model: PaddleModel, prompts: Sequence[Rendered],
                   params: GenerationParams) -> list[str]:
    if model.kind == ModelKind.SEQ2SEQ:
        from unified_prompt_paddle.seq2seq import generate_batch as seq2seq_generate

        return seq2seq_generate(model, prompts, params, pick_tokens)
    if model.kind != ModelKind.CAUSAL:
        return _masked_batch(model, prompts, params)
    tok = model.tokenizer
    stops = [s for s in params.stop if s]
    encode = cached_encoder(model)
    enc = [encode_causal(p, encode, tok.special, max_length=prompt_budget(model),
                         reserve=params.max_new_tokens) for p in prompts]
    out = decode_causal(model, enc, params,
                        lambda ids: any(s in tok.decode(ids) for s in stops))
    return [finish(tok.decode(d.ids), p, params.stop) for d, p in zip(out, prompts, strict=True)]


def generate(model: PaddleModel, prompts: Sequence[Rendered], params: GenerationParams,
             batch_size: int, progress: Progress | None) -> list[str]:
    """Generated text per prompt (n per prompt, prompt-major, when params.n > 1)."""
    if params.n > 1:
        return repeat_for_n(
            lambda _, ps, p, batch_size, progress: generate(model, ps, p, batch_size, progress),
            None, prompts, params, batch_size=batch_size, progress=progress)
    out = [""] * len(prompts)
    if params.max_new_tokens < 1:
        return out
    order = length_order(prompts)
    for start in range(0, len(prompts), batch_size):
        idx = order[start:start + batch_size]
        for i, text in zip(idx, generate_batch(model, [prompts[i] for i in idx], params),
                           strict=True):
            out[i] = text
        if progress:
            progress(len(idx))
    return out


def top_tokens(model: PaddleModel, prompts: Sequence[Rendered], k: int,
               batch_size: int) -> list[list[tuple[str, float]]]:
    """The k most likely tokens where the label word would go, with log-probs."""
    pd = paddle()
    tok = model.tokenizer
    encode = cached_encoder(model)
    out: list[list[tuple[str, float]]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        if model.kind == ModelKind.SEQ2SEQ:
            from unified_prompt_paddle.seq2seq import first_token_logprobs

            for row in first_token_logprobs(model, chunk):
                best = np.argsort(-row)[:k]
                out.append([(tok.token_text(int(t)), float(row[t])) for t in best])
            continue
        if model.kind == ModelKind.MASKED:
            enc = [encode_masked(p, encode, tok.special, max_length=model.max_length)
                   for p in chunk]
            cols = np.array([e.masks[0] for e in enc])
        else:
            enc = [encode_causal(p, encode, tok.special, max_length=prompt_budget(model),
                                 reserve=1)
                   for p in chunk]
            cols = np.array([len(e) - 1 for e in enc])
        batch = make_batch(enc, tok.special.pad or 0, soft_offsets(model))
        with pd.no_grad():
            hidden, _ = run(model, batch.ids, batch.mask, batch.positions, batch.soft)
            logp = log_softmax(
                head(model, gather_rows(hidden, np.arange(len(chunk)), cols))).numpy()
        for row in logp:
            best = np.argsort(-row)[:k]
            out.append([(tok.token_text(int(t)), float(row[t])) for t in best])
    return out
