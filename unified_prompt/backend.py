"""The contract between the core and a framework backend.

A backend adds framework primitives only: load a model, score label words, generate,
open a training session (forward/backward/step; the loop itself is the core's), save and
load adapters, run hosted jobs. Everything else (templates, data, the run loop, metrics,
run directories, search) is the core's and is the same for every framework.

Backend modules must not import their framework at module import time: `unified-prompt
backends` and `validate` read the class attributes below without loading torch or paddle.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from unified_prompt.boundary import BACKEND_ACTIONS, SESSION_ACTIONS, guard_class
from unified_prompt.errors import CapabilityError, ConfigError

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.config import BudgetSpec, HostedSpec, TrainSpec
    from unified_prompt.distributed import Launch, World
    from unified_prompt.jobs import Job
    from unified_prompt.prompts.segments import Rendered, Soft
    from unified_prompt.prompts.verbalizer import WordScores

Progress = Callable[[int], None]
"""Called with the number of examples just finished, so the core can draw progress bars."""


class ModelKind(str, Enum):
    CAUSAL = "causal"
    MASKED = "masked"
    CHAT = "chat"
    SEQ2SEQ = "seq2seq"


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the runner and search check these before starting work."""

    score: bool = True
    exact_multi_token: bool = True
    top_logprobs_limit: int | None = None
    generate: bool = True
    methods: frozenset[str] = frozenset()
    adapters: bool = False
    top_tokens: bool = False
    token_gradients: bool = False
    hosted_finetune: frozenset[str] = frozenset()
    raw_text: bool = False
    model_kinds: frozenset[ModelKind] = frozenset({ModelKind.CAUSAL})
    parallel: frozenset[str] = frozenset()
    launchers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def supports_method(self, method: str) -> bool:
        from unified_prompt.methods import supported

        return supported(method, self.methods, self.hosted_finetune)

    def require_method(self, method: str, backend: str) -> None:
        """CapabilityError unless this backend can run `method` (see methods.check_supported)."""
        from unified_prompt.methods import check_supported

        check_supported(method, backend=backend, local=self.methods, hosted=self.hosted_finetune)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score, "exact_multi_token": self.exact_multi_token,
            "top_logprobs_limit": self.top_logprobs_limit, "generate": self.generate,
            "methods": sorted(self.methods), "adapters": self.adapters,
            "top_tokens": self.top_tokens, "token_gradients": self.token_gradients,
            "hosted_finetune": sorted(self.hosted_finetune), "raw_text": self.raw_text,
            "model_kinds": sorted(k.value for k in self.model_kinds),
            "parallel": sorted(self.parallel), "launchers": list(self.launchers),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a loaded model that go into metrics.json and adapter manifests."""

    name: str
    kind: ModelKind
    total_params: int | None = None
    checksum: str | None = None
    tokenizer_checksum: str | None = None
    vocab_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 32
    temperature: float = 0.0
    stop: tuple[str, ...] = ("\n",)
    seed: int | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One token of a text with its log-probability given everything before it.

    `logprob` is None for a text's first token (nothing conditions it); `offset` is the
    character offset of the token in the text; `top` holds the most likely alternatives
    at this position, best first.
    """

    token: str
    logprob: float | None
    offset: int
    top: tuple[tuple[str, float], ...] = ()
    id: int | None = None


@dataclass(frozen=True)
class Generated:
    """Text generated after a raw prompt, token by token (for OpenAI-compatible serving)."""

    text: str
    tokens: tuple[TokenLogprob, ...]
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int


@dataclass(frozen=True)
class TrainItem:
    """One training example, already rendered by the core."""

    prompt: Rendered
    label: int | None = None
    target: str | None = None


@dataclass(frozen=True)
class TrainSetup:
    """Everything a backend needs to build a training session for one method.

    Classification trains label scores (word log-probs reduced by `word_score`, then
    log-sum-exp over each label's words, then cross-entropy), exactly the arithmetic of
    `Verbalizer.label_scores`; generation trains the target's tokens after the mask.
    """

    method: TrainSpec
    task: Literal["classification", "generation"]
    seed: int
    words: tuple[str, ...] = ()
    word_label: tuple[int, ...] = ()
    n_labels: int = 0
    word_score: Literal["sum", "mean"] = "sum"
    soft_slots: tuple[Soft, ...] = ()
    total_steps: int = 0
    work_dir: Path | None = None
    world: World | None = None
    """The processes training together (None or a SingleWorld: this process alone)."""


