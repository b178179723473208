"""An adapter trained on one framework, converted, predicts the same on the other.

Takes a finished run directory (its adapter/ and predictions.jsonl), converts the adapter
to the other backend's format, evaluates it there on the run's whole eval split, and
compares example by example with the original predictions; then converts it back and
evaluates on the original backend again.

    .venv/bin/python bench/paddle_convert_check.py runs/hf-sent-lora [--limit N]

The source run directory is only read; the converted adapters go to runs/convert-check/.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from unified_prompt.portability.compare import Tolerance, compare_pair
from unified_prompt.run_record import RunRecord, read_jsonl


def compare(name: str, reference: list[dict], rows: list[dict]) -> None:
    """`rows` against `reference` by example id, as `unified-prompt compare` reports it."""
    pair = compare_pair(RunRecord(None, {}, reference, label="original"),
                        RunRecord(None, {}, rows, label=name), Tolerance())
    print(pair.summary())


def evaluate(backend_name: str, adapter: Path, spec_data: dict, limit: int | None) -> list[dict]:
    """The run's spec evaluated with `adapter` on `backend_name` through `eval.adapter` (the
    runner adopts the adapter's method settings, so soft tokens shape the prompt as trained)."""
    from unified_prompt.runner import Experiment

    data = {**spec_data, "finetune": {"method": "none"},
            "backend": {"name": backend_name, "model": spec_data["backend"]["model"],
                        "options": {"hf": {"device": "cpu"}} if backend_name == "hf" else {}},
            "eval": {**spec_data["eval"], "adapter": str(adapter), "limit": limit}}
    return Experiment.from_dict(data).run(progress=False).predictions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--work", type=Path, default=None,
                    help="where the converted adapters go (default: runs/convert-check/<run>)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import yaml
    from unified_prompt_paddle.convert import convert_adapter

    from unified_prompt.artifacts import drop_redacted

    run = args.run
    manifest = json.loads((run / "adapter" / "manifest.json").read_text())
    spec_data = drop_redacted(yaml.safe_load((run / "config.yaml").read_text()))
    source = manifest["backend"]
    target = "paddle" if source == "hf" else "hf"
    reference = read_jsonl(run / "predictions.jsonl")
    reference = reference[: args.limit or None]
    accuracy = sum(r["correct"] for r in reference) / len(reference)
    print(f"{run}: {source} {manifest['method']} adapter, {len(reference)} predictions, "
          f"accuracy {accuracy:.4f}")
    work = args.work or Path("runs") / "convert-check" / run.name
    t0 = time.perf_counter()
    there = convert_adapter(run / "adapter", work / f"to-{target}", to=target, overwrite=True)
    back = convert_adapter(there, work / f"back-to-{source}", to=source, overwrite=True)
    print(f"converted {source} -> {target} -> {source} in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    compare(f"{target} (converted)", reference,
            evaluate(target, there, spec_data, args.limit))
    print(f"  ({time.perf_counter() - t0:.0f}s)")
    t0 = time.perf_counter()
    compare(f"{source} (converted back)", reference,
            evaluate(source, back, spec_data, args.limit))
    print(f"  ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
