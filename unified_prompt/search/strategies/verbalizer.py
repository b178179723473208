"""Label-word search: read the model's own next-token distribution at the mask on training
examples of each label (top_tokens), keep the words that separate the labels best, then
choose among their combinations on the dev objective.

All candidate words are scored on the dev prompts in one pass (one call per prompt), so every
combination after that is free: the whole search costs probe + one dev pass.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from typing import TYPE_CHECKING

from pydantic import Field

from unified_prompt.search.strategies.base import PlanInput, Strategy, StrategyOptions, StrategyPlan

if TYPE_CHECKING:
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.context import SearchContext

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class VerbalizerOptions(StrategyOptions):
    probe_per_label: int = Field(16, ge=1, description="Training examples per label read.")
    top_k: int = Field(30, ge=1, description="Next tokens read per probe example.")
    candidates_per_label: int = Field(5, ge=1, description="Words kept per label.")
    max_words: int = Field(2, ge=1, description="Most words per label in one candidate.")
    min_presence: float = Field(0.25, ge=0, le=1, description="A word must be in the top-k "
                                "of at least this share of its label's probe examples.")
    product_limit: int = Field(400, ge=1, description="Try every one-word-per-label combination "
                                                      "when there are at most this many.")


class VerbalizerSearch(Strategy):
    name = "verbalizer"
    summary = "label words from the model's own next-token distribution (top_tokens), checked on dev"
    Options = VerbalizerOptions
    needs = ("score", "top_tokens")
    options: VerbalizerOptions

    def plan(self, info: PlanInput) -> StrategyPlan:
        o = self.options
        probe = o.probe_per_label * info.n_labels
        dev = info.dev_pass
        return StrategyPlan(min_calls=dev + probe + dev, lines=[
            f"baseline: {dev} calls (original words on {info.n_dev} dev examples)",
            f"probe: top-{o.top_k} next tokens on {probe} training examples ({probe} calls)",
            f"dev pass: every candidate word on the dev examples at once ({dev} calls); "
            "each combination of words is then scored without further calls"])

    # -- candidates from the model's distribution --------------------------------------
    def _candidate_words(self, ctx: SearchContext, base: Candidate) -> dict[str, list[str]]:
        import numpy as np

        o = self.options
        labels = [label for label, _ in base.words]
        by_label = defaultdict(list)
        for ex in ctx.train:
            by_label[ex.label].append(ex)
        probe, owner = [], []
        for j, label in enumerate(labels):
            pool = by_label.get(label, [])
            probe += ctx.sample(pool, o.probe_per_label)
            owner += [j] * min(o.probe_per_label, len(pool))
        _, builder = ctx.objective.builder(base)
        prompts = builder.render(probe)
        ctx.meter.charge(ctx.objective.pricer.score(prompts, 1))
        tops = ctx.backend.top_tokens(ctx.model, prompts, o.top_k,
                                      batch_size=ctx.spec.eval.batch_size)
        # log-prob of each word at each probe prompt; a word outside an example's top-k is
        # given that example's k-th log-prob (an upper bound), so absence counts against it
        floor = np.array([min((lp for _, lp in row), default=-50.0) for row in tops])
        table: dict[str, np.ndarray] = {}
        for i, row in enumerate(tops):
            for text, logprob in row:
                word = text.strip()
                if not _WORD.fullmatch(word):
                    continue
                if word not in table:
                    table[word] = np.full(len(tops), np.nan)
                if np.isnan(table[word][i]):
                    table[word][i] = float(logprob)
        owner_a = np.asarray(owner, dtype=int)
        taken: set[str] = {w for _, ws in base.words for w in ws}
        ranked: dict[str, list[tuple[float, str]]] = {label: [] for label in labels}
        for word, column in sorted(table.items()):
            present = ~np.isnan(column)
            lp = np.where(present, column, floor)
            means = np.array([lp[owner_a == j].mean() if (owner_a == j).any() else -np.inf
                              for j in range(len(labels))])
            j = int(np.argmax(means))
            if present[owner_a == j].mean() < o.min_presence:
                continue
            others = np.delete(means, j)
            ranked[labels[j]].append((float(means[j] - others.max()), word))
        out: dict[str, list[str]] = {}
        for label in labels:
            words = [w for s, w in sorted(ranked[label], key=lambda t: (-t[0], t[1]))
                     if s > 0 and w not in taken][: o.candidates_per_label]
            out[label] = words
        ctx.extras["probe"] = {label: words for label, words in out.items()}
        return out

    # -- combinations ------------------------------------------------------------------
    def search(self, ctx: SearchContext) -> None:
        import numpy as np

        assert ctx.original is not None
        base = ctx.original
        o = self.options
        found = self._candidate_words(ctx, base)
        original = dict(base.words)
        # one unit per label: the original word set, then each new word alone
        units = {label: [tuple(original[label])] + [(w,) for w in found[label]]
                 for label in original}
        pool = list(dict.fromkeys(w for us in units.values() for u in us for w in u))
        ws, ref = ctx.objective.word_scores(base, pool, ctx.dev,
                                            contextual="contextual" in ctx.calibrations)
        labels = list(original)

        def consider(choice: tuple[tuple[str, ...], ...], origin: str) -> tuple[float, float]:
            words = tuple((label, ws_) for label, ws_ in zip(labels, choice, strict=False))
            best_value = (-np.inf, -np.inf)
            for cand in ctx.variants(base.with_(words=words, origin=origin)):
                key = cand.key()
                if key not in tried:
                    score = ctx.objective.verbalizer_score(cand, pool, ws, ref, ctx.dev)
                    ctx.record(cand, score)
                    tried[key] = score.key(ctx.select_by)
                best_value = max(best_value, tried[key])
            return best_value

        tried: dict[str, tuple[float, float]] = {}
        sizes = [len(units[label]) for label in labels]
        if int(np.prod(sizes)) <= o.product_limit:
            for choice in itertools.product(*(units[label] for label in labels)):
                consider(choice, "verbalizer:product")
        current = [units[label][0] for label in labels]
        best = consider(tuple(current), "verbalizer:ascent")
        for _ in range(2):  # coordinate ascent, one label at a time
            for j, label in enumerate(labels):
                for unit in units[label]:
                    trial = list(current)
                    trial[j] = unit
                    value = consider(tuple(trial), "verbalizer:ascent")
                    if value > best:
                        best, current = value, trial
        # grow each label's set with its next-best words while the dev score rises
        for j, label in enumerate(labels):
            for unit in units[label][1:]:
                if len(current[j]) >= o.max_words or unit[0] in current[j]:
                    continue
                if any(unit[0] in c for c in current):
                    continue
                trial = list(current)
                trial[j] = current[j] + unit
                value = consider(tuple(trial), "verbalizer:grow")
                if value > best:
                    best, current = value, trial

