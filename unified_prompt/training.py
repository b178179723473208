"""The training loop, written once for every framework.

Batch order, learning-rate schedule, gradient accumulation, dev evaluation, keeping the
best weights, early stopping and checkpoints are decided here; a backend's TrainSession
only runs forward/backward and optimizer steps. So two frameworks given the same
initialisation see the same batches at the same learning rates, step for step.

In a world of N processes each rank runs its share of every micro-batch (see
`unified_prompt.distributed.local_micro_batches`), losses and gradients are summed over
the ranks before clipping, and rank 0 alone writes checkpoints: the same spec follows the
same trajectory on 1 or N processes.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import atomic_dir, atomic_write_json, atomic_write_text
from unified_prompt.backend import TrainItem, TrainSession
from unified_prompt.config import TrainSpec
from unified_prompt.distributed import SingleWorld, World, local_micro_batches
from unified_prompt.jobs import JobCancelledError, JobContext
from unified_prompt.progress import bar
from unified_prompt.untrusted import load_npz, read_json_object


@dataclass(frozen=True)
class TrainPlan:
    """A training run's shape, fixed before the first step: batches, steps, warmup, dev
    evaluations (search strategies have their own StrategyPlan)."""

    n_items: int
    batch_size: int
    grad_accum: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    eval_every: int | None

    @classmethod
    def build(cls, spec: TrainSpec, n_items: int, has_dev: bool) -> TrainPlan:
        if n_items < 1:
            from unified_prompt.errors import DataError

            raise DataError("training needs at least one training example")
        per_step = spec.batch_size * spec.grad_accum
        steps_per_epoch = max(1, math.ceil(n_items / per_step))
        total = spec.max_steps or max(1, math.ceil(spec.epochs * steps_per_epoch))
        eval_every = spec.eval_every or (max(1, total // 5) if has_dev else None)
        return cls(n_items, spec.batch_size, spec.grad_accum, steps_per_epoch, total,
                   round(spec.warmup_ratio * total), eval_every if has_dev else None)


def lr_at(step: int, plan: TrainPlan, base_lr: float, schedule: str) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then decay."""
    if plan.warmup_steps and step < plan.warmup_steps:
        return base_lr * (step + 1) / plan.warmup_steps
    if schedule == "constant":
        return base_lr
    span = max(1, plan.total_steps - plan.warmup_steps)
    progress = min(1.0, (step - plan.warmup_steps) / span)
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (1.0 - progress)


def epoch_order(n_items: int, seed: int, epoch: int) -> list[int]:
    """The shuffled item order of one epoch; a function of (seed, epoch) only."""
    order = list(range(n_items))
    random.Random(f"train:{seed}:{epoch}").shuffle(order)
    return order


def step_batches(plan: TrainPlan, seed: int, step: int) -> list[list[int]]:
    """Item indices of each micro-batch of optimizer step `step`."""
    epoch, index = divmod(step, plan.steps_per_epoch)
    order = epoch_order(plan.n_items, seed, epoch)
    per_step = plan.batch_size * plan.grad_accum
    items = order[index * per_step:(index + 1) * per_step]
    return [items[i:i + plan.batch_size] for i in range(0, len(items), plan.batch_size)]


@dataclass
class TrainState:
    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


def read_train_state(path: Path) -> TrainState:
    """trainer.json of a checkpoint; a damaged one is a UserInputError naming it."""
    from unified_prompt.errors import UserInputError

    data = read_json_object(path)
    try:
        return TrainState(**data)
    except TypeError:
        raise UserInputError(f"{path}: not a trainer state (keys: {sorted(data)[:6]})") from None


@dataclass(frozen=True)
class TrainOutcome:
    steps: int
    train_seconds: float
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, Any]]
    stopped_early: bool


Evaluate = Callable[[], dict[str, float]]
#: Item indices of each micro-batch of an optimizer step (default: step_batches; a
#: mixture of tasks draws them by weight, unified_prompt.mixture.MixtureSampler).
Sampler = Callable[[int], list[list[int]]]
#: Called after each epoch's last optimizer step (and the run's last) with (step, loss).
EpochEnd = Callable[[int, float], None]


