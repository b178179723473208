"""Encoder-decoder models (T5, BART): label words and targets are written by the decoder.

The convention is the hf backend's. Encoder: the core's masked layout with one mask, T5's
mask being its first sentinel `<extra_id_0>` (inputs end with `</s>`), BART's `<mask>`
inside `<s> ... </s>`. Decoder: the core's `DecoderLayout` (unified_prompt.seq2seq_layout,
shared with the hf backend): `decoder_start_token_id`, then the forced BOS where the model
has one (BART's `<s>`), then T5's `<extra_id_0>` when the prompt has a mask, then the label
word or the generation target. A word's score is the sum of its tokens' log-probs after
that prefix; a target is trained with EOS appended; generation ends at EOS (after T5's
sentinel also at `<extra_id_1>`). Soft tokens (prompt tuning, P-tuning) sit in the encoder
input where the template puts them; the soft overlay is active only while the encoder embeds.

Generation re-runs the decoder over its whole prefix each step (no key/value cache): the
numbers are exactly the scoring path's, at a cost that only long outputs notice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.backend import GenerationParams, TrainItem
from unified_prompt.decoding import finish
from unified_prompt.encoding import Encoded, SpecialIds, encode_continuation, encode_masked
from unified_prompt.errors import CapabilityError
from unified_prompt.prompts.segments import Rendered
from unified_prompt.seq2seq_layout import DecoderLayout, read_folder_layout
from unified_prompt_paddle.forward import cached_encoder, gather_rows, log_softmax, make_batch, soft_offsets
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.runtime import paddle, to_tensor
from unified_prompt_paddle.tokenizer import TextTokenizer


@dataclass(frozen=True)
class Layout(DecoderLayout):
    """The core's decoder layout, plus the ids this backend's batching reads."""

    pad: int
    encoder_special: SpecialIds  # encode_masked's ids for the encoder input


def read_layout(folder: Path, hf: dict[str, Any], tokenizer: TextTokenizer) -> Layout:
    """The core's layout from config.json and generation_config.json; the encoder masks
    with T5's first sentinel where the tokenizer has no mask token."""
    special = tokenizer.special
    core = read_folder_layout(folder, hf, tokenizer_eos=special.eos,
                              has_mask_token=special.mask is not None,
                              token_id=tokenizer.backend.token_to_id)
    mask = special.mask if special.mask is not None else core.sentinel
    encoder = SpecialIds(bos=special.bos, eos=special.eos, pad=special.pad, mask=mask,
                         cls=special.cls if special.cls is not None else special.bos,
                         sep=special.sep if special.sep is not None else special.eos)
    return Layout(**{f.name: getattr(core, f.name) for f in fields(core)},
                  pad=int(special.pad or 0), encoder_special=encoder)


def layout(model: PaddleModel) -> Layout:
    if model.decoder_layout is None:
        raise CapabilityError(f"{model.name} is not an encoder-decoder model")
    return model.decoder_layout


def encoder_inputs(model: PaddleModel, prompts: Sequence[Rendered]) -> list[Encoded]:
    """Each prompt as the encoder reads it (cut from the front to the model's length)."""
    special = layout(model).encoder_special
    encode = cached_encoder(model)
    return [encode_masked(p, encode, special, max_length=model.max_length, n_masks=1)
            for p in prompts]


def encode(model: PaddleModel, enc: Sequence[Encoded]) -> tuple[Any, np.ndarray]:
    """Encoder hidden states (B, S, d) and the (B, S) mask; soft vectors written in."""
    pd = paddle()
    batch = make_batch(enc, layout(model).pad, soft_offsets(model))
    mask = batch.mask.astype(np.float32)
    ids = to_tensor(batch.ids)
    if model.arch.model_type == "t5":
        def call() -> Any:
            return model.net.t5.encoder(input_ids=ids, attention_mask=to_tensor(mask),
                                        return_dict=False)[0]
    else:
        def call() -> Any:
            return _first(model.net.bart.encoder(input_ids=ids, attention_mask=to_tensor(mask),
                                                 return_dict=False))

    if model.soft is None or not (batch.soft >= 0).any():
        return call(), mask
    with model.overlay.active(pd.to_tensor(batch.soft), model.soft.table()):
        return call(), mask


