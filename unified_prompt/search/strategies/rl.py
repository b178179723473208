"""Discrete prompt tokens learned by reinforcement (RLPrompt, Deng et al. 2022).

A small numpy policy (one softmax per prompt position over a word list) samples prompts;
each is rewarded with the target model's label scores on a minibatch (the gap between the
gold label's calibrated log-probability and the best other label's, clipped, as RLPrompt
does; on a generation spec, the task's metric of the outputs generated on the minibatch),
and the policy is trained by REINFORCE with the batch mean as baseline. Every few steps
the policy's most likely prompt is checked on the full dev objective. Only `score` (on
generation, `generate`) is needed, so this runs on hosted backends too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from unified_prompt.search.objective import AnyScore, score_from
from unified_prompt.search.slots import Position, slot_sizes, slot_template, spaced_fill, write
from unified_prompt.search.strategies.base import PlanInput, Strategy, StrategyOptions, StrategyPlan
from unified_prompt.search.vocab import prompt_vocabulary

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.prompts.template import Template
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.context import SearchContext


class RLOptions(StrategyOptions):
    tokens: int = Field(2, ge=1, description="Prompt words (when no slots template is given).")
    position: Position = "after_text"
    slots: str | None = Field(None, description="A template with {soft:N} slots for the words.")
    vocab: list[str] | None = Field(None, description="Candidate words (default: general "
                                                      "prompt words + frequent data words).")
    data_words: int = Field(32, ge=0)
    samples: int = Field(4, ge=2, description="Prompts sampled per step.")
    batch: int = Field(16, ge=1, description="Reward examples per step.")
    reward_split: Literal["dev", "train"] = "dev"
    steps: int = Field(60, ge=1)
    check_every: int = Field(5, ge=1, description="Steps between dev checks of the greedy prompt.")
    lr: float = Field(1.0, gt=0)
    entropy: float = Field(0.01, ge=0)
    clip: float = Field(5.0, gt=0, description="Reward margins are clipped to [-clip, clip].")


class RLSearch(Strategy):
    name = "rl"
    summary = "prompt words from a numpy policy trained by REINFORCE on label-score rewards"
    Options = RLOptions
    needs = ("score",)
    tasks = ("classification", "generation", "qa")
    options: RLOptions

    def plan(self, info: PlanInput) -> StrategyPlan:
        o = self.options
        dev = info.dev_pass
        step = o.samples * o.batch
        return StrategyPlan(min_calls=dev + step + dev, lines=[
            f"baseline: {dev} calls (original template on {info.n_dev} dev examples)",
            f"each step: {o.samples} sampled prompts x {o.batch} {o.reward_split} examples "
            f"= {step} calls; every {o.check_every} steps a dev check ({dev} calls)",
            f"up to {o.steps} steps: {o.steps * step + (o.steps // o.check_every) * dev:,} calls"])

    def _candidate(self, base: Candidate, slots: Template, words: list[str],
                   action: np.ndarray) -> Candidate:
        fills, k = {}, 0
        for slot, size in sorted(slot_sizes(slots).items()):
            fills[slot] = " ".join(words[int(a)] for a in action[k:k + size])
            k += size
        return base.with_(template=write(slots, spaced_fill(slots, fills)), origin="rl")

    def _reward(self, ctx: SearchContext, cand: Candidate, batch: list) -> tuple[AnyScore, float]:
        """The minibatch score and the reward: the task's metric of the generated outputs
        (generation), or the gold label's calibrated margin over the best other label,
        clipped (classification, as RLPrompt)."""
        import numpy as np

        if ctx.objective.generation:
            score = ctx.objective.score(cand, batch)
            return score, float(score.value)
        o = self.options
        lp = ctx.objective.label_logprobs(cand, batch)
        gold = np.asarray(ctx.objective.gold(cand, batch))
        rows = np.arange(len(gold))
        others = lp.copy()
        others[rows, gold] = -np.inf
        margin = np.clip(lp[rows, gold] - others.max(axis=1), -o.clip, o.clip)
        return score_from(lp, gold), float(margin.mean())

    def search(self, ctx: SearchContext) -> None:
        import numpy as np

        from unified_prompt.search.policy import PositionPolicy

        assert ctx.original is not None
        o = self.options
        base = ctx.original
        slots = slot_template(base.template, o.tokens, o.position, o.slots)
        words = prompt_vocabulary(ctx.train, o.data_words, o.vocab)
        positions = sum(slot_sizes(slots).values())
        policy = PositionPolicy(positions, len(words), ctx.rng, lr=o.lr, entropy=o.entropy)
        pool = ctx.dev if o.reward_split == "dev" else ctx.train
        ctx.extras["rl"] = {"words": words, "positions": positions}
        for step in range(1, o.steps + 1):
            batch = ctx.sample(pool, o.batch)
            actions = policy.sample(o.samples)
            rewards = []
            for action in actions:
                cand = ctx.for_batch(self._candidate(base, slots, words, action))
                score, reward = self._reward(ctx, cand, batch)
                rewards.append(reward)
                ctx.record(cand, score, scope=f"batch:{len(batch)}", step=step,
                           reward=round(reward, 6))
            policy.update(actions, np.asarray(rewards))
            if step % o.check_every == 0 or step == o.steps:
                ctx.consider(self._candidate(base, slots, words, policy.greedy()), step=step,
                             policy="greedy")
