"""Encoded prompts -> padded tensors -> hidden states -> logits at chosen positions.

Everything that runs the network goes through `run`: it applies the soft overlay, the
prefix (as past key/values, positions shifted after it as the hf backend's cache does), and
returns hidden states; `head` turns only the rows that are needed into vocabulary logits
(the (tokens x vocab) product for every position would cost as much as a few layers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind
from unified_prompt.encoding import Encoded
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.runtime import paddle, to_tensor


@dataclass
class Batch:
    """Right-padded ids with their mask, positions and soft-table indices."""

    ids: np.ndarray  # (B, T) int64
    mask: np.ndarray  # (B, T) int64, 1 = real token
    positions: np.ndarray  # (B, T) int64, logical positions (prefix not counted)
    soft: np.ndarray  # (B, T) int64, row of the soft table or -1
    lengths: np.ndarray  # (B,) real tokens per row


def cached_encoder(model: PaddleModel) -> Callable[[str], list[int]]:
    """The tokenizer's text -> ids, memoised for one batch (templates repeat their text)."""
    cache: dict[str, list[int]] = {}
    tok = model.tokenizer

    def encode(text: str) -> list[int]:
        found = cache.get(text)
        if found is None:
            found = cache[text] = tok.encode_text(text)
        return found

    return encode


def soft_offsets(model: PaddleModel) -> dict[int, int] | None:
    """Each soft slot's first row in the soft table (None without a soft prompt)."""
    return model.soft.offsets if model.soft is not None else None


def make_batch(encoded: Sequence[Encoded], pad_id: int,
               soft_offsets: dict[int, int] | None = None) -> Batch:
    """Pad on the right; the k-th virtual token of slot s reads soft-table row offset[s]+k."""
    n = len(encoded)
    width = max(1, max(len(e) for e in encoded))
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    soft = np.full((n, width), -1, dtype=np.int64)
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    for i, e in enumerate(encoded):
        ids[i, :len(e)] = e.ids
        mask[i, :len(e)] = 1
        if e.soft:
            if soft_offsets is None:
                from unified_prompt.errors import UserInputError

                raise UserInputError("the prompt has {soft} slots but this model has no trained "
                                     "soft prompt (train prompt_tuning/p_tuning or load its adapter)")
            seen: dict[int, int] = {}
            for slot, pos in e.soft:
                k = seen.get(slot, 0)
                seen[slot] = k + 1
                soft[i, pos] = soft_offsets[slot] + k
    positions = np.tile(np.arange(width, dtype=np.int64), (n, 1))
    return Batch(ids, mask, positions, soft, lengths)


def run(model: PaddleModel, ids: np.ndarray, mask: np.ndarray, positions: np.ndarray,
        soft: np.ndarray | None = None, past: Any = None, use_cache: bool = False
        ) -> tuple[Any, Any]:
    """Hidden states (B, T, hidden) and, with `use_cache`, the key/value cache.

    `mask` covers the real tokens of `past` followed by the new ones; the prefix (if any)
    is prepended here, to the cache on the first call and to the mask every call, and
    positions continue after it (as Hugging Face models number tokens after a cache).
    """
    pd = paddle()
    b = ids.shape[0]
    n_prefix = model.n_prefix
    if n_prefix:
        if past is None:
            past = model.prefix._get_past_key_values(b)
        mask = np.concatenate([np.ones((b, n_prefix), np.int64), mask], axis=1)
        positions = positions + n_prefix
    table = None
    if soft is not None and (soft >= 0).any():
        if model.soft is None:
            raise ValueError("soft positions without a soft prompt")
        table = model.soft.table()
    ids_t, mask_t, pos_t = to_tensor(ids), to_tensor(mask), to_tensor(positions)
    body = getattr(model.net, model.arch.base)

    def call() -> tuple[Any, Any]:
        if model.kind == ModelKind.MASKED:
            out = body(input_ids=ids_t, attention_mask=mask_t, position_ids=pos_t,
                       past_key_values=past, use_cache=False, return_dict=False)
            return out[0], None
        out = body(input_ids=ids_t, attention_mask=mask_t, position_ids=pos_t,
                   past_key_values=past, use_cache=use_cache, return_dict=False)
        if not isinstance(out, (tuple, list)):  # paddlenlp's GPT returns a bare tensor
            return out, None
        return out[0], (out[1] if use_cache else None)

    if table is None:
        return call()
    with model.overlay.active(pd.to_tensor(soft), table):
        return call()


def head(model: PaddleModel, hidden: Any) -> Any:
    """Vocabulary logits for hidden states of any leading shape."""
    if model.kind == ModelKind.MASKED:
        return model.net.cls.predictions(hidden)
    return model.net.lm_head(hidden)


def log_softmax(logits: Any) -> Any:
    """log-softmax over the vocabulary as x - max - log(sum(exp(x - max))).

    paddle 3.3's CPU `log_softmax` kernel is ~1000x slower than this on a 49k vocabulary
    (5 s for a (6, 49152) input, forward and backward alike). The sum runs in float64:
    paddle's CPU float32 reductions (and `logsumexp`) accumulate sequentially, 5e-5 off for
    logits of spread ~5 over 49k entries, where torch's log_softmax is 7e-6 off.
    """
    pd = paddle()
    top = logits.max(axis=-1, keepdim=True).detach()
    shifted = logits - top
    total = pd.exp(shifted).astype("float64").sum(axis=-1, keepdim=True)
    return shifted - pd.log(total).astype(logits.dtype)


def gather_rows(hidden: Any, rows: np.ndarray, cols: np.ndarray) -> Any:
    """hidden[rows[k], cols[k]] for each k, as (K, hidden)."""
    pd = paddle()
    b, t, h = hidden.shape
    flat = hidden.reshape([b * t, h])
    return pd.gather(flat, to_tensor(rows.astype(np.int64) * t + cols.astype(np.int64)))


def expand_cache(cache: Any, rows: np.ndarray) -> Any:
    """The cache with batch rows repeated/selected by `rows` (one per continuation)."""
    pd = paddle()
    index = to_tensor(rows.astype(np.int64))
    return tuple((pd.index_select(k, index, axis=0), pd.index_select(v, index, axis=0))
                 for k, v in cache)
