"""Raw-text primitives for OpenAI-compatible serving: per-token log-probs, continuation, chat.

A raw text is laid out as `encode_causal` lays out a prompt whose only segment is that text:
BOS when the tokenizer adds one, then the model's trained soft slots (a prompt-tuned model
is served as it was trained: `{soft} text`), then the text's tokens, cut from the front
when too long. The forward and the decoding loop are the ones scoring and generation use,
so an echoed `prefix + lead + word` gives the word exactly the log-probs `score()` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unified_prompt.backend import Generated, GenerationParams, TokenLogprob
from unified_prompt.encoding import Encoded
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt_hf.batching.tokenize import TextCodec
from unified_prompt_hf.forward import make_batch, run_prompt
from unified_prompt_hf.generation import Picker, causal_steps, stop_ids
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.scoring import prompt_budget

#: Most logit entries (rows x columns x vocabulary) one text_logprobs forward may hold.
LOGIT_BUDGET = 1 << 28


@dataclass(frozen=True)
class RawPrompt:
    """One text as the model sees it: `head` tokens (BOS, soft) before the text's `ids`,
    of which the first `dropped` did not fit and were cut."""

    encoded: Encoded
    ids: list[int]
    head: int
    dropped: int


def require_causal(handle: HFModel) -> None:
    if not handle.causal:
        raise CapabilityError("backend 'hf': raw-text log-probs and continuation need a causal "
                              f"model ({handle.name} is a masked LM)")


def raw_prompt(handle: HFModel, text: str, reserve: int = 0, *, start: bool = False
               ) -> RawPrompt:
    """`text` laid out for the model; `start` puts BOS (or EOS) before a text with nothing
    to continue from, for generation."""
    codec = handle.codec
    ids = list(codec.encode_text(text))
    bos = codec.special.bos
    lead = [int(bos)] if codec.special.add_bos and bos is not None and ids[:1] != [bos] else []
    soft: list[tuple[int, int]] = []
    counts = handle.soft.counts() if handle.soft is not None else {}
    for slot, n in sorted(counts.items()):
        at = len(lead) + len(soft)
        soft.extend((slot, at + k) for k in range(n))
    if start and not lead and not soft and not ids:
        first = bos if bos is not None else codec.eos
        lead = [int(first if first is not None else codec.pad)]
    head = len(lead) + len(soft)
    room = prompt_budget(handle) - reserve - head
    if room < 1:
        raise UserInputError(f"backend 'hf': {head} soft/BOS tokens and {reserve} to generate "
                             f"leave no room for text in {handle.max_length} positions")
    dropped = max(0, len(ids) - room)
    body = [*lead, *([codec.pad] * len(soft)), *ids[dropped:]]
    return RawPrompt(Encoded(tuple(body), tuple(soft), ()), ids, head, dropped)


def token_spans(codec: TextCodec, text: str, ids: Sequence[int]) -> list[tuple[str, int]]:
    """(piece, character offset) per token of `text`, the pieces joining to `text` exactly.

    Each token owns the text from the previous token's end to its own end (so " great"
    keeps its space); a token that ends inside a character (one byte of several) owns "".
    """
    ends = _offset_ends(codec, text, ids) or _decoded_ends(codec, text, ids)
    spans, at = [], 0
    for k, end in enumerate(ends):
        end = len(text) if k == len(ends) - 1 else min(max(end, at), len(text))
        spans.append((text[at:end], at))
        at = end
    return spans


def _offset_ends(codec: TextCodec, text: str, ids: Sequence[int]) -> list[int] | None:
    try:
        enc = codec.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, ValueError, TypeError):
        return None
    offsets = enc.get("offset_mapping")
    if not offsets or list(enc["input_ids"]) != list(ids):
        return None
    return [int(end) for _, end in offsets]


def _decoded_ends(codec: TextCodec, text: str, ids: Sequence[int]) -> list[int]:
    """Token ends from decoding growing prefixes (tokenizers without offset mappings)."""
    ends = []
    for k in range(len(ids)):
        decoded = codec.tokenizer.decode(list(ids[:k + 1]), clean_up_tokenization_spaces=False)
        n = 0
        while n < min(len(decoded), len(text)) and decoded[n] == text[n]:
            n += 1
        ends.append(n)
    return ends


def _top(codec: TextCodec, pairs: Sequence[tuple[int, float]]) -> tuple[tuple[str, float], ...]:
    return tuple((codec.token_text(int(i)), float(v)) for i, v in pairs)


def _chunks(handle: HFModel, prompts: Sequence[RawPrompt], order: list[int], batch_size: int
            ) -> list[list[int]]:
    """Batches of at most `batch_size` rows whose full logits stay under LOGIT_BUDGET."""
    vocab = int(handle.module.get_input_embeddings().weight.shape[0])
    out: list[list[int]] = []
    at = 0
    while at < len(order):
        width = len(prompts[order[at]].encoded)
        rows = max(1, min(batch_size, LOGIT_BUDGET // max(1, width * vocab)))
        out.append(order[at:at + rows])
        at += rows
    return out


def text_logprobs(handle: HFModel, texts: Sequence[str], *, top_k: int = 0,
                  batch_size: int = 16) -> list[tuple[TokenLogprob, ...]]:
    """Every token of each text with its log-prob given BOS, soft tokens and the text before
    it; None for a first token nothing conditions and for tokens cut to fit the model."""
    require_causal(handle)
    codec = handle.codec
    prompts = [raw_prompt(handle, t) for t in texts]
    out: list[tuple[TokenLogprob, ...]] = [() for _ in texts]
    order = sorted((i for i, p in enumerate(prompts) if p.ids), key=lambda i: -len(prompts[i].encoded))
    with torch.inference_mode(), handle.evaluating():
        for idx in _chunks(handle, prompts, order, max(1, batch_size)):
            batch = make_batch(handle, [prompts[i].encoded for i in idx])
            logits, _ = run_prompt(handle, batch)
            for r, i in enumerate(idx):
                out[i] = _row_logprobs(codec, texts[i], prompts[i], logits[r], batch.offsets[r],
                                       top_k)
    return out


def _row_logprobs(codec: TextCodec, text: str, prompt: RawPrompt, logits: torch.Tensor,
                  offset: int, top_k: int) -> tuple[TokenLogprob, ...]:
    kept = prompt.ids[prompt.dropped:]
    first = 0 if prompt.head else 1  # the first kept token is scored when something leads it
    scored = kept[first:]
    values: list[float] = []
    best: list[list[tuple[int, float]]] = [[] for _ in scored]
    if scored:
        at = offset + prompt.head + first - 1
        lsm = torch.log_softmax(logits[at:at + len(scored)].float(), dim=-1)
        picked = lsm.gather(1, torch.tensor(scored, device=lsm.device)[:, None])[:, 0]
        values = picked.tolist()
        if top_k > 0:
            top = lsm.topk(min(top_k, lsm.shape[-1]), dim=-1)
            best = [list(zip(ix, v, strict=True))
                    for ix, v in zip(top.indices.tolist(), top.values.tolist(), strict=True)]
    skip = prompt.dropped + first
    tokens = []
    for k, ((piece, at_char), tid) in enumerate(zip(token_spans(codec, text, prompt.ids),
                                                     prompt.ids, strict=True)):
        if k < skip:
            tokens.append(TokenLogprob(piece, None, at_char, (), int(tid)))
        else:
            tokens.append(TokenLogprob(piece, float(values[k - skip]), at_char,
                                       _top(codec, best[k - skip]), int(tid)))
    return tuple(tokens)


def continuation_pieces(codec: TextCodec, context: Sequence[int], ids: Sequence[int]
                        ) -> list[str]:
    """Text each generated token adds after `context` (decoded together, so a leading space
    a tokenizer drops at the start of a text is kept); "" while a character is incomplete."""
    done = codec.decode(list(context))
    pieces = []
    for k in range(len(ids)):
        full = codec.decode([*context, *ids[:k + 1]])
        if full.endswith("\ufffd") and k + 1 < len(ids):
            pieces.append("")
            continue
        pieces.append(full[len(done):])
        done = full
    return pieces


def generate_text(handle: HFModel, texts: Sequence[str], params: GenerationParams, *,
                  top_k: int = 0, batch_size: int = 16) -> list[Generated]:
    """Greedy (temperature 0) or seeded sampled continuations, with per-token log-probs."""
    require_causal(handle)
    out = [Generated("", (), "length", 0) for _ in texts]
    prompts = [raw_prompt(handle, t, params.max_new_tokens, start=True) for t in texts]
    if not texts or params.max_new_tokens < 1:
        return [Generated("", (), "length", len(p.ids)) for p in prompts]
    picker = Picker(params, handle.device)
    enders = stop_ids(handle)
    order = sorted(range(len(texts)), key=lambda i: -len(prompts[i].encoded))
    with torch.inference_mode(), handle.evaluating():
        for start in range(0, len(texts), max(1, batch_size)):
            idx = order[start:start + batch_size]
            steps = causal_steps(handle, [prompts[i].encoded for i in idx], params, picker,
                                 enders, record=True, top_k=top_k)
            for r, i in enumerate(idx):
                out[i] = _generated(handle.codec, texts[i], prompts[i], params, steps.ids[r],
                                    steps.logprobs[r], steps.top[r], steps.ended[r])
    return out


def _generated(codec: TextCodec, text: str, prompt: RawPrompt, params: GenerationParams,
               ids: list[int], logprobs: list[float], top: list[list[tuple[int, float]]],
               ended: bool) -> Generated:
    pieces = continuation_pieces(codec, prompt.ids[-1:], ids)
    written = "".join(pieces)
    cut = min([written.index(s) for s in params.stop if s and s in written], default=None)
    tokens, at = [], 0
    for piece, tid, lp, alts in zip(pieces, ids, logprobs, top, strict=True):
        if cut is not None:
            if at >= cut:
                break
            piece = piece[:cut - at]
        tokens.append(TokenLogprob(piece, lp, len(text) + at, _top(codec, alts), int(tid)))
        at += len(piece)
    reason = "stop" if ended or cut is not None else "length"
    return Generated("".join(t.token for t in tokens), tuple(tokens), reason, len(prompt.ids))


def render_chat(handle: HFModel, messages: Sequence[dict[str, str]]) -> str:
    """The tokenizer's chat template, ready for the assistant's reply; without a template,
    "role: content" lines and "assistant:"."""
    tokenizer = handle.codec.tokenizer
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                                 add_generation_prompt=True))
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
