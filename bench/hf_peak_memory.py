"""Peak resident memory of `unified-prompt run examples/sentiment.yaml`: prompt tuning
against full fine-tuning on the hf backend (each run in its own process; metrics.json
records peak_rss_mb). A few steps suffice: the peak is reached by the first optimizer step.

    .venv/bin/python bench/hf_peak_memory.py [--steps 4] [--out runs/bench-mem]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(method: str, steps: int, out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(Path(sys.executable).parent / "unified-prompt"), "run", "examples/sentiment.yaml",
           "--out", str(out), "--no-progress", "--set", f"finetune.method={method}",
           "--set", f"finetune.max_steps={steps}", "--set", "finetune.eval_limit=16",
           "--set", "eval.limit=32"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"method": method, "peak_rss_mb": metrics["peak_rss_mb"],
            "trainable_params": metrics["trainable_params"],
            "wall_s": round(time.perf_counter() - t0, 1), "command": " ".join(cmd[1:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", default="runs/bench-mem")
    args = ap.parse_args()
    rows = [run(m, args.steps, ROOT / args.out / m) for m in ("prompt_tuning", "full")]
    for r in rows:
        print(f"{r['method']:14s} peak RSS {r['peak_rss_mb']:8.1f} MB  trainable "
              f"{r['trainable_params']:>12,}  wall {r['wall_s']}s")
    print(f"ratio full/prompt_tuning = {rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
