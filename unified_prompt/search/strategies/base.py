"""The shape every search strategy has: options, the primitives it needs, a plan, a search."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from unified_prompt.errors import ConfigError

if TYPE_CHECKING:
    from unified_prompt.backend import Backend
    from unified_prompt.search.context import SearchContext

#: Primitive -> (Capabilities attribute, what the user reads).
PRIMITIVES: dict[str, tuple[str, str]] = {
    "score": ("score", "label-word scoring (Backend.score)"),
    "generate": ("generate", "text generation (Backend.generate)"),
    "top_tokens": ("top_tokens", "next-token distributions (Backend.top_tokens)"),
    "token_gradients": ("token_gradients",
                        "token gradients (Backend.token_gradients, vocabulary, tokenize)"),
}


class StrategyOptions(BaseModel):
    """Options every strategy shares; each strategy adds its own. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    dev_limit: int = Field(200, ge=1, description="Dev examples in the objective (the first N "
                                                  "of the fixed dev split).")
    select_by: Literal["margin", "accuracy"] = Field(
        "margin", description="What makes a candidate best on dev: the mean log-probability "
        "of the gold label (then accuracy), or accuracy (then that). One dev example moves "
        "accuracy by 1/n, so with a few hundred examples accuracy picks noise.")


@dataclass(frozen=True)
class Plan:
    """Calls a strategy needs at least (one useful step after the baseline), and what it
    will do with the budget, in words, for --dry-run."""

    min_calls: int
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlanInput:
    """What a plan is computed from, before any model is loaded."""

    n_dev: int
    n_train: int
    n_labels: int
    calibration_calls: int
    budget_calls: int
    content_free: int = 3


class Strategy(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    needs: ClassVar[tuple[str, ...]] = ("score",)

    def __init__(self, options: StrategyOptions | dict[str, Any] | None = None) -> None:
        if options is None or isinstance(options, dict):
            options = self.parse_options(options or {})
        self.options = options

    @classmethod
    def parse_options(cls, raw: dict[str, Any]) -> StrategyOptions:
        try:
            return cls.Options.model_validate(raw)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(["search", cls.name, *map(str, err["loc"])])
                msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append((key, msg))
            text = "\n  ".join(f"{k}: {m}" for k, m in problems)
            raise ConfigError(f"invalid options for search strategy {cls.name!r}\n  {text}",
                              problems=problems) from None

    def other_backends(self, target: Backend) -> list[tuple[Backend, tuple[str, ...], str]]:
        """(backend, primitives, role) for backends besides the target (the proposer)."""
        return []

    @abstractmethod
    def plan(self, info: PlanInput) -> Plan: ...

    @abstractmethod
    def search(self, ctx: SearchContext) -> None:
        """Propose candidates and `ctx.consider` them until done or BudgetExhausted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release backends the strategy opened itself."""
