"""Adapters: PEFT's own format, loadable by plain `PeftModel.from_pretrained` with the same
predictions as ours; raw soft-prompt export; and folders written by plain peft load here."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from hf_helpers import MASKED_TEMPLATE, make_builder, make_setup
from safetensors.torch import load_file

from unified_prompt.testing.conformance import synthetic_examples
from unified_prompt.testing.tiny import tiny_model

WORDS = ["good", "absolutely wonderful", "bad"]


def trained(backend, model, method, steps=3, **settings):
    builder = make_builder(method, **settings)
    session = backend.start_training(model, make_setup(builder))
    items = builder.train_items(synthetic_examples())
    for _ in range(steps):
        session.forward_backward(items, 1.0)
        session.optimizer_step(settings.get("lr", 0.02), 1.0)
    session.train_mode(False)
    return session, builder


def plain_peft(path, kind="llama"):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForCausalLM if kind == "llama" else AutoModelForMaskedLM
    base = cls.from_pretrained(str(tiny_model(kind)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PeftModel.from_pretrained(base, str(path)).eval()


def peft_word_scores(pm, tokenizer, prompts, words, n_virtual=0):
    """Word log-probs computed the plain way: one sequence per (prompt, word), no batching."""
    out = np.zeros((len(prompts), len(words)))
    for i, p in enumerate(prompts):
        ctx = tokenizer(p.prefix_text(), add_special_tokens=False)["input_ids"]
        for w, word in enumerate(words):
            cont = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([ctx + cont])
            with torch.no_grad():
                logits = pm(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
            lsm = torch.log_softmax(logits.float(), -1)
            start = n_virtual + len(ctx) - 1
            out[i, w] = sum(float(lsm[start + j, t]) for j, t in enumerate(cont))
    return out


@pytest.mark.parametrize("method,settings", [
    ("lora", {"r": 4, "lr": 0.02}),
    ("prefix_tuning", {"num_virtual_tokens": 3, "lr": 0.02}),
    ("prefix_tuning", {"num_virtual_tokens": 3, "lr": 0.02, "projection": True,
                       "projection_hidden": 8}),
    ("prompt_tuning", {"num_virtual_tokens": 4, "lr": 0.05, "init": "vocab"}),
    ("p_tuning", {"num_virtual_tokens": 4, "lr": 0.02, "encoder_hidden": 8}),
])
def test_plain_peft_load_gives_our_predictions(backend, llama, tmp_path, method, settings):
    session, builder = trained(backend, llama, method, **settings)
    session.save_adapter(tmp_path / "a")
    assert (tmp_path / "a" / "adapter_config.json").exists()
    assert (tmp_path / "a" / "adapter_model.safetensors").exists()
    prompts = builder.render(synthetic_examples()[:3])
    ours = backend.score(session.model, prompts, WORDS).logprob
    loaded = backend.score(backend.load_adapter(llama, tmp_path / "a"), prompts, WORDS).logprob
    np.testing.assert_allclose(loaded, ours, atol=1e-5, rtol=0)
    pm = plain_peft(tmp_path / "a")
    n_virtual = settings["num_virtual_tokens"] if method in ("prompt_tuning", "p_tuning") else 0
    theirs = peft_word_scores(pm, llama.codec.tokenizer, prompts, WORDS, n_virtual)
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    base = backend.score(llama, [p.without_soft() for p in prompts], WORDS).logprob
    assert np.abs(base - ours).max() > 1e-3, "training changed the predictions"


def test_bert_lora_plain_peft_equality(backend, bert, tmp_path):
    session, builder = trained(backend, bert, "lora", r=4, lr=0.02, template=MASKED_TEMPLATE)
    session.save_adapter(tmp_path / "a")
    prompts = builder.render(synthetic_examples()[:2])
    ours = backend.score(session.model, prompts, ["good", "bad"]).logprob
    pm = plain_peft(tmp_path / "a", "bert")
    tok = bert.codec.tokenizer
    for i, p in enumerate(prompts):
        enc = tok(p.fill_mask(tok.mask_token), return_tensors="pt")
        at = enc["input_ids"][0].tolist().index(tok.mask_token_id)
        with torch.no_grad():
            lsm = torch.log_softmax(pm(**enc).logits[0, at], -1)
        for w, word in enumerate(["good", "bad"]):
            assert ours[i, w] == pytest.approx(float(lsm[tok.convert_tokens_to_ids(word)]),
                                               abs=1e-4)


def test_soft_prompt_export_is_raw_embeddings(backend, llama, tmp_path):
    session, _ = trained(backend, llama, "p_tuning", num_virtual_tokens=4, encoder_hidden=8)
    session.save_adapter(tmp_path / "a")
    raw = load_file(str(tmp_path / "a" / "soft_prompt.safetensors"))
    with torch.no_grad():
        want = session.model.soft.slots["0"]().float()
    assert set(raw) == {"soft.0"} and raw["soft.0"].shape == (4, 32)
    torch.testing.assert_close(raw["soft.0"], want)
    peft_file = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    torch.testing.assert_close(peft_file["prompt_embeddings"], want)
    state = load_file(str(tmp_path / "a" / "trainable_state.safetensors"))
    assert set(state) == set(session.trainable_state())
    meta = json.loads((tmp_path / "a" / "hf_adapter.json").read_text())
    assert meta["method"] == "p_tuning" and meta["peft_layout"] == "exact"


def test_soft_slots_mid_template_skip_peft_files_but_round_trip(backend, llama, tmp_path):
    template = "Review: {text}{soft:2}\nSentiment: {mask}{soft:1}"
    session, builder = trained(backend, llama, "prompt_tuning", lr=0.05, template=template)
    session.save_adapter(tmp_path / "a")
    assert not (tmp_path / "a" / "adapter_config.json").exists()
    raw = load_file(str(tmp_path / "a" / "soft_prompt.safetensors"))
    assert {k: tuple(v.shape) for k, v in raw.items()} == {"soft.0": (2, 32), "soft.1": (1, 32)}
    prompts = builder.render(synthetic_examples()[:3])
    np.testing.assert_allclose(
        backend.score(backend.load_adapter(llama, tmp_path / "a"), prompts, WORDS).logprob,
        backend.score(session.model, prompts, WORDS).logprob, atol=1e-6)


@pytest.mark.parametrize("kind", ["lora", "prompt_tuning"])
def test_folders_written_by_plain_peft_load_here(backend, llama, tmp_path, kind):
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model("llama")))
    if kind == "lora":
        config = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
                            init_lora_weights=False)
    else:
        config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = get_peft_model(base, config)
    pm.save_pretrained(str(tmp_path / "p"))
    pm.eval()
    builder = make_builder("prompt_tuning", num_virtual_tokens=3) if kind != "lora" \
        else make_builder()
    prompts = builder.render(synthetic_examples()[:2])
    ours = backend.score(backend.load_adapter(llama, tmp_path / "p"), prompts, WORDS).logprob
    n_virtual = 3 if kind != "lora" else 0
    theirs = peft_word_scores(pm, llama.codec.tokenizer, prompts, WORDS, n_virtual)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_full_adapter_is_a_model_folder(backend, llama, tmp_path):
    session, builder = trained(backend, llama, "full", steps=2, lr=1e-3)
    session.save_adapter(tmp_path / "a")
    assert (tmp_path / "a" / "config.json").exists()
    assert (tmp_path / "a" / "tokenizer.json").exists()
    other = backend.load_model(str(tmp_path / "a"))
    prompts = builder.render(synthetic_examples()[:2])
    np.testing.assert_allclose(backend.score(other, prompts, WORDS).logprob,
                               backend.score(session.model, prompts, WORDS).logprob, atol=1e-6)


def test_not_an_adapter_is_a_user_error(backend, llama, tmp_path):
    from unified_prompt.errors import UserInputError

    with pytest.raises(UserInputError):
        backend.load_adapter(llama, tmp_path)
    with pytest.raises(UserInputError):
        backend.load_adapter(llama, tmp_path / "missing")
