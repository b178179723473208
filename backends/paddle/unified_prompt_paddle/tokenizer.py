"""Text <-> ids with the framework-free `tokenizers` library on the folder's tokenizer.json.

The hf backend's fast tokenizer is built from the same file, so `encode_text` gives the
same ids on both frameworks; where special tokens go is decided by unified_prompt.encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from unified_prompt.assets import tokenizer_checksum
from unified_prompt.encoding import SpecialIds
from unified_prompt.errors import ModelNotFoundError


def read_json_if_any(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def special_config(folder: Path) -> dict[str, Any]:
    """tokenizer_config.json over special_tokens_map.json, as transformers merges them."""
    return {**read_json_if_any(folder / "special_tokens_map.json"),
            **read_json_if_any(folder / "tokenizer_config.json")}


def special_text(value: Any) -> Any:
    """Special tokens are strings or {"content": ...} dicts (lists of them for
    additional_special_tokens)."""
    if isinstance(value, dict):
        return value.get("content")
    if isinstance(value, list):
        return [special_text(v) for v in value]
    return value


def _token_text(value: Any) -> str | None:
    text = special_text(value)
    return text if isinstance(text, str) else None


@dataclass
class TextTokenizer:
    """A tokenizers.Tokenizer plus the special ids a layout needs."""

    backend: Any
    special: SpecialIds
    checksum: str | None
    vocab_size: int
    model_max_length: int | None = None

    def encode_text(self, text: str) -> list[int]:
        """Ids of `text` without special tokens (what encoding.py expects)."""
        if not text:
            return []
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)

    def token_text(self, token_id: int) -> str:
        """The text one token stands for (verbalizer search shows these)."""
        return self.backend.decode([int(token_id)], skip_special_tokens=False)

    @cached_property
    def vocabulary(self) -> tuple[str, ...]:
        """Every id's text, decoded alone (so " great" keeps its space)."""
        ids = [[i] for i in range(self.vocab_size)]
        return tuple(self.backend.decode_batch(ids, skip_special_tokens=False))


def load_tokenizer(folder: Path, model_config: dict[str, Any]) -> TextTokenizer:
    """The folder's tokenizer.json with truncation and padding off, and its special ids."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{folder}: no tokenizer.json (the paddle backend reads the "
                                 "same fast-tokenizer file as the hf backend)")
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    cfg = special_config(folder)

    def token_id(name: str, config_key: str | None = None) -> int | None:
        text = _token_text(cfg.get(name))
        found = tok.token_to_id(text) if text else None
        if found is None and config_key is not None:
            value = model_config.get(config_key)
            found = value if isinstance(value, int) else None
        return found

    bos = token_id("bos_token", "bos_token_id")
    probe = tok.encode("a", add_special_tokens=True).ids
    plain = tok.encode("a", add_special_tokens=False).ids
    add_bos = bos is not None and len(probe) > len(plain) and probe[0] == bos
    eos = token_id("eos_token", "eos_token_id")
    pad = token_id("pad_token", "pad_token_id")
    special = SpecialIds(bos=bos, eos=eos, pad=pad if pad is not None else eos,
                         mask=token_id("mask_token"), cls=token_id("cls_token"),
                         sep=token_id("sep_token"), add_bos=add_bos)
    limit = cfg.get("model_max_length")
    model_max = int(limit) if isinstance(limit, (int, float)) and 0 < limit < 1_000_000 else None
    return TextTokenizer(tok, special, tokenizer_checksum(folder),
                         tok.get_vocab_size(with_added_tokens=True), model_max)




