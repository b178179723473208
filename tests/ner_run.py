"""A task: ner run (LoRA, two steps) on a local backend over the tiny Llama, and its metrics
recomputed from predictions.jsonl, for the hf and paddle tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unified_prompt.data.resolve import load_splits
from unified_prompt.ner_metrics import ner_evaluation
from unified_prompt.runner import Experiment
from unified_prompt.testing.tiny import tiny_model

ROWS = [{"id": "a", "tokens": ["Ann", "met", "Bo", "in", "Oslo"],
         "tags": ["B-PER", "O", "B-PER", "O", "B-LOC"]},
        {"id": "b", "text": "王芳在北京大学读书。", "entities": [[0, 2, "PER"], [3, 7, "ORG"]]},
        {"id": "c", "text": "It rained.", "entities": []}]


def run_ner(tmp_path: Path, name: str, options: dict[str, Any]) -> tuple[Any, dict, dict]:
    """(the run's result, metrics recomputed from its predictions, the recomputed details)."""
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS),
                    encoding="utf-8")
    exp = Experiment.from_dict({
        "task": "ner", "backend": {"name": name, "model": str(tiny_model("llama")),
                                   "options": {name: options}},
        "data": {"files": {"train": str(path), "test": str(path)}},
        "prompt": {"template": "Types: {entity_types}\nText: {text}\nEntities: {mask}",
                   "entity_types": ["PER", "LOC", "ORG"]},
        "finetune": {"method": "lora", "r": 2, "max_steps": 2, "batch_size": 2},
        "eval": {"max_new_tokens": 6}})
    result = exp.run(out=tmp_path / "run", progress=False)
    examples = load_splits(exp.spec.data, "ner", exp.spec.seed).test
    metrics, _, details = ner_evaluation(examples, [r["prediction"] for r in result.predictions],
                                         ["PER", "LOC", "ORG"])
    return result, metrics, details


def check_run(result: Any, metrics: dict, details: dict) -> None:
    m = result.metrics
    assert m["task"] == "ner" and m["n_examples"] == 3 and m["trainable_params"] > 0
    assert m["metrics"] == metrics and m["ner"] == details
    assert {k: v["support"] for k, v in details["per_type"].items()} == \
        {"LOC": 1, "ORG": 1, "PER": 3}
    assert [r["target"] for r in result.predictions] == \
        ["PER: Ann; PER: Bo; LOC: Oslo", "PER: 王芳; ORG: 北京大学", "none"]
    assert all(isinstance(r["prediction"], str) for r in result.predictions)
