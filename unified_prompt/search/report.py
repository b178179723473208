"""What a search produced, as an object, a summary, best.yaml and report.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from unified_prompt.artifacts import spec_data
from unified_prompt.search.objective import percent

if TYPE_CHECKING:
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.search.candidate import Candidate


@dataclass
class SearchResult:
    """`test` holds test metrics of the original and the best prompt (computed once each,
    after the search); `dev` their dev-objective scores; `usage` calls, tokens and cost per
    phase ("search" is held to the budget, "final" is the test evaluation)."""

    strategy: str
    backend: str
    model: str
    seed: int
    best: Candidate | None
    best_spec: ExperimentSpec | None
    dev: dict[str, Any]
    test: dict[str, Any]
    usage: dict[str, Any]
    budget: str
    candidates: int
    stopped: str
    search_seconds: float
    seconds: float
    peak_rss_mb: float
    out: Path | None
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    extras: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    metric: str = "accuracy"  # what dev and test lead with: accuracy, or the task's metric

    @classmethod
    def planned(cls, plan: dict[str, Any]) -> SearchResult:
        return cls(plan["strategy"], plan["backend"], plan["model"], plan["seed"], None, None,
                   {}, {}, {}, plan["budget"], 0, "dry-run", 0.0, 0.0, 0.0, None, plan=plan)

    @property
    def gain(self) -> float | None:
        """Best minus original on test (accuracy, or the task's metric), in points."""
        if "best" not in self.test:
            return None
        m = self.metric
        return percent(m, self.test["best"][m]) - percent(m, self.test["original"][m])

    def summary(self) -> str:
        if self.plan is not None:
            return render_plan(self.plan)
        t, m = self.test, self.metric
        lines = [f"search {self.strategy} on {self.backend} / {self.model} "
                 f"(seed {self.seed}, budget {self.budget}; stopped: {self.stopped})",
                 f"  candidates scored: {self.candidates}; "
                 f"spent: {_spend(self.usage.get('search', {}))} (search), "
                 f"{_spend(self.usage.get('final', {}))} (final test)",
                 f"  dev {m}:  original {self.dev['original'][m]:.4f}  "
                 f"best {self.dev['best'][m]:.4f}  (n={self.dev['best']['n']})",
                 f"  test {m}: original {t['original'][m]:.4f}  "
                 f"best {t['best'][m]:.4f}  ({self.gain:+.1f} points, n={t['n']})"]
        if self.best is not None:
            lines.append(f"  best template: {self.best.template!r}")
            if self.best.words:
                lines.append(f"  best label words: {self.best.verbalizer}")
            if self.best.demos is not None:
                lines.append(f"  best demonstrations: {self.best.demos.to_dict()}")
            if self.best.calibration is not None:
                lines.append(f"  best calibration: {self.best.calibration}")
        lines.append(f"  wall time {self.seconds:.1f}s (search {self.search_seconds:.1f}s); "
                     f"peak RSS {self.peak_rss_mb:.0f} MB")
        if self.out is not None:
            lines.append(f"  best spec: {self.out / 'best.yaml'} (unified-prompt run it as it is)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        if self.plan is not None:
            return {"plan": self.plan}
        return {"strategy": self.strategy, "backend": self.backend, "model": self.model,
                "seed": self.seed, "budget": self.budget, "stopped": self.stopped,
                "best": self.best.to_dict() if self.best else None, "dev": self.dev,
                "test": self.test, "gain_points": None if self.gain is None else round(self.gain, 2),
                "usage": self.usage, "candidates": self.candidates,
                "search_seconds": self.search_seconds, "seconds": self.seconds,
                "peak_rss_mb": self.peak_rss_mb, "extras": self.extras, "metric": self.metric}


def _spend(d: dict[str, Any]) -> str:
    if not d:
        return "0 calls"
    cost = f", ${d['cost_usd']:.4f}" if d.get("cost_usd") else ""
    return f"{d['calls']:,} calls, ~{d['tokens']:,} tokens{cost}"


def render_plan(plan: dict[str, Any]) -> str:
    lines = [f"search plan: {plan['strategy']} on {plan['backend']} / {plan['model']} "
             f"(seed {plan['seed']})",
             f"  dev objective: {plan['dev_examples']} examples; final test: "
             f"{plan['test_examples']} examples x 2 prompts (original, best), once at the end",
             f"  budget: {plan['budget']} (needs at least {plan['min_calls']:,})"]
    lines += [f"  - {step}" for step in plan["steps"]]
    lines += [f"  search, at most: {_spend(plan['search_at_most'])}",
              f"  final test:      {_spend(plan['final_test'])}"]
    if plan.get("confirm_examples"):
        lines.append(f"  confirm:         {_spend(plan['confirm_at_most'])} (the original and "
                     f"the best candidates on the next {plan['confirm_examples']} dev examples)")
    lines += [
              f"  total, at most:  {_spend(plan['total_at_most'])}"]
    if plan.get("refused"):
        lines.append("  REFUSED: " + "; ".join(plan["refused"]))
    else:
        lines.append("  fits the budget")
    return "\n".join(lines)


def best_yaml(result: SearchResult) -> str:
    assert result.best_spec is not None
    data = spec_data(result.best_spec)
    t, m = result.test, result.metric
    head = [f"# Found by: unified-prompt search --strategy {result.strategy} (seed {result.seed}, "
            f"budget {result.budget})",
            f"# dev {m} {result.dev['best'][m]:.4f} (original "
            f"{result.dev['original'][m]:.4f}); test {m} "
            f"{t['best'][m]:.4f} (original {t['original'][m]:.4f}, n={t['n']})",
            "# Run it as it is: unified-prompt run best.yaml"]
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True,
                                                   width=100)


def render_report(result: SearchResult) -> str:
    t, d, m = result.test, result.dev, result.metric
    lines = [f"# Search report: {result.strategy}", "", "| | |", "|---|---|",
             f"| backend / model | {result.backend} / {result.model} |",
             f"| seed | {result.seed} |", f"| budget | {result.budget} |",
             f"| stopped | {result.stopped} |",
             f"| spent (search) | {_spend(result.usage.get('search', {}))} |",
             f"| spent (final test) | {_spend(result.usage.get('final', {}))} |",
             *([f"| spent (confirm) | {_spend(result.usage['confirm'])} |"]
               if "confirm" in result.usage else []),
             f"| candidates scored | {result.candidates} |",
             f"| wall time | {result.seconds:.1f}s (search {result.search_seconds:.1f}s) |", "",
             f"## {m.capitalize() if m == 'accuracy' else m}", "", "| prompt | dev | test |",
             "|---|---|---|",
             f"| original | {d['original'][m]:.4f} | {t['original'][m]:.4f} |",
             f"| best | {d['best'][m]:.4f} | {t['best'][m]:.4f} |", "",
             f"Dev: the first {d['best']['n']} dev examples (the objective). Test: {t['n']} "
             "examples, evaluated once for each prompt after the search.", "",
             "## Best prompt", "", "```", result.best.template if result.best else "", "```", ""]
    if result.best is not None and result.best.words:
        lines.append(f"Label words: `{result.best.verbalizer}`")
    if result.best is not None and result.best.demos is not None:
        lines.append(f"Demonstrations: `{result.best.demos.to_dict()}`")
    if result.best is not None and result.best.calibration is not None:
        lines.append(f"Calibration: `{result.best.calibration}`")
    dev_rows = [r for r in result.rows if r["scope"] == "dev" and not r.get("cached")]
    if m != "accuracy":  # generation: the task's metric, no label words
        lines += ["", "## Top candidates on dev", "", f"| # | dev {m} | template |", "|---|---|---|"]
        dev_rows.sort(key=lambda r: (-r[m], r["i"]))
        for r in dev_rows[:10]:
            tmpl = r["template"].replace("\n", "\\n").replace("|", "\\|")[:80]
            lines.append(f"| {r['i']} | {r[m]:.4f} | `{tmpl}` |")
        return "\n".join(lines) + "\n"
    lines += ["", "## Top candidates on dev", "", "| # | dev acc | margin | template | words |",
              "|---|---|---|---|---|"]
    dev_rows.sort(key=lambda r: (-r["accuracy"], -r["margin"], r["i"]))
    for r in dev_rows[:10]:
        tmpl = r["template"].replace("\n", "\\n").replace("|", "\\|")[:80]
        words = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["verbalizer"].items())
        lines.append(f"| {r['i']} | {r['accuracy']:.4f} | {r['margin']:.3f} | `{tmpl}` | {words} |")
    return "\n".join(lines) + "\n"
