"""Encoder-decoder models (T5, BART): the encoder reads the prompt, the decoder writes the answer.

Encoder input: the core's masked layout (`encode_masked`) with one mask token: T5's mask is
its first sentinel `<extra_id_0>` and its inputs end with `</s>`; BART's is `<mask>` inside
`<s> ... </s>`. A prompt without a mask is encoded the same way, without one.

Decoder input and where an answer ends: the core's `DecoderLayout`
(unified_prompt.seq2seq_layout, shared with the paddle backend): the decoder start, BART's
forced `<s>`, T5's `<extra_id_0>` after a mask, then the answer; EOS (and after T5's
sentinel `<extra_id_1>`) ends it. The decoder writes the label word alone, not the whole
text with the mask filled in. A label word's score is the sum of its tokens' decoder
log-probs after that prefix (the same word ids a causal model continues the prompt with).
Training uses the same two paths: the label words' log-likelihood for classification, the
target plus EOS through the decoder for generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from unified_prompt.backend import GenerationParams, TrainItem
from unified_prompt.encoding import Encoded
from unified_prompt.prompts.segments import Rendered
from unified_prompt.seq2seq_layout import LAYOUT_FIELDS, DecoderLayout, read_layout
from unified_prompt_hf.batching.pad import right_pad
from unified_prompt_hf.forward import _autocast, check_soft, input_embeddings, make_batch
from unified_prompt_hf.handle import HFModel


def decoder_layout(module: Any, tokenizer: Any) -> DecoderLayout:
    """The core's layout (unified_prompt.seq2seq_layout) from the loaded config objects,
    which carry the model class's defaults where the files are silent."""
    def fields(source: Any) -> dict[str, Any]:
        return {k: getattr(source, k, None) for k in LAYOUT_FIELDS}

    gen = getattr(module, "generation_config", None)
    vocab = tokenizer.get_vocab()
    return read_layout(fields(module.config), fields(gen) if gen is not None else {},
                       tokenizer_eos=tokenizer.eos_token_id,
                       has_mask_token=tokenizer.mask_token_id is not None, token_id=vocab.get)


def layout(handle: HFModel) -> DecoderLayout:
    return handle.shared["decoder_layout"]


def encode(handle: HFModel, prompt: Rendered) -> Encoded:
    return handle.codec.masked(prompt, handle.max_length, n_masks=1)


@dataclass
class EncodedBatch:
    """Encoder outputs of a batch of prompts, their mask, and each prompt's decoder lead."""

    hidden: torch.Tensor
    mask: torch.Tensor
    leads: list[list[int]]

    def rows(self, index: Sequence[int]) -> tuple[Any, torch.Tensor]:
        from transformers.modeling_outputs import BaseModelOutput

        at = torch.tensor(list(index), device=self.hidden.device)
        return BaseModelOutput(last_hidden_state=self.hidden[at]), self.mask[at]


def run_encoder(handle: HFModel, prompts: Sequence[Rendered]) -> EncodedBatch:
    """The encoder over the prompts (soft tokens written into its input embeddings)."""
    encoded = [encode(handle, p) for p in prompts]
    check_soft(handle, encoded)
    batch = make_batch(handle, encoded)
    kwargs: dict[str, Any] = {"attention_mask": batch.mask}
    if batch.has_soft:
        kwargs["inputs_embeds"] = input_embeddings(handle, batch)
    else:
        kwargs["input_ids"] = batch.ids
    with _autocast(handle):
        out = handle.module.get_encoder()(**kwargs)
    return EncodedBatch(out.last_hidden_state, batch.mask, [layout(handle).prefix(e) for e in encoded])


def run_decoder(handle: HFModel, encoder_out: Any, encoder_mask: torch.Tensor,
                ids: torch.Tensor, mask: torch.Tensor | None = None, *,
                cache: Any = None, use_cache: bool = False) -> Any:
    with _autocast(handle):
        return handle.module(encoder_outputs=encoder_out, attention_mask=encoder_mask,
                             decoder_input_ids=ids, decoder_attention_mask=mask,
                             past_key_values=cache, use_cache=use_cache)


