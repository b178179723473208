"""Two finished runs of one spec (e.g. hf and paddle), example by example and step by step.

    .venv/bin/python bench/compare_runs.py runs/hf-sent-pt3 runs/paddle-sent-pt3
    .venv/bin/python bench/compare_runs.py runs/hf-sent-zs-none runs/paddle-sent-zs-none

Prints how many predictions agree and the largest label-probability difference (on the
examples both runs predicted), and, when both trained, the relative difference of their
per-step training losses (events.jsonl) at chosen steps and the largest over ranges of steps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def compare(name: str, reference: list[dict], rows: list[dict]) -> None:
    """Predictions of `rows` against `reference` (matched by example id)."""
    ref = {r["id"]: r for r in reference}
    rows = [r for r in rows if r["id"] in ref]
    same = sum(ref[r["id"]]["prediction"] == r["prediction"] for r in rows)
    diff = max(abs(ref[r["id"]]["scores"][k] - v) for r in rows for k, v in r["scores"].items())
    acc = sum(r["correct"] for r in rows) / len(rows)
    print(f"{name}: same prediction on {same}/{len(rows)}; max |prob diff| {diff:.2e}; "
          f"accuracy {acc:.4f}")


def step_losses(run: Path) -> dict[int, float]:
    """The last logged loss of each step (a resumed run logs the steps it redid again)."""
    return {e["step"]: float(e["loss"]) for e in read_jsonl(run / "events.jsonl")
            if e.get("type") == "step"}


def compare_losses(a: dict[int, float], b: dict[int, float], upto: list[int]) -> None:
    steps = sorted(set(a) & set(b))
    if not steps:
        print("losses: no training steps in common")
        return
    rel = {s: abs(a[s] - b[s]) / max(abs(a[s]), 1e-12) for s in steps}
    for s in (1, 2, 3, 10, 20, 30, 50, steps[-1]):
        if s in rel:
            print(f"  step {s}: relative loss difference {rel[s]:.1e}")
    for n in upto:
        inside = [rel[s] for s in steps if s <= n]
        if inside:
            print(f"  steps 1-{n}: largest relative loss difference {max(inside):.1e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--upto", type=int, nargs="*", default=[20, 150])
    args = ap.parse_args()
    compare(f"{args.b} vs {args.a}", read_jsonl(args.a / "predictions.jsonl"),
            read_jsonl(args.b / "predictions.jsonl"))
    a, b = step_losses(args.a), step_losses(args.b)
    if a and b:
        print(f"training losses ({len(set(a) & set(b))} steps in common):")
        compare_losses(a, b, args.upto)


if __name__ == "__main__":
    main()
