"""Other architectures from plain Hugging Face folders: GPT-2 (absolute positions, Conv1D),
Qwen2 (RoPE, GQA, biases) and RoBERTa (positions from padding_idx + 1), random weights with
the real tokenizers of the tiny models. Scores, batch independence, training of prompt
tuning, prefix tuning and LoRA, generation, and the plain-peft LoRA round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hf_helpers import MASKED_TEMPLATE, TEMPLATE, make_builder, make_setup

from unified_prompt.backend import GenerationParams, ModelKind
from unified_prompt.testing.conformance import synthetic_examples
from unified_prompt.testing.tiny import tiny_model

WORDS = ["good", "absolutely wonderful", "bad"]


def build(arch: str) -> Path:
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        Qwen2Config,
        Qwen2ForCausalLM,
        RobertaConfig,
        RobertaForMaskedLM,
    )

    from unified_prompt.assets import cache_root

    dest = cache_root() / "tiny" / f"hf-tests-{arch}-v2"
    if (dest / "config.json").exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    if arch == "gpt2":
        src = tiny_model("llama")
        model = GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_positions=256, n_embd=32,
                                           n_layer=2, n_head=4, bos_token_id=1,
                                           eos_token_id=2, pad_token_id=2, resid_pdrop=0.0,
                                           embd_pdrop=0.0, attn_pdrop=0.0))
    elif arch == "qwen2":
        src = tiny_model("llama")
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=49152, hidden_size=32,
                                             intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=256, bos_token_id=1,
                                             eos_token_id=2, pad_token_id=2,
                                             tie_word_embeddings=True))
    else:
        src = tiny_model("bert")
        model = RobertaForMaskedLM(RobertaConfig(vocab_size=30522, hidden_size=32,
                                                 intermediate_size=64, num_hidden_layers=2,
                                                 num_attention_heads=4, pad_token_id=0,
                                                 max_position_embeddings=256,
                                                 type_vocab_size=1, hidden_dropout_prob=0.0,
                                                 attention_probs_dropout_prob=0.0))
    model.save_pretrained(str(tmp))
    for f in src.iterdir():
        if "token" in f.name or f.name in ("vocab.txt", "chat_template.jinja"):
            shutil.copy(f, tmp / f.name)
    tmp.rename(dest)
    return dest


@pytest.fixture(scope="module", params=["gpt2", "qwen2", "roberta"])
def arch_model(request, backend):
    return request.param, backend.load_model(str(build(request.param)))


def template_for(model) -> str:
    return TEMPLATE if model.kind == ModelKind.CAUSAL else MASKED_TEMPLATE


def test_scores_batch_independent_and_finite(backend, arch_model):
    _, model = arch_model
    builder = make_builder(template=template_for(model))
    prompts = builder.render(synthetic_examples()[:5])
    together = backend.score(model, prompts, WORDS, batch_size=5).logprob
    alone = np.concatenate([backend.score(model, [p], WORDS).logprob for p in prompts])
    assert np.all(np.isfinite(together))
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


def test_roberta_positions_follow_the_model(backend, arch_model):
    arch, model = arch_model
    if arch != "roberta":
        pytest.skip("RoBERTa only")
    builder = make_builder(template=MASKED_TEMPLATE)
    p = builder.render(synthetic_examples()[:1])[0]
    got = backend.score(model, [p], ["good"]).logprob[0, 0]
    tok = model.codec.tokenizer
    enc = tok(p.fill_mask(tok.mask_token), return_tensors="pt")
    at = enc["input_ids"][0].tolist().index(tok.mask_token_id)
    with torch.no_grad():
        lsm = torch.log_softmax(model.module(**enc).logits[0, at], -1)
    assert got == pytest.approx(float(lsm[tok.convert_tokens_to_ids("good")]), abs=1e-5)


@pytest.mark.parametrize("method,settings", [
    ("prompt_tuning", {"num_virtual_tokens": 3}), ("prefix_tuning", {"num_virtual_tokens": 3}),
    ("lora", {"r": 2})])
def test_each_method_trains(backend, arch_model, method, settings):
    _, model = arch_model
    builder = make_builder(method, template=template_for(model), **settings)
    session = backend.start_training(model, make_setup(builder))
    items = builder.train_items(synthetic_examples())
    before = session.loss(items)
    lr = {"prompt_tuning": 0.1, "p_tuning": 0.05, "full": 1e-3}.get(method, 0.05)
    for _ in range(6):
        session.forward_backward(items, 1.0)
        session.optimizer_step(lr, 1.0)
    assert session.loss(items) < before


def test_generation_is_batch_independent(backend, arch_model):
    _, model = arch_model
    builder = make_builder(task="generation", template=template_for(model))
    prompts = builder.render(synthetic_examples()[:3])
    params = GenerationParams(max_new_tokens=4, stop=())
    assert backend.generate(model, prompts, params, batch_size=3) == \
        [backend.generate(model, [p], params)[0] for p in prompts]


def test_lora_adapter_loads_in_plain_peft(backend, arch_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    _, model = arch_model
    builder = make_builder("lora", template=template_for(model), r=2)
    session = backend.start_training(model, make_setup(builder))
    items = builder.train_items(synthetic_examples())
    for _ in range(2):
        session.forward_backward(items, 1.0)
        session.optimizer_step(0.05, 1.0)
    session.save_adapter(tmp_path / "a")
    cls = AutoModelForCausalLM if model.causal else AutoModelForMaskedLM
    plain = PeftModel.from_pretrained(cls.from_pretrained(str(model.path)), str(tmp_path / "a"))
    plain.eval()
    prompt = builder.render(synthetic_examples()[:1])[0]
    ours = backend.score(session.model, [prompt], ["good"]).logprob[0, 0]
    tok = model.codec.tokenizer
    if model.causal:
        ids = tok(prompt.prefix_text() + " good", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            lsm = torch.log_softmax(plain(input_ids=torch.tensor([ids])).logits[0, -2], -1)
        want = float(lsm[ids[-1]])
    else:
        enc = tok(prompt.fill_mask(tok.mask_token), return_tensors="pt")
        at = enc["input_ids"][0].tolist().index(tok.mask_token_id)
        with torch.no_grad():
            lsm = torch.log_softmax(plain(**enc).logits[0, at], -1)
        want = float(lsm[tok.convert_tokens_to_ids("good")])
    assert ours == pytest.approx(want, abs=1e-4)
