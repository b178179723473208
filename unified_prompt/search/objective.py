"""The dev objective: how well a candidate prompt labels a fixed list of examples
(classification: accuracy and the gold label's margin) or how well the outputs it makes a
model generate score on the task's metric (generation: e.g. rouge_l).

Scores are computed exactly as `unified-prompt run` computes them (the same PromptBuilder,
Evaluator and calibration), every prompt is charged to the meter before it is sent, and a
candidate scored once on the dev set is never paid for again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from unified_prompt.evaluation import LABEL_TOKENS, Evaluator
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.prompts.calibration import calibrated
from unified_prompt.prompts.verbalizer import Verbalizer, WordScores
from unified_prompt.search.budget import Meter, Pricer
from unified_prompt.search.candidate import Candidate

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.backend import Backend
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.data.example import Example


SelectBy = Literal["margin", "accuracy", "metric"]


def percent(metric: str, value: float) -> float:
    """A metric on a 0-100 scale, as meta-prompts and reports show it (BLEU already is)."""
    return value if metric == "bleu" else 100 * value


@dataclass(frozen=True)
class Score:
    """Accuracy, and the mean calibrated log-probability of the gold label (the tie-break
    and the smooth signal that small steps move)."""

    accuracy: float
    margin: float
    n: int

    def key(self, select_by: SelectBy = "margin") -> tuple[float, float]:
        """What "better" means: the margin (a proper scoring rule, steady on a few hundred
        examples) then accuracy, or accuracy then margin."""
        acc, margin = round(self.accuracy, 9), round(self.margin, 9)
        return (margin, acc) if select_by == "margin" else (acc, margin)

    def better_than(self, other: Score | None, select_by: SelectBy = "margin") -> bool:
        return other is None or self.key(select_by) > other.key(select_by)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": round(self.accuracy, 6), "margin": round(self.margin, 6), "n": self.n}

    @property
    def metric(self) -> str:
        return "accuracy"

    @property
    def value(self) -> float:
        """The number a strategy shows its proposer and a report leads with."""
        return self.accuracy


@dataclass(frozen=True)
class MetricScore:
    """Generation: the task's metrics (the spec's eval metrics, in order) of the outputs
    generated on the examples. The first is the objective; the rest break ties. There is
    no margin: a generated text has no gold-label log-probability."""

    metrics: tuple[tuple[str, float], ...]
    n: int

    @property
    def metric(self) -> str:
        return self.metrics[0][0]

    @property
    def value(self) -> float:
        return self.metrics[0][1]

    def key(self, select_by: SelectBy = "metric") -> tuple[float, ...]:
        return tuple(round(v, 9) for _, v in self.metrics)

    def better_than(self, other: MetricScore | None, select_by: SelectBy = "metric") -> bool:
        return other is None or self.key(select_by) > other.key(select_by)

    def to_dict(self) -> dict[str, Any]:
        return {**{name: round(v, 6) for name, v in self.metrics}, "n": self.n}


AnyScore = Score | MetricScore


def score_from(logprobs: np.ndarray, gold: Sequence[int]) -> Score:
    import numpy as np

    gold_idx = np.asarray(gold)
    rows = np.arange(len(gold_idx))
    acc = float((np.argmax(logprobs, axis=1) == gold_idx).mean()) if len(rows) else 0.0
    margin = float(logprobs[rows, gold_idx].mean()) if len(rows) else 0.0
    return Score(acc, margin, len(rows))


def objective_metrics(spec: ExperimentSpec) -> list[str]:
    """The metrics a generating search maximises, the objective first: the spec's eval
    metrics; for qa without eval.metrics, token F1 then exact match (F1 gives partial credit,
    so it separates prompts that exact match scores alike)."""
    if spec.task == "qa" and not spec.eval.metrics:
        return ["f1", "exact_match"]
    return list(spec.metrics)


class Objective:
    """Scores candidates on examples with the target backend and model."""

    def __init__(self, spec: ExperimentSpec, backend: Backend, model: Any,
                 pool: Sequence[Example], meter: Meter, phase: str = "search") -> None:
        self.spec = spec
        self.phase = phase  # what the meter charges its calls to
        self.backend = backend
        self.model = model
        self.pool = list(pool)
        self.meter = meter
        self.pricer = Pricer(backend, spec.backend.model)
        self._builders: dict[str, tuple[ExperimentSpec, PromptBuilder]] = {}
        self.generation = spec.model_task == "generation"  # generation and qa
        self._dev: dict[str, tuple[Candidate, AnyScore]] = {}  # by Candidate.key
        self._dev_raw: dict[str, np.ndarray] = {}  # uncalibrated, by Candidate.prompt_key

    # -- building ----------------------------------------------------------------------
    def builder(self, cand: Candidate) -> tuple[ExperimentSpec, PromptBuilder]:
        key = cand.key()
        if key not in self._builders:
            spec = cand.apply(self.spec)
            self._builders[key] = (spec, PromptBuilder(spec, self.pool))
        return self._builders[key]

    def gold(self, cand: Candidate, examples: Sequence[Example]) -> list[int]:
        verbalizer = self.builder(cand)[1].verbalizer
        assert verbalizer is not None
        return [verbalizer.label_index(ex.label or "") for ex in examples]

    # -- scoring -----------------------------------------------------------------------
    def _raw(self, spec: ExperimentSpec, builder: PromptBuilder, prompts: list) -> np.ndarray:
        assert builder.verbalizer is not None
        if self.backend.model_capabilities(self.model).score:
            spend = self.pricer.score(prompts, len(builder.verbalizer.flat_words))
        else:
            spend = self.pricer.generate(prompts, LABEL_TOKENS)
        self.meter.charge(spend, phase=self.phase)
        evaluator = Evaluator(self.backend, builder, spec, progress=False)
        return evaluator.label_scores(self.model, prompts, "search")

    def label_logprobs(self, cand: Candidate, examples: Sequence[Example]) -> np.ndarray:
        """(n, labels) calibrated label log-probabilities, as `run` computes them."""
        spec, builder = self.builder(cand)
        scores = self._raw(spec, builder, builder.render(examples))
        return self._calibrated(spec, builder, scores)

    def _calibrated(self, spec: ExperimentSpec, builder: PromptBuilder,
                    scores: np.ndarray) -> np.ndarray:
        method = spec.prompt.calibration.method
        ref = self._raw(spec, builder, builder.content_free()) if method == "contextual" else None
        return calibrated(scores, method, ref)

    def generated(self, cand: Candidate, examples: Sequence[Example]) -> MetricScore:
        """Generation: the outputs for `examples` under `cand`, scored by the task's metrics
        exactly as `run` scores them (the same Evaluator), every prompt charged first."""
        spec, builder = self.builder(cand)
        prompts = builder.render(examples)
        self.meter.charge(self.pricer.generate(prompts, spec.eval.max_new_tokens),
                          phase=self.phase)
        evaluator = Evaluator(self.backend, builder, spec, progress=False)
        names = objective_metrics(spec)
        metrics, _ = evaluator.evaluate(self.model, examples, "search", names)
        return MetricScore(tuple((name, float(metrics[name])) for name in names), len(examples))

    def score(self, cand: Candidate, examples: Sequence[Example]) -> AnyScore:
        """A fresh (uncached) score on any examples: minibatches, rewards."""
        if self.generation:
            return self.generated(cand, examples)
        return score_from(self.label_logprobs(cand, examples), self.gold(cand, examples))

    def dev_score(self, cand: Candidate, dev: Sequence[Example]) -> tuple[AnyScore, bool]:
        """The cached score on the dev objective set; True when it was already known.

        The uncalibrated label scores are kept too, so the same prompt under another
        calibration costs no dev calls (contextual: only its content-free inputs).
        """
        key = cand.key()
        if key in self._dev:
            return self._dev[key][1], True
        if self.generation:
            score = self.generated(cand, dev)
            self._dev[key] = (cand, score)
            return score, False
        spec, builder = self.builder(cand)
        raw = self._dev_raw.get(cand.prompt_key())
        if raw is None:
            raw = self._raw(spec, builder, builder.render(dev))
            self._dev_raw[cand.prompt_key()] = raw
        lp = self._calibrated(spec, builder, raw)
        score = score_from(lp, self.gold(cand, dev))
        self._dev[key] = (cand, score)
        return score, False

    def remember(self, cand: Candidate, score: AnyScore) -> None:
        self._dev[cand.key()] = (cand, score)

    def known(self, cand: Candidate) -> AnyScore | None:
        """The dev score of `cand` if it was scored (or remembered), without scoring it."""
        hit = self._dev.get(cand.key())
        return hit[1] if hit else None

    def scored(self) -> list[tuple[Candidate, AnyScore]]:
        """Every candidate scored on the dev objective, with its score."""
        return list(self._dev.values())

    # -- label-word search -------------------------------------------------------------
    def word_scores(self, cand: Candidate, words: Sequence[str], examples: Sequence[Example],
                    contextual: bool = False) -> tuple[WordScores, WordScores | None]:
        """Every word's score at the mask of each example's prompt (one call per prompt),
        and on the content-free inputs when contextual calibration is wanted."""
        spec, builder = self.builder(cand)
        prompts = builder.render(examples)
        self.meter.charge(self.pricer.score(prompts, len(words)))
        ws = self.backend.score(self.model, prompts, list(words),
                                batch_size=spec.eval.batch_size)
        ref = None
        if contextual or spec.prompt.calibration.method == "contextual":
            cf = builder.content_free()
            self.meter.charge(self.pricer.score(cf, len(words)))
            ref = self.backend.score(self.model, cf, list(words), batch_size=spec.eval.batch_size)
        return ws, ref

    def verbalizer_score(self, cand: Candidate, words: Sequence[str], ws: WordScores,
                         ref: WordScores | None, examples: Sequence[Example]) -> Score:
        """The score `cand`'s label words would get, from word scores already paid for."""
        import numpy as np

        spec = self.spec
        method = cand.calibration or spec.prompt.calibration.method
        verbalizer = Verbalizer(cand.verbalizer)
        cols = [list(words).index(w) for w in verbalizer.flat_words]

        def pick(s: WordScores) -> WordScores:
            return WordScores(np.asarray(s.logprob)[:, cols], np.asarray(s.n_tokens)[:, cols],
                              s.exact)

        scores = verbalizer.label_scores(pick(ws), spec.prompt.word_score)
        ref_scores = (verbalizer.label_scores(pick(ref), spec.prompt.word_score)
                      if method == "contextual" and ref is not None else None)
        lp = calibrated(scores, method, ref_scores)
        gold = [verbalizer.label_index(ex.label or "") for ex in examples]
        return score_from(lp, gold)
