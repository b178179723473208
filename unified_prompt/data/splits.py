"""Deterministic stratified splits and k-shot samples.

Splits use their own seed (data.split.seed) so changing the experiment seed never moves
an example between train and test; k-shot samples use the experiment seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from unified_prompt.data.example import Example

SPLITS = ("train", "dev", "test")


def _groups(examples: Sequence[Example]) -> dict[str | None, list[Example]]:
    groups: dict[str | None, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.label, []).append(ex)
    return groups


def _sorted_keys(groups: dict[str | None, list[Example]]) -> list[str | None]:
    return sorted(groups, key=lambda k: (k is None, k or ""))


def split_examples(examples: Sequence[Example], fractions: dict[str, float],
                   seed: int) -> dict[str, list[Example]]:
    """Cut into named splits, stratified by label, each split shuffled by `seed`.

    Each label's group is shuffled, then cut by rounded cumulative fractions, so every
    split gets each label in proportion (within one example).
    """
    rng = random.Random(seed)
    names = [n for n in fractions if fractions[n] > 0]
    out: dict[str, list[Example]] = {n: [] for n in fractions}
    groups = _groups(examples)
    for key in _sorted_keys(groups):
        items = list(groups[key])
        rng.shuffle(items)
        start, acc = 0, 0.0
        for i, name in enumerate(names):
            acc += fractions[name]
            end = len(items) if i == len(names) - 1 else round(acc * len(items))
            out[name].extend(items[start:end])
            start = end
    for name in out:
        random.Random(f"{seed}:{name}").shuffle(out[name])
    return out


def k_shot(examples: Sequence[Example], k: int, seed: int) -> list[Example]:
    """k examples per label (or k in all when unlabelled), drawn by `seed`, then shuffled."""
    rng = random.Random(seed)
    groups = _groups(examples)
    picked: list[Example] = []
    for key in _sorted_keys(groups):
        items = groups[key]
        picked.extend(rng.sample(items, min(k, len(items))))
    rng.shuffle(picked)
    return picked
