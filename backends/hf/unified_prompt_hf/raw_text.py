"""Raw-text primitives for OpenAI-compatible serving: per-token log-probs, continuation, chat.

A raw text is laid out by `unified_prompt.decoding.raw_prompt` as `encode_causal` lays out
a prompt whose only segment is that text: BOS when the tokenizer adds one, then the model's
trained soft slots (a prompt-tuned model is served as it was trained: `{soft} text`), then
the text's tokens, cut from the front when too long. Token pieces, offsets and stop strings
are decided there too (shared with the paddle backend). The forward and the decoding loop
are the ones scoring and generation use, so an echoed `prefix + lead + word` gives the word
exactly the log-probs `score()` gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unified_prompt.backend import Generated, GenerationParams, TokenLogprob
from unified_prompt.decoding import (
    RawPrompt,
    anchored,
    continuation,
    plain_chat,
    raw_prompt,
    text_tokens,
    token_pieces,
)
from unified_prompt.errors import CapabilityError
from unified_prompt_hf.batching.tokenize import TextCodec
from unified_prompt_hf.forward import make_batch, run_prompt
from unified_prompt_hf.generation import Picker, causal_steps, stop_ids
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.scoring import prompt_budget

#: Most logit entries (rows x columns x vocabulary) one text_logprobs forward may hold.
LOGIT_BUDGET = 1 << 28


def require_causal(handle: HFModel) -> None:
    if not handle.causal:
        what = "an encoder-decoder model" if handle.seq2seq else "a masked LM"
        raise CapabilityError("backend 'hf': raw-text log-probs and continuation need a causal "
                              f"model ({handle.name} is {what})")


def _raw_prompt(handle: HFModel, text: str, reserve: int = 0, *, start: bool = False
                ) -> RawPrompt:
    codec = handle.codec
    soft = handle.soft.counts() if handle.soft is not None else {}
    return raw_prompt(codec.encode_text(text), codec.special, soft, prompt_budget(handle),
                      reserve=reserve, start=start, placeholder=codec.pad, backend="hf")


def token_spans(codec: TextCodec, text: str, ids: Sequence[int]) -> list[tuple[str, int]]:
    """(piece, character offset) per token of `text` (see `decoding.token_pieces`), from
    the tokenizer's offset mapping or, without one, from decoding growing prefixes."""
    return token_pieces(text, _offset_ends(codec, text, ids) or _decoded_ends(codec, text, ids))


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
    prompts = [_raw_prompt(handle, t) for t in texts]
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
    at, targets = prompt.targets()
    values: list[float] = []
    best: list[list[tuple[int, float]]] = [[] for _ in targets]
    if targets:
        at += offset
        lsm = torch.log_softmax(logits[at:at + len(targets)].float(), dim=-1)
        values = lsm.gather(1, torch.tensor(targets, device=lsm.device)[:, None])[:, 0].tolist()
        if top_k > 0:
            top = lsm.topk(min(top_k, lsm.shape[-1]), dim=-1)
            best = [list(zip(ix, v, strict=True))
                    for ix, v in zip(top.indices.tolist(), top.values.tolist(), strict=True)]
    return text_tokens(token_spans(codec, text, prompt.ids), prompt.ids, values, best,
                       codec.token_text)


def generate_text(handle: HFModel, texts: Sequence[str], params: GenerationParams, *,
                  top_k: int = 0, batch_size: int = 16) -> list[Generated]:
    """Greedy (temperature 0) or seeded sampled continuations, with per-token log-probs."""
    require_causal(handle)
    codec = handle.codec
    prompts = [_raw_prompt(handle, t, params.max_new_tokens, start=True) for t in texts]
    out = [Generated("", (), "length", len(p.ids)) for p in prompts]
    if not texts or params.max_new_tokens < 1:
        return out
    picker = Picker(params, handle.device)
    enders = stop_ids(handle)
    order = sorted(range(len(texts)), key=lambda i: -len(prompts[i].encoded))
    with torch.inference_mode(), handle.evaluating():
        for start in range(0, len(texts), max(1, batch_size)):
            idx = order[start:start + batch_size]
            steps = causal_steps(handle, [prompts[i].encoded for i in idx], params, picker,
                                 enders, record=True, top_k=top_k)
            for r, i in enumerate(idx):
                p = prompts[i]
                out[i] = continuation(texts[i], steps.ids[r], steps.logprobs[r], steps.top[r],
                                      anchored(codec.decode, p.ids[-1:]), params.stop,
                                      steps.ended[r], len(p.ids), codec.token_text)
    return out


def render_chat(handle: HFModel, messages: Sequence[dict[str, str]]) -> str:
    """The tokenizer's chat template, ready for the assistant's reply; without a template,
    "role: content" lines and "assistant:"."""
    tokenizer = handle.codec.tokenizer
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                                 add_generation_prompt=True))
    return plain_chat(messages)
