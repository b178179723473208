"""mixture: several classification tasks in one spec, sampled by weight, evaluated per task."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.toy_runs import predictions, toy_data, toy_spec_data
from unified_prompt.config import build_spec
from unified_prompt.errors import ConfigError
from unified_prompt.mixture import MixtureSampler
from unified_prompt.runner import Experiment

TOPIC = {"template": "Text: {text}\nTopic: {mask}",
         "verbalizer": {"film": ["film"], "food": ["food"]}}


def topic_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"film": ["a long film", "the actors", "a movie plot", "the director's cut"],
             "food": ["a spicy soup", "fresh bread", "the dessert menu", "grilled fish"]}
    for split, reps in (("train", 2), ("dev", 1), ("test", 1)):
        rows = [{"id": f"{split}-{r}-{label}-{i}", "text": t, "label": label}
                for r in range(reps) for label, ts in texts.items() for i, t in enumerate(ts)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows),
                                               encoding="utf-8")
    return folder


def mixture_spec(tmp_path: Path, **finetune) -> dict:
    spec = toy_spec_data(toy_data(tmp_path / "sent"), **finetune)
    topic = topic_data(tmp_path / "topic")
    spec["mixture"] = {"name": "sentiment", "weight": 2.0, "tasks": [
        {"name": "topic", "weight": 1.0, "prompt": copy.deepcopy(TOPIC),
         "data": {"files": {s: str(topic / f"{s}.jsonl") for s in ("train", "dev", "test")}}}]}
    return spec


def test_sampler_draws_by_weight_and_cycles_each_task() -> None:
    sampler = MixtureSampler([10, 40], [3.0, 1.0], seed=1, batch_size=4, grad_accum=2)
    drawn = [i for step in range(300) for micro in sampler(step) for i in micro]
    assert all(len(m) == 4 for m in sampler(0))
    share = sum(i < 10 for i in drawn) / len(drawn)
    assert share == pytest.approx(0.75, abs=0.03)
    first = Counter(i for i in drawn if i < 10)
    assert set(first) == set(range(10))  # every example of the small task, evenly, many laps
    assert max(first.values()) - min(first.values()) <= 1
    # a function of (seed, step) alone: a fresh sampler (a resumed run) agrees at step 250
    assert MixtureSampler([10, 40], [3.0, 1.0], 1, 4, 2)(250) == sampler(250)
    assert MixtureSampler([10, 40], [3.0, 1.0], 2, 4, 2)(0) != sampler(0)


def test_mixture_validation_names_the_key(tmp_path: Path) -> None:
    spec = mixture_spec(tmp_path)
    spec["mixture"]["tasks"][0]["weight"] = 0
    with pytest.raises(ConfigError, match=r"mixture\.tasks\.0\.weight"):
        build_spec(spec)
    spec = mixture_spec(tmp_path)
    spec["mixture"]["tasks"][0]["name"] = "sentiment"
    with pytest.raises(ConfigError, match=r"mixture\.tasks\.0\.name: 'sentiment' is already"):
        build_spec(spec)
    spec = mixture_spec(tmp_path)
    spec["mixture"]["tasks"][0]["prompt"] = {"template": "{text} {mask}", "verbalizer": {"a": "x"}}
    with pytest.raises(ConfigError, match=r"mixture\.tasks\.0\.prompt\.verbalizer"):
        build_spec(spec)
    spec = mixture_spec(tmp_path)
    spec["mixture"]["tasks"][0]["data"]["fields"] = {"text": "body"}
    with pytest.raises(Exception, match=r"mixture task 'topic' \(mixture\.tasks\.0\)"):
        Experiment.from_dict(spec).run(out=tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
    spec = mixture_spec(tmp_path, method="lora", max_steps=2)
    spec["data"]["augment"] = {"demonstrations": {"k": 1}}
    with pytest.raises(ConfigError, match=r"data\.augment: augmentation is not applied to a "
                       "mixture"):
        build_spec(spec)


def test_single_task_specs_are_unchanged(tmp_path: Path) -> None:
    data = toy_data(tmp_path / "d")
    a = Experiment.from_dict(toy_spec_data(data)).run(out=tmp_path / "a", progress=False)
    assert "tasks" not in a.metrics
    assert "mixture" not in (tmp_path / "a" / "config.yaml").read_text()
    assert all("task" not in row for row in predictions(tmp_path / "a"))


def test_mixture_run_reports_each_task(tmp_path: Path) -> None:
    result = Experiment.from_dict(mixture_spec(tmp_path)).run(out=tmp_path / "run",
                                                              progress=False)
    m = result.metrics
    assert set(m["tasks"]) == {"sentiment", "topic"}
    blocks = m["tasks"].values()
    assert m["n_examples"] == sum(b["n_examples"] for b in blocks)
    for name in ("accuracy", "macro_f1"):
        assert m["metrics"][name] == pytest.approx(sum(b["metrics"][name] for b in blocks) / 2,
                                                   abs=1e-6)
    assert m["training"]["train_examples_per_task"] == {"sentiment": 36, "topic": 16}
    rows = predictions(tmp_path / "run")
    assert Counter(r["task"] for r in rows) == {"sentiment": 12, "topic": 8}
    assert {r["prediction"] for r in rows if r["task"] == "topic"} <= {"film", "food"}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Tasks" in report and "| topic | 1.0 | 8 |" in report
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["tasks"]["topic"]["metrics"] == m["tasks"]["topic"]["metrics"]


def test_validate_checks_every_task_and_search_refuses(tmp_path: Path) -> None:
    import yaml
    from click.testing import CliRunner

    from unified_prompt.cli import main
    from unified_prompt.search import run_search

    spec = mixture_spec(tmp_path)
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    ok = CliRunner().invoke(main, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "topic: train 16" in ok.output
    spec["mixture"]["tasks"][0]["prompt"]["verbalizer"] = {"film": ["film"], "drink": ["tea"]}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    bad = CliRunner().invoke(main, ["validate", str(path)])
    assert bad.exit_code == 2
    assert "mixture task 'topic'" in bad.output and "food" in bad.output
    with pytest.raises(ConfigError, match="mixture: prompt search"):
        run_search(mixture_spec(tmp_path), strategy="verbalizer", budget=10)


def test_task_files_are_relative_to_the_spec(tmp_path: Path) -> None:
    import yaml

    from unified_prompt.config import load_spec

    spec = mixture_spec(tmp_path)
    spec["mixture"]["tasks"][0]["data"]["files"] = {
        s: f"../topic/{s}.jsonl" for s in ("train", "dev", "test")}
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "mix.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    loaded = load_spec(path)
    train = loaded.mixture.tasks[0].data.files.train
    assert train.resolve() == (tmp_path / "topic" / "train.jsonl").resolve()


def test_a_mixture_in_two_ranks_matches_one(tmp_path: Path) -> None:
    """Each rank takes its share of the sampler's micro-batches: the same trajectory."""
    from unified_prompt.testing.worlds import run_ranks

    spec = mixture_spec(tmp_path, batch_size=5, max_steps=6, eval_every=6)
    single = Experiment.from_dict(spec).run(out=tmp_path / "one", progress=False)

    def work(world):
        return Experiment.from_dict(spec).run(out=tmp_path / "two", progress=False, world=world)

    main, _ = run_ranks(2, work)
    assert main.metrics["tasks"] == single.metrics["tasks"]

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / "events.jsonl").read_text().splitlines()
        return [e["loss"] for e in map(json.loads, lines) if e["type"] == "step"]

    assert losses("two") == pytest.approx(losses("one"), rel=1e-12)


def test_dry_run_counts_every_task(tmp_path: Path) -> None:
    plan = Experiment.from_dict(mixture_spec(tmp_path)).run(dry_run=True).plan
    assert plan["eval_examples"] == 12 + 8
