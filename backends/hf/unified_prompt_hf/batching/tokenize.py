"""The tokenizer as the core's encoding module wants it: text -> ids, plus special ids.

Where BOS, masks and soft tokens go is decided by `unified_prompt.encoding`; this module only
supplies `encode_text` (cached, since label words and template text repeat) and the ids.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from unified_prompt.encoding import Encoded, SpecialIds, encode_causal, encode_continuation, encode_masked
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.segments import Rendered


def special_ids(tokenizer: Any, causal: bool) -> SpecialIds:
    """Special ids of a tokenizer; `add_bos` when its own encoding starts with BOS."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = eos if eos is not None else 0
    add_bos = False
    if causal and bos is not None:
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        full = tokenizer("a")["input_ids"]
        add_bos = bool(full) and full[0] == bos and (not plain or plain[0] != bos)
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else bos
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else eos
    return SpecialIds(bos=bos, eos=eos, pad=pad, mask=tokenizer.mask_token_id,
                      cls=None if causal else cls, sep=None if causal else sep, add_bos=add_bos)


class TextCodec:
    """One tokenizer, its special ids, and cached text -> ids."""

    def __init__(self, tokenizer: Any, causal: bool, cache_size: int = 1 << 16) -> None:
        self.tokenizer = tokenizer
        self.special = special_ids(tokenizer, causal)
        self.encode_text = lru_cache(maxsize=cache_size)(self._encode)

    def _encode(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def pad(self) -> int:
        return int(self.special.pad if self.special.pad is not None else 0)

    @property
    def eos(self) -> int | None:
        return self.special.eos

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def causal(self, prompt: Rendered, max_length: int, reserve: int = 0) -> Encoded:
        return encode_causal(prompt, self.encode_text, self.special, max_length=max_length,
                             reserve=reserve, placeholder=self.pad)

    def masked(self, prompt: Rendered, max_length: int, n_masks: int = 1) -> Encoded:
        return encode_masked(prompt, self.encode_text, self.special, max_length=max_length,
                             n_masks=n_masks, placeholder=self.pad)

    def continuation(self, prompt: Rendered, text: str) -> list[int]:
        """Ids of `text` written at the prompt's mask; an empty result is the user's error."""
        ids = encode_continuation(prompt, text, self.encode_text)
        if not ids:
            raise UserInputError(f"label word or target {text!r} has no tokens for this tokenizer")
        return ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
