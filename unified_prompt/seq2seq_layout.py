"""Where an encoder-decoder model's (T5, BART) decoder starts and stops, in plain Python.

The hf and paddle backends run T5 and BART in different frameworks but must feed their
decoders the same ids, so the convention is written once here:

- decoder input: `decoder_start_token_id`, then the forced BOS where the model has one
  (BART's `<s>`, what `generate` writes first), then T5's first sentinel `<extra_id_0>`
  when the prompt has a mask (span corruption's target is `<extra_id_0> word`), then the
  label word or the generation target;
- an answer ends at EOS, and after T5's sentinel also at the next one, `<extra_id_1>`.

The ids are read as transformers reads them: generation_config.json's forced BOS and EOS
over config.json's, config.json's decoder start over generation_config.json's, the
padding id when neither names a start. A tokenizer without a mask token (T5) masks with
its first sentinel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_prompt.encoding import Encoded
from unified_prompt.errors import CapabilityError

SENTINEL = "<extra_id_{}>"

#: The config fields `read_layout` looks at (in config.json and generation_config.json).
LAYOUT_FIELDS = ("decoder_start_token_id", "forced_bos_token_id", "eos_token_id",
                 "pad_token_id", "model_type")


@dataclass(frozen=True)
class DecoderLayout:
    """The decoder's fixed ids, read once when the model loads."""

    start: int  # decoder_start_token_id
    forced_bos: int | None  # BART's <s>, the first token its decoder writes
    sentinel: int | None  # T5's <extra_id_0>: the mask in the encoder, the lead in the decoder
    next_sentinel: int | None  # <extra_id_1>: where T5 ends the first span
    eos: frozenset[int]

    def prefix(self, enc: Encoded) -> list[int]:
        """Decoder ids before the answer's first token, for the encoder input `enc`."""
        lead = [self.start]
        if self.forced_bos is not None:
            lead.append(self.forced_bos)
        if enc.masks and self.sentinel is not None:
            lead.append(self.sentinel)
        return lead

    def enders(self, prefix: Sequence[int]) -> frozenset[int]:
        """Tokens that end an answer written after `prefix`: EOS, and after T5's first
        sentinel the next one."""
        if self.sentinel is not None and self.sentinel in prefix \
                and self.next_sentinel is not None:
            return self.eos | {self.next_sentinel}
        return self.eos


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _ids(value: Any) -> set[int]:
    if isinstance(value, int):
        return {value}
    if isinstance(value, (list, tuple)):
        return {int(v) for v in value}
    return set()


def read_layout(config: Mapping[str, Any], generation: Mapping[str, Any], *,
                tokenizer_eos: int | None, has_mask_token: bool,
                token_id: Callable[[str], int | None]) -> DecoderLayout:
    """The layout from a model's config and generation config (mappings; a missing or None
    field is unset) and its tokenizer: its EOS id, whether it has a mask token, and the id
    of a token by its text (None for one it lacks)."""
    start = _first(config.get("decoder_start_token_id"),
                   generation.get("decoder_start_token_id"), config.get("pad_token_id"))
    if start is None:
        raise CapabilityError(f"{config.get('model_type')}: the config has no "
                              "decoder_start_token_id (nor pad_token_id)")
    forced = _first(generation.get("forced_bos_token_id"), config.get("forced_bos_token_id"))
    eos = _ids(tokenizer_eos) | _ids(generation.get("eos_token_id")) \
        | _ids(config.get("eos_token_id"))
    sentinel = next_sentinel = None
    if not has_mask_token:
        sentinel, next_sentinel = token_id(SENTINEL.format(0)), token_id(SENTINEL.format(1))
    return DecoderLayout(int(start), None if forced is None else int(forced), sentinel,
                         next_sentinel, frozenset(eos))


def read_folder_layout(folder: Path, config: Mapping[str, Any], *, tokenizer_eos: int | None,
                       has_mask_token: bool, token_id: Callable[[str], int | None]
                       ) -> DecoderLayout:
    """`read_layout` for a model folder: `config` is its config.json, read here beside its
    generation_config.json (when there is one)."""
    path = folder / "generation_config.json"
    generation = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return read_layout(config, generation, tokenizer_eos=tokenizer_eos,
                       has_mask_token=has_mask_token, token_id=token_id)
