"""Decoding bookkeeping shared by the local backends, in plain Python (no framework).

The hf (torch) and paddle backends compute logits differently but must hand the core and
an OpenAI client the same strings: where a raw text's tokens sit (BOS, soft slots, what is
cut to fit), which piece of the text and which character offset each TokenLogprob carries,
where a stop string cuts a continuation, how a masked LM's next input is laid out, and what
`generate` returns. Written once here, the two frameworks agree by construction; each
backend keeps only its forward passes and tensor arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from unified_prompt.backend import Generated, TokenLogprob
from unified_prompt.encoding import Encoded, SpecialIds
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.segments import Rendered

#: The text one token id stands for (shown for top-k alternatives).
TokenText = Callable[[int], str]
#: Text of token ids.
Decode = Callable[[list[int]], str]


# -- prompts -------------------------------------------------------------------------------
def length_order(prompts: Sequence[Rendered]) -> list[int]:
    """Longest first, so each batch pads little (results do not depend on the order)."""
    return sorted(range(len(prompts)), key=lambda i: -len(prompts[i].text()))


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the earliest (non-empty) stop string starts in `text`; None without one."""
    return min((text.index(s) for s in stops if s and s in text), default=None)


def finish(text: str, prompt: Rendered, stops: Sequence[str]) -> str:
    """Generated text as `generate` returns it: cut at the earliest stop string, without
    the whitespace that led into the mask."""
    cut = first_stop(text, stops)
    text = text if cut is None else text[:cut]
    lead = prompt.mask_lead()
    if lead and text.startswith(lead):
        text = text[len(lead):]
    return text


# -- masked LMs write one token at a time ----------------------------------------------------
def splice(enc: Encoded, new: Sequence[int]) -> Encoded:
    """`enc` with its block of masks replaced by `new` (soft positions after it shifted)."""
    m0, n = enc.masks[0], len(enc.masks)
    shift = len(new) - n
    ids = enc.ids[:m0] + tuple(new) + enc.ids[m0 + n:]
    soft = tuple((s, p if p < m0 else p + shift) for s, p in enc.soft)
    return Encoded(ids, soft, ())


def mask_after(enc: Encoded, written: Sequence[int], mask_id: int) -> Encoded:
    """The input asking for the next token: the tokens written so far, then one mask.

    Generation and the masked-LM generation loss share it, so what is trained is what is
    decoded."""
    spliced = splice(enc, [*written, mask_id])
    return Encoded(spliced.ids, spliced.soft, (enc.masks[0] + len(written),))


# -- raw text (OpenAI-compatible serving) ----------------------------------------------------
@dataclass(frozen=True)
class RawPrompt:
    """One text as the model sees it: `head` tokens (BOS, soft) before the text's `ids`,
    of which the first `dropped` did not fit and were cut."""

    encoded: Encoded
    ids: list[int]
    head: int
    dropped: int

    def targets(self) -> tuple[int, list[int]]:
        """(first, targets): position `first + j` of `encoded` predicts `targets[j]`. The
        first kept token is scored only when something (BOS, soft tokens) leads it."""
        lead = 0 if self.head else 1
        return self.head + lead - 1, self.ids[self.dropped + lead:]


def raw_prompt(ids: Sequence[int], special: SpecialIds, soft: dict[int, int], budget: int, *,
               reserve: int = 0, start: bool = False, placeholder: int = 0,
               backend: str) -> RawPrompt:
    """Text ids laid out as `encode_causal` lays out a prompt whose only segment is the
    text: BOS when the tokenizer adds one (not doubled when the text spells it), then every
    soft slot in slot order (`soft`: slot -> tokens; a prompt-tuned model is served as it
    was trained, `{soft} text`), then the ids, cut from the front to leave `reserve` of
    `budget` positions. `start` puts BOS (or EOS, or pad) before an empty text, for
    generation."""
    ids = [int(i) for i in ids]
    bos = special.bos
    lead = [int(bos)] if special.add_bos and bos is not None and ids[:1] != [bos] else []
    slots: list[tuple[int, int]] = []
    for slot, n in sorted(soft.items()):
        at = len(lead) + len(slots)
        slots.extend((slot, at + k) for k in range(n))
    if start and not lead and not slots and not ids:
        first = bos if bos is not None else special.eos
        lead = [int(first if first is not None else special.pad or 0)]
    head = len(lead) + len(slots)
    room = budget - reserve - head
    if room < 1:
        raise UserInputError(f"backend {backend!r}: {head} soft/BOS tokens and {reserve} to "
                             f"generate leave no room for text in {budget} positions")
    dropped = max(0, len(ids) - room)
    body = (*lead, *([placeholder] * len(slots)), *ids[dropped:])
    return RawPrompt(Encoded(tuple(body), tuple(slots)), ids, head, dropped)


