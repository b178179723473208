"""1 process against 2 on the real model (SmolLM2-135M, CPU, gloo): walls and agreement.

The same spec (LoRA on rotten_tomatoes, a few steps, the global batch of 8 split 4 + 4)
runs through `unified-prompt run` alone and with `--nproc 2` (torchrun). Printed: each
run's wall, train and eval seconds, the largest relative difference of the per-step
losses, and whether every test prediction agrees.

    python bench/distributed_smollm2.py            # 6 steps, 64 test examples
    python bench/distributed_smollm2.py --steps 10 --eval-limit 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def spec(steps: int, eval_limit: int) -> dict:
    return {"task": "classification", "seed": 13,
            "backend": {"name": "hf", "model": "smollm2-135m",
                        "options": {"hf": {"device": "cpu"}}},
            "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["positive"], "negative": ["negative"]}},
            "finetune": {"method": "lora", "r": 8, "alpha": 16, "lr": 5e-4, "max_steps": steps,
                         "batch_size": 8, "warmup_ratio": 0.0, "eval_every": steps,
                         "eval_limit": 32, "train_limit": 8 * steps},
            "eval": {"split": "test", "limit": eval_limit}}


def run(config: Path, out: Path, nproc: int) -> float:
    cmd = [sys.executable, "-m", "unified_prompt.cli", "run", str(config), "--out", str(out)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"},
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def losses(out: Path) -> list[float]:
    rows = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines() if x]
    return [r["loss"] for r in rows if r["type"] == "step"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--eval-limit", type=int, default=64)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dist-smollm2-"))
    config = folder / "spec.yaml"
    config.write_text(yaml.safe_dump(spec(args.steps, args.eval_limit)), encoding="utf-8")
    walls = {n: run(config, folder / f"p{n}", n) for n in (1, 2)}
    metrics = {n: json.loads((folder / f"p{n}" / "metrics.json").read_text()) for n in (1, 2)}
    one, two = losses(folder / "p1"), losses(folder / "p2")
    rel = max(abs(a - b) / abs(a) for a, b in zip(one, two, strict=True))
    preds = [[json.loads(x)["prediction"] for x in
              (folder / f"p{n}" / "predictions.jsonl").read_text().splitlines()] for n in (1, 2)]
    same = sum(a == b for a, b in zip(*preds, strict=True))
    for n in (1, 2):
        m = metrics[n]
        print(f"{n} process{'es' if n > 1 else ''}: wall {walls[n]:.1f}s (train "
              f"{m['train_seconds']:.1f}s, eval {m['eval_seconds']:.1f}s), test accuracy "
              f"{m['metrics']['accuracy']:.4f}")
    print(f"per-step losses ({len(one)} steps): largest relative difference {rel:.2e}")
    print(f"test predictions agreeing: {same}/{len(preds[0])}")
    print(json.dumps({"walls": walls, "max_rel_loss_diff": rel, "agree": same,
                      "n": len(preds[0]), "losses_1": one, "losses_2": two}))


if __name__ == "__main__":
    main()
