"""Verbalizers: each label as one or more words, and how word scores become label scores.

Backends return one log-probability per (example, word); everything after that is
framework-neutral and lives here, so every backend turns word scores into label scores,
losses and predictions with the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from unified_prompt.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

WordReduction = Literal["sum", "mean"]


@dataclass(frozen=True)
class WordScores:
    """What a backend's `score` returns.

    logprob[i, w]: log P(word w | prompt i), summed over the word's tokens.
    n_tokens[i, w]: how many tokens that word took (for length normalisation).
    exact: False when the backend could only score the first token (hosted chat models).
    """

    logprob: np.ndarray
    n_tokens: np.ndarray
    exact: bool = True


class Verbalizer:
    """Labels in a fixed order, each with its words (multi-token and Chinese words allowed)."""

    def __init__(self, mapping: Mapping[str, str | Sequence[str]]) -> None:
        if not mapping:
            raise ConfigError("prompt.verbalizer: needs at least two labels",
                              problems=[("prompt.verbalizer", "empty")])
        self.labels: tuple[str, ...] = tuple(str(k) for k in mapping)
        words: dict[str, tuple[str, ...]] = {}
        owner: dict[str, str] = {}
        for label, value in mapping.items():
            items = (value,) if isinstance(value, str) else tuple(value)
            if not items or any(not isinstance(w, str) or not w.strip() for w in items):
                raise ConfigError(f"prompt.verbalizer.{label}: every label needs non-empty words",
                                  problems=[(f"prompt.verbalizer.{label}", "empty word")])
            for w in items:
                if w in owner and owner[w] != label:
                    raise ConfigError(
                        f"prompt.verbalizer: word {w!r} is given for both {owner[w]!r} and {label!r}",
                        problems=[(f"prompt.verbalizer.{label}", "duplicate word")])
                owner[w] = str(label)
            words[str(label)] = items
        self.words = words

    @property
    def flat_words(self) -> tuple[str, ...]:
        return tuple(w for label in self.labels for w in self.words[label])

    @property
    def word_label(self) -> tuple[int, ...]:
        """For each flat word, the index of its label."""
        return tuple(i for i, label in enumerate(self.labels) for _ in self.words[label])

    def label_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ConfigError(
                f"label {label!r} is not in prompt.verbalizer (labels: {', '.join(self.labels)})",
                problems=[("prompt.verbalizer", f"missing label {label!r}")]) from None

    def answer(self, label: str) -> str:
        """The word a demonstration shows for `label` (its first word)."""
        return self.words[label][0]

    def parse(self, text: str) -> str | None:
        """The label a generated answer names: the longest label word it starts with,
        else the word that appears earliest in it; None when it names none."""
        answer = " ".join(text.lower().split())
        pairs = [(w.strip().lower(), label) for label in self.labels for w in self.words[label]]
        starts = [(len(w), label) for w, label in pairs if w and answer.startswith(w)]
        if starts:
            return max(starts)[1]
        found = [(answer.find(w), -len(w), label) for w, label in pairs if w and w in answer]
        return min(found)[2] if found else None

    def to_dict(self) -> dict[str, list[str]]:
        return {label: list(self.words[label]) for label in self.labels}

    def label_scores(self, scores: WordScores, reduction: WordReduction = "sum") -> np.ndarray:
        """(n, labels) log-scores: each word's log-prob (summed or per-token mean),
        then log-sum-exp over the label's words (the probability of saying any of them)."""
        import numpy as np

        lp = np.asarray(scores.logprob, dtype=np.float64)
        if reduction == "mean":
            lp = lp / np.maximum(np.asarray(scores.n_tokens, dtype=np.float64), 1.0)
        index = np.asarray(self.word_label)
        out = np.full((lp.shape[0], len(self.labels)), -np.inf)
        with np.errstate(divide="ignore"):
            for j in range(len(self.labels)):
                cols = lp[:, index == j]
                top = cols.max(axis=1, keepdims=True)
                safe = np.where(np.isfinite(top), top, 0.0)
                out[:, j] = (safe + np.log(np.exp(cols - safe).sum(axis=1, keepdims=True)))[:, 0]
        return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    import numpy as np

    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    z = x - top
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
