"""The tiny T5 and BART folders: transformers loads them, their tokenizers round-trip and
carry each family's special tokens where the family puts them."""

from __future__ import annotations

import json

import pytest

from unified_prompt.backend import ModelKind
from unified_prompt.testing.tiny import T5_SENTINELS, tiny_model

pytest.importorskip("transformers")


@pytest.fixture(scope="module", params=["t5", "bart"])
def folder(request):
    return request.param, tiny_model(request.param)


def test_seq2seq_kind_value():
    assert ModelKind("seq2seq") is ModelKind.SEQ2SEQ


def test_transformers_loads_the_folder_and_tokens_round_trip(folder):
    import torch
    from transformers import (
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        BartForConditionalGeneration,
        T5ForConditionalGeneration,
    )

    kind, path = folder
    model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    expected = T5ForConditionalGeneration if kind == "t5" else BartForConditionalGeneration
    assert type(model) is expected
    assert model.config.vocab_size == len(tok)
    text = "The movie was great, 10/10!"
    plain = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(plain) == text
    full = tok(text)["input_ids"]
    if kind == "t5":
        assert full == [*plain, tok.eos_token_id]
        sentinel = tok.convert_tokens_to_ids("<extra_id_0>")
        assert tok("It was <extra_id_0>.", add_special_tokens=False)["input_ids"].count(sentinel) == 1
        assert model.config.decoder_start_token_id == tok.pad_token_id
    else:
        assert full == [tok.bos_token_id, *plain, tok.eos_token_id]
        assert tok("It was <mask>.", add_special_tokens=False)["input_ids"].count(
            tok.mask_token_id) == 1
        assert model.config.decoder_start_token_id == tok.eos_token_id
    with torch.no_grad():
        out = model(input_ids=torch.tensor([full]), decoder_input_ids=torch.tensor(
            [[model.config.decoder_start_token_id]]))
    assert out.logits.shape == (1, 1, len(tok))
    assert torch.isfinite(out.logits).all() and out.logits.std() > 0


def test_t5_has_its_sentinels(tmp_path):
    path = tiny_model("t5")
    vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    assert all(f"<extra_id_{i}>" in vocab for i in range(T5_SENTINELS))
    assert (path / "merges.txt").read_text(encoding="utf-8").startswith("#version")
