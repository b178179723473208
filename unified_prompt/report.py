"""A run's report.md: the run's facts, metrics, template, training and first predictions,
rendered from its RunResult."""

from __future__ import annotations

from unified_prompt.config import ExperimentSpec
from unified_prompt.result import RunResult


def render_report(result: RunResult, spec: ExperimentSpec) -> str:
    m = result.metrics
    lines = [f"# Run report: {spec.name or m['task']}", "",
             "| | |", "|---|---|"]
    for key in ("backend", "model", "method", "task", "dataset", "split", "n_examples", "seed",
                "trainable_params", "total_params", "train_seconds", "eval_seconds",
                "peak_rss_mb", "calibration", "demonstrations"):
        if m.get(key) is not None:
            lines.append(f"| {key} | {m[key]} |")
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in m["metrics"].items()]
    if m.get("tasks"):  # a mixture (unified_prompt.mixture): the headline is the tasks' mean
        names = list(m["metrics"])
        first = next(iter(m["tasks"]))
        lines += ["", "## Tasks", "", "The metrics above are the mean over these tasks; the "
                  f"figures show the first task ({first}).", "",
                  "| task | weight | n_examples | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        lines += [f"| {t} | {b['weight']} | {b['n_examples']} | "
                  + " | ".join(f"{b['metrics'][n]:.4f}" for n in names) + " |"
                  for t, b in m["tasks"].items()]
    lines += ["", "## Template", "", "```", m.get("template", ""), "```"]
    if m.get("training"):
        lines += ["", "## Training", ""] + [f"- {k}: {v}" for k, v in m["training"].items()]
    if m.get("usage"):
        lines += ["", "## Usage", ""] + [f"- {k}: {v}" for k, v in m["usage"].items()]
    lines += ["", "## First predictions", "", "| id | gold | prediction |", "|---|---|---|"]
    for row in result.predictions[:8]:
        gold = row.get("label", row.get("target", "")) if "answers" not in row else \
            "; ".join(map(str, row["answers"]))
        lines.append(f"| {row['id']} | {str(gold)[:60]} | {str(row['prediction'])[:60]} |")
    return "\n".join(lines) + "\n"
