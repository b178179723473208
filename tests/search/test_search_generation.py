"""Search on generation specs: the objective is the task's metric (rouge_l) of outputs
generated on dev. On synthetic tasks whose answer is known (targets are what the fake model
itself generates under a hidden prompt), propose, rl and demos must climb towards it;
gradient and verbalizer refuse; the plan and the meter count generation calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from unified_prompt.backend import GenerationParams
from unified_prompt.config import build_spec
from unified_prompt.data.example import Example
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.runner import Experiment
from unified_prompt.search import run_search
from unified_prompt.search.candidate import Candidate
from unified_prompt.testing.fake import FakeBackend

MODEL = "fake-search"
WORDS = ("film", "story", "actor", "scene", "plot", "music", "camera", "light", "dark", "quiet",
         "loud", "slow", "fast", "warm", "cold", "bright", "heavy", "gentle", "river", "city",
         "garden", "window", "road", "winter", "summer", "morning", "evening")
TEMPLATE = "Article: {text}\nHeadline: {mask}"
NEW_TOKENS = 4


def _spec(folder: Path, backend: str = "fake", **prompt: Any) -> dict[str, Any]:
    return {"task": "generation", "seed": 11, "backend": {"name": backend, "model": MODEL},
            "data": {"files": {s: str(folder / f"{s}.jsonl") for s in ("train", "dev", "test")}},
            "prompt": {"template": TEMPLATE, **prompt},
            "eval": {"max_new_tokens": NEW_TOKENS}}


def _generate(spec_data: dict[str, Any], examples: list[Example], pool: list[Example]
              ) -> list[str]:
    spec = build_spec(spec_data)
    backend = FakeBackend()
    prompts = PromptBuilder(spec, pool).render(examples)
    out = backend.generate(backend.load_model(MODEL), prompts,
                           GenerationParams(max_new_tokens=NEW_TOKENS))
    return [t.strip() for t in out]


def _write(path: Path, examples: list[Example], targets: list[str]) -> None:
    path.write_text("".join(json.dumps({"id": e.id, "text": e.text, "target": t}) + "\n"
                            for e, t in zip(examples, targets, strict=True)), encoding="utf-8")


def generation_task(folder: Path, hidden: dict[str, Any], *, n_train: int = 8, n_dev: int = 16,
                    n_test: int = 16, backend: str = "fake") -> dict[str, Any]:
    """Files whose dev and test targets are the fake model's outputs under `hidden` (prompt
    keys over the start spec's); train targets are its outputs under the start prompt.
    Returns the start spec."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = n_train + n_dev + n_test
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 7)))) for _ in range(n)]
    train = [Example(f"t{i}", {"text": t}) for i, t in enumerate(texts[:n_train])]
    rest = [Example(f"e{i}", {"text": t}) for i, t in enumerate(texts[n_train:])]
    start = _spec(folder, backend)
    train_targets = _generate(_spec(folder), train, [])
    train = [Example(e.id, e.fields, target=t) for e, t in zip(train, train_targets, strict=True)]
    _write(folder / "train.jsonl", train, train_targets)
    targets = _generate(_spec(folder, **hidden), rest, train)
    _write(folder / "dev.jsonl", rest[:n_dev], targets[:n_dev])
    _write(folder / "test.jsonl", rest[n_dev:], targets[n_dev:])
    return start


def _climbed(result, at_least: float, *, on_test: bool = True) -> None:
    dev = result.dev
    assert set(dev["original"]) == {"rouge_l", "bleu", "n"}
    assert dev["best"]["rouge_l"] >= dev["original"]["rouge_l"] + at_least, dev
    assert result.metric == "rouge_l"
    if on_test:
        assert result.test["best"]["rouge_l"] > result.test["original"]["rouge_l"], result.test
        assert result.gain > 0