def sequence_logprobs(handle: HFModel, enc: EncodedBatch, rows: Sequence[int],
                      answers: Sequence[Sequence[int]]) -> torch.Tensor:
    """(len(rows),) x n_tokens: each answer token's log-prob, fed after its row's lead.

    Returns a (len(rows), longest answer) tensor, zero past each answer's end."""
    seqs = [enc.leads[r] + list(a[:-1]) for r, a in zip(rows, answers, strict=True)]
    feed, feed_mask = right_pad(seqs, handle.codec.pad, handle.device)
    encoder_out, encoder_mask = enc.rows(rows)
    logits = run_decoder(handle, encoder_out, encoder_mask, feed, feed_mask).logits
    lsm = torch.log_softmax(logits.float(), dim=-1)
    width = max(len(a) for a in answers)
    out = torch.zeros(len(rows), width, device=lsm.device)
    r_idx, c_idx, t_idx, o_r, o_c = [], [], [], [], []
    for k, (r, a) in enumerate(zip(rows, answers, strict=True)):
        start = len(enc.leads[r]) - 1
        for j, tok in enumerate(a):
            r_idx.append(k)
            c_idx.append(start + j)
            t_idx.append(tok)
            o_r.append(k)
            o_c.append(j)
    dev = lsm.device
    picked = lsm[torch.tensor(r_idx, device=dev), torch.tensor(c_idx, device=dev),
                 torch.tensor(t_idx, device=dev)]
    return out.index_put((torch.tensor(o_r, device=dev), torch.tensor(o_c, device=dev)), picked)


def word_logprobs(handle: HFModel, prompts: Sequence[Rendered], ids: list[list[list[int]]]
                  ) -> torch.Tensor:
    """(B, W) summed log-probs of each word's ids (`ids[prompt][word]`) through the decoder;
    the encoder runs once per prompt, the decoder once per (prompt, word) pair."""
    enc = run_encoder(handle, prompts)
    n_words = len(ids[0]) if ids else 0
    pairs = [(i, w) for i in range(len(prompts)) for w in range(n_words)]
    chunk = max(1, handle.options.score_chunk)
    sums = []
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        lp = sequence_logprobs(handle, enc, [i for i, _ in part], [ids[i][w] for i, w in part])
        sums.append(lp.sum(1))
    return torch.cat(sums).view(len(prompts), n_words)


def first_token_logits(handle: HFModel, prompts: Sequence[Rendered]) -> torch.Tensor:
    """(B, V) logits of the answer's first token (after each prompt's lead)."""
    enc = run_encoder(handle, prompts)
    seqs = enc.leads
    feed, feed_mask = right_pad(seqs, handle.codec.pad, handle.device)
    encoder_out, encoder_mask = enc.rows(range(len(prompts)))
    logits = run_decoder(handle, encoder_out, encoder_mask, feed, feed_mask).logits
    last = torch.tensor([len(s) - 1 for s in seqs], device=logits.device)
    return logits[torch.arange(len(seqs), device=logits.device), last]


def generation_loss(handle: HFModel, items: Sequence[TrainItem], targets: list[list[int]]
                    ) -> torch.Tensor:
    """Mean over examples of the mean NLL of each target's tokens (EOS included)."""
    enc = run_encoder(handle, [it.prompt for it in items])
    lp = sequence_logprobs(handle, enc, list(range(len(items))), targets)
    counts = torch.tensor([len(t) for t in targets], device=lp.device, dtype=lp.dtype)
    return (-lp.sum(1) / counts).mean()


def generate_ids(handle: HFModel, prompts: Sequence[Rendered], params: GenerationParams,
                 picker: Any) -> list[list[int]]:
    """Decoded token ids per prompt; rows sharing a lead decode together with a KV cache."""
    enc = run_encoder(handle, prompts)
    out: list[list[int]] = [[] for _ in prompts]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, lead in enumerate(enc.leads):
        groups.setdefault(tuple(lead), []).append(i)
    stops = [s for s in params.stop if s]
    for lead, rows in groups.items():
        ends = layout(handle).enders(lead)
        encoder_out, encoder_mask = enc.rows(rows)
        feed = torch.tensor([list(lead)] * len(rows), device=handle.device)
        result = run_decoder(handle, encoder_out, encoder_mask, feed, use_cache=True)
        done = [False] * len(rows)
        for step in range(params.max_new_tokens):
            chosen = picker(result.logits[:, -1])
            for k, t in enumerate(chosen.tolist()):
                if done[k]:
                    continue
                if t in ends:
                    done[k] = True
                    continue
                out[rows[k]].append(t)
                if stops and any(s in handle.codec.decode(out[rows[k]]) for s in stops):
                    done[k] = True
            if all(done) or step == params.max_new_tokens - 1:
                break
            result = run_decoder(handle, encoder_out, encoder_mask, chosen[:, None],
                                 cache=result.past_key_values, use_cache=True)
    return out
