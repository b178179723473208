"""data.augment: template paraphrase and LM-BFF demonstrations, drawn from the train split
only, deterministic, written to RUN/augmented.jsonl, counted in metrics.json, reused on
--resume, reported by validate, on the fake, hf and paddle backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from unified_prompt import augmentation
from unified_prompt.config import load_spec
from unified_prompt.data.resolve import load_splits
from unified_prompt.errors import ConfigError, DataError
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.runner import Experiment
from unified_prompt.validation import validate_spec_file

ALT = ["Text: {text}\nFeeling: {mask}", "{text} All in all it was {mask}."]


def _augmented_spec(toy_spec: Path, **augment) -> Path:
    data = yaml.safe_load(toy_spec.read_text())
    data["data"]["augment"] = augment or {"templates": ALT,
                                          "demonstrations": {"k": 1, "copies": 2}}
    toy_spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return toy_spec


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_plan_counts_and_demonstrations_come_from_other_training_examples(toy_spec):
    spec = load_spec(_augmented_spec(toy_spec))
    train = load_splits(spec.data, spec.task, spec.seed).train
    plan = augmentation.plan(spec, train)
    n = len(train)
    assert augmentation.count(spec, train) == {"templates": 2 * n, "demonstrations": 2 * n}
    by_id = {ex.id: ex for ex in train}
    for recipe in plan:
        if recipe.method == "templates":
            assert recipe.demos is None and recipe.template in (1, 2)
            continue
        assert recipe.template == 0 and recipe.source not in recipe.demos
        # k=1 per label: one positive and one negative demonstration
        assert sorted(by_id[d].label for d in recipe.demos) == ["negative", "positive"]
    # seeded: the same plan again; another seed draws other demonstrations
    assert augmentation.plan(spec, train) == plan
    other = load_spec(toy_spec, overrides=["data.augment.seed=99"])
    assert [r.demos for r in augmentation.plan(other, train)] != [r.demos for r in plan]


def test_rendered_prompts_are_the_alternative_templates_and_the_demonstrations(toy_spec):
    spec = load_spec(_augmented_spec(toy_spec))
    train = load_splits(spec.data, spec.task, spec.seed).train
    out = augmentation.augment(spec, PromptBuilder(spec, train), train)
    ex = train[0]
    mine = [r for r in out.rows if r["source"] == ex.id]
    assert [r["method"] for r in mine] == ["templates"] * 2 + ["demonstrations"] * 2
    assert mine[0]["prompt"] == f"Text: {ex.text}\nFeeling: "
    assert mine[1]["prompt"] == f"{ex.text} All in all it was ."
    demo_row = next(r for r in out.rows if r["source"] == ex.id and r["method"] == "demonstrations")
    by_id = {e.id: e for e in train}
    words = {"positive": "good", "negative": "bad"}
    expected = "\n\n".join(f"Review: {by_id[d].text}\nSentiment: {words[by_id[d].label]}"
                           for d in demo_row["demos"])
    assert demo_row["prompt"] == f"{expected}\n\nReview: {ex.text}\nSentiment: "
    labels = {r["id"]: r["label"] for r in out.rows}
    assert all(labels[r["id"]] == by_id[r["source"]].label for r in out.rows)
    assert [it.label for it in out.items] == [0 if r["label"] == "positive" else 1
                                              for r in out.rows]


def test_run_trains_on_the_augmented_train_split_only(tmp_path, toy_spec, toy_data):
    spec = _augmented_spec(toy_spec)
    run = tmp_path / "run"
    result = Experiment.from_yaml(spec).run(out=run)
    rows = _rows(run / "augmented.jsonl")
    train_ids = {json.loads(x)["id"] for x in (toy_data / "train.jsonl").read_text().splitlines()}
    other_ids = {json.loads(x)["id"] for split in ("dev", "test")
                 for x in (toy_data / f"{split}.jsonl").read_text().splitlines()}
    assert len(rows) == 4 * len(train_ids)
    used = {r["source"] for r in rows} | {d for r in rows for d in r["demos"] or ()}
    assert used <= train_ids and not used & other_ids
    metrics = json.loads((run / "metrics.json").read_text())
    aug = metrics["training"]["augmentation"]
    assert aug == {"original": len(train_ids), "added": len(rows),
                   "methods": {"templates": 2 * len(train_ids),
                               "demonstrations": 2 * len(train_ids)},
                   "file": "augmented.jsonl", "reused": False}
    assert metrics["training"]["train_examples"] == 5 * len(train_ids)
    # dev and test are evaluated as they are: every test example once, none augmented
    predictions = [json.loads(x)["id"] for x in (run / "predictions.jsonl").read_text().splitlines()]
    test_ids = [json.loads(x)["id"] for x in (toy_data / "test.jsonl").read_text().splitlines()]
    assert predictions == test_ids and result.metrics["n_examples"] == len(test_ids)
    start = next(json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()
                 if json.loads(x)["type"] == "start")
    assert start["splits"]["dev"] == len(other_ids) - len(test_ids)
    # the same spec writes the same file (seeded)
    again = tmp_path / "again"
    Experiment.from_yaml(spec).run(out=again)
    assert (again / "augmented.jsonl").read_bytes() == (run / "augmented.jsonl").read_bytes()


def test_resume_reuses_the_written_augmentation(tmp_path, toy_spec):
    spec = _augmented_spec(toy_spec, demonstrations={"k": 1})
    run = tmp_path / "run"
    Experiment.from_yaml(spec).run(out=run)
    rows = _rows(run / "augmented.jsonl")
    # an earlier attempt's file wins over a fresh draw: swap two rows' demonstrations
    rows[0]["demos"], rows[1]["demos"] = rows[1]["demos"], rows[0]["demos"]
    (run / "augmented.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept = (run / "augmented.jsonl").read_bytes()
    for name in ("metrics.json", "predictions.jsonl", "state.json"):
        (run / name).unlink()
    shutil.rmtree(run / "adapter")
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    Experiment.from_yaml(spec).run(out=run, resume=True)
    assert (run / "augmented.jsonl").read_bytes() == kept
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["training"]["augmentation"]["reused"] is True
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert [e["reused"] for e in events if e["type"] == "augment"] == [False, True]


def test_a_damaged_augmentation_file_is_named_with_its_line(tmp_path, toy_spec):
    spec = load_spec(_augmented_spec(toy_spec, demonstrations={"k": 1}))
    train = load_splits(spec.data, spec.task, spec.seed).train
    path = tmp_path / "augmented.jsonl"
    augmentation.augment(spec, PromptBuilder(spec, train), train, path)
    rows = _rows(path)
    rows[2]["demos"] = ["test-0-x"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"augmented.jsonl:3: example 'test-0-x' is not in the "
                                        r"training split"):
        augmentation.augment(spec, PromptBuilder(spec, train), train, path, resuming=True)


def test_validate_reports_how_many_examples_augmentation_adds(toy_spec, toy_data):
    spec = _augmented_spec(toy_spec)
    n = len((toy_data / "train.jsonl").read_text().splitlines())
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 0, proc.stderr
    assert (f"augmentation: +{4 * n} training examples (templates {2 * n}, "
            f"demonstrations {2 * n})") in proc.stdout
    proc = run_cli("validate", str(spec), "--set", "finetune.train_limit=5")
    assert "augmentation: +20 training examples (templates 10, demonstrations 10)" in proc.stdout


@pytest.mark.parametrize(("augment", "finetune", "message"), [
    ({"templates": ["{text} no mask"]}, None, r"data.augment.templates\[0\]: needs a \{mask\}"),
    ({}, None, "names no method"),
    ({"templates": ["{text} {mask}"]}, {"method": "none"}, "trains nothing locally"),
    ({"templates": ["{soft:3} {text} {mask}"]},
     {"method": "prompt_tuning", "num_virtual_tokens": 4}, r"\{soft\} slots differ"),
])
def test_bad_augment_specs_are_refused(tmp_path, toy_spec, augment, finetune, message):
    data = yaml.safe_load(toy_spec.read_text())
    data["data"]["augment"] = augment
    if finetune is not None:
        data["finetune"] = finetune
    toy_spec.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match=message):  # what validate and run both check
        validate_spec_file(toy_spec)
    if augment:
        with pytest.raises(ConfigError, match=message):
            Experiment.from_yaml(toy_spec).run(out=tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_a_field_no_training_example_has_is_named(toy_spec):
    spec = _augmented_spec(toy_spec, templates=["{title}: {text} {mask}"])
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 2
    assert "train.jsonl:1" in proc.stderr and "no field 'title'" in proc.stderr


@pytest.mark.parametrize("backend", ["hf", "paddle"])
def test_augmented_training_on_the_framework_backends(tmp_path, toy_spec, backend):
    """Core data work: the backends train on the augmented items unchanged."""
    from unified_prompt.registry import available
    from unified_prompt.testing.tiny import tiny_model

    if backend not in available():
        pytest.skip(f"backend {backend} is not installed")
    spec = _augmented_spec(toy_spec, templates=ALT[:1], demonstrations={"k": 1})
    run = tmp_path / backend
    overrides = [f"backend.name={backend}", f"backend.model={tiny_model('llama')}",
                 "finetune.max_steps=2", "finetune.train_limit=6", "finetune.eval_every=2",
                 "finetune.eval_limit=4", "eval.limit=4"]
    result = Experiment.from_yaml(spec, overrides=overrides).run(out=run)
    training = result.metrics["training"]
    assert training["augmentation"]["added"] == 12 and training["train_examples"] == 18
    assert len(_rows(run / "augmented.jsonl")) == 12
    assert result.metrics["n_examples"] == 4
