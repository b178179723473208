"""Training objectives and multi-task mixtures on real data with SmolLM2-135M (hf, CPU).

    nice -n 10 .venv/bin/python bench/objectives_mixture.py --out runs/bench-objectives

Runs, all LoRA (r 8, lr 1e-3, batch 8, 40 steps, dev 50 examples every 20 steps, best kept),
each evaluated on the first 200 test examples of its task:

- sentiment (rotten_tomatoes, "Review: {text}\\nSentiment: {mask}") with
  finetune.objective cross_entropy, margin (margin 1, weight 1) and contrastive
  (temperature 0.1, weight 0.5), plus the zero-shot prompt;
- topic (BBC News headline -> business / entertainment / politics / sports / tech, written
  from the bundled bbc_headlines dataset's splits into OUT/bbc-topics/*.jsonl) alone, and a
  mixture of sentiment and topic (weights 1:1) under the same 40-step budget.

Each run is a normal run directory under OUT (metrics.json, report.md, ...); the script
prints one table (accuracy, macro-F1, train seconds) and the spec of every run sits in
OUT/<run>/config.yaml. A finished run is reused when the script runs again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from unified_prompt.runner import Experiment

LORA = {"method": "lora", "r": 8, "alpha": 16, "lr": 1.0e-3, "batch_size": 8, "max_steps": 40,
        "eval_every": 20, "eval_limit": 50, "checkpoint_every": 1000}
SENTIMENT = {"data": {"dataset": "rotten_tomatoes"},
             "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                        "verbalizer": {"positive": ["positive"], "negative": ["negative"]}}}
TOPIC_WORDS = {"business": ["business"], "entertainment": ["entertainment"],
               "politics": ["politics"], "sports": ["sport"], "tech": ["technology"]}


def topic_files(out: Path) -> dict[str, str]:
    """BBC headlines labelled with their topic, from bbc_headlines' fixed splits."""
    from unified_prompt.config import DataSpec
    from unified_prompt.data.resolve import load_splits

    folder = out / "bbc-topics"
    folder.mkdir(parents=True, exist_ok=True)
    splits = load_splits(DataSpec(dataset="bbc_headlines"), "generation", 0)
    files = {}
    for name in ("train", "dev", "test"):
        path = folder / f"{name}.jsonl"
        rows = [{"id": ex.id, "text": ex.target, "label": ex.fields["topic"]}
                for ex in splits.get(name)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        files[name] = str(path.resolve())
    return files


def topic_task(files: dict[str, str]) -> dict[str, Any]:
    return {"data": {"files": files},
            "prompt": {"template": "Headline: {text}\nTopic: {mask}", "verbalizer": TOPIC_WORDS}}


def spec(task: dict[str, Any], finetune: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"task": "classification", "seed": 13,
            "backend": {"name": "hf", "model": "smollm2-135m",
                        "options": {"hf": {"device": "cpu"}}},
            **task, "finetune": finetune or {"method": "none"},
            "eval": {"split": "test", "limit": 200}, "tracking": {"tensorboard": False},
            **extra}


def runs(out: Path) -> dict[str, dict[str, Any]]:
    topic = topic_task(topic_files(out))
    mixture = {"name": "sentiment", "weight": 1.0,
               "tasks": [{"name": "topic", "weight": 1.0, **topic}]}
    return {
        "sentiment-zero-shot": spec(SENTIMENT, None),
        "sentiment-ce": spec(SENTIMENT, LORA),
        "sentiment-margin": spec(SENTIMENT, {**LORA, "objective": {
            "name": "margin", "margin": 1.0, "weight": 1.0}}),
        "sentiment-contrastive": spec(SENTIMENT, {**LORA, "objective": {
            "name": "contrastive", "temperature": 0.1, "weight": 0.5}}),
        "topic-zero-shot": spec(topic, None),
        "topic-ce": spec(topic, LORA),
        "mixture-ce": spec(SENTIMENT, LORA, mixture=mixture),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/bench-objectives")
    parser.add_argument("names", nargs="*", help="runs to do (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    table = []
    for name, data in runs(out).items():
        if args.names and name not in args.names:
            continue
        run_dir = out / name
        result = Experiment.from_dict(data).run(out=run_dir, resume=True, progress=False)
        m = result.metrics
        blocks = m.get("tasks") or {name.split("-")[0]: m}
        for task, block in blocks.items():
            table.append((name, task, block["metrics"]["accuracy"], block["metrics"]["macro_f1"],
                          m.get("train_seconds", 0.0), block["n_examples"]))
        print(f"{name}: {m['metrics']}", file=sys.stderr, flush=True)
    print("| run | task | accuracy | macro-F1 | train s | test examples |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row[0]} | {row[1]} | {row[2]:.3f} | {row[3]:.3f} | {row[4]:.0f} | {row[5]} |")


if __name__ == "__main__":
    main()
