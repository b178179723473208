"""The one place the model is called: soft tokens, prefix cache, positions, KV reuse.

Every primitive (scoring, generation, training losses) goes through `run_prompt` and
`run_continuation`, so the inference and training numbers come from the same arithmetic.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from unified_prompt.encoding import Encoded
from unified_prompt.errors import UserInputError
from unified_prompt_hf.batching.pad import Batch, pad_batch
from unified_prompt_hf.handle import HFModel


@dataclass
class PromptState:
    """What a prompt forward leaves behind for continuing it: cache, mask, next positions."""

    cache: Any
    mask: torch.Tensor            # (B, prefix + L) attention mask over everything cached
    next_positions: torch.Tensor  # (B,)

    def select(self, rows: torch.Tensor) -> PromptState:
        """The state of rows `rows` (repeats allowed): one prompt, several continuations."""
        from transformers import DynamicCache

        layers = [(layer.keys[rows], layer.values[rows]) for layer in self.cache.layers]
        return PromptState(DynamicCache(layers), self.mask[rows], self.next_positions[rows])


def prefix_length(handle: HFModel) -> int:
    return int(handle.prefix.n_tokens) if handle.prefix is not None else 0


def make_batch(handle: HFModel, encoded: Sequence[Encoded]) -> Batch:
    """Causal: left padding, explicit positions after any prefix. Masked: right padding,
    positions left to the model (RoBERTa-style models count from padding_idx + 1, and with
    a prefix BERT continues after it, as peft does)."""
    start = prefix_length(handle) if handle.causal else 0
    return pad_batch(encoded, handle.codec.pad, handle.device, left=handle.causal, start=start)


@lru_cache(maxsize=64)
def _supports_keep(cls: type) -> bool:
    """Whether the model class computes logits for the last k positions only."""
    try:
        return "logits_to_keep" in inspect.signature(cls.forward).parameters
    except (TypeError, ValueError):
        return False


def check_soft(handle: HFModel, encoded: Sequence[Encoded]) -> None:
    """Every soft slot a prompt uses must exist in the model with the same token count."""
    need: dict[int, int] = {}
    for enc in encoded:
        for slot, _ in enc.soft:
            need[slot] = need.get(slot, 0) + 1
    if not need:
        return
    have = handle.soft.counts() if handle.soft is not None else {}
    for slot in need:
        if slot not in have:
            raise UserInputError(
                f"the prompt has soft slot {slot} but this model has no trained soft prompt for "
                "it: train prompt_tuning/p_tuning or load the adapter first")
    for enc in encoded:
        counts: dict[int, int] = {}
        for slot, _ in enc.soft:
            counts[slot] = counts.get(slot, 0) + 1
        for slot, n in counts.items():
            if n != have[slot]:
                raise UserInputError(f"soft slot {slot} has {n} tokens in the prompt but "
                                     f"{have[slot]} in the trained soft prompt")


def input_embeddings(handle: HFModel, batch: Batch) -> torch.Tensor:
    """Token embeddings with each virtual token's trained vector written in place."""
    embeds = handle.module.get_input_embeddings()(batch.ids)
    if batch.has_soft:
        assert handle.soft is not None
        table, starts = handle.soft.table()
        flat = starts.to(batch.soft_slot.device)[batch.soft_slot] + batch.soft_index
        embeds = embeds.index_put((batch.soft_rows, batch.soft_cols),
                                  table[flat].to(embeds.dtype))
    return embeds


def _autocast(handle: HFModel) -> Any:
    dtype = handle.autocast
    if dtype is None:
        from contextlib import nullcontext

        return nullcontext()
    return torch.autocast(handle.device.type, dtype=dtype)


def run_prompt(handle: HFModel, batch: Batch, *, use_cache: bool = False,
               keep: int | None = None, grad: bool = False
               ) -> tuple[torch.Tensor, PromptState | None]:
    """Logits for a padded batch of prompts (the last `keep` columns when given)."""
    module = handle.callable(grad)
    kwargs: dict[str, Any] = {"attention_mask": batch.mask}
    if handle.causal:  # masked LMs are right-padded: their own position ids are right
        kwargs["position_ids"] = batch.positions
    if batch.has_soft:
        kwargs["inputs_embeds"] = input_embeddings(handle, batch)
    else:
        kwargs["input_ids"] = batch.ids
    cache = None
    mask = batch.mask
    if handle.prefix is not None:
        cache = handle.prefix.cache(batch.size, handle.dtype)
        mask = torch.cat([torch.ones(batch.size, handle.prefix.n_tokens, dtype=mask.dtype,
                                     device=mask.device), mask], dim=1)
        kwargs["attention_mask"] = mask
        kwargs["past_key_values"] = cache
    if handle.causal:
        kwargs["use_cache"] = use_cache
        if use_cache and cache is None:
            from transformers import DynamicCache

            cache = DynamicCache()
            kwargs["past_key_values"] = cache
        if keep is not None and _supports_keep(type(handle.module)):
            kwargs["logits_to_keep"] = keep
    with _autocast(handle):
        out = module(**kwargs)
    logits = out.logits
    if keep is not None and logits.shape[1] > keep:
        logits = logits[:, -keep:]
    state = PromptState(out.past_key_values, mask, batch.next_positions) if use_cache else None
    return logits, state


def run_continuation(handle: HFModel, state: PromptState, ids: torch.Tensor, mask: torch.Tensor,
                     *, grad: bool = False, use_cache: bool = False) -> torch.Tensor:
    """Logits of right-padded tokens `ids` fed after each row's cached prompt.

    The cache is extended in place when `use_cache` (generation); callers that branch one
    prompt into several continuations pass a `select`ed copy.
    """
    module = handle.callable(grad)
    full = torch.cat([state.mask, mask], dim=1)
    positions = state.next_positions[:, None] + torch.arange(ids.shape[1], device=ids.device)
    with _autocast(handle):
        out = module(input_ids=ids, attention_mask=full, position_ids=positions,
                     past_key_values=state.cache, use_cache=True)
    if use_cache:
        state.mask = full
        state.next_positions = state.next_positions + mask.sum(1)
    return out.logits
