"""Requests, tokens and dollars: counted per run, estimated before a run, and held under a
budget.

A request reserves its estimated tokens and cost before it is sent and settles to the
actual usage the host reports, so concurrent requests cannot together overshoot a budget:
the one that would cross it fails with BudgetExceededError instead of being sent.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from unified_prompt.errors import BudgetExceededError
from unified_prompt_openai.options import Price

#: List prices (USD per million tokens) when this was written; override with options.prices.
#: `ft:` models use the "ft:<base>" entry. Hosts other than OpenAI's are unpriced (cost 0)
#: unless configured.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, output=0.60, training=3.00),
    "ft:gpt-4o-mini": Price(input=0.30, output=1.20),
    "gpt-4o": Price(input=2.50, output=10.00, training=25.00),
    "ft:gpt-4o": Price(input=3.75, output=15.00),
    "gpt-4.1": Price(input=2.00, output=8.00, training=25.00),
    "ft:gpt-4.1": Price(input=3.00, output=12.00),
    "gpt-4.1-mini": Price(input=0.40, output=1.60, training=5.00),
    "ft:gpt-4.1-mini": Price(input=0.80, output=3.20),
    "gpt-4.1-nano": Price(input=0.10, output=0.40, training=1.50),
    "ft:gpt-4.1-nano": Price(input=0.20, output=0.80),
    "gpt-3.5-turbo": Price(input=0.50, output=1.50, training=8.00),
    "ft:gpt-3.5-turbo": Price(input=3.00, output=6.00),
    "davinci-002": Price(input=2.00, output=2.00, training=6.00),
    "ft:davinci-002": Price(input=12.00, output=12.00),
    "babbage-002": Price(input=0.40, output=0.40, training=0.40),
    "ft:babbage-002": Price(input=1.60, output=1.60),
}
BATCH_DISCOUNT = 0.5


class PriceTable:
    def __init__(self, overrides: dict[str, Price] | None = None) -> None:
        self.prices = {**DEFAULT_PRICES, **(overrides or {})}

    def lookup(self, model: str) -> Price | None:
        """Exact id, else the longest table key the id starts with ('gpt-4o-mini-2024-07-18'
        -> 'gpt-4o-mini'); 'ft:base:org:suffix:id' looks up 'ft:base' then 'base'."""
        if model in self.prices:
            return self.prices[model]
        candidates = [model]
        if model.startswith("ft:"):
            base = model.split(":")[1] if model.count(":") >= 1 else model
            candidates = [f"ft:{base}", base]
        for name in candidates:
            keys = [k for k in self.prices if name.startswith(k)]
            if keys:
                return self.prices[max(keys, key=len)]
        return None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             *, batch: bool = False) -> float | None:
        price = self.lookup(model)
        if price is None:
            return None
        cost = (prompt_tokens * price.input + completion_tokens * price.output) / 1e6
        return cost * (BATCH_DISCOUNT if batch else 1.0)


@dataclass
class Reservation:
    tokens: int
    cost: float


class Accounting:
    """Thread-safe counters; `usage()` is what metrics.json records."""

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices
        self._lock = threading.Lock()
        self.requests = 0
        self.cached = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.trained_tokens = 0
        self.cost = 0.0
        self.errors: Counter[str] = Counter()
        self.unpriced: set[str] = set()
        self.notes: Counter[str] = Counter()
        self.max_requests: int | None = None
        self.max_tokens: int | None = None
        self.max_cost: float | None = None
        self._reserved_tokens = 0
        self._reserved_cost = 0.0
        self._reserved_requests = 0

    def set_limits(self, *, max_requests: int | None, max_tokens: int | None,
                   max_cost: float | None) -> None:
        self.max_requests, self.max_tokens, self.max_cost = max_requests, max_tokens, max_cost

    # -- budget --------------------------------------------------------------------------
    def check_plan(self, requests: int, tokens: int, cost: float, what: str) -> None:
        """Refuse work whose estimate alone would cross the budget, before sending anything."""
        with self._lock:
            self._check(requests, tokens, cost, what, estimate=True)

    def _check(self, requests: int, tokens: int, cost: float, what: str, *,
               estimate: bool) -> None:
        kind = "would need about" if estimate else "would reach"
        if self.max_requests is not None and \
                self.requests + self._reserved_requests + requests > self.max_requests:
            raise BudgetExceededError(
                f"budget.max_requests={self.max_requests}: {what} {kind} "
                f"{self.requests + self._reserved_requests + requests} requests "
                f"({self.requests} spent); stopped before sending")
        if self.max_tokens is not None and \
                self.total_tokens + self._reserved_tokens + tokens > self.max_tokens:
            raise BudgetExceededError(
                f"budget.max_tokens={self.max_tokens}: {what} {kind} "
                f"{self.total_tokens + self._reserved_tokens + tokens} tokens "
                f"({self.total_tokens} spent); stopped before sending")
        if self.max_cost is not None and \
                self.cost + self._reserved_cost + cost > self.max_cost + 1e-12:
            raise BudgetExceededError(
                f"budget.max_cost_usd={self.max_cost}: {what} {kind} "
                f"${self.cost + self._reserved_cost + cost:.4f} (${self.cost:.4f} spent); "
                "stopped before sending")

    def reserve(self, model: str, prompt_tokens: int, completion_tokens: int, *,
                batch: bool = False) -> Reservation:
        cost = self.prices.cost(model, prompt_tokens, completion_tokens, batch=batch) or 0.0
        tokens = prompt_tokens + completion_tokens
        with self._lock:
            self._check(1, tokens, cost, f"a request to {model}", estimate=False)
            self._reserved_requests += 1
            self._reserved_tokens += tokens
            self._reserved_cost += cost
        return Reservation(tokens, cost)

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            self._reserved_requests -= 1
            self._reserved_tokens -= reservation.tokens
            self._reserved_cost -= reservation.cost

    # -- what was spent ------------------------------------------------------------------
    def record(self, model: str, prompt_tokens: int, completion_tokens: int, *,
               batch: bool = False) -> None:
        cost = self.prices.cost(model, prompt_tokens, completion_tokens, batch=batch)
        with self._lock:
            self.requests += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            if cost is None:
                self.unpriced.add(model)
            else:
                self.cost += cost

    def record_training(self, model: str, trained_tokens: int) -> None:
        price = self.prices.lookup(model)
        with self._lock:
            self.trained_tokens += trained_tokens
            if price is None or not price.training:
                self.unpriced.add(f"{model} (training)")
            else:
                self.cost += trained_tokens * price.training / 1e6

    def record_cached(self) -> None:
        with self._lock:
            self.cached += 1

    def record_error(self, label: str, *, retried: bool) -> None:
        with self._lock:
            self.errors[label] += 1
            if retried:
                self.retries += 1

    def note(self, text: str) -> None:
        with self._lock:
            self.notes[text] += 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                "requests": self.requests, "cached_requests": self.cached,
                "retries": self.retries, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens,
                "cost_usd": round(self.cost, 6)}
            if self.trained_tokens:
                out["trained_tokens"] = self.trained_tokens
            if self.errors:
                out["errors"] = dict(sorted(self.errors.items()))
            if self.unpriced:
                out["unpriced_models"] = sorted(self.unpriced)
            if self.notes:
                out["notes"] = [f"{text} (x{n})" if n > 1 else text
                                for text, n in self.notes.items()]
            return out