@dataclass(frozen=True)
class HostedJobRequest:
    """A hosted fine-tuning job, with its data already converted and validated by the core."""

    spec: HostedSpec
    model: str
    training_file: Path
    validation_file: Path | None
    run_token: str
    seed: int


@dataclass(frozen=True)
class WorkPlan:
    """What a run will ask of a backend, counted before anything is spent (--dry-run)."""

    model: str
    score_prompts: int = 0
    words: int = 0
    generate_prompts: int = 0
    prompt_chars: int = 0
    max_new_tokens: int = 0
    train_examples: int = 0
    train_chars: int = 0
    hosted_training: bool = False
    hosted_epochs: int | None = None


class TrainSession(ABC):
    """A model being trained. The core's loop calls these; the backend owns the tensors.

    Subclasses' methods run inside the core's error boundary (unified_prompt.boundary);
    `backend_name` (set by Backend.start_training) names the backend in its messages.

    In a world of several processes (`TrainSetup.world`) each rank holds a session; the
    core calls `sync_gradients` after each step's backward passes, and rank 0 alone
    writes files. A `sharded` session splits its weights across ranks: then every rank
    calls trainable_state, save_checkpoint and save_adapter together (the state is
    gathered collectively) and only rank 0 writes.
    """

    model: Any
    trainable_params: int
    total_params: int
    sharded: bool = False
    backend_name: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guard_class(cls, SESSION_ACTIONS, _session_owner)

    @abstractmethod
    def forward_backward(self, batch: Sequence[TrainItem], weight: float = 1.0) -> float:
        """Accumulate gradients of `weight * mean loss(batch)`; return the mean loss."""

    @abstractmethod
    def optimizer_step(self, lr: float, max_grad_norm: float | None) -> float | None:
        """Clip, step AdamW at `lr`, zero gradients; return the pre-clip gradient norm."""

    @abstractmethod
    def loss(self, batch: Sequence[TrainItem]) -> float:
        """Mean loss without gradients (same arithmetic as forward_backward)."""

    @abstractmethod
    def trainable_state(self) -> dict[str, np.ndarray]:
        """Trainable weights as float32 numpy arrays under framework-neutral names.

        Names and layouts are the same on every backend, so one initialisation (drawn once)
        can be loaded into two frameworks and adapters convert by renaming alone:
          prompt_tuning  soft.{slot}                      (n_tokens, hidden)
          p_tuning       soft.{slot}.embedding            (n_tokens, hidden)
                         soft.{slot}.encoder.{param}      torch layout: Linear (out, in)
          prefix_tuning  prefix.embedding                 (n_tokens, layers * 2 * hidden)
                         prefix.{param}                   projection, torch layout
          lora           lora.{module}.A (r, in)  lora.{module}.B (out, r)
                         {module} is the Hugging Face module path, e.g.
                         model.layers.0.self_attn.q_proj
          full           the Hugging Face parameter names, torch layout (Linear (out, in))
        """

    @abstractmethod
    def load_trainable_state(self, state: dict[str, np.ndarray]) -> None: ...

    @abstractmethod
    def save_checkpoint(self, path: Path) -> None:
        """Trainable weights and optimizer state, enough to resume bit-for-bit."""

    @abstractmethod
    def load_checkpoint(self, path: Path) -> None: ...

    @abstractmethod
    def save_adapter(self, path: Path) -> None:
        """The backend's native adapter files (the core adds manifest.json beside them)."""

    def sync_gradients(self) -> None:
        """Sum the accumulated gradients over the world's ranks (before clipping)."""
        raise CapabilityError(f"{type(self).__name__} cannot train in several processes")

    def train_mode(self, training: bool) -> None:  # noqa: B027 - optional hook
        """Switch dropout etc. on or off around the core's dev evaluations."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory held by the session."""


