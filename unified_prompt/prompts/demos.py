"""Choosing few-shot demonstrations: k per label, by seed or by similarity to the query,
or a fixed list of training ids (what a demonstration search writes into its best spec).

Similarity uses TF-IDF cosine (scikit-learn): deterministic, framework-free, so every
backend sees the same demonstrations for the same query.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from unified_prompt.data.example import Example

Selection = Literal["random", "similarity", "fixed"]


class DemoSelector:
    """Picks demonstrations from a pool (the training split) for each query."""

    def __init__(self, pool: Sequence[Example], *, k: int, selection: Selection = "random",
                 seed: int = 0, per_label: bool = True,
                 ids: Sequence[str] | None = None) -> None:
        self.pool = list(pool)
        self.ids = list(ids or [])
        self.k = k
        self.selection = selection
        self.seed = seed
        self.per_label = per_label and all(e.label is not None for e in self.pool)
        self._fixed: list[Example] | None = None
        self._vectorizer = None
        self._matrix = None

    def _groups(self) -> dict[str | None, list[int]]:
        groups: dict[str | None, list[int]] = {}
        for i, ex in enumerate(self.pool):
            groups.setdefault(ex.label if self.per_label else None, []).append(i)
        return groups

    def _random_set(self) -> list[Example]:
        if self._fixed is None:
            rng = random.Random(self.seed)
            chosen: list[int] = []
            for key in sorted(self._groups(), key=lambda x: (x is None, x)):
                idx = self._groups()[key]
                chosen.extend(rng.sample(idx, min(self.k, len(idx))))
            rng.shuffle(chosen)
            self._fixed = [self.pool[i] for i in chosen]
        return self._fixed

    def _fit(self) -> None:
        if self._matrix is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4),
                                               sublinear_tf=True)
            self._matrix = self._vectorizer.fit_transform([e.text for e in self.pool])

    def _listed(self) -> list[Example]:
        """The fixed demonstrations, in the order the spec lists them."""
        if self._fixed is None:
            by_id = {e.id: e for e in self.pool}
            missing = [i for i in self.ids if i not in by_id]
            if missing:
                from unified_prompt.errors import DataError

                shown = ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else "")
                raise DataError(f"prompt.demonstrations.ids: no training example with id {shown} "
                                f"(the pool holds {len(self.pool)} training examples)")
            self._fixed = [by_id[i] for i in self.ids]
        return self._fixed

    def select(self, queries: Sequence[Example]) -> list[list[Example]]:
        """Demonstrations for each query, never the query itself."""
        if self.selection == "fixed":
            fixed = self._listed() if self.ids else []
            return [[d for d in fixed if d.id != q.id] for q in queries]
        if self.k <= 0 or not self.pool:
            return [[] for _ in queries]
        if self.selection == "random":
            fixed = self._random_set()
            return [[d for d in fixed if d.id != q.id] for q in queries]
        self._fit()
        sims = (self._vectorizer.transform([q.text for q in queries]) @ self._matrix.T).toarray()
        groups = self._groups()
        out: list[list[Example]] = []
        for qi, q in enumerate(queries):
            picked: list[tuple[float, int]] = []
            for key in sorted(groups, key=lambda x: (x is None, x)):
                idx = [i for i in groups[key] if self.pool[i].id != q.id]
                ranked = sorted(idx, key=lambda i: (-sims[qi, i], i))[: self.k]
                picked.extend((sims[qi, i], i) for i in ranked)
            picked.sort(key=lambda t: (t[0], t[1]))  # most similar last, nearest the query
            out.append([self.pool[i] for _, i in picked])
        return out
