"""vocabulary / tokenize / token_gradients: the gradients are the first-order change of the
prompt-tuning loss, and computing them leaves the model as it was."""

from __future__ import annotations

import numpy as np
import pytest
from hf_helpers import make_builder, make_setup

from unified_prompt.data.example import Example
from unified_prompt.errors import UserInputError
from unified_prompt.testing.conformance import synthetic_examples

TEMPLATE = "Review: {text}{soft:2}\nSentiment: {mask}"


@pytest.mark.parametrize("word_score", ["sum", "mean"])
def test_token_gradients_match_finite_differences(backend, peaky_llama, word_score):
    """Along E[j] - E[t] (trigger t swapped towards token j) the prompt-tuning loss,
    evaluated with the soft slot holding the trigger embeddings, changes at the rate
    grads[j] - grads[t] (central differences, fp32)."""
    builder = make_builder("prompt_tuning", template=TEMPLATE, num_virtual_tokens=2,
                           word_score=word_score)
    setup = make_setup(builder)
    items = builder.train_items(synthetic_examples()[:6])
    triggers = {0: backend.tokenize(peaky_llama, " the film")[:2]}
    grads = backend.token_gradients(peaky_llama, items, setup, triggers)[0]
    assert grads.shape == (2, len(backend.vocabulary(peaky_llama)))
    E = peaky_llama.module.get_input_embeddings().weight.detach().float().numpy()
    here = E[triggers[0]].copy()
    session = backend.start_training(peaky_llama, setup)
    try:
        def loss(vectors: np.ndarray) -> float:
            session.load_trainable_state({"soft.0": vectors.astype(np.float32)})
            return session.loss(items)

        eps = 1e-2
        for k, token in ((0, 500), (1, 1234), (1, 20000)):
            direction = np.zeros_like(here)
            direction[k] = E[token] - E[triggers[0][k]]
            numeric = (loss(here + eps * direction) - loss(here - eps * direction)) / (2 * eps)
            predicted = grads[k, token] - grads[k, triggers[0][k]]
            assert predicted == pytest.approx(numeric, rel=2e-2, abs=5e-5)
    finally:
        session.close()


def test_token_gradients_leave_the_model_untouched(backend, llama):
    builder = make_builder("prompt_tuning", template=TEMPLATE, num_virtual_tokens=2)
    items = builder.train_items(synthetic_examples()[:4])
    prompts = make_builder().render(synthetic_examples()[:2])
    before = backend.score(llama, prompts, ["good", "bad"]).logprob
    modes = [m.training for m in llama.module.modules()]
    backend.token_gradients(llama, items, make_setup(builder), {0: [100, 200]})
    assert llama.soft is None and llama.method == "none"
    assert all(p.grad is None for p in llama.module.parameters())
    assert not any(p.requires_grad for p in llama.module.parameters())
    assert [m.training for m in llama.module.modules()] == modes
    np.testing.assert_array_equal(backend.score(llama, prompts, ["good", "bad"]).logprob, before)


def test_token_gradients_for_generation_targets(backend, llama):
    builder = make_builder("prompt_tuning", task="generation",
                           template="{soft:1}Review: {text}\nSummary: {mask}", num_virtual_tokens=1)
    examples = [Example(f"g{i}", {"text": t}, target="fine") for i, t in
                enumerate(["a fine film", "a dull mess", "charming"])]
    items = builder.train_items(examples)
    grads = backend.token_gradients(llama, items, make_setup(builder), {0: [300]})
    assert grads[0].shape == (1, len(backend.vocabulary(llama))) and np.ptp(grads[0]) > 0


def test_trigger_counts_must_match_the_slots(backend, llama):
    builder = make_builder("prompt_tuning", template=TEMPLATE, num_virtual_tokens=2)
    items = builder.train_items(synthetic_examples()[:2])
    with pytest.raises(UserInputError, match="soft slot 0 holds 2 tokens but 3"):
        backend.token_gradients(llama, items, make_setup(builder), {0: [1, 2, 3]})


def test_vocabulary_is_each_token_decoded_alone(backend, llama, bert):
    vocab = backend.vocabulary(llama)
    assert len(vocab) == llama.module.get_input_embeddings().weight.shape[0]
    (great,) = backend.tokenize(llama, " great")
    assert vocab[great] == " great"
    assert backend.tokenize(llama, "a fine film") == list(llama.codec.encode_text("a fine film"))
    assert backend.vocabulary(bert)[backend.tokenize(bert, "film")[0]] == "film"


def test_gradient_search_runs_on_the_hf_backend(tmp_path):
    """AutoPrompt end to end on the tiny Llama (a smoke test: it runs, triggers are words)."""
    import json

    from unified_prompt.search import run_search
    from unified_prompt.testing.tiny import tiny_model

    rows = [{"id": f"x{i}", "text": ex.fields["text"], "label": ex.label}
            for i, ex in enumerate(synthetic_examples())]
    files = {}
    for split in ("train", "dev", "test"):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        files[split] = str(path)
    spec = {"task": "classification", "seed": 3,
            "backend": {"name": "hf", "model": str(tiny_model("llama")),
                        "options": {"hf": {"device": "cpu"}}},
            "data": {"files": files}, "eval": {"split": "test"},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["good"], "negative": ["bad"]}}}
    result = run_search(spec, strategy="gradient", budget=400, seed=1, progress=False,
                        options={"dev_limit": 6, "iterations": 2, "batch": 4, "eval_batch": 4,
                                 "candidates": 2, "triggers": 2})
    triggers = result.rows[-1]["triggers"]
    assert len(triggers) == 2 and all(isinstance(t, str) and t for t in triggers)
