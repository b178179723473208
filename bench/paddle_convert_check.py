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


def unredacted(data: object) -> object:
    """config.yaml with the core's "<redacted>" placeholders dropped (it redacts every key
    containing "token", num_virtual_tokens and max_new_tokens included)."""
    if isinstance(data, dict):
        return {k: unredacted(v) for k, v in data.items() if v != "<redacted>"}
    return data


def evaluate(backend_name: str, adapter: Path, manifest: dict, spec_data: dict, limit: int | None
             ) -> list[dict]:
    from unified_prompt.config import build_spec
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.registry import create_backend
    from unified_prompt.runner import Evaluator

    data = dict(spec_data)
    data["backend"] = {"name": backend_name, "model": manifest["base_model"]["name"]}
    data["prompt"] = {**data["prompt"], "template": manifest["template"],
                      "verbalizer": manifest["verbalizer"]}
    data["finetune"] = {k: v for k, v in manifest["method_config"].items() if v is not None}
    spec = build_spec(data)
    splits = load_splits(spec.data, spec.task, spec.seed)
    examples = splits.get(spec.eval.split)[: limit or None]
    builder = PromptBuilder(spec, splits.train)
    options = {"device": "cpu"} if backend_name == "hf" else {}
    backend = create_backend(backend_name, options)
    model = backend.load_adapter(backend.load_model(spec.backend.model), adapter)
    _, rows = Evaluator(backend, builder, spec, progress=False).classify(model, examples)
    return rows


def compare(name: str, reference: list[dict], rows: list[dict]) -> None:
    ref = {r["id"]: r for r in reference}
    same = sum(ref[r["id"]]["prediction"] == r["prediction"] for r in rows)
    diff = max(abs(ref[r["id"]]["scores"][k] - v) for r in rows for k, v in r["scores"].items())
    acc = sum(r["correct"] for r in rows) / len(rows)
    print(f"{name}: same prediction on {same}/{len(rows)}; max |prob diff| {diff:.2e}; "
          f"accuracy {acc:.4f}")


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

    run = args.run
    manifest = json.loads((run / "adapter" / "manifest.json").read_text())
    spec_data = unredacted(yaml.safe_load((run / "config.yaml").read_text()))
    source = manifest["backend"]
    target = "paddle" if source == "hf" else "hf"
    reference = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines() if x]
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
            evaluate(target, there, manifest, spec_data, args.limit))
    print(f"  ({time.perf_counter() - t0:.0f}s)")
    t0 = time.perf_counter()
    compare(f"{source} (converted back)", reference,
            evaluate(source, back, manifest, spec_data, args.limit))
    print(f"  ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
