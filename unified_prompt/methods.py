"""The fine-tuning methods, declared once: each one's name, spec class, what it trains and
where it runs (the spec classes hold each method's hyperparameters, beside `method`).

Everything that depends on the set of methods derives from `METHODS`: the spec's
`finetune` union, the {soft}-slot check, which methods a backend may declare in its
Capabilities, whether a run trains locally or as a hosted job, the conformance suite's
parametrisation. Adding a method is a spec class and one `Method` line here, then a module
in each backend that trains it (see README, "Adding a method").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field, model_validator

from unified_prompt.errors import CapabilityError
from unified_prompt.objectives import ObjectiveSpec
from unified_prompt.strict import MAX_DIM, Seed, Strict


# -- the spec classes ------------------------------------------------------------
class TrainSpec(Strict):
    """Hyperparameters every local training method shares."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Overrides epochs when set.")
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float | None = Field(None, gt=0, description="Default depends on the method.")
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, le=1)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0)
    eval_every: int | None = Field(None, ge=1, description="Steps between dev evaluations.")
    eval_limit: int | None = Field(200, ge=1, description="Dev examples used during training.")
    keep_best: bool = True
    early_stopping_patience: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    gradient_checkpointing: bool = False
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp", description="How a run started by a launcher (torchrun, accelerate launch, "
        "paddle.distributed.launch) splits the work: ddp keeps a whole copy of the trained "
        "weights on every process and sums gradients; fsdp shards weights, gradients and "
        "optimizer state across processes (full fine-tuning of models too big for one "
        "device). batch_size stays the global batch either way.")
    seed: Seed | None = Field(None, description="Defaults to the experiment seed.")
    train_limit: int | None = Field(None, ge=1, description="Use only this many training examples.")
    objective: ObjectiveSpec = Field(
        default_factory=ObjectiveSpec, description="What classification training minimises: "
        "cross_entropy, margin or contrastive (unified_prompt.objectives).")

    default_lr: ClassVar[float] = 1e-4

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else self.default_lr


class NoFinetune(Strict):
    method: Literal["none"] = "none"


class PromptTuningSpec(TrainSpec):
    method: Literal["prompt_tuning"]
    num_virtual_tokens: int = Field(20, ge=1, le=MAX_DIM)
    init: Literal["text", "vocab", "random"] = "vocab"
    init_text: str | None = None
    default_lr: ClassVar[float] = 3e-2

    @model_validator(mode="after")
    def _text_init(self) -> PromptTuningSpec:
        if self.init == "text" and not self.init_text:
            raise ValueError("init: text needs init_text")
        return self


class PTuningSpec(TrainSpec):
    method: Literal["p_tuning"]
    num_virtual_tokens: int = Field(20, ge=1, le=MAX_DIM)
    encoder: Literal["mlp", "lstm"] = "mlp"
    encoder_hidden: int = Field(128, ge=1, le=MAX_DIM)
    default_lr: ClassVar[float] = 1e-2


class PrefixTuningSpec(TrainSpec):
    method: Literal["prefix_tuning"]
    num_virtual_tokens: int = Field(20, ge=1, le=MAX_DIM)
    projection: bool = False
    projection_hidden: int = Field(256, ge=1, le=MAX_DIM)
    default_lr: ClassVar[float] = 1e-2


class LoraSpec(TrainSpec):
    method: Literal["lora"]
    r: int = Field(8, ge=1, le=MAX_DIM)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="Default: chosen per architecture.")
    default_lr: ClassVar[float] = 5e-4


class FullSpec(TrainSpec):
    method: Literal["full"]
    default_lr: ClassVar[float] = 2e-5


class HostedSpec(Strict):
    """A fine-tuning job run by the hosted API."""

    method: Literal["hosted"]
    kind: Literal["supervised", "dpo"] = "supervised"
    n_epochs: int | Literal["auto"] = "auto"
    batch_size: int | Literal["auto"] = "auto"
    learning_rate_multiplier: float | Literal["auto"] = "auto"
    beta: float | Literal["auto"] | None = None
    suffix: str | None = Field(None, max_length=64)
    validation: bool = Field(True, description="Upload the dev split as the validation file.")
    poll_seconds: float = Field(10.0, gt=0)
    train_limit: int | None = Field(None, ge=10)
    seed: Seed | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_objective(cls, data: object) -> object:
        if isinstance(data, dict) and "objective" in data:
            raise ValueError("finetune.objective does not apply to method hosted: a hosted job "
                             "trains the host's own objective (supervised or dpo, finetune.kind)")
        return data



@dataclass(frozen=True)
class Method:
    """One fine-tuning method.

    `trains`: "prompt" for virtual-token methods (soft prompts, prefixes: the model's weights
    stay frozen), "weights" for methods that change (or add to) the model's weights,
    "nothing" for no training. `runs`: "local" (a backend's TrainSession under the core's
    loop), "hosted" (a job on the hosted API) or "nowhere". `soft_slots`: trains vectors at
    the template's {soft} slots (the only methods a template with {soft} may use; a
    template without one gets a soft prefix).
    """

    name: str
    spec: type[Strict]
    trains: Literal["nothing", "prompt", "weights"]
    runs: Literal["nowhere", "local", "hosted"]
    soft_slots: bool = False

    @property
    def local(self) -> bool:
        return self.runs == "local"


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("none", NoFinetune, trains="nothing", runs="nowhere"),
    Method("prompt_tuning", PromptTuningSpec, trains="prompt", runs="local", soft_slots=True),
    Method("p_tuning", PTuningSpec, trains="prompt", runs="local", soft_slots=True),
    Method("prefix_tuning", PrefixTuningSpec, trains="prompt", runs="local"),
    Method("lora", LoraSpec, trains="weights", runs="local"),
    Method("full", FullSpec, trains="weights", runs="local"),
    Method("hosted", HostedSpec, trains="weights", runs="hosted"),
)}

#: Methods a backend's TrainSession trains (what Capabilities.methods may hold).
LOCAL_METHODS: tuple[str, ...] = tuple(m.name for m in METHODS.values() if m.local)
#: Methods that train vectors at the template's {soft} slots.
SOFT_SLOT_METHODS: tuple[str, ...] = tuple(m.name for m in METHODS.values() if m.soft_slots)

#: The spec's `finetune` section: one of the registered spec classes, chosen by `method`.
FinetuneSpec = Annotated[Union[tuple(m.spec for m in METHODS.values())],  # noqa: UP007
                         Field(discriminator="method")]


def supported(method: str, local: frozenset[str], hosted: frozenset[str]) -> bool:
    """Whether a backend declaring `local` (Capabilities.methods) and `hosted`
    (.hosted_finetune) can run `method`; "none" needs nothing."""
    info = METHODS.get(method)
    if info is None:
        return False
    if info.runs == "local":
        return method in local
    if info.runs == "hosted":
        return bool(hosted)
    return True


def check_supported(method: str, *, backend: str, local: frozenset[str],
                    hosted: frozenset[str]) -> None:
    """The one check that a backend can run a method: CapabilityError naming what it can."""
    if supported(method, local, hosted):
        return
    can = sorted(local | ({"hosted"} if hosted else set()))
    raise CapabilityError(f"backend {backend!r} cannot train finetune.method {method!r} "
                          f"(it can: {', '.join(can) or 'nothing'})")
