"""The figures of one run, drawn from what the run wrote (events, predictions, metrics).

    training.png     training loss and learning rate by step       (when it trained)
    dev.png          dev metric at each evaluation, kept step ringed (when it evaluated on dev)
    confusion.png    confusion matrix                               (classification)
    per_label.png    per-label precision / recall / F1              (classification)
    reliability.png  reliability diagram from the label probabilities (classification)

Nothing is drawn for what did not happen. The numbers behind the classification figures
also go into report.md as tables, so they can be read (and checked) without the pictures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import RunDir, atomic_dir
from unified_prompt.run_record import RunRecord

FOLDER = "figures"
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class FigureFile:
    name: str
    title: str

    def link(self, prefix: str = FOLDER) -> str:
        return f"![{self.title}]({prefix}/{self.name})"


def write_figures(folder: Path, drawn: list[tuple[FigureFile, Callable[[], Any]]]
                  ) -> list[FigureFile]:
    """Draw each figure into `folder`, which appears whole or not at all (nothing drawn:
    no folder)."""
    from unified_prompt.figures import plots

    if not drawn:
        return []
    with atomic_dir(folder) as tmp:
        for fig_file, draw in drawn:
            plots.save_png(draw(), tmp / fig_file.name)
    return [f for f, _ in drawn]


@dataclass(frozen=True)
class LabelTable:
    """Classification numbers from predictions.jsonl (gold label vs prediction)."""

    labels: list[str]
    confusion: list[list[int]]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]


@dataclass(frozen=True)
class Reliability:
    """Top-label confidence against accuracy in equal-width bins (the non-empty ones)."""

    confidence: list[float]
    accuracy: list[float]
    counts: list[int]
    ece: float
    bins: int


def label_table(record: RunRecord) -> LabelTable | None:
    rows = record.predictions
    labels = record.labels()
    if record.task != "classification" or not rows or not labels \
            or any(r.get("label") is None for r in rows):
        return None
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    gold = [str(r["label"]) for r in rows]
    pred = [str(r["prediction"]) for r in rows]
    matrix = confusion_matrix(gold, pred, labels=labels)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return LabelTable(labels, matrix.tolist(), [float(x) for x in p], [float(x) for x in r],
                      [float(x) for x in f], [int(x) for x in s])


def reliability(record: RunRecord, bins: int = RELIABILITY_BINS) -> Reliability | None:
    """Calibration of the label probabilities: in each confidence bin, the mean probability
    of the predicted label against the share predicted correctly; ECE is the
    example-weighted mean gap."""
    import numpy as np

    rows = [r for r in record.predictions if isinstance(r.get("scores"), dict)
            and r.get("label") is not None]
    if record.task != "classification" or not rows:
        return None
    conf = np.array([max(float(v) for v in r["scores"].values()) for r in rows])
    correct = np.array([str(r["label"]) == str(r["prediction"]) for r in rows], dtype=float)
    index = np.clip((conf * bins).astype(int), 0, bins - 1)
    out_c, out_a, out_n = [], [], []
    ece = 0.0
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        if not n:
            continue
        c, a = float(conf[inside].mean()), float(correct[inside].mean())
        out_c.append(c)
        out_a.append(a)
        out_n.append(n)
        ece += n / len(rows) * abs(a - c)
    return Reliability(out_c, out_a, out_n, ece, bins)


def write_run_figures(folder: Path, record: RunRecord) -> list[FigureFile]:
    """Draw every figure `record` has data for into `folder` (replaced whole, atomically);
    returns them in report order."""
    from unified_prompt.figures import plots

    drawn: list[tuple[FigureFile, Any]] = []
    losses = record.step_losses()
    if losses:
        drawn.append((FigureFile("training.png", "Training loss and learning rate by step"),
                      lambda: plots.training_figure(losses, record.step_lrs())))
    evals = record.dev_evals()
    metric = record.dev_metric()
    if evals and metric:
        points = [(e.step, float(e.metrics[metric])) for e in evals if metric in e.metrics]
        if points:
            drawn.append((FigureFile("dev.png", f"Dev {metric} at each evaluation"),
                          lambda: plots.dev_figure([s for s, _ in points],
                                                   [v for _, v in points], metric,
                                                   record.kept_step())))
    table = label_table(record)
    if table is not None:
        drawn.append((FigureFile("confusion.png", "Confusion matrix"),
                      lambda: plots.confusion_figure(table.labels, table.confusion)))
        drawn.append((FigureFile("per_label.png", "Per-label precision, recall and F1"),
                      lambda: plots.per_label_figure(table.labels, table.precision,
                                                     table.recall, table.f1)))
    rel = reliability(record)
    if rel is not None:
        drawn.append((FigureFile("reliability.png", "Reliability diagram"),
                      lambda: plots.reliability_figure(rel.confidence, rel.accuracy,
                                                       rel.counts, rel.ece)))
    return write_figures(folder, drawn)


def run_section(record: RunRecord, figures: list[FigureFile]) -> str:
    """report.md's figures and classification tables."""
    lines: list[str] = []
    if figures:
        lines += ["", "## Figures"]
        for f in figures:
            lines += ["", f.link()]
    table = label_table(record)
    if table is not None:
        lines += ["", f"## Per label ({record.metrics.get('split', 'eval')}, "
                      f"n={sum(table.support)})", "",
                  "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {lab} | {p:.4f} | {r:.4f} | {f:.4f} | {s} |" for lab, p, r, f, s in
                  zip(table.labels, table.precision, table.recall, table.f1, table.support,
                      strict=True)]
        lines += ["", "## Confusion matrix", "", "Rows: gold label; columns: predicted.", "",
                  "| gold \\ predicted | " + " | ".join(table.labels) + " |",
                  "|---|" + "---|" * len(table.labels)]
        lines += [f"| {lab} | " + " | ".join(str(c) for c in row) + " |"
                  for lab, row in zip(table.labels, table.confusion, strict=True)]
    rel = reliability(record)
    if rel is not None:
        lines += ["", "## Calibration", "",
                  f"Expected calibration error: {rel.ece:.4f} ({rel.bins} equal-width bins of "
                  "the predicted label's probability).", "",
                  "| confidence | accuracy | examples |", "|---|---|---|"]
        lines += [f"| {c:.3f} | {a:.3f} | {n} |"
                  for c, a, n in zip(rel.confidence, rel.accuracy, rel.counts, strict=True)]
    return "\n".join(lines) + ("\n" if lines else "")


def add_run_figures(run_path: Path, metrics: dict[str, Any], rows: list[dict[str, Any]],
                    warn: Callable[..., None]) -> str:
    """The runner's hook: draw the run's figures into RUN/figures and return the markdown
    that links them. A failure to draw is a warning in events.jsonl, never a failed run."""
    run = RunDir(run_path)
    record = RunRecord(run.path, metrics, rows, run.events())
    try:
        figures = write_run_figures(run.file(FOLDER), record)
    except Exception as exc:  # figures must never break a finished run
        warn("warning", source="figures", message=f"{type(exc).__name__}: {exc}")
        figures = []
    return run_section(record, figures)
