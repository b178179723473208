"""Finished runs of one spec compared pair by pair: example by example and step by step.

    comparison = compare_runs(["runs/m/hf", "runs/m/paddle"], Tolerance(prob=1e-3))
    comparison.ok, comparison.pairs[0].same_share, comparison.pairs[0].loss.first_divergence

Predictions are aligned by example id, by (task, id) in a mixture run whose rows carry their
task (only examples both runs predicted count); label
probabilities compared entry by entry; metrics from metrics.json; per-step training
losses from events.jsonl, as relative differences |a - b| / |a|.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from unified_prompt.errors import UserInputError
from unified_prompt.run_record import RunRecord

#: Steps whose loss difference the text summary shows (when the runs trained that far).
SHOWN_STEPS = (1, 2, 3, 10, 20, 30, 50)


@dataclass(frozen=True)
class Tolerance:
    """How far two runs of one spec may differ and still agree; None switches a check off.

    prob: largest |label-probability difference| on any example and label.
    same: least share of examples with the identical prediction.
    metric: largest |difference| of any metric in metrics.json (0.005 = half a point).
    loss: largest relative per-step training-loss difference over the first `loss_steps`
    steps both runs trained (None: all of them). Training in fp32 on two frameworks follows
    one trajectory for a while, then rounding differences grow as in any chaotic
    optimisation (bench/RESULTS.md), hence a window.
    """

    prob: float | None = 1e-3
    same: float | None = 0.99
    metric: float | None = 0.005
    loss: float | None = 1e-3
    loss_steps: int | None = 20

    @classmethod
    def parse(cls, items: Sequence[str] | Mapping[str, Any] | Tolerance | None) -> Tolerance:
        """From KEY=VALUE strings (the CLI's --tolerance) or a mapping; `none` switches a
        check off."""
        if items is None:
            return cls()
        if isinstance(items, Tolerance):
            return items
        pairs: dict[str, Any] = {}
        if isinstance(items, Mapping):
            pairs = dict(items)
        else:
            for item in items:
                key, sep, value = str(item).partition("=")
                if not sep:
                    raise UserInputError(f"--tolerance {item!r}: expected KEY=VALUE "
                                         f"(keys: {', '.join(cls.keys())})")
                pairs[key.strip()] = value.strip()
        known = cls.keys()
        values: dict[str, Any] = {}
        for key, raw in pairs.items():
            if key not in known:
                raise UserInputError(f"tolerance {key!r}: unknown (keys: {', '.join(known)})")
            values[key] = _tolerance_value(key, raw)
        return cls(**values)

    @staticmethod
    def keys() -> list[str]:
        return [f.name for f in fields(Tolerance)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tolerance_value(key: str, raw: Any) -> float | int | None:
    if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "off", "")):
        return None
    try:
        value = int(raw) if key == "loss_steps" else float(raw)
    except (TypeError, ValueError):
        raise UserInputError(f"tolerance {key}={raw!r}: expected a number or none") from None
    if value < 0 or (key == "same" and value > 1) or (key == "loss_steps" and value < 1):
        raise UserInputError(f"tolerance {key}={raw!r}: out of range")
    return value


@dataclass
class LossAgreement:
    """Per-step training losses of two runs (the steps both trained)."""

    steps: int
    relative: dict[int, float]
    max_relative: float
    max_relative_window: float | None
    window: int | None
    first_divergence: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "max_relative": self.max_relative,
                "max_relative_window": self.max_relative_window, "window": self.window,
                "first_divergence": self.first_divergence,
                "relative": {str(k): v for k, v in self.relative.items()}}


@dataclass
class PairComparison:
    """Run `b` against run `a` (the reference)."""

    a: str
    b: str
    task: str
    n_a: int
    n_b: int
    n_common: int
    same: int
    prob_max: float | None
    prob_mean: float | None
    correct_a: int | None
    correct_b: int | None
    metrics: dict[str, dict[str, float]]
    loss: LossAgreement | None
    dev: list[dict[str, Any]]
    tolerance: Tolerance
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def same_share(self) -> float:
        return self.same / self.n_common if self.n_common else 0.0

    def summary(self) -> str:
        verdict = "agree" if self.ok else "DISAGREE"
        lines = [f"{self.b} vs {self.a}: {verdict}",
                 f"  same prediction on {self.same}/{self.n_common} "
                 f"({100 * self.same_share:.2f}%)"
                 + (f"; max |prob diff| {self.prob_max:.2e}, mean {self.prob_mean:.2e}"
                    if self.prob_max is not None else "")
                 + (f"; accuracy {self.correct_a / self.n_common:.4f} vs "
                    f"{self.correct_b / self.n_common:.4f} on these"
                    if self.correct_a is not None and self.n_common else "")]
        if self.metrics:
            lines.append("  metrics: " + "; ".join(
                f"{k} {m['a']:.4f} vs {m['b']:.4f} ({m['delta']:+.4f})"
                for k, m in self.metrics.items()))
        if self.loss is not None:
            lo = self.loss
            shown = [s for s in (*SHOWN_STEPS, max(lo.relative)) if s in lo.relative]
            lines.append(f"  training losses ({lo.steps} steps in common): relative difference "
                         + ", ".join(f"step {s} {lo.relative[s]:.1e}"
                                     for s in dict.fromkeys(shown)))
            window = f"steps 1-{lo.window}" if lo.window else "all steps"
            lines.append(f"  largest: {lo.max_relative_window:.1e} over {window}, "
                         f"{lo.max_relative:.1e} over all; first step beyond "
                         f"{self.tolerance.loss if self.tolerance.loss is not None else '-'}: "
                         f"{lo.first_divergence if lo.first_divergence else 'none'}")
        if self.dev:
            lines.append("  dev at each evaluation: " + "; ".join(
                f"step {d['step']} {d['a']:.4f} vs {d['b']:.4f}" for d in self.dev))
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  beyond tolerance: {f}" for f in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("a", "b", "task", "n_a", "n_b", "n_common",
                                              "same", "prob_max", "prob_mean", "correct_a",
                                              "correct_b", "metrics", "dev", "failures", "notes")}
        out["same_share"] = self.same_share
        out["ok"] = self.ok
        out["loss"] = self.loss.to_dict() if self.loss else None
        return out


@dataclass
class Comparison:
    """Every pair of a set of runs."""

    pairs: list[PairComparison]
    tolerance: Tolerance

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pairs)

    def summary(self) -> str:
        head = (f"{len(self.pairs)} pair(s): " + ("all agree" if self.ok else
                f"{sum(not p.ok for p in self.pairs)} disagree beyond tolerance")
                + f" (tolerance: {_describe(self.tolerance)})")
        return "\n".join([head, *(p.summary() for p in self.pairs)])

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "tolerance": self.tolerance.to_dict(),
                "pairs": [p.to_dict() for p in self.pairs]}


def _describe(tol: Tolerance) -> str:
    return ", ".join(f"{k}={v}" for k, v in tol.to_dict().items() if v is not None) or "none"


# -- the comparison ------------------------------------------------------------------
def loss_agreement(a: Mapping[int, float], b: Mapping[int, float],
                   tol: Tolerance) -> LossAgreement | None:
    steps = sorted(set(a) & set(b))
    if not steps:
        return None
    rel = {s: abs(a[s] - b[s]) / max(abs(a[s]), 1e-12) for s in steps}
    window = [rel[s] for s in steps if tol.loss_steps is None or s <= tol.loss_steps]
    first = next((s for s in steps if tol.loss is not None and rel[s] > tol.loss), None)
    return LossAgreement(len(steps), rel, max(rel.values()), max(window) if window else None,
                         tol.loss_steps, first)


def compare_pair(a: RunRecord, b: RunRecord, tol: Tolerance | None = None) -> PairComparison:
    """Run `b` against run `a`."""
    tol = tol or Tolerance()
    ref, rows = a.by_key(), b.by_key()
    common = [i for i in ref if i in rows]
    notes: list[str] = []
    if a.metrics.get("task") != b.metrics.get("task"):
        raise UserInputError(f"{b.label}: a {b.metrics.get('task')} run cannot be compared with "
                             f"{a.label}'s {a.metrics.get('task')} run")
    if a.metrics.get("split") != b.metrics.get("split"):
        notes.append(f"evaluated on different splits ({a.metrics.get('split')} vs "
                     f"{b.metrics.get('split')})")
    if len(common) < max(len(ref), len(rows)):
        notes.append(f"{len(ref)} vs {len(rows)} predictions; compared on the {len(common)} "
                     "both made")
    same = sum(ref[i]["prediction"] == rows[i]["prediction"] for i in common)
    diffs = [abs(float(ref[i]["scores"][k]) - float(v)) for i in common
             if isinstance(rows[i].get("scores"), dict) and isinstance(ref[i].get("scores"), dict)
             for k, v in rows[i]["scores"].items() if k in ref[i]["scores"]]
    has_correct = bool(common) and all("correct" in ref[i] and "correct" in rows[i]
                                       for i in common)
    metrics = {}
    ma, mb = a.metrics.get("metrics") or {}, b.metrics.get("metrics") or {}
    for name in ma:
        if name in mb:
            metrics[name] = {"a": float(ma[name]), "b": float(mb[name]),
                             "delta": float(mb[name]) - float(ma[name])}
    dev_a, dev_b = {d.step: d for d in a.dev_evals()}, {d.step: d for d in b.dev_evals()}
    metric = a.dev_metric() or b.dev_metric()
    dev = [{"step": s, "a": dev_a[s].metrics[metric], "b": dev_b[s].metrics[metric],
            "metric": metric} for s in sorted(set(dev_a) & set(dev_b))
           if metric and metric in dev_a[s].metrics and metric in dev_b[s].metrics]
    pair = PairComparison(
        a=a.label, b=b.label, task=a.task, n_a=len(ref), n_b=len(rows), n_common=len(common),
        same=same, prob_max=max(diffs) if diffs else None,
        prob_mean=(math.fsum(diffs) / len(diffs)) if diffs else None,
        correct_a=sum(bool(ref[i]["correct"]) for i in common) if has_correct else None,
        correct_b=sum(bool(rows[i]["correct"]) for i in common) if has_correct else None,
        metrics=metrics, loss=loss_agreement(a.step_losses(), b.step_losses(), tol), dev=dev,
        tolerance=tol, notes=notes)
    pair.failures = _failures(pair, tol)
    return pair


def _failures(p: PairComparison, tol: Tolerance) -> list[str]:
    out = []
    if not p.n_common:
        out.append("no example ids in common")
        return out
    if tol.same is not None and p.same_share < tol.same:
        out.append(f"same prediction on {100 * p.same_share:.2f}% < {100 * tol.same:g}%")
    if tol.prob is not None and p.prob_max is not None and p.prob_max > tol.prob:
        out.append(f"max |prob diff| {p.prob_max:.2e} > {tol.prob:g}")
    if tol.metric is not None:
        out += [f"{k} differs by {abs(m['delta']):.4f} > {tol.metric:g}"
                for k, m in p.metrics.items() if abs(m["delta"]) > tol.metric]
    lo = p.loss
    if tol.loss is not None and lo is not None and lo.max_relative_window is not None \
            and lo.max_relative_window > tol.loss:
        window = f"steps 1-{lo.window}" if lo.window else "all steps"
        out.append(f"relative loss difference {lo.max_relative_window:.1e} > {tol.loss:g} over "
                   f"{window} (first at step {lo.first_divergence})")
    return out


def compare_runs(runs: Sequence[str | Path | RunRecord], tolerance: Tolerance | None = None,
                 *, pairs: Sequence[tuple[int, int]] | None = None) -> Comparison:
    """Every pair of `runs` (or the given index pairs), the earlier run the reference."""
    tol = Tolerance.parse(tolerance)
    records = [r if isinstance(r, RunRecord) else RunRecord.load(r) for r in runs]
    if len(records) < 2:
        raise UserInputError("compare needs at least two runs")
    chosen = pairs if pairs is not None else list(itertools.combinations(range(len(records)), 2))
    return Comparison([compare_pair(records[i], records[j], tol) for i, j in chosen], tol)
