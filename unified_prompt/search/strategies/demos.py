"""Which demonstrations to show: similarity selection, random sets, then hill climbing.

Candidates are fixed lists of training ids (the spec's `selection: fixed`), drawn from a
small per-label pool, plus `selection: similarity` (nearest training examples per query).
The best fixed set is improved by first-improvement hill climbing: one demonstration swapped
for another of the same label, or two neighbours' places exchanged, keeping a change when the
dev objective rises, with a random restart at a local optimum.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from pydantic import Field

from unified_prompt.search.candidate import DemoChoice
from unified_prompt.search.strategies.base import PlanInput, Strategy, StrategyOptions, StrategyPlan

if TYPE_CHECKING:
    from unified_prompt.data.example import Example
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.context import SearchContext


class DemoOptions(StrategyOptions):
    k: int = Field(1, ge=1, description="Demonstrations per label (generation: in all).")
    pool_per_label: int = Field(8, ge=1, description="Training examples per label to pick from "
                                "(generation: in all).")
    random_sets: int = Field(3, ge=0, description="Random fixed sets scored first.")
    similarity: bool = Field(True, description="Also score selection: similarity.")
    steps: int = Field(24, ge=0, description="Hill-climbing sets scored after that (one swap "
                                           "or exchange of places at a time, restarts "
                                           "at local optima).")


class DemoSearch(Strategy):
    name = "demos"
    summary = "few-shot demonstrations: similarity, random sets, then swaps (hill climbing)"
    Options = DemoOptions
    needs = ("score",)
    tasks = ("classification", "generation", "qa")
    options: DemoOptions

    def plan(self, info: PlanInput) -> StrategyPlan:
        o = self.options
        dev = info.dev_pass
        n = o.random_sets + int(o.similarity) + o.steps
        return StrategyPlan(min_calls=2 * dev, lines=[
            f"baseline: {dev} calls (original prompt on {info.n_dev} dev examples)",
            f"each demonstration set: {dev} dev calls (longer prompts: {o.k} per label)",
            f"{int(o.similarity)} similarity + {o.random_sets} random sets + {o.steps} swaps: "
            f"up to {n * dev:,} calls"])

    def search(self, ctx: SearchContext) -> None:
        assert ctx.original is not None
        o = self.options
        base = ctx.original
        # generation: one group, as the spec's demonstrations are then k in all
        labels: list[str | None] = [label for label, _ in base.words] or [None]
        by_label: dict[str | None, list[Example]] = defaultdict(list)
        for ex in ctx.train:
            by_label[ex.label if base.words else None].append(ex)
        pool = {label: [e.id for e in ctx.sample(by_label.get(label, []), o.pool_per_label)]
                for label in labels}
        ctx.extras["demo_pool"] = {label or "all": ids for label, ids in pool.items()}

        def fixed(ids: list[str], origin: str) -> Candidate:
            return base.with_(demos=DemoChoice("fixed", len(ids), tuple(ids)), origin=origin)

        def draw() -> list[str]:
            ids = [i for label in labels
                   for i in (ctx.rng.choice(pool[label], size=min(o.k, len(pool[label])),
                                            replace=False).tolist() if pool[label] else [])]
            order = ctx.rng.permutation(len(ids))
            return [ids[int(j)] for j in order]

        if o.similarity:
            ctx.consider(base.with_(demos=DemoChoice("similarity", o.k), origin="demos:similarity"))
        best_ids, best = None, None
        for _ in range(o.random_sets):
            ids = draw()
            score = ctx.consider(fixed(ids, "demos:random"), demo_ids=ids)
            if ctx.better(score, best):
                best_ids, best = ids, score
        if best_ids is None:
            best_ids = draw()
            best = ctx.consider(fixed(best_ids, "demos:random"), demo_ids=best_ids)
        label_of = {i: label for label, ids in pool.items() for i in ids}
        seen = {tuple(best_ids)}

        def neighbours(ids: list[str]) -> list[list[str]]:
            """Every set one swap (same label) or one exchange of places away, shuffled."""
            out = []
            for at in range(len(ids)):
                for other in pool[label_of[ids[at]]]:
                    if other not in ids:
                        out.append([*ids[:at], other, *ids[at + 1:]])
            for a in range(len(ids) - 1):
                swapped = list(ids)
                swapped[a], swapped[a + 1] = swapped[a + 1], swapped[a]
                out.append(swapped)
            return [out[int(j)] for j in ctx.rng.permutation(len(out))]

        current_ids, current, steps = best_ids, best, 0
        while steps < o.steps:
            moved = False
            for trial in neighbours(current_ids):
                if tuple(trial) in seen or steps >= o.steps:
                    continue
                seen.add(tuple(trial))
                steps += 1
                score = ctx.consider(fixed(trial, "demos:climb"), demo_ids=trial, step=steps)
                if ctx.better(score, current):
                    current_ids, current, moved = trial, score, True
                    break
            if not moved:  # a local optimum: restart from a random set not tried yet
                fresh = [draw() for _ in range(20)]
                fresh = [ids for ids in fresh if tuple(ids) not in seen]
                if not fresh or steps >= o.steps:
                    break
                current_ids = fresh[0]
                seen.add(tuple(current_ids))
                steps += 1
                current = ctx.consider(fixed(current_ids, "demos:restart"),
                                       demo_ids=current_ids, step=steps)
