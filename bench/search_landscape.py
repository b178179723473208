"""How much can a zero-shot prompt change buy on this model? Hand-written variants of
examples/sentiment.yaml's template and label words, scored on dev only (the test split is
not touched): on the search objective (dev examples 0-399) and on dev examples 400-799,
which no search sees, each without calibration and with batch calibration.

    nice -n 5 .venv/bin/python bench/search_landscape.py            # the table in RESULTS.md
    nice -n 5 .venv/bin/python bench/search_landscape.py --variants my.json

A variants file is a JSON list of {"template": ..., "verbalizer": {label: [words]}}, either
key optional (left out: the spec's own). One prompt costs 800 scored prompts (one pass per
dev slice; both calibrations come from the same pass).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from unified_prompt.config import load_spec
from unified_prompt.data.resolve import load_splits
from unified_prompt.registry import create_backend
from unified_prompt.search.budget import Meter, SearchBudget
from unified_prompt.search.candidate import Candidate
from unified_prompt.search.objective import Objective

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sentiment.yaml"
SLICES = {"objective (dev 0-399)": (0, 400), "held out (dev 400-799)": (400, 800)}
CALIBRATIONS = ("none", "batch")

#: What the strategies could reach: domain words before the review (gradient/rl prefix
#: triggers, propose), another answer cue (propose), extra label words (verbalizer),
#: a chat turn (an instruction-tuned target).
VARIANTS: list[dict[str, Any]] = [
    {},
    {"template": "Movie review: {text}\nSentiment: {mask}"},
    {"template": "Movie Review: {text}\nSentiment: {mask}"},
    {"template": "movie Review: {text}\nSentiment: {mask}"},
    {"template": "film Review: {text}\nSentiment: {mask}"},
    {"template": "Film review: {text}\nSentiment: {mask}"},
    {"template": "Review: {text} movie\nSentiment: {mask}"},
    {"template": "Review: {text}\nOverall sentiment: {mask}"},
    {"template": "Review: {text}\nSentiment (positive or negative): {mask}"},
    {"template": "Movie review: \"{text}\"\nSentiment: {mask}"},
    {"template": "{text}\nSentiment: {mask}"},
    {"template": "<|im_start|>user\nReview: {text}\nIs this review positive or negative?"
                 "<|im_end|>\n<|im_start|>assistant\n{mask}"},
    {"template": "<|im_start|>user\nIs this movie review positive or negative?\n{text}"
                 "<|im_end|>\n<|im_start|>assistant\nThe review is {mask}"},
    {"verbalizer": {"positive": ["positive", "good"], "negative": ["negative", "bad"]}},
    {"verbalizer": {"positive": ["positive", "great"], "negative": ["negative", "terrible"]}},
]


def candidate(base: Candidate, variant: dict[str, Any]) -> Candidate:
    words = variant.get("verbalizer")
    return base.with_(template=variant.get("template"),
                      words=tuple((k, tuple(v)) for k, v in words.items()) if words else None,
                      origin="landscape")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=Path, help="a JSON list of variants")
    parser.add_argument("--spec", type=Path, default=SPEC)
    args = parser.parse_args()
    variants = json.loads(args.variants.read_text()) if args.variants else VARIANTS
    spec = load_spec(args.spec)
    splits = load_splits(spec.data, spec.task, spec.seed)
    backend = create_backend(spec.backend.name, spec.backend.options_for())
    model = backend.load_model(spec.backend.model)
    base = Candidate.from_spec(spec)
    heads = [f"{name}, {cal}" for name in SLICES for cal in CALIBRATIONS]
    print("| template | label words | " + " | ".join(heads) + " | wall |")
    print("|---|---|" + "---|" * len(heads) + "---|", flush=True)
    for variant in variants:
        cand = candidate(base, variant)
        started = time.perf_counter()
        cells = []
        for lo, hi in SLICES.values():
            # a fresh objective per slice: its caches are keyed by candidate, not examples
            objective = Objective(spec, backend, model, splits.train, Meter(SearchBudget(10**9)))
            for cal in CALIBRATIONS:
                score, _ = objective.dev_score(cand.with_(calibration=cal), splits.dev[lo:hi])
                cells.append(f"{score.accuracy:.4f}")
        words = " / ".join("+".join(ws) for ws in cand.verbalizer.values())
        shown = cand.template.replace("\n", "\\n")
        print(f"| `{shown}` | {words} | " + " | ".join(cells)
              + f" | {time.perf_counter() - started:.0f}s |", flush=True)


if __name__ == "__main__":
    main()
