"""What a search may spend and what it has spent: model calls, tokens and estimated cost.

One prompt scored or generated is one call (a gradient or top-token request for one prompt
too). Work is charged before it is sent: a unit that would not fit raises BudgetExhausted,
so a search stops exactly at its budget and never over it. Tokens and cost come from the
backend's own `estimate` (hosted backends price them; local ones spend nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_prompt.backend import WorkPlan

if TYPE_CHECKING:
    from unified_prompt.backend import Backend
    from unified_prompt.prompts.segments import Rendered

CHARS_PER_TOKEN = 4.0


class BudgetExhausted(Exception):  # noqa: N818 - control flow, not an error the user sees
    """The next unit of work would not fit the budget; the search ends with what it has."""


@dataclass(frozen=True)
class SearchBudget:
    """Limits on the search itself (the final test evaluation is planned and reported apart)."""

    calls: int
    tokens: int | None = None
    cost_usd: float | None = None

    def describe(self) -> str:
        parts = [f"{self.calls:,} calls"]
        if self.tokens is not None:
            parts.append(f"{self.tokens:,} tokens")
        if self.cost_usd is not None:
            parts.append(f"${self.cost_usd:g}")
        return ", ".join(parts)


@dataclass
class Spend:
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.calls + other.calls, self.tokens + other.tokens,
                     self.cost_usd + other.cost_usd)

    def scaled(self, factor: float) -> Spend:
        return Spend(math.ceil(self.calls * factor), math.ceil(self.tokens * factor),
                     self.cost_usd * factor)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "tokens": self.tokens, "cost_usd": round(self.cost_usd, 6)}


class Pricer:
    """Turns a batch of prompts into a Spend through `backend.estimate`."""

    def __init__(self, backend: Backend, model_name: str) -> None:
        self.backend = backend
        self.model_name = model_name

    def _spend(self, plan: WorkPlan, calls: int, fallback_tokens: int) -> Spend:
        est = self.backend.estimate(plan)
        tokens = est.get("prompt_tokens")
        if tokens is None:
            tokens = fallback_tokens
        else:
            tokens = int(tokens) + int(est.get("completion_tokens") or 0)
        return Spend(calls, int(tokens), float(est.get("cost_usd") or 0.0))

    def score(self, prompts: Sequence[Rendered], n_words: int) -> Spend:
        chars = sum(len(p.text()) for p in prompts)
        plan = WorkPlan(model=self.model_name, score_prompts=len(prompts), words=n_words,
                        prompt_chars=chars)
        fallback = math.ceil(chars / CHARS_PER_TOKEN) + len(prompts) * max(1, n_words)
        return self._spend(plan, len(prompts), fallback)

    def generate(self, prompts: Sequence[Rendered], max_new_tokens: int) -> Spend:
        chars = sum(len(p.text()) for p in prompts)
        plan = WorkPlan(model=self.model_name, generate_prompts=len(prompts), prompt_chars=chars,
                        max_new_tokens=max_new_tokens)
        fallback = math.ceil(chars / CHARS_PER_TOKEN) + len(prompts) * max_new_tokens
        return self._spend(plan, len(prompts), fallback)


@dataclass
class Meter:
    """Counts spending per phase; the search phase is held to `budget`."""

    budget: SearchBudget
    on_charge: Callable[[int], None] | None = None
    phases: dict[str, Spend] = field(default_factory=dict)

    @property
    def search(self) -> Spend:
        return self.phases.get("search", Spend())

    @property
    def total(self) -> Spend:
        out = Spend()
        for spend in self.phases.values():
            out = out + spend
        return out

    def fits(self, spend: Spend) -> bool:
        after = self.search + spend
        b = self.budget
        return (after.calls <= b.calls
                and (b.tokens is None or after.tokens <= b.tokens)
                and (b.cost_usd is None or after.cost_usd <= b.cost_usd + 1e-12))

    def charge(self, spend: Spend, phase: str = "search") -> None:
        """Record `spend` before the work is sent; refuse search work that would not fit."""
        if phase == "search" and not self.fits(spend):
            raise BudgetExhausted(
                f"{spend.calls} more calls would pass the budget ({self.budget.describe()}; "
                f"spent {self.search.calls:,})")
        self.phases[phase] = self.phases.get(phase, Spend()) + spend
        if phase == "search" and self.on_charge is not None:
            self.on_charge(spend.calls)

    def usage(self) -> dict[str, Any]:
        return {name: spend.to_dict() for name, spend in self.phases.items()}
