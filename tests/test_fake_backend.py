"""The reference backend's hand-written gradients agree with finite differences, so the
conformance suite's training tests measure real learning."""

import numpy as np
import pytest

from unified_prompt.config import ExperimentSpec
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.registry import create_backend
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples


class FakeSuite(BackendConformance):
    backend_name = "fake"


@pytest.mark.parametrize("method,task,word_score", [
    ("prompt_tuning", "classification", "sum"), ("lora", "classification", "mean"),
    ("full", "classification", "sum"), ("lora", "generation", "sum"),
    ("prompt_tuning", "generation", "sum")])
def test_gradients_match_finite_differences(method, task, word_score):
    backend = create_backend("fake")
    model = backend.load_model("fake-grad")
    data = {"task": task, "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}", "word_score": word_score},
            "finetune": {"method": method, "lr": 0.1, **({"num_virtual_tokens": 3}
                                                        if method == "prompt_tuning" else {})}}
    if task == "classification":
        data["prompt"]["verbalizer"] = BackendConformance.verbalizer
    builder = PromptBuilder(ExperimentSpec.model_validate(data))
    suite = FakeSuite()
    session = backend.start_training(model, suite.setup_for(builder))
    examples = synthetic_examples()[:3]
    if task == "generation":
        examples = [type(e)(e.id, e.fields, target="a short answer") for e in examples]
    items = builder.train_items(examples)
    if method == "lora":  # B starts at zero; move it so A's gradient is not trivially zero
        session.params["lora.proj.B"][...] = np.random.default_rng(0).standard_normal(
            session.params["lora.proj.B"].shape) * 0.1
    session.forward_backward(items, 1.0)
    rng = np.random.default_rng(1)
    for name, param in session.params.items():
        analytic = session.grads[name]
        for _ in range(4):
            idx = tuple(rng.integers(0, s) for s in param.shape)
            old = param[idx]
            param[idx] = old + 1e-5
            up = session.loss(items)
            param[idx] = old - 1e-5
            down = session.loss(items)
            param[idx] = old
            numeric = (up - down) / 2e-5
            assert analytic[idx] == pytest.approx(numeric, rel=1e-3, abs=1e-6), (name, idx)


def test_echo_log_probs_reproduce_label_word_scores():
    """An OpenAI-style client scores a word by echoing prompt+word and summing the word's
    token log-probs; on the same model that must equal the backend's own score()."""
    from unified_prompt.prompts.template import Template

    backend = create_backend("fake")
    model = backend.load_model("fake-echo")
    prompt = Template("Review: {text}\nSentiment: {mask}").render({"text": "a fine film"})
    words = ["good", "absolutely wonderful"]
    direct = backend.score(model, [prompt], words).logprob[0]
    prefix = prompt.prefix_text()
    for word, expected in zip(words, direct, strict=True):
        (tokens,) = backend.text_logprobs(model, [prefix + prompt.mask_lead() + word])
        echoed = sum(t.logprob for t in tokens if t.offset >= len(prefix))
        assert echoed == pytest.approx(expected, abs=1e-9)
        assert "".join(t.token for t in tokens) == prefix + " " + word


def test_generate_text_reports_tokens_and_stops():
    from unified_prompt.backend import GenerationParams

    backend = create_backend("fake")
    model = backend.load_model("fake-gen")
    (free,) = backend.generate_text(model, ["hello there"], GenerationParams(max_new_tokens=6,
                                                                            stop=()), top_k=3)
    assert free.finish_reason == "length" and len(free.tokens) == 6
    assert free.text == "".join(t.token for t in free.tokens)
    assert all(len(t.top) == 3 and t.top[0][1] >= t.top[-1][1] for t in free.tokens)
    stop = free.tokens[2].token.strip()
    (cut,) = backend.generate_text(model, ["hello there"], GenerationParams(max_new_tokens=6,
                                                                           stop=(stop,)))
    assert cut.finish_reason == "stop" and stop not in cut.text