_Options = TypeVar("_Options", bound=BaseModel)


def validate_options(model: type[_Options], raw: dict[str, Any], *, where: str, title: str,
                     unknown: str = "unknown key") -> _Options:
    """`raw` validated by an options model, or a ConfigError naming each bad key as
    `where.key` (backend options, search strategy options)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [(".".join([where, *map(str, err["loc"])]),
                     unknown if err["type"] == "extra_forbidden" else err["msg"])
                    for err in exc.errors()]
        text = "\n  ".join(f"{k}: {m}" for k, m in problems)
        raise ConfigError(f"{title}\n  {text}", problems=problems) from None


class BackendOptions(BaseModel):
    """Base for each backend's options model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _session_owner(session: TrainSession) -> str:
    return session.backend_name or type(session).__name__


def _checking_method(start_training: Callable[..., TrainSession]) -> Callable[..., TrainSession]:
    """start_training that refuses an undeclared method before the backend sees it, and
    tags the session with the backend's name (for its error messages)."""

    @functools.wraps(start_training)
    def start(self: Backend, model: Any, setup: TrainSetup) -> TrainSession:
        self.capabilities.require_method(setup.method.method, self.name)
        session = start_training(self, model, setup)
        if isinstance(session, TrainSession) and session.backend_name is None:
            session.backend_name = self.name
        return session

    start._checks_method = True  # type: ignore[attr-defined]
    return start


def _backend_owner(backend: Backend) -> str:
    return backend.name


