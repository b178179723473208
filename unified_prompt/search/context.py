"""What a strategy works with: the base spec, the splits, the target backend and model, the
dev objective, the meter, a seeded random generator and the journal.

Strategies propose; `consider` scores a candidate on the dev objective, writes it to the
journal and keeps the best. Strategies never see the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from unified_prompt.search.candidate import Candidate
from unified_prompt.search.objective import AnyScore, Objective, SelectBy

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.backend import Backend
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.data.example import Example
    from unified_prompt.search.budget import Meter
    from unified_prompt.search.journal import Journal


@dataclass
class SearchContext:
    spec: ExperimentSpec
    strategy: str
    train: list[Example]
    dev: list[Example]
    backend: Backend
    model: Any
    meter: Meter
    objective: Objective
    journal: Journal
    rng: np.random.Generator
    seed: int
    select_by: SelectBy = "margin"
    calibrations: tuple[str, ...] = ()
    best: Candidate | None = None
    best_score: AnyScore | None = None
    original: Candidate | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def consider(self, cand: Candidate, **meta: Any) -> AnyScore:
        """Score `cand` on the dev objective (free when already scored) and record it; under
        each of the search's calibrations when `cand` names none. Returns the best score."""
        best: AnyScore | None = None
        for variant in self.variants(cand):
            score, cached = self.objective.dev_score(variant, self.dev)
            self.record(variant, score, cached=cached, **meta)
            if self.better(score, best):
                best = score
        assert best is not None
        return best

    def variants(self, cand: Candidate) -> list[Candidate]:
        if cand.calibration is not None or not self.calibrations:
            return [cand]
        return [cand.with_(calibration=method) for method in self.calibrations]

    def for_batch(self, cand: Candidate) -> Candidate:
        """The candidate as minibatch scores (rewards, swaps) see it: batch-calibrated when
        batch calibration is among the search's choices (it needs no further calls), so
        the signal steering the search is the one the dev check will select by."""
        if cand.calibration is None and "batch" in self.calibrations:
            return cand.with_(calibration="batch")
        return cand

    def record(self, cand: Candidate, score: AnyScore, *, scope: str = "dev",
               cached: bool = False, **meta: Any) -> AnyScore:
        """Write a scored candidate to the journal; dev scores compete for best."""
        improved = False
        if scope == "dev":
            self.objective.remember(cand, score)
            if self.better(score, self.best_score):
                self.best, self.best_score, improved = cand, score, True
        row = {"strategy": self.strategy, "origin": cand.origin, "scope": scope,
               **cand.to_dict(), **score.to_dict(), "best": improved, "cached": cached,
               **meta, **self.meter.search.to_dict()}
        self.journal.write(row)
        return score

    def leaders(self, n: int) -> list[Candidate]:
        """The `n` best distinct prompts on the dev objective (calibration left open)."""
        ranked = sorted(self.objective.scored(), key=lambda cs: cs[1].key(self.select_by),
                        reverse=True)
        out: dict[str, Candidate] = {}
        for cand, _ in ranked:
            if len(out) == n:
                break
            prompt = replace(cand, calibration=None) if self.calibrations else cand
            out.setdefault(prompt.prompt_key(), prompt)
        return list(out.values())

    def better(self, score: AnyScore, other: AnyScore | None) -> bool:
        return score.better_than(other, self.select_by)

    def batch_score(self, cand: Candidate, examples: Sequence[Example], **meta: Any) -> AnyScore:
        """Score on a minibatch (charged every time) and record it as a batch row."""
        cand = self.for_batch(cand)
        score = self.objective.score(cand, examples)
        return self.record(cand, score, scope=f"batch:{len(examples)}", **meta)

    def sample(self, examples: Sequence[Example], n: int) -> list[Example]:
        idx = self.rng.choice(len(examples), size=min(n, len(examples)), replace=False)
        return [examples[int(i)] for i in sorted(idx)]