def _first(out: Any) -> Any:
    """paddlenlp's BART stacks return a bare tensor or a tuple, depending on the flags."""
    return out[0] if isinstance(out, (tuple, list)) else out


def decode(model: PaddleModel, memory: Any, memory_mask: np.ndarray, owner: np.ndarray,
           rows: Sequence[Sequence[int]]) -> tuple[Any, np.ndarray]:
    """Decoder hidden states (R, T, d) for right-padded `rows`; row r reads encoder row
    owner[r]. Returns the states and each row's length."""
    pad = layout(model).pad
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad, np.int64)
    mask = np.zeros((len(rows), width), np.float32)
    for k, r in enumerate(rows):
        ids[k, :len(r)] = r
        mask[k, :len(r)] = 1.0
    pd = paddle()
    mem = pd.index_select(memory, to_tensor(owner.astype(np.int64)), axis=0)
    mem_mask = memory_mask[owner]
    if model.arch.model_type == "t5":
        hidden = model.net.t5.decoder(input_ids=to_tensor(ids), attention_mask=to_tensor(mask),
                                      encoder_hidden_states=mem,
                                      encoder_attention_mask=to_tensor(mem_mask),
                                      return_dict=False)[0]
    else:  # BART: causal self-attention by default; padding is on the right, never read
        additive = ((1.0 - mem_mask) * -1e4)[:, None, None, :].astype(np.float32)
        hidden = _first(model.net.bart.decoder(decoder_input_ids=to_tensor(ids),
                                               encoder_output=mem,
                                               memory_mask=to_tensor(additive),
                                               return_dict=False))
    return hidden, np.array([len(r) for r in rows], np.int64)


def head(model: PaddleModel, hidden: Any) -> Any:
    """Vocabulary logits. T5 tied: the shared embedding, inputs scaled by d_model^-0.5;
    BART: the shared embedding (or its own head) plus final_logits_bias."""
    pd = paddle()
    tied = model.arch.tied(model.hf_config)
    if model.arch.model_type == "t5":
        if tied:
            scaled = hidden * (float(model.hf_config["d_model"]) ** -0.5)
            return pd.matmul(scaled, model.net.t5.shared.weight, transpose_y=True)
        return model.net.lm_head(hidden)
    weight = model.net.bart.shared.weight if tied else model.net.lm_head_weight
    return pd.matmul(hidden, weight, transpose_y=True) + model.net.final_logits_bias


def _target_logprobs(model: PaddleModel, memory: Any, memory_mask: np.ndarray,
                     owner: np.ndarray, prefixes: Sequence[list[int]],
                     targets: Sequence[list[int]]) -> Any:
    """(R, T) log-probs of each row's target tokens after its prefix, and their validity."""
    pd = paddle()
    rows = [[*pre, *tgt[:-1]] for pre, tgt in zip(prefixes, targets, strict=True)]
    hidden, _ = decode(model, memory, memory_mask, owner, rows)
    r_idx, c_idx, ids = [], [], []
    for k, (pre, tgt) in enumerate(zip(prefixes, targets, strict=True)):
        start = len(pre) - 1
        r_idx += [k] * len(tgt)
        c_idx += list(range(start, start + len(tgt)))
        ids += tgt
    logp = log_softmax(head(model, gather_rows(hidden, np.array(r_idx), np.array(c_idx))))
    picked = pd.take_along_axis(logp, to_tensor(np.array(ids, np.int64)[:, None]), axis=1)[:, 0]
    return picked, np.array(r_idx, np.int64)


