"""One page comparing several finished runs: metrics, sizes and walls in a table, the
settings that differ between them, their loss and dev curves overlaid, and (from
`compare` / `matrix`) how closely they agree.

    unified-prompt report runs/zs runs/pt runs/lora runs/hosted --out runs/page

Written as OUT/report.md with its figures in OUT/figures/; without OUT, the markdown
alone is printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_prompt.artifacts import atomic_write_text, flat_keys
from unified_prompt.run_record import RunRecord

if TYPE_CHECKING:
    from unified_prompt.figures.run import FigureFile
    from unified_prompt.portability.compare import Comparison

FIGURES = "figures"
#: Spec keys that say which run is which without being a setting worth a column.
_NOT_SETTINGS = ("backend.options", "eval.adapter", "name")


def differing_settings(records: Sequence[RunRecord]) -> dict[str, list[Any]]:
    """Spec keys whose values differ between the runs (a missing key shows as None)."""
    flat = [flat_keys(r.spec_data() or {}) for r in records]
    keys = sorted(set().union(*flat))
    out = {}
    for key in keys:
        if any(key == p or key.startswith(p + ".") for p in _NOT_SETTINGS):
            continue
        values = [f.get(key) for f in flat]
        if any(v != values[0] for v in values):
            out[key] = values
    return out


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", "\\n")


def _metric_names(records: Sequence[RunRecord]) -> list[str]:
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r.metrics.get("metrics") or {}))
    return list(names)


def write_report_figures(records: Sequence[RunRecord], folder: Path) -> list[FigureFile]:
    """The overlaid figures the runs have data for, into `folder` (replaced whole)."""
    from unified_prompt.figures import plots
    from unified_prompt.figures.run import FigureFile, write_figures

    drawn: list[tuple[FigureFile, Any]] = []
    names = _metric_names(records)
    if names:
        drawn.append((FigureFile("metrics.png", "Metrics by run"), lambda: plots.metrics_figure(
            [r.label for r in records],
            {n: [(r.metrics.get("metrics") or {}).get(n) for r in records] for n in names})))
    losses = {r.label: r.step_losses() for r in records}
    losses = {k: v for k, v in losses.items() if v}
    if losses:
        drawn.append((FigureFile("loss.png", "Training loss by step, every run"),
                      lambda: plots.overlay_figure(losses, "training loss",
                                                   "Training loss by step")))
    dev: dict[str, dict[int, float]] = {}
    metric = next((r.dev_metric() for r in records if r.dev_metric()), None)
    for r in records:
        points = {e.step: float(e.metrics[metric]) for e in r.dev_evals()
                  if metric and metric in e.metrics}
        if points:
            dev[r.label] = points
    if dev and metric:
        drawn.append((FigureFile("dev.png", f"Dev {metric} at each evaluation, every run"),
                      lambda: plots.overlay_figure(dev, f"dev {metric}",
                                                   f"Dev {metric} at each evaluation",
                                                   markers=True)))
    return write_figures(folder, drawn)


def render_runs_report(records: Sequence[RunRecord], *, figures: Sequence[FigureFile] = (),
                       comparison: Comparison | None = None, title: str = "Runs",
                       notes: Sequence[str] = ()) -> str:
    names = _metric_names(records)
    lines = [f"# {title}", "", "## Runs", "",
             "| run | backend | model | method | split | n | " + " | ".join(names)
             + " | trainable params | train s | eval s | peak RSS MB |",
             "|---|---|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|"]
    for r in records:
        m = r.metrics
        scores = m.get("metrics") or {}
        lines.append(" | ".join([
            f"| {_cell(r.label)}", _cell(m.get("backend")), _cell(m.get("model")),
            _cell(m.get("method")), _cell(m.get("split")), _cell(m.get("n_examples")),
            *(_cell(scores.get(n)) for n in names), _cell(m.get("trainable_params")),
            _cell(m.get("train_seconds"), 1), _cell(m.get("eval_seconds"), 1),
            _cell(m.get("peak_rss_mb"), 0)]) + " |")
    lines += ["", "Run folders: " + ", ".join(f"`{r.label}` = `{r.path}`" for r in records
                                                if r.path is not None and r.label != str(r.path))]
    if lines[-1] == "Run folders: ":
        lines.pop()
    settings = differing_settings(records)
    if settings:
        lines += ["", "## Settings that differ", "",
                  "| setting | " + " | ".join(_cell(r.label) for r in records) + " |",
                  "|---|" + "---|" * len(records)]
        lines += [f"| {key} | " + " | ".join(_cell(v) for v in values) + " |"
                  for key, values in settings.items()]
    if comparison is not None:
        lines += ["", *_agreement_section(comparison)]
    if figures:
        lines += ["", "## Figures", ""]
        for f in figures:
            lines += [f.link(FIGURES), ""]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines).rstrip("\n") + "\n"


def _agreement_section(comparison: Comparison) -> list[str]:
    tol = comparison.tolerance
    lines = ["## Agreement", "",
             "Run b against run a, example by example (ids both predicted) and step by step "
             "(training losses). Tolerance: "
             + ", ".join(f"{k}={v}" for k, v in tol.to_dict().items() if v is not None) + ".",
             "", "| a | b | same prediction | max \\|Δp\\| | mean \\|Δp\\| | metric Δ | "
             "loss: max rel. (window) | first step beyond | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in comparison.pairs:
        deltas = ", ".join(f"{k} {m['delta']:+.4f}" for k, m in p.metrics.items()) or "–"
        lo = p.loss
        loss = (f"{lo.max_relative_window:.1e} (1-{lo.window})" if lo and lo.window else
                f"{lo.max_relative_window:.1e} (all)" if lo else "–")
        first = (str(lo.first_divergence) if lo and lo.first_divergence else
                 "none" if lo else "–")
        lines.append(f"| {p.a} | {p.b} | {p.same}/{p.n_common} | {prob(p.prob_max)} | "
                     f"{prob(p.prob_mean)} | {deltas} | {loss} | {first} | "
                     f"{'agree' if p.ok else 'DISAGREE'} |")
    lines += ["", "```", comparison.summary(), "```"]
    return lines


def prob(value: float | None) -> str:
    return f"{value:.2e}" if value is not None else "–"


def write_runs_report(records: Sequence[RunRecord], out: str | Path, *,
                      comparison: Comparison | None = None, title: str = "Runs",
                      notes: Sequence[str] = ()) -> Path:
    """OUT/report.md and OUT/figures/ for `records`; returns the report's path."""
    out = Path(out)
    figures = write_report_figures(records, out / FIGURES)
    path = out / "report.md"
    atomic_write_text(path, render_runs_report(records, figures=figures, comparison=comparison,
                                               title=title, notes=notes))
    return path
