"""The fake backend's search primitives (vocabulary, tokenize, token_gradients) agree with
their contract and with finite differences; fixed demonstrations in the spec."""

from __future__ import annotations

import numpy as np
import pytest

from unified_prompt.backend import TrainSetup
from unified_prompt.config import ExperimentSpec, build_spec
from unified_prompt.data.example import Example
from unified_prompt.errors import ConfigError, DataError
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.registry import create_backend
from unified_prompt.search.slots import slot_template, spaced_fill, write
from unified_prompt.testing.conformance import synthetic_examples


@pytest.fixture(scope="module")
def fake():
    backend = create_backend("fake")
    return backend, backend.load_model("fake-grad")


def test_vocabulary_round_trips_through_tokenize(fake):
    backend, model = fake
    vocab = backend.vocabulary(model)
    assert len(vocab) == backend.model_info(model).vocab_size
    assert all(backend.tokenize(model, vocab[i]) == [i] for i in range(3, len(vocab)))
    assert backend.capabilities.token_gradients


@pytest.mark.parametrize("word_score", ["sum", "mean"])
def test_token_gradients_match_finite_differences(fake, word_score):
    backend, model = fake
    spec = ExperimentSpec.model_validate({
        "data": {"dataset": "rotten_tomatoes"},
        "prompt": {"template": "Review: {text}{soft:2}\nSentiment: {mask}",
                   "verbalizer": {"positive": ["good", "very good"], "negative": ["bad"]},
                   "word_score": word_score},
        "finetune": {"method": "prompt_tuning", "num_virtual_tokens": 2}})
    builder = PromptBuilder(spec)
    items = builder.train_items(synthetic_examples()[:6])
    v = builder.verbalizer
    setup = TrainSetup(method=spec.finetune, task="classification", seed=0, words=v.flat_words,
                       word_label=v.word_label, n_labels=2, word_score=word_score,
                       soft_slots=builder.template.soft_slots)
    triggers = {0: [40, 77]}
    grads = backend.token_gradients(model, items, setup, triggers)
    assert grads[0].shape == (2, len(backend.vocabulary(model)))
    session = backend.start_training(model, setup)

    def loss(vectors: np.ndarray) -> float:
        session.load_trainable_state({"soft.0": vectors})
        return session.loss(items)

    E = model.E
    here = E[np.asarray(triggers[0])].copy()
    eps = 1e-5
    for k, token in ((0, 5), (1, 300)):
        direction = np.zeros_like(here)
        direction[k] = E[token] - E[triggers[0][k]]
        numeric = (loss(here + eps * direction) - loss(here - eps * direction)) / (2 * eps)
        predicted = grads[0][k, token] - grads[0][k, triggers[0][k]]
        assert predicted == pytest.approx(numeric, rel=1e-4, abs=1e-8)


def test_triggers_are_written_as_plain_text():
    slots = slot_template("Review: {text}\nSentiment: {mask}", 2, "after_text", None)
    assert write(slots) == "Review: {text}{soft:2}\nSentiment: {mask}"
    assert write(slots, spaced_fill(slots, {0: "great {film}"})) == \
        "Review: {text} great {{film}}\nSentiment: {mask}"
    front = slot_template("Review: {text}\nSentiment: {mask}", 1, "prefix", None)
    assert write(front, spaced_fill(front, {0: "Be brief"})) == \
        "Be brief Review: {text}\nSentiment: {mask}"


def _demo_spec(**demos) -> ExperimentSpec:
    return build_spec({
        "data": {"dataset": "rotten_tomatoes"},
        "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                   "verbalizer": {"positive": ["good"], "negative": ["bad"]},
                   "demonstrations": demos}})


def test_fixed_demonstrations_in_listed_order():
    pool = synthetic_examples()
    spec = _demo_spec(selection="fixed", ids=["n1", "p0"])
    assert spec.prompt.demonstrations.k == 2
    builder = PromptBuilder(spec, pool)
    query = Example("q", {"text": "fine"}, "positive")
    demos = builder.render([query])[0].demos
    assert [d.answer for d in demos.items] == ["bad", "good"]
    assert demos.items[0].prompt.fill_mask("").startswith(f"Review: {pool[3].text}")
    # the query itself is never its own demonstration
    assert [d.id for d in builder.selector.select([pool[3]])[0]] == ["p0"]


def test_fixed_demonstrations_are_validated():
    with pytest.raises(ConfigError, match="selection: fixed needs ids"):
        _demo_spec(selection="fixed")
    with pytest.raises(ConfigError, match="only with selection: fixed"):
        _demo_spec(selection="random", ids=["p0"])
    builder = PromptBuilder(_demo_spec(selection="fixed", ids=["p0", "nope"]),
                            synthetic_examples())
    with pytest.raises(DataError, match="no training example with id 'nope'"):
        builder.render([Example("q", {"text": "x"}, "positive")])
