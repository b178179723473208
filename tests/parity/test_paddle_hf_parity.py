"""The same numbers on both frameworks: hf (torch) and paddle, on the same tiny models.

Same weights, fp32, CPU. Identical token ids, masks and soft positions; logits and label
scores within 1e-4; every method, from one numpy-drawn initialisation loaded into both
sessions, trains to the same losses (1e-3 relative over 20 core-Trainer steps) and the
same accuracy; adapters converted either way give the same predictions. The real-model
versions are marked slow (smollm2-135m: 1e-3) and live in bench/paddle_parity.py too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from unified_prompt_paddle.tiny import tiny_model  # installed: conftest skips otherwise

from unified_prompt.adapters import write_manifest
from unified_prompt.backend import GenerationParams
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples

KINDS = ["llama", "bert", "gpt2", "ernie"]
#: Every method trains on the core's tiny models; GPT-2 and ERNIE train the two main ones.
TRAIN_KINDS = {"llama": None, "bert": None, "gpt2": {"lora", "prompt_tuning"},
               "ernie": {"lora", "prompt_tuning"}}

METHODS: list[tuple[str, dict[str, Any]]] = [
    ("prompt_tuning", {}), ("p_tuning", {"encoder": "mlp"}), ("p_tuning", {"encoder": "lstm"}),
    ("prefix_tuning", {}), ("prefix_tuning", {"projection": True, "projection_hidden": 16}),
    ("lora", {}), ("full", {})]
IDS = [m + "".join(f"-{v}" for v in s.values()) for m, s in METHODS]
#: A template with a soft slot in the middle, demonstrations and a Chinese word.
SOFT_TEMPLATE = "{soft:3} Review: {text} {soft:2}\nSentiment: {mask}"


class Spec(BackendConformance):
    backend_name = "hf"


@pytest.fixture(scope="module", params=KINDS)
def models(request, backends):
    hf, pd = backends
    ref = str(tiny_model(request.param))
    return request.param, hf.load_model(ref), pd.load_model(ref)


def _builder(backends, models, method: str = "none", template: str | None = None,
             **settings: Any) -> PromptBuilder:
    spec = Spec().spec(backends[0], models[1], method, **settings)
    if template is not None:
        data = spec.model_dump(mode="json", exclude_none=True)
        causal = models[0] in ("llama", "gpt2")
        data["prompt"]["template"] = template if causal else \
            template.replace("Sentiment: {mask}", "It was {mask}.")
        spec = ExperimentSpec.model_validate(data)
    return PromptBuilder(spec, synthetic_examples())


def _sessions(backends, models, builder: PromptBuilder, seed: int = 0):
    """One session per framework, both holding the same numpy-drawn initial state."""
    hf, pd = backends
    setup = Spec().setup_for(builder)
    a, b = hf.start_training(models[1], setup), pd.start_training(models[2], setup)
    ref_a, ref_b = a.trainable_state(), b.trainable_state()
    assert ref_a.keys() == ref_b.keys()
    rng = np.random.default_rng(seed)
    full = builder.spec.finetune.method == "full"
    state = {k: (rng.standard_normal(v.shape) * (0.02 if full else 0.1)
                 + (v if full else 0)).astype(np.float32) for k, v in ref_a.items()}
    for k, v in ref_b.items():
        assert v.shape == state[k].shape, k
    a.load_trainable_state(state)
    b.load_trainable_state(state)
    return a, b


# -- encoding ----------------------------------------------------------------------------
def test_same_ids_masks_and_soft_positions(backends, models) -> None:
    from unified_prompt.encoding import encode_causal, encode_masked

    kind, mh, mp = models
    builder = _builder(backends, models, "prompt_tuning", template=SOFT_TEMPLATE)
    examples = [*synthetic_examples(), Example("zh", {"text": "差 很好 " * 40}, label="negative")]
    tok, codec = mp.tokenizer, mh.codec
    assert tok.special == codec.special
    for prompt in builder.render(examples):
        if kind in ("llama", "gpt2"):
            ours = encode_causal(prompt, tok.encode_text, tok.special, max_length=64, reserve=3,
                                 placeholder=tok.special.pad)
            theirs = codec.causal(prompt, 64, reserve=3)
        else:
            ours = encode_masked(prompt, tok.encode_text, tok.special, max_length=64, n_masks=2,
                                 placeholder=tok.special.pad)
            theirs = codec.masked(prompt, 64, n_masks=2)
        assert ours == theirs


def test_model_facts_agree(backends, models) -> None:
    hf, pd = backends
    a, b = hf.model_info(models[1]), pd.model_info(models[2])
    assert (a.total_params, a.checksum, a.tokenizer_checksum, a.vocab_size, a.kind) == \
        (b.total_params, b.checksum, b.tokenizer_checksum, b.vocab_size, b.kind)
    assert models[1].max_length == models[2].max_length


# -- inference ---------------------------------------------------------------------------
def test_logits_agree(backends, models) -> None:
    import torch
    from unified_prompt_paddle.forward import head, run
    from unified_prompt_paddle.runtime import paddle

    ids = np.array([[101, 2023, 2001, 1037, 2204, 3185, 102, 0],
                    [101, 2023, 2001, 1037, 2919, 2143, 1012, 102]], dtype=np.int64)
    mask = np.array([[1] * 7 + [0], [1] * 8], dtype=np.int64)
    with torch.no_grad():
        theirs = models[1].module(input_ids=torch.tensor(ids),
                                  attention_mask=torch.tensor(mask)).logits.numpy()
    with paddle().no_grad():
        hidden, _ = run(models[2], ids, mask, np.tile(np.arange(8), (2, 1)))
        ours = head(models[2], hidden).numpy()
    assert np.abs(ours - theirs)[mask.astype(bool)].max() <= 1e-4


def test_label_scores_agree(backends, models) -> None:
    hf, pd = backends
    builder = _builder(backends, models)
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    a = hf.score(models[1], prompts, words, batch_size=5)
    b = pd.score(models[2], prompts, words, batch_size=3)
    np.testing.assert_array_equal(a.n_tokens, b.n_tokens)
    assert np.abs(a.logprob - b.logprob).max() <= 1e-4
    la = builder.verbalizer.label_scores(a)
    lb = builder.verbalizer.label_scores(b)
    assert np.abs(la - lb).max() <= 1e-4


def test_generation_agrees(backends, models) -> None:
    hf, pd = backends
    builder = _builder(backends, models, task="generation")
    prompts = builder.render(synthetic_examples()[:4])
    params = GenerationParams(max_new_tokens=6, stop=("\n",))
    assert hf.generate(models[1], prompts, params) == pd.generate(models[2], prompts, params)


@pytest.mark.parametrize(("method", "settings"), METHODS, ids=IDS)
def test_methods_score_the_same_from_the_same_state(backends, models, method, settings) -> None:
    hf, pd = backends
    template = SOFT_TEMPLATE if method in ("prompt_tuning", "p_tuning") else None
    builder = _builder(backends, models, method, template=template, **settings)
    a, b = _sessions(backends, models, builder)
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    a.train_mode(False)
    b.train_mode(False)
    sa = hf.score(a.model, prompts, words).logprob
    sb = pd.score(b.model, prompts, words).logprob
    assert np.abs(sa - sb).max() <= 1e-4
    items = builder.train_items(synthetic_examples())
    assert a.loss(items) == pytest.approx(b.loss(items), rel=1e-5, abs=1e-6)


# -- training ----------------------------------------------------------------------------
def _trainer_run(session, items, spec, builder, backend):
    from unified_prompt.runner import Evaluator
    from unified_prompt.training import Trainer

    losses: list[float] = []
    norms: list[float] = []

    def log(kind: str, **data: Any) -> None:
        if kind == "step":
            losses.append(data["loss"])
            norms.append(data["grad_norm"])

    Trainer(session, items, spec, seed=3, log=log, progress=False).run()
    session.train_mode(False)
    metrics, _ = Evaluator(backend, builder, builder.spec, progress=False).classify(
        session.model, synthetic_examples())
    return np.array(losses), np.array(norms), metrics["accuracy"]


@pytest.mark.parametrize(("method", "settings"), METHODS, ids=IDS)
def test_training_curves_agree(backends, models, method, settings) -> None:
    """20 steps of the core's Trainer (same batches, warmup, clipping) from one state."""
    allowed = TRAIN_KINDS[models[0]]
    if allowed is not None and method not in allowed:
        pytest.skip(f"{models[0]} trains {sorted(allowed)} here (the rest: llama, bert)")
    hf, pd = backends
    lr = {"prompt_tuning": 0.05, "p_tuning": 0.01, "prefix_tuning": 0.01, "lora": 0.01,
          "full": 0.001}[method]
    builder = _builder(backends, models, method, max_steps=20, batch_size=4, lr=lr,
                       warmup_ratio=0.1, **settings)
    a, b = _sessions(backends, models, builder, seed=1)
    items = builder.train_items(synthetic_examples())
    spec = builder.spec.finetune
    la, na, acc_a = _trainer_run(a, items, spec, builder, hf)
    lb, nb, acc_b = _trainer_run(b, items, spec, builder, pd)
    assert len(la) == len(lb) == 20
    rel = np.abs(la - lb) / np.maximum(np.abs(la), 1e-8)
    assert rel.max() <= 1e-3, f"{method}: loss curves differ by {rel.max():.2e} (relative)"
    assert abs(acc_a - acc_b) <= 0.01
    assert np.abs(na - nb).max() <= 1e-3 * max(1.0, float(np.abs(na).max()))


