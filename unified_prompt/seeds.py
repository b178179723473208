"""Multi-seed runs: one experiment run once per seed, then its metrics aggregated.

    result = Experiment.from_yaml("examples/sentiment.yaml").run_seeds([1, 2, 3], out="runs/s")

OUT/seed-<n>/ is a normal run directory for each seed (resumable on its own as today);
OUT/metrics.json holds the contract's fields with every metric's mean over the seeds, plus
its standard deviation and the per-seed values; OUT/report.md is the table of them. A seed
whose run directory finished earlier is reused; an unfinished one continues with resume.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import RunDir, atomic_write_json, atomic_write_text
from unified_prompt.config import ExperimentSpec, build_spec
from unified_prompt.errors import ConfigError, RunDirectoryError, UserInputError
from unified_prompt.result import RunResult

#: The fields every seed shares; the aggregate takes them from the first seed.
SHARED = ("backend", "model", "method", "task", "dataset", "split", "n_examples",
          "trainable_params", "total_params", "template", "calibration", "demonstrations")


def seed_dir_name(seed: int) -> str:
    return f"seed-{seed}"


def parse_seeds(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3] (the CLI's --seeds), with a clear error for anything else."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserInputError(f"--seeds: expected comma-separated integers like 1,2,3 "
                             f"(got {text!r})") from None
    if not seeds:
        raise UserInputError("--seeds: no seeds given")
    return seeds


def spec_for_seed(spec: ExperimentSpec, seed: int) -> ExperimentSpec:
    """The single-seed spec a seed's run directory holds (no seed list; seed = `seed`)."""
    if getattr(spec.finetune, "seed", None) is not None:
        raise ConfigError("finetune.seed pins the training seed, so every seed would train "
                          "the same; drop finetune.seed for a multi-seed run")
    data = spec.model_dump(mode="json", exclude_none=True)
    data.pop("seeds", None)
    data["seed"] = seed
    return build_spec(data)


def seed_specs(spec: ExperimentSpec, seeds: Sequence[int] | None) -> list[ExperimentSpec]:
    chosen = list(seeds) if seeds is not None else list(spec.seeds or [])
    if not chosen:
        raise UserInputError("no seeds: pass seeds (--seeds 1,2,3) or write `seed: [1, 2, 3]`")
    data = spec.model_dump(mode="json", exclude_none=True)
    data["seeds"] = chosen  # validated like the spec's own list (range, no repeats)
    data.pop("seed", None)
    checked = build_spec(data).seeds or []
    return [spec_for_seed(spec, s) for s in checked]


@dataclass
class SeedsResult:
    """A multi-seed run: `metrics` is exactly what OUT/metrics.json holds."""

    metrics: dict[str, Any]
    runs: list[RunResult] = field(default_factory=list)
    out: Path | None = None

    @property
    def scores(self) -> dict[str, float]:
        return dict(self.metrics["metrics"])

    def summary(self) -> str:
        m = self.metrics
        lines = [f"{m['backend']} / {m['model']} / {m['method']} on {m['task']} "
                 f"{m.get('dataset') or ''} {m['split']} (n={m['n_examples']}), "
                 f"{len(m['seeds'])} seeds {m['seeds']}".replace("  ", " ")]
        for name, mean in m["metrics"].items():
            std = m["metrics_std"][name]
            lines.append(f"  {name}={mean:.4f} ± {std:.4f}" if std is not None
                         else f"  {name}={mean:.4f}")
        lines.append(f"  train {m['train_seconds']:.1f}s, eval {m['eval_seconds']:.1f}s "
                     "(all seeds)")
        if self.out:
            lines.append(f"  runs: {self.out}/seed-<n>; aggregate: {self.out}/metrics.json")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "out": str(self.out) if self.out else None}


def aggregate(seeds: Sequence[int], runs: Sequence[RunResult]) -> dict[str, Any]:
    """The contract's fields, each metric's mean (in `metrics`), sample standard deviation
    (ddof=1; null for one seed) and per-seed values, in the order of `seeds`."""
    first = runs[0].metrics
    out: dict[str, Any] = {k: first[k] for k in SHARED if k in first}
    names = list(first["metrics"])
    values = {n: [float(r.metrics["metrics"][n]) for r in runs] for n in names}
    out["seed"] = list(seeds)
    out["seeds"] = list(seeds)
    out["metrics"] = {n: statistics.fmean(v) for n, v in values.items()}
    out["metrics_std"] = {n: statistics.stdev(v) if len(v) > 1 else None
                          for n, v in values.items()}
    out["metrics_per_seed"] = values
    out["std"] = "sample standard deviation (ddof=1) over the seeds"
    out["train_seconds"] = round(sum(r.metrics["train_seconds"] for r in runs), 3)
    out["eval_seconds"] = round(sum(r.metrics["eval_seconds"] for r in runs), 3)
    out["runs"] = {str(s): seed_dir_name(s) for s in seeds}
    return out


def render_seeds_report(name: str | None, metrics: dict[str, Any]) -> str:
    seeds = metrics["seeds"]
    lines = [f"# Multi-seed report: {name or metrics['task']}", "",
             f"{metrics['backend']} / {metrics['model']} / {metrics['method']} on "
             f"{metrics['task']}, split {metrics['split']} (n={metrics['n_examples']}), "
             f"seeds {', '.join(map(str, seeds))}; std is the sample standard deviation.", "",
             "| metric | mean | std | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|---|" + "---|" * len(seeds)]
    for n, mean in metrics["metrics"].items():
        std = metrics["metrics_std"][n]
        per = " | ".join(f"{v:.4f}" for v in metrics["metrics_per_seed"][n])
        lines.append(f"| {n} | {mean:.4f} | {'-' if std is None else f'{std:.4f}'} | {per} |")
    lines += ["", "Each seed's run: " + ", ".join(f"[{d}]({d}/report.md)"
                                                  for d in metrics["runs"].values())]
    return "\n".join(lines) + "\n"


def run_seeds(spec: ExperimentSpec, seeds: Sequence[int] | None, out: Path | None,
              resume: bool, run_one: Callable[[ExperimentSpec, Path | None, bool], RunResult],
              ) -> SeedsResult:
    """Run every seed with `run_one(spec, run_dir, resume)`, then aggregate."""
    specs = seed_specs(spec, seeds)
    if out is not None:
        if out.exists() and not out.is_dir():
            raise RunDirectoryError(f"--out {out} exists and is not a directory")
        if RunDir(out).file(RunDir.CONFIG).exists():
            raise RunDirectoryError(f"--out {out} holds a single-seed run; choose another "
                                    "folder for a multi-seed run")
    runs = []
    for s in specs:
        run_dir = out / seed_dir_name(s.seed) if out is not None else None
        finished = run_dir is not None and RunDir(run_dir).finished
        # a finished seed is reused (its spec must match, as on --resume)
        runs.append(run_one(s, run_dir, resume or finished))
    metrics = aggregate([s.seed for s in specs], runs)
    if out is not None:
        atomic_write_text(out / RunDir.REPORT, render_seeds_report(spec.name, metrics))
        atomic_write_json(out / RunDir.METRICS, metrics)
    return SeedsResult(metrics, runs, out)
