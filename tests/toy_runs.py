"""Finished toy runs (fake backend, synthetic sentiment data) made once per test module:
the material the comparison, figure and tracking tests read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unified_prompt.runner import Experiment
from unified_prompt.testing.conformance import synthetic_examples


def toy_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, reps in (("train", 3), ("dev", 1), ("test", 1)):
        rows = [{"id": f"{split}-{r}-{e.id}", "text": e.text, "label": e.label}
                for r in range(reps) for e in synthetic_examples()]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows),
                                               encoding="utf-8")
    return folder


def toy_spec_data(data: Path, **finetune: Any) -> dict[str, Any]:
    ft = {"method": "lora", "r": 4, "lr": 0.02, "max_steps": 12, "batch_size": 4,
          "eval_every": 4, "checkpoint_every": 50, **finetune}
    if ft["method"] == "none":
        ft = {"method": "none"}
    return {"name": "toy", "task": "classification", "seed": 5,
            "backend": {"name": "fake", "model": "fake-toy"},
            "data": {"files": {s: str(data / f"{s}.jsonl") for s in ("train", "dev", "test")}},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["good", "absolutely wonderful"],
                                      "negative": ["bad", "差"]}},
            "finetune": ft}


def toy_run(out: Path, data: Path, *, tracking: dict[str, Any] | None = None,
            **finetune: Any) -> Path:
    spec = toy_spec_data(data, **finetune)
    if tracking is not None:
        spec["tracking"] = tracking
    Experiment.from_dict(spec).run(out=out, progress=False)
    return out


def events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]


def predictions(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
