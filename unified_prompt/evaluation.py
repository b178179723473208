"""Evaluating one backend and model on examples: label scores (or generations read as
labels when a backend cannot score), calibration, predictions and metrics, the same for
every framework. The run, search, training's dev evaluations and Predictor all use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unified_prompt.backend import Backend, GenerationParams
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.metrics import classification_metrics, generation_metrics
from unified_prompt.progress import bar
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.prompts.calibration import calibrated
from unified_prompt.prompts.segments import Rendered
from unified_prompt.prompts.verbalizer import WordScores
from unified_prompt.qa_metrics import qa_metrics
from unified_prompt.sampling import best_of_n, generation_params, group

#: Tokens generated per prompt to read a label from when a backend cannot score.
LABEL_TOKENS = 16


class Evaluator:
    """Scores or generates for a list of examples with one backend and model."""

    def __init__(self, backend: Backend, builder: PromptBuilder, spec: ExperimentSpec,
                 progress: bool | None = None) -> None:
        self.backend = backend
        self.builder = builder
        self.spec = spec
        self.progress = progress
        self._prior = None
        #: Figures beyond the metrics from the last evaluation (task ner: per-type scores).
        self.details: dict[str, Any] = {}

    # -- primitives with progress ----------------------------------------------------
    def word_scores(self, model: Any, prompts: Sequence[Rendered], desc: str) -> WordScores:
        assert self.builder.verbalizer is not None
        with bar(len(prompts), desc, self.progress) as pb:
            return self.backend.score(model, prompts, self.builder.verbalizer.flat_words,
                                      batch_size=self.spec.eval.batch_size, progress=pb.update)

    def label_scores(self, model: Any, prompts: Sequence[Rendered], desc: str = "score"):
        """(n, labels) label log-scores, from word scores, or parsed generations when the
        backend cannot score."""
        import numpy as np

        verbalizer = self.builder.verbalizer
        assert verbalizer is not None
        if not self.backend.model_capabilities(model).score:
            texts = self.generate(model, prompts, desc, max_new_tokens=LABEL_TOKENS)
            out = np.full((len(prompts), len(verbalizer.labels)), -1e9)
            for i, text in enumerate(texts):
                label = verbalizer.parse(text)
                if label is not None:
                    out[i, verbalizer.label_index(label)] = 0.0
            return out
        scores = self.word_scores(model, prompts, desc)
        return verbalizer.label_scores(scores, self.spec.prompt.word_score)

    def label_logprobs(self, model: Any, examples: Sequence[Example], desc: str = "score"):
        """(n, labels) label log-probabilities for `examples`, calibrated as the spec says
        (the batch prior comes from these examples: pass many at once)."""
        scores = self.label_scores(model, self.builder.render(examples), desc)
        method = self.spec.prompt.calibration.method
        ref = (self.label_scores(model, self.builder.content_free(), "calibrate")
               if method == "contextual" else None)
        return calibrated(scores, method, ref)

    def generate(self, model: Any, prompts: Sequence[Rendered], desc: str,
                 max_new_tokens: int | None = None, decoded: bool = False) -> list[str]:
        """Greedy texts, one per prompt; `decoded`: as eval.decoding says (n per prompt,
        prompt-major, when it asks for n)."""
        params = GenerationParams(max_new_tokens=max_new_tokens or self.spec.eval.max_new_tokens,
                                  seed=self.spec.seed)
        if decoded:
            params = generation_params(self.spec.eval.decoding, params.max_new_tokens,
                                       self.spec.seed)
        with bar(len(prompts), desc, self.progress) as pb:
            return self.backend.generate(model, prompts, params,
                                         batch_size=self.spec.eval.batch_size, progress=pb.update)

    # -- whole evaluations -----------------------------------------------------------
    def classify(self, model: Any, examples: Sequence[Example], desc: str = "eval",
                 metric_names: Sequence[str] | None = None
                 ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        import numpy as np

        verbalizer = self.builder.verbalizer
        assert verbalizer is not None
        scores = self.label_logprobs(model, examples, desc)
        pred_idx = np.argmax(scores, axis=1)
        preds = [verbalizer.labels[i] for i in pred_idx]
        gold = [ex.label or "" for ex in examples]
        metrics = classification_metrics(gold, preds, verbalizer.labels,
                                         metric_names or self.spec.metrics)
        probs = np.exp(scores)
        rows = [{"id": ex.id, "label": ex.label, "prediction": p, "correct": ex.label == p,
                 "scores": {lab: round(float(probs[i, j]), 6)
                            for j, lab in enumerate(verbalizer.labels)}}
                for i, (ex, p) in enumerate(zip(examples, preds, strict=False))]
        return metrics, rows

    def _answers(self, model: Any, examples: Sequence[Example], desc: str
                 ) -> tuple[list[Rendered], list[list[str]]]:
        """The rendered prompts and what the model generated after each (eval.decoding's
        n outputs), stripped."""
        prompts = self.builder.render(examples)
        n = self.spec.eval.decoding.n
        texts = [h.strip() for h in self.generate(model, prompts, desc, decoded=True)]
        return prompts, group(texts, n)

    @staticmethod
    def _output_fields(outputs: list[str]) -> dict[str, Any]:
        """A predictions row's outputs: the first as `prediction`, all n as `predictions`."""
        return {"prediction": outputs[0], **({"predictions": outputs} if len(outputs) > 1
                                              else {})}

    def generate_eval(self, model: Any, examples: Sequence[Example], desc: str = "eval",
                      metric_names: Sequence[str] | None = None
                      ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        prompts, outputs = self._answers(model, examples, desc)
        hyps = [o[0] for o in outputs]
        refs = [ex.target or "" for ex in examples]
        names = metric_names or self.spec.metrics
        tokenize = self.spec.eval.tokenize
        metrics = generation_metrics(refs, hyps, names, tokenize)
        if self.spec.eval.decoding.n > 1:
            text_names = [n for n in names if n in metrics]
            metrics |= best_of_n(lambda r, h: generation_metrics(r, h, text_names, tokenize),
                                 refs, outputs)
        if "perplexity" in names:
            from unified_prompt.perplexity import target_perplexity

            metrics["perplexity"] = round(target_perplexity(
                self.backend, model, prompts, refs, self.spec.eval.batch_size), 6)
            metrics = {n: metrics[n] for n in [*names, *metrics] if n in metrics}
        rows = [{"id": ex.id, "target": r, **self._output_fields(o)}
                for ex, r, o in zip(examples, refs, outputs, strict=False)]
        return metrics, rows

    def answer_eval(self, model: Any, examples: Sequence[Example], desc: str = "eval",
                    metric_names: Sequence[str] | None = None
                    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """qa: generated answers scored by SQuAD exact match / F1 against every gold answer."""
        _, outputs = self._answers(model, examples, desc)
        golds = [list(ex.answers) or [ex.target or ""] for ex in examples]
        names = metric_names or self.spec.metrics
        tokenize = self.spec.eval.tokenize
        metrics = qa_metrics(golds, [o[0] for o in outputs], names, tokenize)
        if self.spec.eval.decoding.n > 1:
            metrics |= best_of_n(lambda g, h: qa_metrics(g, h, names, tokenize), golds, outputs)
        rows = [{"id": ex.id, "answers": g, **self._output_fields(o)}
                for ex, g, o in zip(examples, golds, outputs, strict=False)]
        return metrics, rows

    def entity_eval(self, model: Any, examples: Sequence[Example], desc: str = "eval",
                    metric_names: Sequence[str] | None = None
                    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """ner: generated `TYPE: span; ...` lines scored by seqeval at the entity level."""
        from unified_prompt.ner_metrics import ner_evaluation

        _, outputs = self._answers(model, examples, desc)
        metrics, rows, self.details = ner_evaluation(
            examples, [o[0] for o in outputs], list(self.spec.prompt.entity_types or ()),
            metric_names or self.spec.metrics)
        return metrics, [{**row, **self._output_fields(o)}
                         for row, o in zip(rows, outputs, strict=True)]

    def evaluate(self, model: Any, examples: Sequence[Example], desc: str = "eval",
                 metric_names: Sequence[str] | None = None
                 ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        if self.spec.task == "classification":
            return self.classify(model, examples, desc, metric_names)
        if self.spec.task == "qa":
            return self.answer_eval(model, examples, desc, metric_names)
        if self.spec.task == "ner":
            return self.entity_eval(model, examples, desc, metric_names)
        return self.generate_eval(model, examples, desc, metric_names)
