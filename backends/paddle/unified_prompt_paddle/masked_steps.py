"""How a masked LM writes text: what is written so far, then one mask, one token at a time.

Generation and the generation loss of masked LMs share these inputs (the hf backend's
factorisation), so what is trained is what is decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

from unified_prompt.encoding import Encoded


def splice(enc: Encoded, new: Sequence[int]) -> Encoded:
    """`enc` with its block of masks replaced by `new` (soft positions after it shifted)."""
    m0, n = enc.masks[0], len(enc.masks)
    shift = len(new) - n
    ids = enc.ids[:m0] + tuple(new) + enc.ids[m0 + n:]
    soft = tuple((s, p if p < m0 else p + shift) for s, p in enc.soft)
    return Encoded(ids, soft, ())


def mask_after(enc: Encoded, written: Sequence[int], mask_id: int) -> Encoded:
    """The input asking for the next token: the tokens written so far, then one mask."""
    spliced = splice(enc, [*written, mask_id])
    return Encoded(spliced.ids, spliced.soft, (enc.masks[0] + len(written),))