def test_propose_climbs_a_generation_task_towards_the_hidden_instruction(tmp_path,
                                                                       extra_backends):
    hidden = {"template": "heavy summer camera\n" + TEMPLATE}
    spec = generation_task(tmp_path / "task", hidden)
    result = run_search(spec, strategy="propose", budget=2000, out=tmp_path / "out",
                        options={"dev_limit": 16, "rounds": 24, "per_round": 3,
                                 "seed_instructions": ["road road road"],
                                 "proposer": {"backend": "scripted"}})
    _climbed(result, 0.3)
    assert result.dev["best"]["rouge_l"] >= 0.9  # one-word edits reach the hidden words
    rows = [r for r in result.rows if r.get("round")]
    assert max(r["rouge_l"] for r in rows) > max(r["rouge_l"] for r in rows if r["round"] <= 1)
    # best.yaml runs as it is and `run` gives the test metric the search reported
    ran = Experiment.from_yaml(tmp_path / "out" / "best.yaml").run(progress=False)
    assert ran.scores["rouge_l"] == pytest.approx(result.test["best"]["rouge_l"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## rouge_l" in report and "Label words" not in report


def test_rl_learns_prompt_words_from_the_generated_outputs_metric(tmp_path):
    spec = generation_task(tmp_path / "task",
                           {"template": "Article: {text} camera heavy\nHeadline: {mask}"})
    vocab = ["bright", "heavy", "river", "summer", "quiet", "road", "film", "camera"]
    result = run_search(spec, strategy="rl", budget=2500,
                        options={"dev_limit": 16, "vocab": vocab, "tokens": 2, "steps": 30,
                                 "samples": 4, "batch": 8, "check_every": 3})
    _climbed(result, 0.15, on_test=False)  # 16 dev examples: the words it finds overfit
    batch = [r for r in result.rows if r["scope"].startswith("batch")]
    assert batch and all("rouge_l" in r and "reward" in r for r in batch)


def test_demos_finds_the_hidden_demonstrations(tmp_path):
    spec = generation_task(tmp_path / "task", {"demonstrations": {
        "selection": "fixed", "k": 2, "ids": ["t2", "t5"]}})
    result = run_search(spec, strategy="demos", budget=800,
                        options={"dev_limit": 16, "k": 2, "pool_per_label": 8,
                                 "random_sets": 3, "steps": 40})
    _climbed(result, 0.2)
    assert set(result.extras["demo_pool"]) == {"all"}  # one pool: k demonstrations in all
    assert set(result.best.demos.ids) == {"t2", "t5"}  # (the fake model ignores their order)
    assert result.dev["best"]["rouge_l"] == 1.0


def test_generation_calls_are_planned_and_charged(tmp_path, extra_backends):
    spec = generation_task(tmp_path / "task", {"template": "heavy summer camera\n" + TEMPLATE},
                           n_dev=12, n_test=10, backend="counting")
    options = {"dev_limit": 12, "k": 1, "random_sets": 2, "steps": 2, "similarity": False}
    plan = run_search(spec, strategy="demos", budget=60, options=options, dry_run=True).plan
    assert plan["task"] == "generation" and plan["select_by"] == "metric"
    assert plan["final_test"]["calls"] == 20  # 10 test examples x (original, best)
    assert plan["final_test"]["tokens"] > 20 * NEW_TOKENS  # the outputs are priced too
    counting = extra_backends["counting"]
    assert counting.calls == 0, "a dry run generates nothing"
    result = run_search(spec, strategy="demos", budget=60, options=options)
    scored = [r for r in result.rows if r["scope"] == "dev" and not r["cached"]]
    assert len(scored) >= 3  # the original and at least two demonstration sets
    assert result.usage["search"]["calls"] == 12 * len(scored) <= 60
    final = result.usage["final"]["calls"]
    assert final == (10 if result.best.prompt_key() == Candidate.from_spec(
        build_spec(spec)).prompt_key() else 20)  # one test pass per distinct prompt
    assert counting.calls == 12 * len(scored) + final, "every generated prompt was charged"


@pytest.mark.parametrize("strategy", ["gradient", "verbalizer"])
def test_label_word_strategies_refuse_generation(tmp_path, strategy):
    spec = generation_task(tmp_path / "task", {}, n_dev=4, n_test=4)
    with pytest.raises(UserInputError, match=rf"'{strategy}' works on classification specs.*"
                                              r"use propose, rl, demos"):
        run_search(spec, strategy=strategy, budget=100)


def test_generation_select_by_is_the_metric(tmp_path):
    spec = generation_task(tmp_path / "task", {}, n_dev=4, n_test=4)
    with pytest.raises(UserInputError, match="judged by its metric"):
        run_search(spec, strategy="demos", budget=100, options={"select_by": "margin"})
    with pytest.raises(UserInputError, match="calibration applies to label scores"):
        run_search(spec, strategy="demos", budget=100, options={"calibrations": ["batch"]})
    cls = {**spec, "task": "classification",
           "prompt": {**spec["prompt"], "verbalizer": {"yes": ["yes"], "no": ["no"]}}}
    with pytest.raises(UserInputError, match="metric is for generation specs"):
        run_search(cls, strategy="demos", budget=100, options={"select_by": "metric"})


def test_cli_search_on_a_generation_spec(tmp_path):
    from click.testing import CliRunner

    from unified_prompt.cli import main

    spec = generation_task(tmp_path / "task", {"template": "heavy summer camera\n" + TEMPLATE},
                           n_dev=8, n_test=6)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = CliRunner().invoke(main, ["search", str(path), "--strategy", "demos", "--budget",
                                    "40", "--no-progress", "-o", "random_sets=1", "-o",
                                    "steps=1", "--out", str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    assert "dev rouge_l:" in out.output and "test rouge_l: original" in out.output
    assert "# dev rouge_l" in (tmp_path / "o" / "best.yaml").read_text()


@pytest.mark.parametrize("strategy,options", [
    ("demos", {"dev_limit": 6, "k": 1, "random_sets": 2, "steps": 2}),
    ("rl", {"dev_limit": 6, "steps": 2, "batch": 3, "samples": 2, "check_every": 2}),
    ("propose", {"dev_limit": 6, "rounds": 1, "per_round": 2}),
])
@pytest.mark.parametrize("name", ["hf", "paddle"])
def test_generation_search_runs_unchanged_on_a_tiny_local_model(tmp_path, name, strategy,
                                                                options):
    """The same generation search, only the backend switched, on a tiny random Llama: within
    budget, and its best spec, run by `unified-prompt run`, scores what the search reported."""
    from unified_prompt.registry import available
    from unified_prompt.testing.tiny import tiny_model

    if name not in available():
        pytest.skip(f"backend {name!r} not installed")
    spec = generation_task(tmp_path / "task", {}, n_dev=6, n_test=4)
    spec["backend"] = {"name": name, "model": str(tiny_model("llama"))}
    result = run_search(spec, strategy=strategy, budget=60, out=tmp_path / "out",
                        options=options)
    assert result.backend == name and result.metric == "rouge_l"
    assert 0 < result.usage["search"]["calls"] <= 60
    ran = Experiment.from_yaml(tmp_path / "out" / "best.yaml").run(progress=False)
    assert ran.scores == pytest.approx(result.test["best"])
