"""Helpers for the tests that start several processes: a tiny-model training spec over the
toy data, and the per-step losses a run directory logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from unified_prompt.testing.tiny import tiny_model


def train_spec(path: Path, data: Path, backend: str, **finetune: Any) -> Path:
    """A classification spec on the tiny Llama: `finetune` settings over LoRA defaults."""
    spec = {
        "task": "classification", "seed": 5,
        "backend": {"name": backend, "model": str(tiny_model("llama"))},
        "data": {"files": {s: str(data / f"{s}.jsonl") for s in ("train", "dev", "test")}},
        "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                   "verbalizer": {"positive": ["good"], "negative": ["bad"]}},
        "finetune": {"method": "lora", "r": 4, "alpha": 8, "lr": 0.01, "max_steps": 10,
                     "batch_size": 8, "warmup_ratio": 0.0, "eval_every": 5, **finetune},
    }
    if backend == "hf":
        spec["backend"]["options"] = {"hf": {"device": "cpu"}}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x]


def step_losses(run: Path) -> list[float]:
    return [e["loss"] for e in events(run) if e["type"] == "step"]
