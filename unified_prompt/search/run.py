"""`run_search`: one strategy, one budget, one spec; the same on every backend.

    result = run_search("examples/sentiment.yaml", strategy="verbalizer", budget=2000,
                        out="runs/search-verbalizer")

Order of work: resolve the spec, check the strategy's primitives on the backend (before any
model loads), plan and refuse a plan that cannot fit, then search on train and dev only,
and last evaluate the original and the best prompt on the test split, once each.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import spec_yaml
from unified_prompt.backend import Backend
from unified_prompt.config import ExperimentSpec, load_spec, spec_from_data
from unified_prompt.data.resolve import Splits, load_splits
from unified_prompt.errors import BudgetExceededError, DataError, UserInputError
from unified_prompt.evaluation import Evaluator
from unified_prompt.figures.search import search_section
from unified_prompt.progress import bar
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.registry import create_backend
from unified_prompt.result import peak_rss_mb
from unified_prompt.search.budget import BudgetExhausted, Meter, Pricer, SearchBudget, Spend
from unified_prompt.search.candidate import Candidate
from unified_prompt.search.capabilities import require
from unified_prompt.search.context import SearchContext
from unified_prompt.search.journal import Journal, SearchDir
from unified_prompt.search.objective import AnyScore, Objective, SelectBy, objective_metrics
from unified_prompt.search.report import SearchResult, best_yaml, render_report
from unified_prompt.search.strategies import strategy_class
from unified_prompt.search.strategies.base import PlanInput, Strategy


def _resolve(spec: ExperimentSpec | str | Path | Mapping[str, Any], backend: str | None,
             overrides: list[str] | None) -> ExperimentSpec:
    if isinstance(spec, (str, Path)):
        return load_spec(spec, overrides=overrides, backend=backend)
    data = (spec.model_dump(mode="json", exclude_none=True) if isinstance(spec, ExperimentSpec)
            else copy.deepcopy(dict(spec)))  # the caller's mapping stays as it was
    return spec_from_data(data, overrides=overrides, backend=backend)


def _check_spec(spec: ExperimentSpec, strategy: Strategy) -> None:
    if spec.task not in strategy.tasks:
        from unified_prompt.search.strategies import STRATEGIES, strategy_class

        others = [n for n in STRATEGIES if spec.task in strategy_class(n).tasks]
        if not others:
            raise UserInputError(f"no search strategy takes {spec.task} specs yet; search "
                                 "works on classification and generation specs")
        raise UserInputError(f"search strategy {strategy.name!r} works on "
                             f"{' and '.join(strategy.tasks)} specs (it searches label scores "
                             f"at a {{mask}}); this spec's task is {spec.task!r}: use "
                             f"{', '.join(others)}")
    if spec.prompt.chat:
        raise UserInputError("prompt.chat: search does not write its candidates through a chat "
                             "template yet; search with prompt.chat: false, then run the best "
                             "prompt with chat")
    if spec.task == "generation" and spec.metrics[0] == "perplexity":
        raise UserInputError("eval.metrics: search maximises the first metric and perplexity "
                             "is lower-is-better; list another metric first (e.g. rouge_l)")
    if spec.finetune.method != "none":
        raise UserInputError("search scores prompts without training; set finetune.method: none "
                             f"(this spec has {spec.finetune.method!r}), then train with the best "
                             "spec it writes")


def _price(pricer: Pricer, spec: ExperimentSpec, prompts: list) -> Spend:
    """What one pass over `prompts` costs: label words scored, or outputs generated."""
    if spec.model_task == "generation":
        return pricer.generate(prompts, spec.eval.max_new_tokens)
    verbalizer = PromptBuilder(spec).verbalizer
    assert verbalizer is not None
    return pricer.score(prompts, len(verbalizer.flat_words))


def _as_budget(budget: int | SearchBudget) -> SearchBudget:
    if isinstance(budget, SearchBudget):
        out = budget
    else:
        out = SearchBudget(calls=int(budget))
    if out.calls < 1:
        raise UserInputError(f"--budget must be at least 1 call (got {out.calls})")
    return out


class _Search:
    """State of one search (kept off run_search so each step reads as one method)."""

    def __init__(self, spec: ExperimentSpec, strategy: Strategy, budget: SearchBudget,
                 out: Path | None, seed: int, progress: bool | None) -> None:
        self.spec = spec
        self.strategy = strategy
        self.budget = budget
        self.out = SearchDir(out) if out else None
        self.seed = seed
        self.progress = progress
        self.backend: Backend | None = None
        self.select_by: SelectBy = "margin"  # resolved for the spec's task by prepare()
        self.confirm_by: SelectBy = "margin"
        self.splits: Splits | None = None

    # -- before anything is spent ---------------------------------------------------------
    def prepare(self) -> tuple[Backend, Splits]:
        spec = self.spec
        _check_spec(spec, self.strategy)
        self.select_by, self.confirm_by = self.strategy.options.selection(spec.task)
        splits = load_splits(spec.data, spec.task, spec.seed)
        if not splits.dev:
            raise DataError("search needs a dev split (the objective); this data has none")
        if not self.test_examples(splits):
            raise DataError("search needs a test split for its final report; this data has none")
        PromptBuilder(spec, splits.train).check_fields(splits.dev)
        o = self.strategy.options
        if o.confirm and len(splits.dev) < o.dev_limit + o.confirm:
            raise DataError(f"search option confirm={o.confirm} needs {o.confirm} dev examples "
                            f"after the objective's first dev_limit={o.dev_limit}; the dev split "
                            f"has {len(splits.dev)}")
        backend = create_backend(spec.backend.name, spec.backend.options_for())
        self.backend = backend
        require(self.strategy.name, self.strategy.needs_for(spec.task), backend)
        for other, needs, role in self.strategy.other_backends(backend):
            require(self.strategy.name, needs, other, role)
        self.splits = splits
        return backend, splits

    def test_examples(self, splits: Splits) -> list:
        limit = self.spec.eval.limit
        return splits.test[:limit] if limit else splits.test

    def dev_examples(self, splits: Splits) -> list:
        return splits.dev[: self.strategy.options.dev_limit]

    def confirm_examples(self, splits: Splits) -> list:
        """The dev examples after the objective's, which the search never sees."""
        o = self.strategy.options
        return splits.dev[o.dev_limit: o.dev_limit + o.confirm]

    def plan(self, backend: Backend, splits: Splits) -> dict[str, Any]:
        spec = self.spec
        builder = PromptBuilder(spec, splits.train)
        contextual = (spec.prompt.calibration.method == "contextual"
                      or "contextual" in (self.strategy.options.calibrations or ()))
        cal = (len(spec.prompt.calibration.content_free)
               if contextual and spec.task == "classification" else 0)
        dev, test = self.dev_examples(splits), self.test_examples(splits)
        info = PlanInput(n_dev=len(dev), n_train=len(splits.train),
                         n_labels=len(builder.verbalizer.labels) if builder.verbalizer else 0,
                         calibration_calls=cal, budget_calls=self.budget.calls)
        plan = self.strategy.plan(info)
        pricer = Pricer(backend, spec.backend.model)
        dev_pass = _price(pricer, spec, builder.render(dev))
        search = dev_pass.scaled(self.budget.calls / max(1, dev_pass.calls))
        search.calls = self.budget.calls
        if self.budget.tokens is not None:
            search.tokens = min(search.tokens, self.budget.tokens)
        if self.budget.cost_usd is not None:
            search.cost_usd = min(search.cost_usd, self.budget.cost_usd)

        def passes(examples: list, n: int) -> Spend:
            """`n` prompts scored on `examples`, each with the content-free inputs."""
            if not examples:
                return Spend()
            spend = _price(pricer, spec, builder.render(examples)).scaled(n)
            spend.calls = n * (len(examples) + cal)
            return spend

        final = passes(test, 2)  # the original and the best
        confirm = self.confirm_examples(splits)
        confirming = passes(confirm, self.strategy.options.confirm_top + 1)
        total = search + final + confirming
        out: dict[str, Any] = {
            "strategy": self.strategy.name, "backend": backend.name, "model": spec.backend.model,
            "seed": self.seed, "dev_examples": len(dev), "test_examples": len(test),
            "budget": self.budget.describe(), "min_calls": plan.min_calls, "steps": plan.lines,
            "search_at_most": search.to_dict(), "final_test": final.to_dict(),
            "confirm_examples": len(confirm), "confirm_at_most": confirming.to_dict(),
            "total_at_most": total.to_dict(), "options": self.strategy.options.model_dump(),
            "task": spec.task, "select_by": self.select_by}
        problems = []
        if self.budget.calls < plan.min_calls:
            problems.append(f"--budget {self.budget.calls:,} calls is below the {plan.min_calls:,} "
                            f"this search needs at least ({'; '.join(plan.lines[:2])})")
        smallest = dev_pass.scaled(plan.min_calls / max(1, dev_pass.calls))
        if self.budget.tokens is not None and smallest.tokens > self.budget.tokens:
            problems.append(f"the smallest useful search needs about {smallest.tokens:,} tokens; "
                            f"the token budget is {self.budget.tokens:,}")
        if self.budget.cost_usd is not None and smallest.cost_usd > self.budget.cost_usd:
            problems.append(f"the smallest useful search costs about ${smallest.cost_usd:.4f}; "
                            f"the cost budget is ${self.budget.cost_usd:g}")
        cap = spec.budget
        if cap.max_requests is not None and total.calls > cap.max_requests:
            problems.append(f"search ({search.calls:,}) + final test ({final.calls:,}) "
                            + (f"+ confirm ({confirming.calls:,}) " if confirm else "")
                            + f"calls exceed budget.max_requests {cap.max_requests:,}")
        if cap.max_tokens is not None and total.tokens > cap.max_tokens:
            problems.append(f"about {total.tokens:,} tokens exceed budget.max_tokens "
                            f"{cap.max_tokens:,}")
        if cap.max_cost_usd is not None and total.cost_usd > cap.max_cost_usd + 1e-12:
            problems.append(f"about ${total.cost_usd:.4f} exceeds budget.max_cost_usd "
                            f"${cap.max_cost_usd:g}")
        out["fits"] = not problems
        if problems:
            out["refused"] = problems
        return out

    # -- the search -----------------------------------------------------------------------
    def execute(self) -> SearchResult:
        import numpy as np

        spec, backend, splits = self.spec, self.backend, self.splits
        assert backend is not None and splits is not None
        started = time.perf_counter()
        backend.set_budget(spec.budget)
        if self.out is not None:
            self.out.open(spec_yaml(spec))
        try:
            model = backend.load_model(spec.backend.model)
            with bar(self.budget.calls, f"search {self.strategy.name}", self.progress,
                     unit="call") as pb:
                meter = Meter(self.budget, on_charge=pb.update)
                objective = Objective(spec, backend, model, splits.train, meter)
                ctx = SearchContext(
                    spec=spec, strategy=self.strategy.name, train=list(splits.train),
                    dev=self.dev_examples(splits), backend=backend, model=model, meter=meter,
                    objective=objective, journal=Journal(self.out), seed=self.seed,
                    rng=np.random.default_rng(self.seed),
                    select_by=self.select_by,
                    calibrations=tuple(self.strategy.options.calibrations or ()))
                original = Candidate.from_spec(spec)
                ctx.original = original
                stopped = "done"
                try:
                    ctx.consider(original)
                    self.strategy.search(ctx)
                except BudgetExhausted:
                    stopped = "budget"
            best, best_score = ctx.best or original, ctx.best_score
            if self.strategy.options.confirm:
                best, best_score = self.confirm(ctx, original)
            search_seconds = time.perf_counter() - started
            best_spec = best.apply(spec)
            test = self.final_test(ctx, original, best)
            usage = meter.usage()
            reported = backend.usage()
            if reported:
                usage["backend_reported"] = reported  # what a hosted backend says it spent
            result = SearchResult(
                strategy=self.strategy.name, backend=backend.name, model=spec.backend.model,
                seed=self.seed, best=best, best_spec=best_spec,
                dev={"original": objective.dev_score(original, ctx.dev)[0].to_dict(),
                     "best": (best_score.to_dict() if best_score else None)},
                test=test, usage=usage, budget=self.budget.describe(),
                candidates=len(ctx.journal.rows), stopped=stopped,
                search_seconds=round(search_seconds, 3),
                seconds=round(time.perf_counter() - started, 3), peak_rss_mb=peak_rss_mb(),
                out=self.out.path if self.out else None, rows=ctx.journal.rows,
                extras=ctx.extras, plan=None,
                metric=objective_metrics(spec)[0] if spec.model_task == "generation"
                else "accuracy")
            if self.out is not None:
                report = render_report(result) + search_section(
                    self.out.path, ctx.journal.rows, self.strategy.options.select_by)
                self.out.finish(best_yaml(result), report, result.to_dict())
            return result
        except BaseException:
            if self.out is not None:
                self.out.discard_if_empty()
            raise

    def confirm(self, ctx: SearchContext, original: Candidate) -> tuple[Candidate, AnyScore | None]:
        """The original and the objective's leaders scored again on dev examples the search
        never saw; the best there (the original on a tie) is the result. Returns it with its
        objective score."""
        assert self.splits is not None
        o = self.strategy.options
        examples = self.confirm_examples(self.splits)
        judge = Objective(self.spec, ctx.backend, ctx.model, self.splits.train, ctx.meter,
                          phase="confirm")
        checked = [original] + [c for c in ctx.leaders(o.confirm_top)
                                if c.prompt_key() != original.prompt_key()]
        winner, winner_score, rows = original, None, []
        for cand in checked:
            for variant in ctx.variants(cand):
                score, _ = judge.dev_score(variant, examples)
                ctx.record(variant, score, scope=f"confirm:{len(examples)}")
                known = ctx.objective.known(variant)
                rows.append({**variant.to_dict(), "confirm": score.to_dict(),
                             "objective": known.to_dict() if known else None})
                if score.better_than(winner_score, self.confirm_by):
                    winner, winner_score = variant, score
        ctx.extras["confirm"] = {"n": len(examples), "checked": rows, "chosen": winner.to_dict()}
        return winner, ctx.objective.known(winner)

    def final_test(self, ctx: SearchContext, original: Candidate, best: Candidate
                   ) -> dict[str, Any]:
        """The test split, touched here only: the original and the best prompt, once each."""
        assert self.splits is not None and self.backend is not None
        test = self.test_examples(self.splits)
        out: dict[str, Any] = {"n": len(test)}
        done: dict[str, dict[str, float]] = {}
        for name, cand in (("original", original), ("best", best)):
            spec = cand.apply(self.spec)
            key = spec.model_dump_json()  # the same spec is evaluated once, however reached
            if key not in done:
                builder = PromptBuilder(spec, self.splits.train)
                prompts = builder.render(test)
                if spec.prompt.calibration.method == "contextual" and builder.verbalizer:
                    prompts += builder.content_free()
                ctx.meter.charge(_price(ctx.objective.pricer, spec, prompts), phase="final")
                evaluator = Evaluator(self.backend, builder, spec, self.progress)
                done[key] = evaluator.evaluate(ctx.model, test, f"test ({name})")[0]
            out[name] = done[key]
        return out