def token_pieces(text: str, ends: Sequence[int]) -> list[tuple[str, int]]:
    """(piece, character offset) per token, the pieces joining to `text` exactly.

    `ends` are where each token ends in `text` (a tokenizer's offset mapping, or decoded
    prefixes). A token owns the text from the previous token's end to its own (so " great"
    keeps its space whatever the tokenizer's offset trimming); the last runs to the end of
    the text; a token ending inside a character already written owns "".
    """
    out: list[tuple[str, int]] = []
    at = 0
    for k, end in enumerate(ends):
        stop = len(text) if k == len(ends) - 1 else min(max(end, at), len(text))
        out.append((text[at:stop], at))
        at = stop
    return out


def alternatives(pairs: Sequence[tuple[int, float]], token_text: TokenText
                 ) -> tuple[tuple[str, float], ...]:
    """Top-k (id, log-prob) pairs as TokenLogprob.top holds them."""
    return tuple((token_text(int(i)), float(v)) for i, v in pairs)


def text_tokens(pieces: Sequence[tuple[str, int]], ids: Sequence[int], values: Sequence[float],
                best: Sequence[Sequence[tuple[int, float]]], token_text: TokenText
                ) -> tuple[TokenLogprob, ...]:
    """TokenLogprobs of a text whose last `len(values)` tokens were scored (`best`: their
    top-k alternatives); the tokens before (unconditioned or cut to fit) get None."""
    skip = len(ids) - len(values)
    return tuple(
        TokenLogprob(piece, None, at, (), int(tid)) if k < skip else
        TokenLogprob(piece, float(values[k - skip]), at, alternatives(best[k - skip], token_text),
                     int(tid))
        for k, ((piece, at), tid) in enumerate(zip(pieces, ids, strict=True)))


def anchored(decode: Decode, anchor: Sequence[int]) -> Decode:
    """Text of generated ids as written after the prompt's last token (`anchor`).

    Decoding ids alone can drop a leading space (sentencepiece's Metaspace decoder);
    decoding them after the anchor and cutting the anchor's text keeps it.
    """
    anchor = list(anchor)
    if not anchor:
        return decode
    base = decode(anchor)

    def text(ids: list[int]) -> str:
        both = decode(anchor + list(ids))
        return both[len(base):] if both.startswith(base) else decode(ids)

    return text


def continuation(prompt: str, ids: Sequence[int], logprobs: Sequence[float],
                 top: Sequence[Sequence[tuple[int, float]]], write: Decode,
                 stops: Sequence[str], ended: bool, prompt_tokens: int,
                 token_text: TokenText) -> Generated:
    """A raw-text continuation: token pieces by incremental decoding (`write`, see
    `anchored`), offsets counted from the end of `prompt`, the text cut at the first stop
    string and the tokens with it, so the pieces always join to the text. A token holding
    only part of a character has an empty piece (the token completing it writes it).
    finish_reason is "stop" when an end token (`ended`) or a stop string ended it."""
    ids = [int(i) for i in ids]
    full = write(ids)
    cut = first_stop(full, stops)
    if cut is not None:
        full = full[:cut]
    tokens: list[TokenLogprob] = []
    before = ""
    for k, token in enumerate(ids):
        offset = len(before)
        if cut is not None and offset >= len(full):
            break
        now = write(ids[:k + 1])
        piece = ""
        if not (now.endswith("\ufffd") and k < len(ids) - 1):
            piece, before = now[offset:len(full) if cut is not None else None], now
        tokens.append(TokenLogprob(piece, float(logprobs[k]), len(prompt) + offset,
                                   alternatives(top[k], token_text), token))
    text = "".join(t.token for t in tokens)
    return Generated(text, tuple(tokens), "stop" if ended or cut is not None else "length",
                     prompt_tokens)


def plain_chat(messages: Sequence[dict[str, str]]) -> str:
    """Chat messages for a model without a chat template: "role: content" lines, then
    "assistant:" for the reply."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
