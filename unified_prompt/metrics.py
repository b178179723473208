"""Evaluation metrics from the standard libraries: scikit-learn, sacrebleu, rouge-score.

Imported lazily (scikit-learn alone takes seconds to import).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from unified_prompt.errors import ConfigError

CLASSIFICATION = ("accuracy", "macro_f1")
GENERATION = ("rouge_l", "bleu", "exact_match")


def accuracy(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, pred))


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=list(labels), average="macro", zero_division=0))


def rouge_l(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Mean ROUGE-L F1 (rouge-score, stemmed). Its tokenizer keeps ASCII letters and digits
    only, so use BLEU for Chinese."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    if not refs:
        return 0.0
    return float(sum(scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, hyps, strict=False))
                 / len(refs))


def bleu(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu, 0-100)."""
    import sacrebleu

    if not refs:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)]).score)


def exact_match(refs: Sequence[str], hyps: Sequence[str]) -> float:
    if not refs:
        return 0.0
    return sum(r.strip() == h.strip() for r, h in zip(refs, hyps, strict=False)) / len(refs)


_CLS: dict[str, Callable[[Sequence[str], Sequence[str], Sequence[str]], float]] = {
    "accuracy": accuracy, "macro_f1": macro_f1}
_GEN: dict[str, Callable[[Sequence[str], Sequence[str]], float]] = {
    "rouge_l": rouge_l, "bleu": bleu, "exact_match": exact_match}


def check_metric_names(names: Sequence[str], task: str) -> None:
    known = _CLS if task == "classification" else _GEN
    for name in names:
        if name not in known:
            raise ConfigError(f"eval.metrics: {name!r} is not a {task} metric "
                              f"(known: {', '.join(known)})",
                              problems=[("eval.metrics", f"unknown metric {name!r}")])


def classification_metrics(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str],
                           names: Sequence[str] = CLASSIFICATION) -> dict[str, float]:
    check_metric_names(names, "classification")
    return {n: round(_CLS[n](gold, pred, labels), 6) for n in names}


def generation_metrics(refs: Sequence[str], hyps: Sequence[str],
                       names: Sequence[str] = ("rouge_l", "bleu")) -> dict[str, float]:
    check_metric_names(names, "generation")
    return {n: round(_GEN[n](refs, hyps), 6) for n in names}
