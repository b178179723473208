"""The figures themselves, drawn with matplotlib's object API on the Agg canvas.

No pyplot: a Figure is built, saved and dropped, so nothing global (the backend, open
figures) changes in the caller's process, and the code runs in threads and without a
display. Each function takes plain numbers and returns a Figure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Inches at DPI: every figure is WIDTH x HEIGHT pixels (the tests decode them to check).
SIZE = (7.0, 4.0)
WIDE = (7.0, 4.8)
DPI = 100


def _figure(size: tuple[float, float] = SIZE, right: float = 0.96) -> Any:
    """Fixed margins: a layout engine would fit them better and take twice the drawing time,
    which every run (and test) pays."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    fig.subplots_adjust(left=0.1, right=right, bottom=0.13, top=0.9)
    return fig


def save_png(fig: Any, path: Path) -> Path:
    """Write `fig` as a PNG at `path` atomically (a temporary name, then a rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def training_figure(losses: Mapping[int, float], lrs: Mapping[int, float]) -> Any:
    """Training loss by step (left axis) and the learning rate (right axis)."""
    fig = _figure(right=0.86)
    ax = fig.add_subplot()
    steps = list(losses)
    ax.plot(steps, list(losses.values()), color="tab:blue", linewidth=1.2, label="loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(alpha=0.3)
    if lrs:
        twin = ax.twinx()
        twin.plot(list(lrs), list(lrs.values()), color="tab:orange", linewidth=1.0,
                  linestyle="--", label="learning rate")
        twin.set_ylabel("learning rate", color="tab:orange")
        twin.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_title("Training loss and learning rate")
    return fig


def dev_figure(steps: Sequence[int], values: Sequence[float], metric: str,
               kept: int | None) -> Any:
    """The dev metric at each evaluation; the kept checkpoint ringed."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(steps, values, marker="o", color="tab:green", linewidth=1.2, label=f"dev {metric}")
    if kept is not None and kept in steps:
        value = values[list(steps).index(kept)]
        ax.scatter([kept], [value], s=180, facecolors="none", edgecolors="tab:red",
                   linewidths=2, zorder=3, label=f"kept: step {kept}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"dev {metric}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(f"Dev {metric} at each evaluation")
    return fig


def confusion_figure(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Any:
    """Counts per (gold, predicted) label, rows normalised for the colour."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    side = min(8.0, 3.0 + 0.5 * n)
    fig = _figure((side + 1.2, side), right=0.86)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the gold label's examples")
    ax.set_xticks(range(n), labels=list(labels), rotation=45 if n > 4 else 0, ha="right"
                  if n > 4 else "center")
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_title("Confusion matrix")
    return fig


def per_label_figure(labels: Sequence[str], precision: Sequence[float],
                     recall: Sequence[float], f1: Sequence[float]) -> Any:
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    width = 0.27
    for k, (name, values) in enumerate((("precision", precision), ("recall", recall),
                                        ("F1", f1))):
        ax.bar(x + (k - 1) * width, values, width, label=name)
    ax.set_xticks(x, labels=list(labels), rotation=45 if len(labels) > 4 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Per-label precision, recall and F1")
    return fig


def reliability_figure(confidence: Sequence[float], accuracy: Sequence[float],
                       counts: Sequence[int], ece: float) -> Any:
    """Accuracy against confidence per bin (the diagonal is perfect calibration)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    sizes = [20 + 180 * c / max(max(counts), 1) for c in counts]
    ax.plot(confidence, accuracy, color="tab:purple", linewidth=1.2)
    ax.scatter(confidence, accuracy, s=sizes, color="tab:purple", zorder=3,
               label="bins (area: examples)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (probability of the predicted label)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(f"Reliability diagram (ECE {ece:.3f})")
    return fig


def overlay_figure(series: Mapping[str, Mapping[int, float]], ylabel: str, title: str,
                   markers: bool = False) -> Any:
    """One line per run, over optimizer steps (loss curves, dev curves)."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, points in series.items():
        ax.plot(list(points), list(points.values()), linewidth=1.2, label=name,
                marker="o" if markers else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    return fig


def metrics_figure(runs: Sequence[str], metrics: Mapping[str, Sequence[float | None]]) -> Any:
    """Grouped bars: each metric for each run."""
    import numpy as np

    fig = _figure(WIDE)
    fig.subplots_adjust(bottom=0.2 if len(runs) > 3 else 0.1)
    ax = fig.add_subplot()
    x = np.arange(len(runs))
    width = 0.8 / max(1, len(metrics))
    for k, (name, values) in enumerate(metrics.items()):
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(x + (k - (len(metrics) - 1) / 2) * width, heights, width, label=name)
        ax.bar_label(bars, labels=[f"{v:.3f}" if v is not None else "" for v in values],
                     fontsize="x-small", padding=2)
    ax.set_xticks(x, labels=list(runs), rotation=20 if len(runs) > 3 else 0, ha="right"
                  if len(runs) > 3 else "center")
    ax.set_ylabel("value")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Metrics by run")
    return fig


def objective_figure(calls: Sequence[int], values: Sequence[float],
                     best_calls: Sequence[int], best_values: Sequence[float],
                     metric: str) -> Any:
    """A search's dev objective of each candidate against calls spent, and the best so far."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(calls, values, s=14, alpha=0.6, color="tab:blue", label="candidate (dev)")
    ax.step(best_calls, best_values, where="post", color="tab:red", linewidth=1.5,
            label="best so far")
    ax.set_xlabel("model calls spent")
    ax.set_ylabel(f"dev {metric}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"Search: dev {metric} against calls spent")
    return fig