def run_search(spec: ExperimentSpec | str | Path | Mapping[str, Any], *, strategy: str,
               budget: int | SearchBudget, out: str | Path | None = None,
               backend: str | None = None, seed: int | None = None,
               options: Mapping[str, Any] | None = None, overrides: list[str] | None = None,
               dry_run: bool = False, progress: bool | None = None) -> SearchResult:
    """Search for a better prompt for `spec` with `strategy` within `budget` model calls.

    Returns a SearchResult; with `out`, writes search.jsonl, best.yaml (a spec `unified-prompt
    run` takes as it is), report.md and result.json there.
    """
    resolved = _resolve(spec, backend, overrides)
    if resolved.mixture is not None:
        from unified_prompt.errors import ConfigError

        raise ConfigError("mixture: prompt search improves one task's prompt; search each task "
                          "as a spec of its own", problems=[("mixture", "not searchable")])
    strat = strategy_class(strategy)(dict(options or {}))
    run = _Search(resolved, strat, _as_budget(budget), Path(out) if out else None,
                  resolved.seed if seed is None else seed, progress)
    try:
        be, splits = run.prepare()
        plan = run.plan(be, splits)
        if dry_run:
            return SearchResult.planned(plan)
        if not plan["fits"]:
            raise BudgetExceededError("search plan does not fit its budget:\n  "
                                      + "\n  ".join(plan["refused"]))
        return run.execute()
    finally:
        strat.close()
        if run.backend is not None:
            run.backend.close()


__all__ = ["SearchBudget", "Spend", "run_search"]
