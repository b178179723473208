"""Evaluation metrics from the standard libraries: scikit-learn, sacrebleu, rouge-score.

Imported lazily (scikit-learn alone takes seconds to import). BLEU and ROUGE need words:
text without spaces (Chinese, Japanese) is split by sacrebleu's `zh` / `char` tokenizers,
chosen from the text or by `eval.tokenize`. Question answering is scored by SQuAD's exact
match and token F1 (unified_prompt.qa_metrics), which the same choice splits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from unified_prompt.errors import ConfigError

CLASSIFICATION = ("accuracy", "macro_f1")
GENERATION = ("rouge_l", "rouge_1", "rouge_2", "bleu", "exact_match")
#: task: qa, SQuAD's scores (computed in unified_prompt.qa_metrics).
QA = ("exact_match", "f1")
#: task: ner, entity-level scores by seqeval (computed in unified_prompt.ner_metrics).
NER = ("precision", "recall", "f1", "parse_rate")


def accuracy(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, pred))


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=list(labels), average="macro", zero_division=0))


#: Hiragana / katakana, and CJK ideographs (unified, extension A, compatibility).
_KANA = re.compile("[\u3040-\u30ff]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
TOKENIZERS = ("auto", "13a", "zh", "char", "intl", "none")


def resolve_tokenize(tokenize: str, texts: Sequence[str]) -> str:
    """The sacrebleu tokenizer for `texts`: `auto` picks `char` for Japanese kana, `zh` for
    Chinese characters (each one a token), else `13a` (sacrebleu's default, for spaced
    languages); any other name is used as given."""
    if tokenize != "auto":
        if tokenize not in TOKENIZERS:
            raise ConfigError(f"eval.tokenize: {tokenize!r} is not one of {', '.join(TOKENIZERS)}",
                              problems=[("eval.tokenize", f"unknown tokenizer {tokenize!r}")])
        return tokenize
    if any(_KANA.search(t) for t in texts):
        return "char"
    if any(_HAN.search(t) for t in texts):
        return "zh"
    return "13a"


class _SacrebleuTokens:
    """rouge-score's tokenizer interface over a sacrebleu tokenizer: lowercased tokens that
    hold a letter, digit or CJK character (punctuation dropped, as rouge-score does)."""

    def __init__(self, name: str) -> None:
        from sacrebleu.metrics import BLEU

        self._tok = BLEU(tokenize=name).tokenizer

    def tokenize(self, text: str) -> list[str]:
        return [t for t in self._tok(text.lower()).split() if any(c.isalnum() for c in t)]


def _rouge(kind: str, refs: Sequence[str], hyps: Sequence[str], tokenize: str) -> float:
    """Mean ROUGE F1 (rouge-score). With the 13a choice (English and other spaced text) it
    is rouge-score's own tokenizer with stemming, as published figures use; otherwise the
    sacrebleu tokenizer splits the text (each Chinese character a token under zh)."""
    from rouge_score import rouge_scorer

    if not refs:
        return 0.0
    name = resolve_tokenize(tokenize, [*refs, *hyps])
    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True) if name == "13a" else \
        rouge_scorer.RougeScorer([kind], tokenizer=_SacrebleuTokens(name))
    return float(sum(scorer.score(r, h)[kind].fmeasure for r, h in zip(refs, hyps, strict=False))
                 / len(refs))


def rouge_l(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "auto") -> float:
    """Mean ROUGE-L F1 (longest common subsequence)."""
    return _rouge("rougeL", refs, hyps, tokenize)


def rouge_1(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "auto") -> float:
    """Mean ROUGE-1 F1 (unigram overlap)."""
    return _rouge("rouge1", refs, hyps, tokenize)


def rouge_2(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "auto") -> float:
    """Mean ROUGE-2 F1 (bigram overlap)."""
    return _rouge("rouge2", refs, hyps, tokenize)


def bleu(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "auto") -> float:
    """Corpus BLEU (sacrebleu, 0-100) with the tokenizer resolve_tokenize picks."""
    import sacrebleu

    if not refs:
        return 0.0
    name = resolve_tokenize(tokenize, [*refs, *hyps])
    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)], tokenize=name).score)


def exact_match(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "auto") -> float:
    if not refs:
        return 0.0
    return sum(r.strip() == h.strip() for r, h in zip(refs, hyps, strict=False)) / len(refs)


_CLS: dict[str, Callable[[Sequence[str], Sequence[str], Sequence[str]], float]] = {
    "accuracy": accuracy, "macro_f1": macro_f1}
_GEN: dict[str, Callable[[Sequence[str], Sequence[str], str], float]] = {
    "rouge_l": rouge_l, "rouge_1": rouge_1, "rouge_2": rouge_2, "bleu": bleu,
    "exact_match": exact_match}


#: Generation metrics computed from the model's log-probs, not from the generated text
#: (unified_prompt.perplexity).
MODEL_METRICS = ("perplexity",)


def check_metric_names(names: Sequence[str], task: str) -> None:
    known = {"classification": list(_CLS), "qa": list(QA), "ner": list(NER)}.get(
        task, [*_GEN, *MODEL_METRICS])
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
                       names: Sequence[str] = ("rouge_l", "bleu"),
                       tokenize: str = "auto") -> dict[str, float]:
    """`tokenize` (eval.tokenize): how BLEU and ROUGE split text; see resolve_tokenize."""
    check_metric_names(names, "generation")
    return {n: round(_GEN[n](refs, hyps, tokenize), 6) for n in names if n in _GEN}