def test_generation_training_agrees(backends, models) -> None:
    builder = _builder(backends, models, "lora", task="generation")
    a, b = _sessions(backends, models, builder, seed=2)
    items = builder.train_items([Example(f"g{i}", {"text": t}, target="the answer")
                                 for i, t in enumerate(["a film", "a dull mess", "I loved it"])])
    for _ in range(3):
        assert a.forward_backward(items) == pytest.approx(b.forward_backward(items), rel=1e-5)
        assert a.optimizer_step(0.01, 1.0) == pytest.approx(b.optimizer_step(0.01, 1.0),
                                                            rel=1e-4)


# -- adapters ----------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "settings"), METHODS, ids=IDS)
@pytest.mark.parametrize("direction", ["hf->paddle", "paddle->hf"])
def test_converted_adapters_predict_the_same(backends, models, method, settings, direction,
                                             tmp_path: Path) -> None:
    from unified_prompt_paddle.convert import convert_adapter

    hf, pd = backends
    src, dst = (hf, pd) if direction == "hf->paddle" else (pd, hf)
    dst_model = models[2] if src is hf else models[1]
    builder = _builder(backends, models, method, **settings)
    a, b = _sessions(backends, models, builder, seed=4)
    session = a if src is hf else b
    session.train_mode(False)
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    before = src.score(session.model, prompts, words).logprob
    session.save_adapter(tmp_path / "src")
    write_manifest(tmp_path / "src", backend=src.name, method=method,
                   base_model={"name": str(tiny_model(models[0]))})
    out = convert_adapter(tmp_path / "src", tmp_path / "dst", to=dst.name)
    after = dst.score(dst.load_adapter(dst_model, out), prompts, words).logprob
    assert np.abs(after - before).max() <= 1e-4
    assert (after.argmax(1) == before.argmax(1)).all()
