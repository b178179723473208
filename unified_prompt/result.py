"""What a run produced (`RunResult`, exactly what metrics.json holds, plus predictions),
read back from a finished run directory (`load_result`), and the resource figures a run
records beside its metrics."""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import RunDir, read_json
from unified_prompt.errors import UnifiedPromptError


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)



@dataclass
class RunResult:
    """What a run produced; `metrics` is exactly what metrics.json holds."""

    metrics: dict[str, Any]
    predictions: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path | None = None
    plan: dict[str, Any] | None = None

    @property
    def scores(self) -> dict[str, float]:
        return dict(self.metrics.get("metrics", {}))

    def summary(self) -> str:
        m = self.metrics
        if self.plan is not None:
            lines = [f"dry run: {m.get('backend')} / {m.get('model')} / {m.get('method')}"]
            lines += [f"  {k}: {v}" for k, v in self.plan.items()]
            return "\n".join(lines)
        scores = "  ".join(f"{k}={v:.4f}" for k, v in self.scores.items())
        lines = [f"{m['backend']} / {m['model']} / {m['method']} on {m['task']} "
                 f"{m.get('dataset') or ''} {m['split']} (n={m['n_examples']})".replace("  ", " "),
                 f"  {scores}",
                 f"  trainable {m['trainable_params']:,} of {m['total_params'] or 0:,} params; "
                 f"train {m['train_seconds']:.1f}s, eval {m['eval_seconds']:.1f}s; "
                 f"peak RSS {m.get('peak_rss_mb', 0):.0f} MB"]
        if m.get("usage"):
            lines.append("  usage: " + ", ".join(f"{k}={v}" for k, v in m["usage"].items()))
        if self.run_dir:
            lines.append(f"  run directory: {self.run_dir}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "run_dir": str(self.run_dir) if self.run_dir else None}


def load_result(run_dir: str | Path) -> RunResult:
    """A finished run read back from its directory."""
    run = RunDir(run_dir)
    if not run.finished:
        raise UnifiedPromptError(f"{run_dir}: no metrics.json; the run did not finish")
    metrics = read_json(run.file(RunDir.METRICS))
    rows_path = run.file(RunDir.PREDICTIONS)
    rows = [json.loads(x) for x in rows_path.read_text(encoding="utf-8").splitlines() if x] \
        if rows_path.exists() else []
    return RunResult(metrics, rows, run.path)
