"""Training sessions: the loss is the core's arithmetic, names are canonical, gradient
checkpointing and the cache path agree, multi-slot soft prompts and P-tuning encoders train."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_helpers import MASKED_TEMPLATE, make_builder, make_setup

from unified_prompt.prompts.verbalizer import log_softmax
from unified_prompt.testing.conformance import synthetic_examples


def core_loss(backend, model, builder, examples) -> float:
    """Cross-entropy computed the way the core predicts: backend.score + Verbalizer."""
    v = builder.verbalizer
    scores = backend.score(model, builder.render(examples), v.flat_words)
    labels = log_softmax(v.label_scores(scores, builder.spec.prompt.word_score))
    gold = [v.label_index(e.label) for e in examples]
    return float(-np.mean(labels[np.arange(len(gold)), gold]))


@pytest.mark.parametrize("word_score", ["sum", "mean"])
@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_loss_is_the_verbalizer_arithmetic(backend, llama, bert, kind, word_score):
    model = llama if kind == "llama" else bert
    extra = {"template": MASKED_TEMPLATE} if kind == "bert" else {}
    builder = make_builder("lora", word_score=word_score, r=2, **extra)
    session = backend.start_training(model, make_setup(builder))
    examples = synthetic_examples()[:6]
    items = builder.train_items(examples)
    session.train_mode(False)
    assert session.loss(items) == pytest.approx(core_loss(backend, session.model, builder,
                                                          examples), abs=1e-5)


def test_canonical_names_and_shapes(backend, llama):
    cfg = llama.module.config
    h, layers = cfg.hidden_size, cfg.num_hidden_layers
    kv = cfg.num_key_value_heads * cfg.head_dim

    def state(method, **kw):
        builder = make_builder(method, **kw)
        return backend.start_training(llama, make_setup(builder)).trainable_state()

    s = state("prompt_tuning", num_virtual_tokens=5)
    assert {k: v.shape for k, v in s.items()} == {"soft.0": (5, h)}
    s = state("p_tuning", num_virtual_tokens=3, encoder_hidden=16)
    assert s["soft.0.embedding"].shape == (3, h)
    assert s["soft.0.encoder.mlp_head.0.weight"].shape == (16, h)
    assert s["soft.0.encoder.mlp_head.4.weight"].shape == (h, 16)
    s = state("prefix_tuning", num_virtual_tokens=4)
    assert {k: v.shape for k, v in s.items()} == {"prefix.embedding": (4, layers * 2 * kv)}
    s = state("prefix_tuning", num_virtual_tokens=4, projection=True, projection_hidden=8)
    assert s["prefix.transform.0.weight"].shape == (8, kv)  # peft: token_dim = kv dim (GQA)
    assert s["prefix.transform.2.weight"].shape == (layers * 2 * kv, 8)
    s = state("lora", r=2)
    q = "lora.model.layers.0.self_attn.q_proj"
    assert s[q + ".A"].shape == (2, h) and s[q + ".B"].shape == (cfg.num_attention_heads *
                                                                  cfg.head_dim, 2)
    assert len(s) == layers * 2 * 2, "q_proj and v_proj in every layer (peft's llama default)"
    s = state("lora", r=2, target_modules=["o_proj"])
    assert set(s) == {f"lora.model.layers.{i}.self_attn.o_proj.{ab}" for i in range(layers)
                      for ab in "AB"}
    s = state("full")
    assert "model.embed_tokens.weight" in s and "lm_head.weight" not in s  # tied once
    assert all(v.dtype == np.float32 for v in s.values())


def test_bert_lora_targets_query_value(backend, bert):
    builder = make_builder("lora", template=MASKED_TEMPLATE, r=2)
    s = backend.start_training(bert, make_setup(builder)).trainable_state()
    assert "lora.bert.encoder.layer.0.attention.self.query.A" in s
    assert "lora.bert.encoder.layer.1.attention.self.value.B" in s


def test_prompt_tuning_inits(backend, llama):
    emb = llama.module.get_input_embeddings().weight.detach()
    b = make_builder("prompt_tuning", num_virtual_tokens=4, init="text", init_text="great movie")
    s = backend.start_training(llama, make_setup(b)).trainable_state()["soft.0"]
    ids = llama.codec.encode_text("great movie")
    want = emb[torch.tensor((ids * 4)[:4])].numpy()
    np.testing.assert_array_equal(s, want)
    b = make_builder("prompt_tuning", num_virtual_tokens=4, init="vocab")
    s = backend.start_training(llama, make_setup(b)).trainable_state()["soft.0"]
    rows = [int(np.argmin(np.abs(emb.numpy() - r).sum(1))) for r in s]
    np.testing.assert_array_equal(s, emb[torch.tensor(rows)].numpy())
    b = make_builder("prompt_tuning", num_virtual_tokens=4, init="random")
    s = backend.start_training(llama, make_setup(b)).trainable_state()["soft.0"]
    assert 0.5 < s.std() < 2.0  # peft's RANDOM: N(0, 1)


def test_multi_slot_soft_template_trains_each_slot(backend, llama):
    builder = make_builder("prompt_tuning",
                           template="{soft:2}Review: {text}{soft:\"in short\"}\nSentiment: {mask}",
                           lr=0.1)
    session = backend.start_training(llama, make_setup(builder))
    items = builder.train_items(synthetic_examples())
    start = session.trainable_state()
    assert set(start) == {"soft.0", "soft.1"}
    assert start["soft.1"].shape[0] == len(llama.codec.encode_text("in short"))
    before = session.loss(items)
    for _ in range(5):
        session.forward_backward(items, 1.0)
        session.optimizer_step(0.1, 1.0)
    after = session.trainable_state()
    assert session.loss(items) < before
    for k in start:
        assert not np.array_equal(start[k], after[k]), f"{k} was trained"


@pytest.mark.parametrize("encoder", ["mlp", "lstm"])
def test_p_tuning_encoders_train(backend, llama, encoder):
    builder = make_builder("p_tuning", num_virtual_tokens=3, encoder=encoder, encoder_hidden=8)
    session = backend.start_training(llama, make_setup(builder))
    items = builder.train_items(synthetic_examples())
    before = session.loss(items)
    for _ in range(6):
        session.forward_backward(items, 1.0)
        session.optimizer_step(0.01, 1.0)
    assert session.loss(items) < before
    if encoder == "lstm":
        assert any("lstm_head" in k for k in session.trainable_state())


def test_gradient_checkpointing_gives_the_same_gradients(backend, llama):
    items = None
    grads = []
    for ckpt in (False, True):
        builder = make_builder("lora", r=2, gradient_checkpointing=ckpt)
        session = backend.start_training(llama, make_setup(builder))
        items = builder.train_items(synthetic_examples()[:4])
        loss = session.forward_backward(items, 1.0)
        grads.append((loss, {k: p.grad.clone() for k, p in session.params.items()
                             if p.grad is not None}))
        session.close()
    (l0, g0), (l1, g1) = grads
    assert l0 == pytest.approx(l1, abs=1e-5)
    for k in g0:
        torch.testing.assert_close(g0[k], g1[k], atol=1e-6, rtol=1e-4)
    assert not llama.module.is_activation_checkpointing


def test_accumulated_half_batches_equal_one_batch(backend, llama):
    builder = make_builder("prompt_tuning", num_virtual_tokens=2, init="random")
    items = builder.train_items(synthetic_examples()[:8])
    one = backend.start_training(llama, make_setup(builder))
    one.forward_backward(items, 1.0)
    two = backend.start_training(llama, make_setup(builder))
    two.forward_backward(items[:4], 0.5)
    two.forward_backward(items[4:], 0.5)
    torch.testing.assert_close(one.params["soft.0"].grad, two.params["soft.0"].grad,
                               atol=1e-6, rtol=1e-4)
    assert one.optimizer_step(0.01, None) == pytest.approx(two.optimizer_step(0.01, None),
                                                           rel=1e-4)


def test_grad_norm_is_pre_clip_and_clipping_applies(backend, llama):
    builder = make_builder("prompt_tuning", num_virtual_tokens=2, init="random")
    items = builder.train_items(synthetic_examples()[:4])
    s = backend.start_training(llama, make_setup(builder))
    s.forward_backward(items, 1.0)
    norm = float(torch.linalg.vector_norm(s.params["soft.0"].grad))
    assert s.optimizer_step(0.01, 1e-3) == pytest.approx(norm, rel=1e-5)
    assert s.params["soft.0"].grad is None, "gradients are zeroed after a step"


def test_generation_loss_is_target_token_nll(backend, llama):
    builder = make_builder("lora", task="generation", r=2)
    session = backend.start_training(llama, make_setup(builder))
    session.train_mode(False)
    examples = synthetic_examples()[:2]
    items = [it.__class__(it.prompt, target="the answer") for it in builder.train_items(examples)]
    got = session.loss(items)
    tok, module = llama.codec.tokenizer, session.model.module
    want = []
    for it in items:
        ctx = tok(it.prompt.prefix_text(), add_special_tokens=False)["input_ids"]
        tgt = tok(" the answer", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            lsm = torch.log_softmax(module(torch.tensor([ctx + tgt[:-1]])).logits[0], -1)
        want.append(-np.mean([float(lsm[len(ctx) - 1 + j, t]) for j, t in enumerate(tgt)]))
    assert got == pytest.approx(float(np.mean(want)), abs=1e-5)


def test_bf16_autocast_precision_runs(backend, llama):
    builder = make_builder("lora", r=2, precision="bf16")
    session = backend.start_training(llama, make_setup(builder))
    items = builder.train_items(synthetic_examples()[:4])
    loss = session.forward_backward(items, 1.0)
    assert np.isfinite(loss) and np.isfinite(session.optimizer_step(0.01, 1.0))
    assert session.model.autocast == torch.bfloat16
