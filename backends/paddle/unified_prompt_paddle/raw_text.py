"""Raw text in, tokens with log-probs out: what an OpenAI-compatible server asks of a model.

A raw text is laid out by `unified_prompt.decoding.raw_prompt` as a prompt's context is
(`unified_prompt.encoding`): the BOS when the tokenizer adds one, a handle's soft prompt
(every slot, in slot order, as the served prompt-tuned models are trained), then the text's
ids; prefixes attach in `forward.run`. Token pieces, offsets and stop strings are decided
there too (shared with the hf backend). Tokenized in one piece, so a client that echoes
`prefix + lead + word` reads the word's log-probs exactly where `score` puts them.
Decoding reuses `generation.decode_causal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise

import numpy as np

from unified_prompt.backend import Generated, GenerationParams, ModelKind, TokenLogprob
from unified_prompt.decoding import (
    RawPrompt,
    anchored,
    continuation,
    first_stop,
    raw_prompt,
    text_tokens,
    token_pieces,
)
from unified_prompt.encoding import Encoded
from unified_prompt.errors import CapabilityError
from unified_prompt_paddle.forward import gather_rows, head, log_softmax, make_batch, run
from unified_prompt_paddle.generation import decode_causal
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.runtime import paddle, to_tensor
from unified_prompt_paddle.scoring import prompt_budget, soft_offsets

#: Rows of the (positions x vocabulary) log-softmax computed at once.
HEAD_ROWS = 512


def _require_causal(model: PaddleModel) -> None:
    if model.kind != ModelKind.CAUSAL:
        raise CapabilityError("raw-text log-probs and continuation need a causal model "
                              f"({model.name} is {model.kind.value})")


def _raw_prompt(model: PaddleModel, ids: Sequence[int], reserve: int = 0, *,
                start: bool = False) -> RawPrompt:
    soft = model.soft.counts if model.soft is not None else {}
    return raw_prompt(ids, model.tokenizer.special, soft, prompt_budget(model),
                      reserve=reserve, start=start, backend="paddle")


# -- log-probs of a text -----------------------------------------------------------------
def text_logprobs(model: PaddleModel, texts: Sequence[str], top_k: int,
                  batch_size: int) -> list[tuple[TokenLogprob, ...]]:
    """Every token of each text with its log-prob given BOS, soft tokens and the text before
    it; None for a first token nothing conditions and for tokens cut to fit the model."""
    _require_causal(model)
    tok = model.tokenizer
    encodings = [tok.backend.encode(t, add_special_tokens=False) for t in texts]
    prompts = [_raw_prompt(model, e.ids) for e in encodings]
    out: list[tuple[TokenLogprob, ...]] = [()] * len(texts)
    order = sorted((i for i, p in enumerate(prompts) if p.ids),
                   key=lambda i: -len(prompts[i].encoded))  # longest first: little padding
    size = max(1, batch_size)
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        rows = [prompts[i].targets() for i in idx]
        scored = _scored(model, [prompts[i].encoded for i in idx], rows, top_k)
        for i, (values, best) in zip(idx, scored, strict=True):
            ends = [end for _, end in encodings[i].offsets]
            out[i] = text_tokens(token_pieces(texts[i], ends), prompts[i].ids, values, best,
                                 tok.token_text)
    return out


def _scored(model: PaddleModel, enc: Sequence[Encoded], rows: Sequence[tuple[int, list[int]]],
            top_k: int) -> list[tuple[list[float], list[list[tuple[int, float]]]]]:
    """Per row, the targets' log-probs and the `top_k` best (id, log-prob) at each position,
    the vocabulary log-softmax taken HEAD_ROWS positions at a time."""
    pd = paddle()
    batch = make_batch(enc, model.tokenizer.special.pad or 0, soft_offsets(model))
    r = np.array([i for i, (_, t) in enumerate(rows) for _ in t], dtype=np.int64)
    c = np.array([at + j for at, t in rows for j in range(len(t))], dtype=np.int64)
    targets = np.array([x for _, t in rows for x in t], dtype=np.int64)
    values = np.zeros(len(targets), np.float32)
    top_v = np.zeros((len(targets), max(top_k, 0)), np.float32)
    top_i = np.zeros((len(targets), max(top_k, 0)), np.int64)
    with pd.no_grad():
        hidden, _ = run(model, batch.ids, batch.mask, batch.positions, batch.soft)
        for s in range(0, len(targets), HEAD_ROWS):
            part = slice(s, s + HEAD_ROWS)
            logp = log_softmax(head(model, gather_rows(hidden, r[part], c[part])))
            values[part] = pd.take_along_axis(logp, to_tensor(targets[part, None]), axis=1
                                              )[:, 0].numpy()
            if top_k > 0:
                v, ix = pd.topk(logp, k=min(top_k, logp.shape[-1]), axis=-1)
                top_v[part], top_i[part] = v.numpy(), ix.numpy()
    bounds = np.cumsum([0] + [len(t) for _, t in rows])
    return [([float(x) for x in values[a:b]],
             [list(zip(top_i[j].tolist(), top_v[j].tolist(), strict=True)) for j in range(a, b)])
            for a, b in pairwise(bounds)]


# -- continuation --------------------------------------------------------------------------
def generate_text(model: PaddleModel, texts: Sequence[str], params: GenerationParams,
                  top_k: int, batch_size: int) -> list[Generated]:
    """Greedy (or seeded sampled) continuations with per-token log-probs and alternatives.

    Each text decodes on its own, whatever `batch_size`: paddle's CPU matmuls (MKL) round
    differently for different batch shapes (an ulp of a log-prob, and a greedy pick between
    near-ties could flip), and a text's continuation must not depend on what it was batched
    with. A prompt longer than the model takes loses tokens from its front.
    """
    _require_causal(model)
    tok = model.tokenizer
    stops = [s for s in params.stop if s]
    prompts = [_raw_prompt(model, tok.encode_text(t), params.max_new_tokens, start=True)
               for t in texts]
    out = [Generated("", (), "length", len(p.ids)) for p in prompts]
    if params.max_new_tokens < 1:
        return out
    for i, p in enumerate(prompts):  # one row at a time: see the docstring
        write = anchored(tok.decode, p.ids[-1:])

        def stopped(ids: list[int], write=write) -> bool:
            return bool(stops) and first_stop(write(ids), stops) is not None

        seed = None if params.seed is None else params.seed + i  # n samples of one prompt differ
        (decoded,) = decode_causal(model, [p.encoded], replace(params, seed=seed), stopped,
                                   logprobs=True, top_k=top_k)
        out[i] = continuation(texts[i], decoded.ids, decoded.logprobs, decoded.top, write, stops,
                              decoded.ended, len(p.ids), tok.token_text)
    return out
