"""The encoder-decoder decoder layout both local backends read (unified_prompt.seq2seq_layout):
which config wins for each id, T5's sentinels, and the prefix and end tokens it gives."""

from __future__ import annotations

import json

import pytest

from unified_prompt.encoding import Encoded
from unified_prompt.errors import CapabilityError
from unified_prompt.seq2seq_layout import read_folder_layout, read_layout

T5_VOCAB = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<extra_id_0>": 90, "<extra_id_1>": 91}
MASKED = Encoded(ids=(5, 90, 1), masks=(1,))
UNMASKED = Encoded(ids=(5, 6, 1))


def _t5(config=None, generation=None, **kw):
    args = {"tokenizer_eos": 1, "has_mask_token": False, "token_id": T5_VOCAB.get} | kw
    return read_layout(config or {"pad_token_id": 0, "eos_token_id": 1,
                                  "decoder_start_token_id": 0}, generation or {}, **args)


def test_t5_leads_with_its_first_sentinel_after_a_mask_and_ends_at_the_next():
    lay = _t5()
    assert (lay.start, lay.forced_bos, lay.sentinel, lay.next_sentinel) == (0, None, 90, 91)
    assert lay.eos == {1}
    assert lay.prefix(MASKED) == [0, 90]
    assert lay.enders(lay.prefix(MASKED)) == {1, 91}
    assert lay.prefix(UNMASKED) == [0]
    assert lay.enders(lay.prefix(UNMASKED)) == {1}


def test_bart_leads_with_its_forced_bos_and_has_no_sentinel():
    config = {"decoder_start_token_id": 2, "forced_bos_token_id": 7, "eos_token_id": 2,
              "pad_token_id": 1}
    generation = {"forced_bos_token_id": 0, "eos_token_id": [2, 9],
                  "decoder_start_token_id": 5}
    lay = read_layout(config, generation, tokenizer_eos=2, has_mask_token=True,
                      token_id=T5_VOCAB.get)
    assert lay.start == 2  # config.json's decoder start over generation_config.json's
    assert lay.forced_bos == 0  # generation_config.json's forced BOS over config.json's
    assert lay.sentinel is None and lay.next_sentinel is None  # it has a mask token
    assert lay.eos == {2, 9}
    assert lay.prefix(MASKED) == lay.prefix(UNMASKED) == [2, 0]
    assert lay.enders([2, 0]) == {2, 9}


def test_an_unset_field_falls_back_and_a_missing_start_is_refused():
    generation = {"decoder_start_token_id": 3, "forced_bos_token_id": None}
    config = {"decoder_start_token_id": None, "forced_bos_token_id": 4, "pad_token_id": 0,
              "eos_token_id": None}
    lay = _t5(config, generation, tokenizer_eos=None)
    assert (lay.start, lay.forced_bos, lay.eos) == (3, 4, frozenset())
    assert _t5({"pad_token_id": 6}).start == 6
    with pytest.raises(CapabilityError, match="t5: the config has no decoder_start_token_id"):
        _t5({"model_type": "t5", "pad_token_id": None})


def test_a_vocab_without_sentinels_leads_with_the_start_alone():
    lay = _t5(token_id={}.get)
    assert lay.sentinel is None and lay.prefix(MASKED) == [0]
    assert lay.enders([0]) == {1}


def test_the_folder_reader_takes_generation_config_json_when_there_is_one(tmp_path):
    config = {"decoder_start_token_id": 2, "eos_token_id": 2, "pad_token_id": 1}
    kw = {"tokenizer_eos": 2, "has_mask_token": True, "token_id": T5_VOCAB.get}
    assert read_folder_layout(tmp_path, config, **kw).forced_bos is None
    (tmp_path / "generation_config.json").write_text(
        json.dumps({"forced_bos_token_id": 0, "eos_token_id": 8}), encoding="utf-8")
    lay = read_folder_layout(tmp_path, config, **kw)
    assert (lay.forced_bos, lay.eos) == (0, {2, 8})
