"""A search's figure: the dev objective of each candidate against model calls spent,
with the best so far (from search.jsonl's rows: each carries the calls spent when it was
scored)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unified_prompt.figures.run import FOLDER, FigureFile

OBJECTIVE = FigureFile("objective.png", "Dev objective against calls spent")


def objective_points(rows: Sequence[dict[str, Any]], metric: str = "accuracy"
                     ) -> tuple[list[int], list[float], list[int], list[float]]:
    """(calls, value) of each dev-scored candidate, and the best-so-far staircase."""
    calls, values, best_calls, best_values = [], [], [], []
    best = None
    for row in rows:
        if row.get("scope") != "dev" or row.get("cached") or metric not in row:
            continue
        c, v = int(row.get("calls") or 0), float(row[metric])
        calls.append(c)
        values.append(v)
        if best is None or v > best:
            best = v
            best_calls.append(c)
            best_values.append(v)
    if calls and best_calls and best_calls[-1] < max(calls):
        best_calls.append(max(calls))
        best_values.append(best_values[-1])
    return calls, values, best_calls, best_values


def search_section(folder: Path, rows: Sequence[dict[str, Any]], select_by: str = "accuracy"
                   ) -> str:
    """Draw FOLDER/figures/objective.png and return the report.md lines linking it (nothing
    when no candidate was scored on dev)."""
    from unified_prompt.artifacts import atomic_dir
    from unified_prompt.figures import plots

    metric = select_by if select_by in ("accuracy", "margin") else "accuracy"
    calls, values, best_calls, best_values = objective_points(rows, metric)
    if not calls:
        return ""
    try:
        with atomic_dir(Path(folder) / FOLDER) as tmp:
            plots.save_png(plots.objective_figure(calls, values, best_calls, best_values,
                                                  metric), tmp / OBJECTIVE.name)
    except Exception as exc:  # a figure never breaks a finished search
        print(f"warning: search figure not drawn ({type(exc).__name__}: {exc})", file=sys.stderr)
        return ""
    return f"\n## Figures\n\n{OBJECTIVE.link()}\n"
