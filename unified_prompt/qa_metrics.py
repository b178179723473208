"""Question-answering scores as SQuAD's evaluation defines them: exact match and token F1
of the normalised answer, the best over an example's gold answers, averaged over examples.

Normalisation follows SQuAD (lower-case, drop punctuation and the articles a/an/the,
collapse whitespace). Text with Chinese or Japanese characters has no spaces to split on,
so, as the CMRC 2018 and DuReader evaluations do, each such character is a token (Latin
words and numbers inside it stay whole) and Unicode punctuation (，。「」) is dropped too.
`eval.tokenize` makes the choice as for BLEU and ROUGE: `auto` splits characters when any
answer or prediction holds CJK characters; `zh` or `char` always, any other name never.
Scores are fractions (0-1), like the library's other metrics; SQuAD's script prints x100.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

from unified_prompt.metrics import QA, check_metric_names, resolve_tokenize

_ARTICLES = frozenset(("a", "an", "the"))
#: One CJK ideograph or kana (a token on its own), or a run of other non-space characters.
_TOKEN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|"
                    "[^\\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ASCII_PUNCT = frozenset(string.punctuation)


def _is_punct(char: str) -> bool:
    return char in _ASCII_PUNCT or unicodedata.category(char).startswith("P")


def answer_tokens(text: str, by_char: bool = False) -> list[str]:
    """SQuAD-normalised tokens of `text`; `by_char`: each CJK character its own token."""
    text = "".join(c for c in text.lower() if not _is_punct(c))
    words = _TOKEN.findall(text) if by_char else text.split()
    return [w for w in words if w not in _ARTICLES]


def token_f1(pred: Sequence[str], gold: Sequence[str]) -> float:
    """Harmonic mean of token precision and recall (bag of tokens); 1 if both are empty."""
    if not pred or not gold:
        return float(list(pred) == list(gold))
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _by_char(tokenize: str, golds: Sequence[Sequence[str]], preds: Sequence[str]) -> bool:
    return resolve_tokenize(tokenize, [*preds, *(a for g in golds for a in g)]) in ("zh", "char")


def _best(score: Callable[[list[str], list[str]], float], golds: Sequence[Sequence[str]],
          preds: Sequence[str], tokenize: str) -> float:
    if not golds:
        return 0.0
    by_char = _by_char(tokenize, golds, preds)
    total = 0.0
    for answers, pred in zip(golds, preds, strict=True):
        p = answer_tokens(pred, by_char)
        total += max((score(p, answer_tokens(a, by_char)) for a in answers), default=0.0)
    return total / len(golds)


def qa_exact_match(golds: Sequence[Sequence[str]], preds: Sequence[str],
                   tokenize: str = "auto") -> float:
    """Share of predictions equal to some gold answer after normalisation."""
    return _best(lambda p, g: float(p == g), golds, preds, tokenize)


def qa_f1(golds: Sequence[Sequence[str]], preds: Sequence[str], tokenize: str = "auto") -> float:
    """Mean over examples of the best token F1 against any gold answer."""
    return _best(token_f1, golds, preds, tokenize)


QA_METRICS: dict[str, Callable[[Sequence[Sequence[str]], Sequence[str], str], float]] = {
    "exact_match": qa_exact_match, "f1": qa_f1}


def qa_metrics(golds: Sequence[Sequence[str]], preds: Sequence[str],
               names: Sequence[str] = QA, tokenize: str = "auto") -> dict[str, float]:
    """`golds[i]`: the acceptable answers of example i; `preds[i]`: its generated answer."""
    check_metric_names(names, "qa")
    return {n: round(QA_METRICS[n](golds, preds, tokenize), 6) for n in names}