def word_logprobs(model: PaddleModel, prompts: Sequence[Rendered], wids: Any) -> Any:
    """(len(prompts), n_words) summed log-probs of each word after the decoder prefix."""
    pd = paddle()
    lay = layout(model)
    enc = encoder_inputs(model, prompts)
    memory, memory_mask = encode(model, enc)
    b, n_words = len(prompts), len(wids.ids[0])
    owner = np.repeat(np.arange(b), n_words)
    prefixes = [lay.prefix(enc[i]) for i in owner]
    targets = [wids.ids[i][j] for i in range(b) for j in range(n_words)]
    picked, row = _target_logprobs(model, memory, memory_mask, owner, prefixes, targets)
    total = pd.zeros([b * n_words], dtype=picked.dtype)
    total = pd.index_add(total, to_tensor(row), 0, picked)
    return total.reshape([b, n_words])


def generation_loss(model: PaddleModel, batch: Sequence[TrainItem]) -> Any:
    """Mean over examples of the per-token negative log-likelihood of target + EOS."""
    lay = layout(model)
    encode_text = cached_encoder(model)
    prompts = [item.prompt for item in batch]
    enc = encoder_inputs(model, prompts)
    end = model.tokenizer.special.eos
    if end is None:
        raise CapabilityError(f"{model.arch.model_type}: the tokenizer has no EOS to end a "
                              "generation target with")
    targets = []
    for item in batch:
        target = encode_continuation(item.prompt, item.target, encode_text) if item.target else []
        targets.append([*target[: max(1, model.max_length - 1)], end])
    memory, memory_mask = encode(model, enc)
    owner = np.arange(len(batch))
    picked, row = _target_logprobs(model, memory, memory_mask, owner,
                                   [lay.prefix(e) for e in enc], targets)
    counts = np.array([len(t) for t in targets], np.float32)
    weights = to_tensor((1.0 / counts)[row].astype(np.float32))
    return -(picked * weights).sum() / len(batch)


def generate_batch(model: PaddleModel, prompts: Sequence[Rendered], params: GenerationParams,
                   pick_tokens: Callable[..., np.ndarray]) -> list[str]:
    """Greedy (or seeded sampling: `pick_tokens`, generation.py's) decoding after the
    prefix; an ending token ends a row unkept."""
    pd = paddle()
    lay = layout(model)
    tok = model.tokenizer
    stops = [s for s in params.stop if s]
    enc = encoder_inputs(model, prompts)
    rng = np.random.default_rng(params.seed)
    out: list[list[int]] = [[] for _ in prompts]
    done = np.zeros(len(prompts), dtype=bool)
    with pd.no_grad():
        memory, memory_mask = encode(model, enc)
        for _ in range(params.max_new_tokens):
            live = np.flatnonzero(~done)
            if not len(live):
                break
            rows = [[*lay.prefix(enc[i]), *out[i]] for i in live]
            hidden, lengths = decode(model, memory, memory_mask, live, rows)
            last = gather_rows(hidden, np.arange(len(live)), lengths - 1)
            nxt = pick_tokens(head(model, last).numpy(), params, rng)
            for i, token in zip(live, nxt, strict=True):
                if int(token) in lay.enders(lay.prefix(enc[i])):
                    done[i] = True
                    continue
                out[i].append(int(token))
                done[i] = any(s in tok.decode(out[i]) for s in stops)
    return [finish(tok.decode(ids), p, params.stop) for ids, p in zip(out, prompts, strict=True)]


def first_token_logprobs(model: PaddleModel, prompts: Sequence[Rendered]) -> np.ndarray:
    """(B, vocab) log-probs of the first token after the decoder prefix."""
    pd = paddle()
    lay = layout(model)
    enc = encoder_inputs(model, prompts)
    with pd.no_grad():
        memory, memory_mask = encode(model, enc)
        owner = np.arange(len(prompts))
        hidden, lengths = decode(model, memory, memory_mask, owner,
                                 [lay.prefix(e) for e in enc])
        last = gather_rows(hidden, owner, lengths - 1)
        return log_softmax(head(model, last)).numpy()