class Backend(ABC):
    """One framework. Subclasses set `name`, `capabilities` (what the backend can do at all,
    read before any model loads) and `Options`; `model_capabilities(model)` answers for
    one loaded model.

    The primitives a subclass defines run inside the core's error boundary
    (unified_prompt.boundary): whatever the framework raises leaves as a core error.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    Options: ClassVar[type[BackendOptions]] = BackendOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every backend's primitives run inside the core's error boundary, and its
        start_training refuses a method the backend does not declare before the backend
        sees it (the one place a method meets a backend)."""
        super().__init_subclass__(**kwargs)
        guard_class(cls, BACKEND_ACTIONS, _backend_owner)
        own = cls.__dict__.get("start_training")
        if own is not None and not getattr(own, "_checks_method", False):
            cls.start_training = _checking_method(own)  # type: ignore[method-assign]

    def __init__(self, options: BackendOptions | dict[str, Any] | None = None) -> None:
        if options is None or isinstance(options, dict):
            options = self.parse_options(options or {})
        self.options = options

    @classmethod
    def parse_options(cls, raw: dict[str, Any]) -> BackendOptions:
        return validate_options(cls.Options, raw, where=f"backend.options.{cls.name}",
                                title=f"invalid options for backend {cls.name!r}")

    # -- models ----------------------------------------------------------------------
    @abstractmethod
    def load_model(self, ref: str) -> Any:
        """A model handle from an alias, a local folder or a hosted model id."""

    @abstractmethod
    def model_info(self, model: Any) -> ModelInfo: ...

    def model_capabilities(self, model: Any) -> Capabilities:
        """What this backend can do with `model`: `capabilities`, unless the model narrows
        them (a hosted model that cannot score label words is evaluated by generating)."""
        return self.capabilities

    # -- inference -------------------------------------------------------------------
    def score(self, model: Any, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        """Log-prob of each word at each prompt's mask: shape (len(prompts), len(words))."""
        raise self.missing("score")

    def generate(self, model: Any, prompts: Sequence[Rendered], params: GenerationParams, *,
                 batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        """Text generated after each prompt's mask (or end), stop strings removed."""
        raise self.missing("generate")

    def top_tokens(self, model: Any, prompts: Sequence[Rendered], k: int, *,
                   batch_size: int = 16) -> list[list[tuple[str, float]]]:
        """The k most likely next tokens at each mask with log-probs (verbalizer search)."""
        raise self.missing("top_tokens")

    # -- raw text (what an OpenAI-compatible server needs) -----------------------------
    def text_logprobs(self, model: Any, texts: Sequence[str], *, top_k: int = 0,
                      batch_size: int = 16) -> list[tuple[TokenLogprob, ...]]:
        """Every token of each text with its log-prob given the tokens before it."""
        raise self.missing("text log-probabilities")

    def generate_text(self, model: Any, texts: Sequence[str], params: GenerationParams, *,
                      top_k: int = 0, batch_size: int = 16) -> list[Generated]:
        """Greedy (or sampled) continuation of raw texts, with per-token log-probs and
        `top_k` alternatives; stop strings end generation and are not included."""
        raise self.missing("raw-text generation")

    def render_chat(self, model: Any, messages: Sequence[dict[str, str]]) -> str:
        """Chat messages as the model's own chat template writes them, ready to continue
        with the assistant's reply."""
        raise self.missing("chat templates")

    # -- search primitives (AutoPrompt-style gradient search; local backends) ------------
    def vocabulary(self, model: Any) -> list[str]:
        """Each token id's text, decoded alone (so " great" keeps its space)."""
        raise self.missing("vocabulary access")

    def tokenize(self, model: Any, text: str) -> list[int]:
        """Token ids of `text` without special tokens (the ids encoding.py lays out)."""
        raise self.missing("tokenization")

    def token_gradients(self, model: Any, items: Sequence[TrainItem], setup: TrainSetup,
                        triggers: dict[int, list[int]]) -> dict[int, np.ndarray]:
        """First-order scores for swapping trigger tokens (AutoPrompt).

        Each item's prompt has soft slots; slot s is filled with the embeddings of the
        vocabulary ids `triggers[s]`. With g the gradient of the mean training loss (the
        same loss as TrainSession) with respect to those input embeddings, returns for each
        slot an array (len(triggers[s]), vocab_size) = g @ E.T, E the input embedding
        matrix: the lower the value, the more swapping in that token should lower the loss.
        """
        raise self.missing("token gradients")

    # -- training --------------------------------------------------------------------
    def start_training(self, model: Any, setup: TrainSetup) -> TrainSession:
        raise self.missing(f"training ({setup.method.method})")

    def load_adapter(self, model: Any, path: Path) -> Any:
        """`model` with the adapter saved at `path` applied (a new handle)."""
        raise self.missing("adapters")

    # -- several processes -----------------------------------------------------------
    def join_world(self, launch: Launch) -> World:
        """Join the process group a launcher started (see `unified_prompt.distributed`)."""
        raise self.missing(f"training in several processes (started by {launch.launcher})")

    @classmethod
    def launch_command(cls, nproc: int, args: Sequence[str]) -> list[str]:
        """The command that starts `unified-prompt ARGS` in `nproc` processes on this
        machine with the backend's launcher (`run --nproc`)."""
        raise CapabilityError(f"backend {cls.name!r} has no multi-process launcher")

    def collective_forward(self, model: Any) -> bool:
        """True when running `model` is itself a collective (weights sharded across
        ranks): every rank must then make the same forward calls on the same prompts."""
        return False

    # -- hosted jobs -----------------------------------------------------------------
    def create_hosted_job(self, request: HostedJobRequest) -> str:
        """Upload files and create the job; returns its id (the core persists it)."""
        raise self.missing("hosted fine-tuning")

    def hosted_job(self, job_id: str) -> Job:
        raise self.missing("hosted fine-tuning")

    def find_hosted_job(self, run_token: str) -> str | None:
        """A job created earlier for this run token, so a resume never pays twice."""
        return None

    # -- cost ------------------------------------------------------------------------
    def estimate(self, plan: WorkPlan) -> dict[str, Any]:
        """Requests, tokens and cost the plan would spend (local backends spend nothing)."""
        return {"requests": 0, "cost_usd": 0.0, "note": "runs locally"}

    def usage(self) -> dict[str, Any]:
        """Requests, tokens and cost spent so far (hosted backends); empty when local."""
        return {}

    def set_budget(self, budget: BudgetSpec) -> None:  # noqa: B027 - optional hook
        """Hosted backends stop before a request would exceed the budget."""

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Free models, sessions, connection pools."""

    def missing(self, what: str) -> CapabilityError:
        return CapabilityError(f"backend {self.name!r} cannot do {what}")
