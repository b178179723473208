"""Prompt search on rotten_tomatoes with SmolLM2-135M (hf backend, CPU): each strategy's best
prompt against examples/sentiment.yaml's template, both on the full test split, once each;
and on a generation task (`headline-*`: examples/headline.yaml, bbc_headlines, judged by
ROUGE-L of the generated headlines).

    nice -n 10 .venv/bin/python bench/search_smollm2.py verbalizer rl propose demos
    nice -n 10 .venv/bin/python bench/search_smollm2.py gradient
    nice -n 10 .venv/bin/python bench/search_smollm2.py headline-demos

Each strategy writes runs/bench-search/<strategy>/ (search.jsonl, best.yaml, report.md,
result.json) and prints one summary line; the settings below are the ones in
bench/RESULTS.md ("## search"). The equivalent CLI call is printed too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from unified_prompt.search import SearchBudget, run_search

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sentiment.yaml"
HEADLINE = ROOT / "examples" / "headline.yaml"

#: name -> (budget in calls, options); the name is the strategy up to a "-". Sized for a
#: shared 2-core CPU (about 1 s per scored prompt under load): a 100-example dev objective
#: and small searches.
SETTINGS: dict[str, tuple[int, dict]] = {
    "verbalizer": (400, {"dev_limit": 100, "probe_per_label": 16, "top_k": 30,
                         "select_by": "accuracy"}),
    "verbalizer-cal": (400, {"dev_limit": 100, "probe_per_label": 16, "top_k": 30,
                             "calibrations": ["none", "batch", "contextual"]}),
    "demos": (600, {"dev_limit": 100, "k": 1, "pool_per_label": 6, "random_sets": 2,
                    "steps": 2}),
    "rl": (800, {"dev_limit": 100, "tokens": 2, "samples": 3, "batch": 12, "check_every": 4,
                 "select_by": "accuracy"}),
    "propose": (700, {"dev_limit": 100, "rounds": 2, "per_round": 3, "select_by": "accuracy"}),
    "gradient": (800, {"dev_limit": 100, "triggers": 2, "batch": 4, "eval_batch": 8,
                       "candidates": 4}),
}
#: The second round (quiet machine, about 10 scored prompts/s): a 400-example dev objective
#: selected by accuracy, each candidate also scored under batch calibration (no further
#: calls), and the full test split.
CAL = {"dev_limit": 400, "select_by": "accuracy", "calibrations": ["none", "batch"]}
RL400 = {**CAL, "tokens": 2, "samples": 4, "batch": 16, "check_every": 8, "position": "prefix"}
SETTINGS.update({
    "verbalizer-400": (1500, {**CAL, "probe_per_label": 32, "top_k": 30}),
    "demos-400": (4000, {**CAL, "k": 1, "pool_per_label": 8, "random_sets": 3, "steps": 4}),
    "gradient-400": (4000, {**CAL, "triggers": 2, "batch": 8, "eval_batch": 16,
                            "candidates": 6, "position": "prefix"}),
    "rl-400": (4000, RL400),
    "propose-400": (2000, {**CAL, "mode": "template", "rounds": 4, "per_round": 4}),
    "rl-400-confirm": (4000, {**RL400, "confirm": 400, "confirm_top": 3}),
    "rl-400-confirm-acc": (4000, {**RL400, "confirm": 400, "confirm_top": 3,
                                  "confirm_by": "accuracy"}),
    "propose-segments-400": (4000, {**CAL, "mode": "segments", "rounds": 8, "per_round": 6,
                                    "proposer": {"max_new_tokens": 16}}),
    # the fourth round: up to 8 words per label from a larger probe, confirmed on dev 400-799
    "verbalizer-many-400": (3000, {**CAL, "probe_per_label": 64, "top_k": 50,
                                   "candidates_per_label": 10, "max_words": 8,
                                   "confirm": 400, "confirm_top": 3}),
})
#: Generation (examples/headline.yaml): a 20-article dev objective, ROUGE-L of 16 generated
#: tokens; sized for the shared 2-core CPU under heavy load (2-6 s per generated headline).
SETTINGS.update({
    "headline-demos": (120, {"dev_limit": 20, "k": 1, "pool_per_label": 6, "random_sets": 1,
                             "steps": 2}),
    "headline-propose": (120, {"dev_limit": 20, "mode": "segments", "rounds": 2,
                               "per_round": 2, "proposer": {"max_new_tokens": 16}}),
})
#: The final test evaluation: the first TEST_LIMIT examples of the fixed test split (the
#: first round, to fit a loaded machine), or all of it (None).
TEST_LIMIT = 400
HEADLINE_TEST_LIMIT = 50


def test_limit(name: str) -> int | None:
    if name.startswith("headline-"):
        return HEADLINE_TEST_LIMIT
    return None if "-400" in name else TEST_LIMIT


def spec_for(name: str) -> Path:
    return HEADLINE if name.startswith("headline-") else SPEC


def cli_line(strategy: str, budget: int, options: dict, out: Path, limit: int | None,
             spec: Path = SPEC) -> str:
    flat = {f"{k}.{sub}" if isinstance(v, dict) else k: (w if isinstance(v, dict) else v)
            for k, v in options.items() for sub, w in (v.items() if isinstance(v, dict)
                                                       else [(None, v)])}
    opts = " ".join(f"-o '{k}={json.dumps(v) if isinstance(v, list) else v}'"
                    for k, v in flat.items())
    sets = f" --set eval.limit={limit}" if limit else ""
    return (f"nice -n 10 unified-prompt search examples/{spec.name} --strategy {strategy} "
            f"--budget {budget}{sets} {opts} --out {out}")


def table(dirs: list[Path]) -> str:
    """RESULTS.md rows from finished search directories (result.json)."""
    metric = json.loads((dirs[0] / "result.json").read_text()).get("metric", "accuracy")
    short = "acc" if metric == "accuracy" else metric
    rows = [f"| strategy | budget | spent (search) | dev {short} original -> best | "
            f"test {short} original -> best (n) | gain | search wall | total wall | best prompt |",
            "|---|---|---|---|---|---|---|---|---|"]
    for d in dirs:
        r = json.loads((d / "result.json").read_text())
        m = r.get("metric", "accuracy")
        best = r["best"]
        shown = best["template"].replace("\n", "\\n")
        if best.get("demonstrations"):
            shown += f" + demos {best['demonstrations'].get('ids') or best['demonstrations']}"
        words = "/".join("+".join(w) for w in best["verbalizer"].values()) or "no label words"
        if best.get("calibration"):
            words += f", calibration {best['calibration']}"
        rows.append(
            f"| {d.name} | {r['budget']} | {r['usage']['search']['calls']:,} calls | "
            f"{r['dev']['original'][m]:.3f} -> {r['dev']['best'][m]:.3f} | "
            f"{r['test']['original'][m]:.4f} -> {r['test']['best'][m]:.4f} "
            f"({r['test']['n']}) | {r['gain_points']:+.2f} | {r['search_seconds']:.0f}s | "
            f"{r['seconds']:.0f}s | `{shown}` ({words}) |")
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--table":  # RESULTS.md rows from result.json
        print(table([Path(x) for x in sys.argv[2:]]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("strategies", nargs="+", choices=sorted(SETTINGS))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-search")
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()
    for name in args.strategies:
        budget, options = SETTINGS[name]
        out = args.out / name
        shutil.rmtree(out, ignore_errors=True)
        strategy = name.split("-")[0]
        limit = test_limit(name)
        spec = spec_for(name)
        strategy = name.removeprefix("headline-").split("-")[0]
        print(cli_line(strategy, budget, options, out, limit, spec), flush=True)
        started = time.perf_counter()
        result = run_search(spec, strategy=strategy, budget=SearchBudget(budget), out=out,
                            backend=args.backend, options=options, progress=False,
                            overrides=[f"eval.limit={limit}"] if limit else None)
        wall = time.perf_counter() - started
        print(result.summary(), flush=True)
        print(json.dumps({"strategy": name, "wall_s": round(wall, 1),
                          "search_s": result.search_seconds, "usage": result.usage,
                          "dev": result.dev, "test": result.test,
                          "gain_points": round(result.gain or 0.0, 2)}), flush=True)


if __name__ == "__main__":
    main()
