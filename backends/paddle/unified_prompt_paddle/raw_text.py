"""Raw text in, tokens with log-probs out: what an OpenAI-compatible server asks of a model.

A raw text is laid out as a prompt's context is (`unified_prompt.encoding`): the BOS when
the tokenizer adds one, a handle's soft prompt (every slot, in slot order, as the served
prompt-tuned models are trained), then the text's ids; prefixes attach in `forward.run`.
Tokenized in one piece, so a client that echoes `prefix + lead + word` reads the word's
log-probs exactly where `score` puts them. Decoding reuses `generation.decode_causal`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from unified_prompt.backend import Generated, GenerationParams, ModelKind, TokenLogprob
from unified_prompt.encoding import Encoded
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt_paddle.forward import gather_rows, head, log_softmax, make_batch, run
from unified_prompt_paddle.generation import Decoded, decode_causal
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.runtime import paddle, to_tensor
from unified_prompt_paddle.scoring import prompt_budget, soft_offsets
from unified_prompt_paddle.tokenizer import TextTokenizer

#: Rows of the (positions x vocabulary) log-softmax computed at once.
HEAD_ROWS = 512


def _require_causal(model: PaddleModel) -> None:
    if model.kind != ModelKind.CAUSAL:
        raise CapabilityError("raw-text log-probs and continuation need a causal model "
                              f"({model.name} is {model.kind.value})")


@dataclass(frozen=True)
class RawPrompt:
    """One text as the model sees it: `head` tokens (BOS, soft) then the text's `ids`, of
    which the first `dropped` did not fit and were cut."""

    encoded: Encoded
    ids: list[int]
    head: int
    dropped: int


def raw_prompt(model: PaddleModel, ids: Sequence[int], reserve: int = 0, *,
               start: bool = False) -> RawPrompt:
    """Text ids laid out as `encode_causal` lays out a prompt (BOS when the tokenizer adds
    one, then every soft slot in slot order), cut from the front to leave `reserve`
    positions; `start` puts BOS (or EOS) before an empty text, for generation."""
    ids = [int(i) for i in ids]
    special = model.tokenizer.special
    bos = special.bos
    lead = [bos] if special.add_bos and bos is not None and ids[:1] != [bos] else []
    soft: list[tuple[int, int]] = []
    if model.soft is not None:
        for slot in model.soft.slots:
            at = len(lead) + len(soft)
            soft += [(slot, at + k) for k in range(model.soft.counts[slot])]
    if start and not lead and not soft and not ids:
        first = bos if bos is not None else special.eos
        lead = [first if first is not None else special.pad or 0]
    head = len(lead) + len(soft)
    room = prompt_budget(model) - reserve - head
    if room < 1:
        raise UserInputError(f"backend 'paddle': {head} soft/BOS tokens and {reserve} to generate "
                             f"leave no room for text in {prompt_budget(model)} positions")
    dropped = max(0, len(ids) - room)
    body = (*lead, *([0] * len(soft)), *ids[dropped:])
    return RawPrompt(Encoded(tuple(body), tuple(soft)), ids, head, dropped)


def pieces(text: str, offsets: Sequence[tuple[int, int]]) -> list[tuple[str, int]]:
    """Each token's piece of `text` and its offset, so the pieces join to `text`.

    A token runs from where the one before it ended (the leading space of " good" is its
    own, whatever the tokenizer's offset trimming) to its own end; the last runs to the end
    of the text. Bytes of one character split over tokens: the first token gets it.
    """
    out: list[tuple[str, int]] = []
    start = 0
    for k, (_, end) in enumerate(offsets):
        stop = len(text) if k == len(offsets) - 1 else min(max(end, start), len(text))
        out.append((text[start:stop], start))
        start = stop
    return out


def _top(model: PaddleModel, pairs: Sequence[tuple[int, float]]) -> tuple[tuple[str, float], ...]:
    return tuple((model.tokenizer.token_text(int(t)), float(v)) for t, v in pairs)


# -- log-probs of a text -----------------------------------------------------------------
def text_logprobs(model: PaddleModel, texts: Sequence[str], top_k: int,
                  batch_size: int) -> list[tuple[TokenLogprob, ...]]:
    """Every token of each text with its log-prob given BOS, soft tokens and the text before
    it; None for a first token nothing conditions and for tokens cut to fit the model."""
    _require_causal(model)
    tok = model.tokenizer
    encodings = [tok.backend.encode(t, add_special_tokens=False) for t in texts]
    prompts = [raw_prompt(model, e.ids) for e in encodings]
    out: list[tuple[TokenLogprob, ...]] = [()] * len(texts)
    order = sorted((i for i, p in enumerate(prompts) if p.ids),
                   key=lambda i: -len(prompts[i].encoded))  # longest first: little padding
    size = max(1, batch_size)
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        rows = [_targets(prompts[i]) for i in idx]
        scored = _scored(model, [prompts[i].encoded for i in idx], rows, top_k)
        for i, (values, best) in zip(idx, scored, strict=True):
            p = prompts[i]
            skip = len(p.ids) - len(values)
            tokens = []
            for k, (piece, offset) in enumerate(pieces(texts[i], encodings[i].offsets)):
                if k < skip:
                    tokens.append(TokenLogprob(piece, None, offset, (), p.ids[k]))
                else:
                    tokens.append(TokenLogprob(piece, values[k - skip], offset,
                                               _top(model, best[k - skip]), p.ids[k]))
            out[i] = tuple(tokens)
    return out


def _targets(p: RawPrompt) -> tuple[int, list[int]]:
    """(first position, targets): position first + j predicts targets[j]."""
    first = 0 if p.head else 1  # the first kept token is scored when something leads it
    return p.head + first - 1, p.ids[p.dropped + first:]


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
def _anchored(tok: TextTokenizer, anchor: list[int]) -> Callable[[list[int]], str]:
    """Text of generated ids as written after the prompt's last token.

    Decoding ids alone can drop a leading space (sentencepiece's Metaspace decoder);
    decoding them after the last prompt token and cutting that token's text keeps it.
    """
    base = tok.decode(anchor) if anchor else ""

    def text(ids: list[int]) -> str:
        if not anchor:
            return tok.decode(ids)
        both = tok.decode(anchor + ids)
        return both[len(base):] if both.startswith(base) else tok.decode(ids)

    return text


def _cut(decoded: str, stops: Sequence[str]) -> tuple[str, bool]:
    hits = [decoded.index(s) for s in stops if s in decoded]
    return (decoded[:min(hits)], True) if hits else (decoded, False)


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
    prompts = [raw_prompt(model, tok.encode_text(t), params.max_new_tokens, start=True)
               for t in texts]
    out = [Generated("", (), "length", len(p.ids)) for p in prompts]
    if params.max_new_tokens < 1:
        return out
    for i, p in enumerate(prompts):  # one row at a time: see the docstring
        write = _anchored(tok, p.ids[-1:])

        def stopped(_: int, ids: list[int], write=write) -> bool:
            return bool(stops) and _cut(write(ids), stops)[1]

        seed = None if params.seed is None else params.seed + i  # n samples of one prompt differ
        (decoded,) = decode_causal(model, [p.encoded], replace(params, seed=seed), stopped,
                                   logprobs=True, top_k=top_k)
        out[i] = _generated(model, texts[i], decoded, write, stops, len(p.ids))
    return out


def _generated(model: PaddleModel, prompt: str, d: Decoded, write: Callable[[list[int]], str],
               stops: Sequence[str], prompt_tokens: int) -> Generated:
    """Token pieces by incremental decoding; the text cut at the first stop string and the
    tokens cut with it, so that the pieces always join to the text. A token holding only
    part of a character has an empty piece (the token completing the character writes it)."""
    full, hit = _cut(write(d.ids), stops)
    tokens: list[TokenLogprob] = []
    before = ""
    for k, token in enumerate(d.ids):
        now = write(d.ids[:k + 1])
        offset = len(before)
        if hit and offset >= len(full):
            break
        piece = ""
        if not (now.endswith("\ufffd") and k < len(d.ids) - 1):
            piece, before = now[offset:len(full) if hit else None], now
        tokens.append(TokenLogprob(piece, d.logprobs[k], len(prompt) + offset,
                                   _top(model, d.top[k]), token))
    text = "".join(t.token for t in tokens)
    return Generated(text, tuple(tokens), "stop" if d.ended else "length", prompt_tokens)
