"""From rendered segments to token ids, written once for every local backend.

A backend supplies only `encode_text` (its tokenizer without special tokens) and the
special ids; where the BOS goes, how soft tokens and masks are laid out, what a label word
continues from and what is cut when a prompt is too long are decided here. Two
frameworks with the same tokenizer therefore see identical ids, masks and soft positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from unified_prompt.errors import UserInputError
from unified_prompt.prompts.segments import Demos, Mask, Rendered, Soft, Text

ModelLayout = Literal["causal", "masked"]


@dataclass(frozen=True)
class SpecialIds:
    """Special token ids a layout needs; None where the tokenizer has none."""

    bos: int | None = None
    eos: int | None = None
    pad: int | None = None
    mask: int | None = None
    cls: int | None = None
    sep: int | None = None
    add_bos: bool = False


@dataclass(frozen=True)
class Encoded:
    """One prompt as ids.

    ids: token ids; soft positions hold `placeholder` (backends overwrite their embeddings).
    soft: (slot, position) for each virtual token, in order.
    masks: positions of mask tokens (masked LMs), empty for causal prompts.
    """

    ids: tuple[int, ...]
    soft: tuple[tuple[int, int], ...] = ()
    masks: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


EncodeText = Callable[[str], list[int]]


def soft_counts(prompt: Rendered, encode_text: EncodeText) -> dict[int, int]:
    """Virtual tokens per soft slot; a slot with only init text takes its token count."""
    counts: dict[int, int] = {}
    for seg in prompt.soft_slots:
        if seg.count is not None:
            counts[seg.slot] = seg.count
        else:
            counts[seg.slot] = max(1, len(encode_text(seg.init_text or "")))
    return counts


def check_triggers(items: Sequence, triggers: dict[int, list[int]], rows: int,
                   encode_text: EncodeText) -> None:
    """What every backend's token_gradients accepts: trigger ids inside the embedding
    matrix, exactly one id per virtual token of each soft slot of every prompt."""
    if not items:
        raise UserInputError("token_gradients needs at least one example")
    for slot, ids in triggers.items():
        if not ids or any(not 0 <= int(i) < rows for i in ids):
            raise UserInputError(f"trigger ids of soft slot {slot} must be vocabulary ids "
                                 f"(0 to {rows - 1})")
    for item in items:
        counts = soft_counts(item.prompt, encode_text)
        for slot, count in counts.items():
            given = len(triggers.get(slot, []))
            if given != count:
                raise UserInputError(f"soft slot {slot} holds {count} tokens but {given} "
                                     "trigger ids were given")
        extra = sorted(set(triggers) - set(counts))
        if extra:
            raise UserInputError(f"trigger ids were given for soft slots {extra}, which the "
                                 "prompt does not have")


def _pieces(segments: Sequence, encode_text: EncodeText, counts: dict[int, int],
            n_masks: int, special: SpecialIds) -> list[tuple[str, list[int], int]]:
    """(kind, ids, slot) runs: kind is "text", "soft" or "mask"."""
    out: list[tuple[str, list[int], int]] = []
    for seg in segments:
        if isinstance(seg, Text):
            out.append(("text", encode_text(seg.text), -1))
        elif isinstance(seg, Demos):
            out.append(("text", encode_text(seg.as_text()), -1))
        elif isinstance(seg, Soft):
            out.append(("soft", [0] * counts[seg.slot], seg.slot))
        elif isinstance(seg, Mask):
            if special.mask is None:
                raise UserInputError("this tokenizer has no mask token; a masked-LM layout needs one")
            out.append(("mask", [special.mask] * n_masks, -1))
    return out


def _truncate(pieces: list[tuple[str, list[int], int]], budget: int) -> None:
    """Cut tokens from the front of the longest text run until the prompt fits `budget`.

    The front goes first so the words nearest the mask (what the label continues) stay.
    """
    total = sum(len(p[1]) for p in pieces)
    while total > budget:
        texts = [i for i, p in enumerate(pieces) if p[0] == "text" and p[1]]
        if not texts:
            raise UserInputError(f"prompt needs {total} tokens without any text to cut; the model "
                                 f"takes {budget} (fewer soft tokens or masks, or a larger model)")
        i = max(texts, key=lambda j: len(pieces[j][1]))
        kind, ids, slot = pieces[i]
        cut = min(len(ids), total - budget)
        pieces[i] = (kind, ids[cut:], slot)
        total -= cut


def _assemble(pieces: list[tuple[str, list[int], int]], lead: list[int], tail: list[int],
              placeholder: int) -> Encoded:
    ids: list[int] = list(lead)
    soft: list[tuple[int, int]] = []
    masks: list[int] = []
    for kind, run, slot in pieces:
        if kind == "soft":
            soft.extend((slot, len(ids) + k) for k in range(len(run)))
            ids.extend([placeholder] * len(run))
        elif kind == "mask":
            masks.extend(range(len(ids), len(ids) + len(run)))
            ids.extend(run)
        else:
            ids.extend(run)
    ids.extend(tail)
    return Encoded(tuple(ids), tuple(soft), tuple(masks))


def encode_causal(prompt: Rendered, encode_text: EncodeText, special: SpecialIds, *,
                  max_length: int, reserve: int = 0, placeholder: int = 0) -> Encoded:
    """The context a causal LM continues: everything before the mask, BOS if the model
    adds one. `reserve` tokens are kept free for the continuation (label word or target)."""
    counts = soft_counts(prompt, encode_text)
    pieces = _pieces(prompt.before_mask(), encode_text, counts, 0, special)
    lead = [special.bos] if special.add_bos and special.bos is not None else []
    _truncate(pieces, max_length - reserve - len(lead))
    return _assemble(pieces, lead, [], placeholder)


def encode_continuation(prompt: Rendered, text: str, encode_text: EncodeText) -> list[int]:
    """Ids of `text` written at the prompt's mask (the whitespace before the mask leads it)."""
    return encode_text(prompt.mask_lead() + text)


def encode_masked(prompt: Rendered, encode_text: EncodeText, special: SpecialIds, *,
                  max_length: int, n_masks: int = 1, placeholder: int = 0) -> Encoded:
    """A masked-LM input: [CLS] text with `n_masks` mask tokens at the mask [SEP]."""
    counts = soft_counts(prompt, encode_text)
    pieces = _pieces(prompt.segments, encode_text, counts, n_masks, special)
    lead = [special.cls] if special.cls is not None else []
    tail = [special.sep] if special.sep is not None else []
    _truncate(pieces, max_length - len(lead) - len(tail))
    return _assemble(pieces, lead, tail, placeholder)
