"""Encoder-decoder models (tiny T5 and BART) on the hf backend: label words scored through
the decoder equal a plain transformers computation, greedy generation equals
`model.generate`, LoRA and prompt tuning train and their adapters reload to the same scores,
and what does not apply is refused with a CapabilityError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hf_helpers import make_builder, make_setup

from unified_prompt.backend import GenerationParams, ModelKind
from unified_prompt.data.example import Example
from unified_prompt.decoding import finish
from unified_prompt.errors import CapabilityError
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.tiny import tiny_model

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "{text} It was {mask}."
GEN_TEMPLATE = "Question: {text}\nAnswer:"
WORDS = ["good", "absolutely wonderful", "bad"]
MASK_TEXT = {"t5": "<extra_id_0>", "bart": "<mask>"}


@pytest.fixture(scope="module", params=["t5", "bart"])
def s2s(request, backend):
    return request.param, backend.load_model(str(tiny_model(request.param)))


def plain_model(kind):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = tiny_model(kind)
    return (AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(path, local_files_only=True))


def plain_word_scores(model, tok, kind, prompts, words):
    """Each (prompt, word) pair alone: the encoder reads the prompt with the family's mask
    token, the decoder is fed start (+ <s> for BART, + <extra_id_0> for T5) + the word."""
    cfg = model.config
    lead = [cfg.decoder_start_token_id] + (
        [tok.convert_tokens_to_ids("<extra_id_0>")] if kind == "t5" else [tok.bos_token_id])
    out = np.zeros((len(prompts), len(words)))
    for i, p in enumerate(prompts):
        enc = tok(p.fill_mask(MASK_TEXT[kind]), return_tensors="pt")
        for w, word in enumerate(words):
            ids = tok(p.mask_lead() + word, add_special_tokens=False)["input_ids"]
            dec = torch.tensor([lead + ids[:-1]])
            with torch.no_grad():
                logits = model(**enc, decoder_input_ids=dec).logits[0]
            lsm = torch.log_softmax(logits.float(), -1)
            out[i, w] = sum(float(lsm[len(lead) - 1 + j, t]) for j, t in enumerate(ids))
    return out


def test_kind_and_narrowed_capabilities(backend, s2s):
    _, model = s2s
    assert backend.model_info(model).kind == ModelKind.SEQ2SEQ
    caps = backend.model_capabilities(model)
    assert ModelKind.SEQ2SEQ in caps.model_kinds
    assert "prefix_tuning" not in caps.methods and {"lora", "prompt_tuning", "full"} <= caps.methods
    assert not caps.raw_text


def test_scores_equal_plain_transformers(backend, s2s):
    kind, model = s2s
    prompts = make_builder(template=TEMPLATE).render(synthetic_examples()[:3])
    ours = backend.score(model, prompts, WORDS, batch_size=2)
    plain, tok = plain_model(kind)
    np.testing.assert_allclose(ours.logprob, plain_word_scores(plain, tok, kind, prompts, WORDS),
                               atol=1e-4, rtol=0)
    assert ours.n_tokens[0].tolist() == [len(tok(" " + w, add_special_tokens=False)["input_ids"])
                                         for w in WORDS]
    assert np.ptp(ours.logprob) > 0.1


@pytest.mark.parametrize("template", [GEN_TEMPLATE, "Question: {text}\nAnswer: {mask}"])
def test_greedy_generation_equals_model_generate(backend, s2s, template):
    kind, model = s2s
    prompts = make_builder(task="generation", template=template).render(synthetic_examples()[:3])
    ours = backend.generate(model, prompts, GenerationParams(max_new_tokens=6, stop=()),
                            batch_size=2)
    plain, tok = plain_model(kind)
    want = []
    for p in prompts:
        enc = tok(p.fill_mask(MASK_TEXT[kind]), return_tensors="pt")
        lead = [plain.config.decoder_start_token_id]
        if kind == "bart":
            lead.append(tok.bos_token_id)
        if kind == "t5" and "{mask}" in template:
            lead.append(tok.convert_tokens_to_ids("<extra_id_0>"))
        eos = [tok.eos_token_id] + ([tok.convert_tokens_to_ids("<extra_id_1>")]
                                    if len(lead) > 1 and kind == "t5" else [])
        seq = plain.generate(**enc, decoder_input_ids=torch.tensor([lead]), max_new_tokens=6,
                             do_sample=False, num_beams=1, eos_token_id=eos,
                             forced_bos_token_id=None, forced_eos_token_id=None)[0].tolist()
        new = [t for t in seq[len(lead):] if t not in eos]
        want.append(finish(tok.decode(new, skip_special_tokens=True), p, ()))
    assert ours == want
    assert any(t.strip() for t in ours)


def test_stop_strings_cut_generation(backend, s2s):
    _, model = s2s
    prompts = make_builder(task="generation", template=GEN_TEMPLATE).render(
        synthetic_examples()[:1])
    free = backend.generate(model, prompts, GenerationParams(max_new_tokens=6, stop=()))[0]
    word = next(w for w in free.split() if w)
    cut = backend.generate(model, prompts, GenerationParams(max_new_tokens=6, stop=(word,)))[0]
    assert word not in cut and free.startswith(cut)


def _train(backend, model, method, steps, task="classification", **settings):
    template = settings.pop("template", TEMPLATE)
    builder = make_builder(method, task=task, template=template, **settings)
    session = backend.start_training(model, make_setup(builder))
    if task == "classification":
        items = builder.train_items(synthetic_examples()[:6])
    else:
        items = builder.train_items([Example(f"g{i}", {"text": t}, target="the answer")
                                     for i, t in enumerate(["a film", "a book", "a song"])])
    before = session.loss(items)
    for _ in range(steps):
        session.forward_backward(items, 1.0)
        session.optimizer_step(settings.get("lr", 0.01), 1.0)
    session.train_mode(False)
    return session, builder, before, session.loss(items)


@pytest.mark.parametrize("method,settings", [
    ("lora", {"r": 4, "alpha": 8, "lr": 0.02}),
    ("prompt_tuning", {"template": "{soft:4} " + TEMPLATE, "lr": 0.1, "init": "vocab"}),
])
def test_training_lowers_loss_and_adapter_reloads(backend, s2s, tmp_path, method, settings):
    kind, model = s2s
    session, builder, before, after = _train(backend, model, method, 4, **settings)
    assert after < before, f"{method} on {kind}: {before:.4f} -> {after:.4f}"
    session.save_adapter(tmp_path / "a")
    prompts = builder.render(synthetic_examples()[:3])
    trained = backend.score(session.model, prompts, WORDS).logprob
    loaded = backend.load_adapter(model, tmp_path / "a")
    np.testing.assert_allclose(backend.score(loaded, prompts, WORDS).logprob, trained,
                               atol=1e-5, rtol=0)
    base = backend.score(model, [p.without_soft() for p in prompts], WORDS).logprob
    assert np.abs(base - trained).max() > 1e-3
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_2_SEQ_LM"
    if method == "lora":
        assert set(config["target_modules"]) == ({"q", "v"} if kind == "t5"
                                                 else {"q_proj", "v_proj"})
    if method == "lora" or kind == "t5":  # BART's soft tokens follow <s>; PEFT puts them first
        from peft import PeftModel

        plain, tok = plain_model(kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = PeftModel.from_pretrained(plain, str(tmp_path / "a")).eval()
        theirs = plain_word_scores(pm, tok, kind, [p.without_soft() for p in prompts], WORDS)
        np.testing.assert_allclose(theirs, trained, atol=1e-4, rtol=0)


def test_generation_training_lowers_the_target_loss(backend, s2s):
    _, model = s2s
    _, _, before, after = _train(backend, model, "lora", 4, task="generation", r=4, lr=0.05,
                                 template=GEN_TEMPLATE)
    assert after < before


def test_prefix_tuning_and_raw_text_are_refused(backend, s2s):
    _, model = s2s
    builder = make_builder("prefix_tuning", template=TEMPLATE, num_virtual_tokens=2)
    with pytest.raises(CapabilityError, match="encoder-decoder"):
        backend.start_training(model, make_setup(builder))
    with pytest.raises(CapabilityError, match="encoder-decoder"):
        backend.text_logprobs(model, ["a fine film"])
    with pytest.raises(CapabilityError, match="encoder-decoder"):
        backend.generate_text(model, ["a fine film"], GenerationParams(max_new_tokens=2))


def test_cli_run_on_a_tiny_t5_writes_metrics(tmp_path, toy_spec):
    out = tmp_path / "run"
    sets = {"backend.name": "hf", "backend.model": str(tiny_model("t5")),
            "backend.options.hf.device": "cpu", "prompt.template": TEMPLATE,
            "finetune.max_steps": "4", "finetune.eval_every": "100",
            "finetune.checkpoint_every": "100"}
    cmd = [sys.executable, "-m", "unified_prompt.cli", "run", str(toy_spec), "--out", str(out)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "hf" and metrics["method"] == "lora"
    assert metrics["model"] == str(tiny_model("t5"))
    assert metrics["n_examples"] > 0 and 0 <= metrics["metrics"]["accuracy"] <= 1
    assert 0 < metrics["trainable_params"] < metrics["total_params"]


class TestHFT5Conformance(BackendConformance):
    """The whole suite on one encoder-decoder model (T5; BART passes it too, but the family's
    own paths are covered above and the suite costs a minute per model)."""

    backend_name = "hf"
    backend_options = {"device": "cpu"}
    template = TEMPLATE

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("t5"))
