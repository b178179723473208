"""A run directory read back as numbers: its metrics, predictions and event stream.

One reader for everything that looks at finished runs (comparisons across frameworks, run
figures, the multi-run report), so they agree on what a run's loss curve or kept
checkpoint is. A resumed run logs the steps it redid again; the last line of a step wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import RunDir, read_json
from unified_prompt.errors import UserInputError


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines()
            if x.strip()]


@dataclass
class DevEval:
    step: int
    metrics: dict[str, float]


@dataclass
class RunRecord:
    """What a run wrote; `metrics` is metrics.json ({} while the run is still writing it)."""

    path: Path | None
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    label: str = ""

    @classmethod
    def load(cls, path: str | Path, label: str | None = None) -> RunRecord:
        """A finished run; a folder without metrics.json is refused by name."""
        run = RunDir(path)
        if not run.path.is_dir():
            raise UserInputError(f"{path}: no such run directory")
        if not run.finished:
            raise UserInputError(f"{path}: not a finished run (no {RunDir.METRICS})")
        preds = run.file(RunDir.PREDICTIONS)
        return cls(run.path, read_json(run.file(RunDir.METRICS)),
                   read_jsonl(preds) if preds.exists() else [], run.events(),
                   label if label is not None else str(path))

    # -- the event stream ------------------------------------------------------------
    def _last_per_step(self, kind: str, **match: Any) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for e in self.events:
            if e.get("type") == kind and e.get("step") is not None \
                    and all(e.get(k) == v for k, v in match.items()):
                out[int(e["step"])] = e
        return dict(sorted(out.items()))

    def step_losses(self) -> dict[int, float]:
        """The training loss of each optimizer step."""
        return {s: float(e["loss"]) for s, e in self._last_per_step("step").items()}

    def step_lrs(self) -> dict[int, float]:
        return {s: float(e["lr"]) for s, e in self._last_per_step("step").items()
                if e.get("lr") is not None}

    def dev_evals(self) -> list[DevEval]:
        """Each dev evaluation during training, in step order."""
        return [DevEval(s, dict(e.get("metrics") or {}))
                for s, e in self._last_per_step("eval", split="dev").items()]

    def kept_step(self) -> int | None:
        """The step whose weights the run kept: the best dev evaluation (keep_best), else
        the last step trained."""
        kept = [e for e in self.events if e.get("type") == "keep_best"]
        if kept and kept[-1].get("step") is not None:
            return int(kept[-1]["step"])
        steps = self.step_losses()
        return max(steps) if steps else None

    def dev_metric(self) -> str | None:
        """The metric dev evaluations choose the kept weights by."""
        kept = [e for e in self.events if e.get("type") == "keep_best"]
        if kept and kept[-1].get("metric"):
            return str(kept[-1]["metric"])
        evals = self.dev_evals()
        if not evals:
            return None
        names = list(evals[-1].metrics)
        for preferred in ("accuracy", "rouge_l"):
            if preferred in names:
                return preferred
        return names[0] if names else None

    # -- predictions -----------------------------------------------------------------
    @property
    def task(self) -> str:
        return str(self.metrics.get("task") or ("classification" if any(
            "scores" in r for r in self.predictions) else "generation"))

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r for r in self.predictions}

    def by_key(self) -> dict[tuple[str | None, str], dict[str, Any]]:
        """Rows by (task, id): a mixture run's tasks may reuse an id (rows without a
        `task` key by (None, id))."""
        return {(r.get("task"), str(r["id"])): r for r in self.predictions}

    def labels(self) -> list[str]:
        """Label names in the verbalizer's order (the order of the probabilities)."""
        for row in self.predictions:
            if isinstance(row.get("scores"), dict):
                return list(row["scores"])
        return []

    def spec_data(self) -> dict[str, Any] | None:
        """The resolved spec the run used (config.yaml), when the folder has one."""
        if self.path is None or not (self.path / RunDir.CONFIG).exists():
            return None
        import yaml

        return yaml.safe_load((self.path / RunDir.CONFIG).read_text(encoding="utf-8"))