class Trainer:
    """Drives a TrainSession through the plan; checkpoints into `checkpoint_dir`."""

    def __init__(self, session: TrainSession, items: Sequence[TrainItem], spec: TrainSpec, *,
                 seed: int, evaluate: Evaluate | None = None, metric: str = "accuracy",
                 checkpoint_dir: Path | None = None, log: Callable[..., None] | None = None,
                 progress: bool | None = None, on_epoch_end: EpochEnd | None = None,
                 world: World | None = None, sampler: Sampler | None = None) -> None:
        self.session = session
        self.sampler = sampler
        self.world = world or SingleWorld()
        self.items = list(items)
        self.spec = spec
        self.seed = seed
        self.evaluate = evaluate
        self.metric = metric
        self.checkpoint_dir = checkpoint_dir
        self.log = log or (lambda kind, **data: None)
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        self.plan = TrainPlan.build(spec, len(self.items), evaluate is not None)
        self._best_state: dict[str, Any] | None = None
        self.state = TrainState()

    # -- checkpoints -----------------------------------------------------------------
    def _latest(self) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        pointer = self.checkpoint_dir / "latest"
        if not pointer.exists():
            return None
        name = pointer.read_bytes().decode("utf-8", "replace").strip()
        if not re.fullmatch(r"step-\d+", name):
            from unified_prompt.errors import RunDirectoryError

            raise RunDirectoryError(f"{pointer}: names {name[:40]!r}, not a step-N checkpoint")
        path = self.checkpoint_dir / name
        return path if path.is_dir() else None

    def _save(self, state: TrainState) -> None:
        if self.checkpoint_dir is None:
            return
        name = f"step-{state.step:07d}"
        if not self.world.is_main:
            if self.session.sharded:  # the state is gathered with rank 0, which writes it
                self.session.save_checkpoint(self.checkpoint_dir / name / "session")
            return
        with atomic_dir(self.checkpoint_dir / name) as tmp:
            self.session.save_checkpoint(tmp / "session")
            if self._best_state is not None:
                import numpy as np

                np.savez(tmp / "best.npz", **self._best_state)
            atomic_write_json(tmp / "trainer.json", state.__dict__)
        atomic_write_text(self.checkpoint_dir / "latest", name + "\n")
        for old in self.checkpoint_dir.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self.log("checkpoint", step=state.step, path=str(self.checkpoint_dir / name))

    def _restore(self) -> TrainState:
        latest = self._latest()
        if latest is None:
            return TrainState()
        self.session.load_checkpoint(latest / "session")
        state = read_train_state(latest / "trainer.json")
        best = latest / "best.npz"
        if best.exists():
            self._best_state = load_npz(best)
        self.log("resume", step=state.step)
        return state

    # -- the loop --------------------------------------------------------------------
    def _eval(self, state: TrainState) -> None:
        assert self.evaluate is not None
        self.session.train_mode(False)
        metrics = self.evaluate()
        self.session.train_mode(True)
        value = metrics.get(self.metric)
        improved = value is not None and (state.best_metric is None or value > state.best_metric)
        if improved:
            state.best_metric, state.best_step, state.bad_evals = value, state.step, 0
            if self.spec.keep_best:
                self._best_state = {k: v.copy() for k, v in
                                    self.session.trainable_state().items()}
        else:
            state.bad_evals += 1
        state.history.append({"step": state.step, "dev": metrics})
        self.log("eval", step=state.step, split="dev", metrics=metrics, best=improved)
        patience = self.spec.early_stopping_patience
        if patience is not None and state.bad_evals >= patience:
            state.stopped_early = True

    def _reduce_step(self, loss: float, ctx: JobContext | None) -> float:
        """The step's loss summed over the ranks, gradients summed likewise; a cancel on
        any rank (Ctrl-C, a job's cancel) stops every rank at the same step."""
        import numpy as np

        cancelled = ctx is not None and ctx.cancelled
        total = self.world.all_reduce(np.array([loss, 1.0 if cancelled else 0.0]))
        if total[1] > 0:
            raise JobCancelledError()
        self.session.sync_gradients()
        return float(total[0])

    def save_now(self) -> None:
        """Checkpoint where the loop stands (on cancel), so --resume continues from here."""
        if self.state.step > 0:
            self._save(self.state)

    def run(self, ctx: JobContext | None = None, *, resume: bool = False) -> TrainOutcome:
        plan = self.plan
        state = self.state = self._restore() if resume else TrainState()
        base_lr = self.spec.learning_rate
        self.log("train_start", total_steps=plan.total_steps, steps_per_epoch=plan.steps_per_epoch,
                 batch_size=plan.batch_size, grad_accum=plan.grad_accum, lr=base_lr,
                 warmup_steps=plan.warmup_steps, n_examples=plan.n_items, start_step=state.step)
        self.session.train_mode(True)
        started = time.perf_counter() - state.seconds
        with bar(plan.total_steps, "train", self.progress, unit="step", initial=state.step) as pb:
            while state.step < plan.total_steps and not state.stopped_early:
                if ctx is not None and self.world.size == 1:
                    ctx.checkpoint()
                micro = (self.sampler(state.step) if self.sampler is not None
                         else step_batches(plan, self.seed, state.step))
                loss = 0.0
                for idx, weight in local_micro_batches(micro, self.world):
                    loss += weight * self.session.forward_backward(
                        [self.items[i] for i in idx], weight)
                if self.world.size > 1:
                    loss = self._reduce_step(loss, ctx)
                lr = lr_at(state.step, plan, base_lr, self.spec.schedule)
                grad_norm = self.session.optimizer_step(lr, self.spec.max_grad_norm)
                state.step += 1
                state.seconds = time.perf_counter() - started
                self.log("step", step=state.step, loss=loss, lr=lr, grad_norm=grad_norm)
                if self.on_epoch_end is not None and (state.step % plan.steps_per_epoch == 0
                                                      or state.step == plan.total_steps):
                    self.on_epoch_end(state.step, loss)
                if ctx is not None:
                    ctx.emit(f"step {state.step}/{plan.total_steps}: loss {loss:.4f}",
                             type="metrics", step=state.step, train_loss=loss)
                pb.update(1)
                pb.set_postfix(loss=f"{loss:.4f}")
                if plan.eval_every and (state.step % plan.eval_every == 0
                                        or state.step == plan.total_steps):
                    self._eval(state)
                if state.step % self.spec.checkpoint_every == 0 and state.step < plan.total_steps:
                    self._save(state)
        if self.spec.keep_best and self._best_state is not None:
            self.session.load_trainable_state(self._best_state)
            self.log("keep_best", step=state.best_step, metric=self.metric,
                     value=state.best_metric)
        state.seconds = time.perf_counter() - started
        return TrainOutcome(state.step, state.seconds, state.best_metric, state.best_step,
                            state.history, state.stopped_early)
