"""Search on qa specs: the objective is token F1 (then exact match) of the answers generated
on dev, against every gold answer. Known answer: dev/test answers are what the fake model
itself generates under a hidden prompt, so the search must climb to F1 1.0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unified_prompt.backend import GenerationParams
from unified_prompt.config import build_spec
from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.runner import Experiment
from unified_prompt.search import run_search
from unified_prompt.testing.fake import FakeBackend

MODEL = "fake-search"
WORDS = ("film", "story", "actor", "scene", "plot", "music", "camera", "light", "dark", "quiet",
         "loud", "slow", "fast", "warm", "cold", "bright", "heavy", "gentle", "river", "city")
TEMPLATE = "Context: {context}\nQuestion: {question}\nAnswer: {mask}"


def _spec(folder: Path, **prompt: Any) -> dict[str, Any]:
    return {"task": "qa", "seed": 11, "backend": {"name": "fake", "model": MODEL},
            "data": {"files": {s: str(folder / f"{s}.jsonl") for s in ("train", "dev", "test")}},
            "prompt": {"template": TEMPLATE, **prompt}, "eval": {"max_new_tokens": 3}}


def _answers(spec_data: dict[str, Any], examples: list[Example], pool: list[Example]
             ) -> list[str]:
    backend = FakeBackend()
    prompts = PromptBuilder(build_spec(spec_data), pool).render(examples)
    out = backend.generate(backend.load_model(MODEL), prompts, GenerationParams(max_new_tokens=3))
    return [t.strip() for t in out]


def _write(path: Path, examples: list[Example], answers: list[list[str]]) -> None:
    path.write_text("".join(json.dumps({"id": e.id, **e.fields, "answers": a}) + "\n"
                            for e, a in zip(examples, answers, strict=True)), encoding="utf-8")


def qa_task(folder: Path, hidden: dict[str, Any], n_train: int = 8, n_dev: int = 12,
            n_test: int = 10) -> dict[str, Any]:
    """dev/test gold answers: the fake model's answer under `hidden`, plus a second gold
    answer no prompt produces (F1 is the best over the golds)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS, size=n))

    examples = [Example(f"{'t' if i < n_train else 'q'}{i}",
                        {"context": words(5), "question": words(2)})
                for i in range(n_train + n_dev + n_test)]
    train, rest = examples[:n_train], examples[n_train:]
    train_answers = _answers(_spec(folder), train, [])
    train = [Example(e.id, e.fields, target=a, answers=(a,))
             for e, a in zip(train, train_answers, strict=True)]
    _write(folder / "train.jsonl", train, [[a] for a in train_answers])
    gold = [[a, "no such answer"] for a in _answers(_spec(folder, **hidden), rest, train)]
    _write(folder / "dev.jsonl", rest[:n_dev], gold[:n_dev])
    _write(folder / "test.jsonl", rest[n_dev:], gold[n_dev:])
    return _spec(folder)


def test_demos_search_on_qa_finds_the_hidden_demonstrations_by_f1(tmp_path):
    spec = qa_task(tmp_path / "task", {"demonstrations": {"selection": "fixed",
                                                          "ids": ["t1", "t6"]}})
    result = run_search(spec, strategy="demos", budget=600, out=tmp_path / "out",
                        options={"dev_limit": 12, "k": 2, "pool_per_label": 8,
                                 "random_sets": 3, "steps": 40})
    assert result.metric == "f1"
    assert set(result.dev["original"]) == {"f1", "exact_match", "n"}
    assert result.dev["original"]["f1"] < 0.7
    assert result.dev["best"] == {"f1": 1.0, "exact_match": 1.0, "n": 12}
    assert set(result.best.demos.ids) == {"t1", "t6"}
    assert result.test["best"]["f1"] == 1.0 > result.test["original"]["f1"]
    # best.yaml is a qa spec that `run` scores as the search reported
    ran = Experiment.from_yaml(tmp_path / "out" / "best.yaml").run(progress=False)
    assert ran.scores == {"exact_match": 1.0, "f1": 1.0}
    assert "## f1" in (tmp_path / "out" / "report.md").read_text()


def test_propose_search_on_qa_climbs_towards_the_hidden_instruction(tmp_path, extra_backends):
    spec = qa_task(tmp_path / "task", {"template": "heavy river camera\n" + TEMPLATE})
    result = run_search(spec, strategy="propose", budget=2000,
                        options={"dev_limit": 12, "rounds": 24, "per_round": 3,
                                 "seed_instructions": ["road road road"],
                                 "proposer": {"backend": "scripted"}})
    assert result.metric == "f1"
    assert result.dev["original"]["f1"] < 0.6
    assert result.dev["best"] == {"f1": 1.0, "exact_match": 1.0, "n": 12}
    assert result.test["best"]["f1"] == 1.0 > result.test["original"]["f1"]
    assert result.best.template.startswith(("heavy", "river", "camera"))


def test_qa_search_objective_follows_eval_metrics(tmp_path):
    spec = qa_task(tmp_path / "task", {}, n_dev=4, n_test=4)
    spec["eval"]["metrics"] = ["exact_match"]
    result = run_search(spec, strategy="demos", budget=60,
                        options={"dev_limit": 4, "k": 1, "random_sets": 1, "steps": 1})
    assert result.metric == "exact_match" and set(result.dev["original"]) == {"exact_match", "n"}


@pytest.mark.parametrize("strategy", ["gradient", "verbalizer"])
def test_label_word_strategies_refuse_qa(tmp_path, strategy):
    from unified_prompt.errors import UserInputError

    spec = qa_task(tmp_path / "task", {}, n_dev=4, n_test=4)
    with pytest.raises(UserInputError, match=r"this spec's task is 'qa': use propose, rl, demos"):
        run_search(spec, strategy=strategy, budget=100)


@pytest.mark.parametrize("name", ["hf", "paddle"])
def test_qa_search_runs_unchanged_on_a_tiny_local_model(tmp_path, name):
    """Only the backend switched, on a tiny random Llama: within budget, by F1, and its best
    spec, run as it is, scores what the search reported on test."""
    from unified_prompt.registry import available
    from unified_prompt.testing.tiny import tiny_model

    if name not in available():
        pytest.skip(f"backend {name!r} not installed")
    spec = qa_task(tmp_path / "task", {}, n_dev=6, n_test=4)
    spec["backend"] = {"name": name, "model": str(tiny_model("llama"))}
    result = run_search(spec, strategy="demos", budget=40, out=tmp_path / "out",
                        options={"dev_limit": 6, "k": 1, "random_sets": 2, "steps": 2})
    assert result.backend == name and result.metric == "f1"
    assert 0 < result.usage["search"]["calls"] <= 40
    ran = Experiment.from_yaml(tmp_path / "out" / "best.yaml").run(progress=False)
    assert ran.scores == pytest.approx({k: v for k, v in result.test["best"].items()
                                        if k != "n"})
