"""The shape every search strategy has: options, the primitives it needs, a plan, a search."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from unified_prompt.backend import validate_options
from unified_prompt.config import CalibrationMethod
from unified_prompt.search.objective import SelectBy

if TYPE_CHECKING:
    from unified_prompt.backend import Backend
    from unified_prompt.search.context import SearchContext

#: Primitive (a Capabilities attribute) -> what the user reads.
PRIMITIVES: dict[str, str] = {
    "score": "label-word scoring (Backend.score)",
    "generate": "text generation (Backend.generate)",
    "top_tokens": "next-token distributions (Backend.top_tokens)",
    "token_gradients": "token gradients (Backend.token_gradients, vocabulary, tokenize)",
}


class StrategyOptions(BaseModel):
    """Options every strategy shares; each strategy adds its own. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dev_limit: int = Field(200, ge=1, description="Dev examples in the objective (the first N "
                                                  "of the fixed dev split).")
    select_by: SelectBy = Field(
        "margin", description="What makes a candidate best on dev: the mean log-probability "
        "of the gold label (then accuracy), or accuracy (then that). One dev example moves "
        "accuracy by 1/n, so with a few hundred examples accuracy picks noise. Generation "
        "specs: metric (the spec's first eval metric, the only choice and the default).")
    calibrations: list[CalibrationMethod] | None = Field(
        None, description="Also choose the calibration of the label scores among these: each "
        "candidate is scored under each (none and batch from the same label scores, at no "
        "further calls; contextual adds the content-free inputs' calls). Default: the spec's "
        "own only.")
    confirm: int = Field(0, ge=0, description="Dev examples after the objective's (the next N "
                         "of the fixed dev split, which the search never sees) on which the "
                         "original and the best candidates are scored again; the best there "
                         "is the result. 0: off. Guards against a dev gain that is noise.")
    confirm_top: int = Field(3, ge=1, description="Candidates (distinct prompts, best on the "
                             "objective first) checked on the confirm examples.")
    confirm_by: SelectBy = Field(
        "margin", description="What picks the result on the confirm examples. Margin by "
        "default whatever select_by is: candidates that led the objective are near-equal "
        "in accuracy, and accuracy on a few hundred examples picks among them by chance.")


    def selection(self, task: str) -> tuple[SelectBy, SelectBy]:
        """(select_by, confirm_by) for a spec's task: generation has only its metric (no
        label, no margin), classification has no "metric" choice."""
        from unified_prompt.errors import UserInputError

        chosen = {k: getattr(self, k) for k in ("select_by", "confirm_by")}
        if task != "classification":  # generation and qa
            bad = [k for k in chosen if k in self.model_fields_set and chosen[k] != "metric"]
            if bad:
                raise UserInputError(f"search option {bad[0]}={chosen[bad[0]]}: a generation "
                                     "spec is judged by its metric (the spec's first eval "
                                     "metric); margin and accuracy are classification scores")
            if self.calibrations:
                raise UserInputError("search option calibrations: calibration applies to label "
                                     "scores; a generation spec has none")
            return "metric", "metric"
        bad = [k for k, v in chosen.items() if v == "metric"]
        if bad:
            raise UserInputError(f"search option {bad[0]}=metric is for generation specs; a "
                                 "classification search selects by margin or accuracy")
        return chosen["select_by"], chosen["confirm_by"]


@dataclass(frozen=True)
class StrategyPlan:
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

    @property
    def dev_pass(self) -> int:
        """Calls that score one prompt on the dev objective (with its calibration inputs)."""
        return self.n_dev + self.calibration_calls


class Strategy(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    needs: ClassVar[tuple[str, ...]] = ("score",)
    #: Spec tasks the strategy searches; on generation the target generates instead of
    #: scoring label words.
    tasks: ClassVar[tuple[str, ...]] = ("classification",)

    def needs_for(self, task: str) -> tuple[str, ...]:
        """The target primitives a search of `task` needs."""
        if task != "classification":  # generation and qa generate
            return tuple(dict.fromkeys("generate" if p == "score" else p for p in self.needs))
        return self.needs

    def __init__(self, options: StrategyOptions | dict[str, Any] | None = None) -> None:
        if options is None or isinstance(options, dict):
            options = self.parse_options(options or {})
        self.options = options

    @classmethod
    def parse_options(cls, raw: dict[str, Any]) -> StrategyOptions:
        return validate_options(cls.Options, raw, where=f"search.{cls.name}",
                                title=f"invalid options for search strategy {cls.name!r}",
                                unknown="unknown option")

    def other_backends(self, target: Backend) -> list[tuple[Backend, tuple[str, ...], str]]:
        """(backend, primitives, role) for backends besides the target (the proposer)."""
        return []

    @abstractmethod
    def plan(self, info: PlanInput) -> StrategyPlan: ...

    @abstractmethod
    def search(self, ctx: SearchContext) -> None:
        """Propose candidates and `ctx.consider` them until done or BudgetExhausted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release backends the strategy opened itself."""
