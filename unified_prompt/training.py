"""The training loop, written once for every framework.

Batch order, learning-rate schedule, gradient accumulation, dev evaluation, keeping the
best weights, early stopping and checkpoints are decided here; a backend's TrainSession
only runs forward/backward and optimizer steps. So two frameworks given the same
initialisation see the same batches at the same learning rates, step for step.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import atomic_dir, atomic_write_json, atomic_write_text, read_json
from unified_prompt.backend import TrainItem, TrainSession
from unified_prompt.config import TrainSpec
from unified_prompt.jobs import JobContext
from unified_prompt.progress import bar


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


@dataclass(frozen=True)
class TrainOutcome:
    steps: int
    train_seconds: float
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, Any]]
    stopped_early: bool


Evaluate = Callable[[], dict[str, float]]
#: Called after each epoch's last optimizer step (and the run's last) with (step, loss).
EpochEnd = Callable[[int, float], None]


class Trainer:
    """Drives a TrainSession through the plan; checkpoints into `checkpoint_dir`."""

    def __init__(self, session: TrainSession, items: Sequence[TrainItem], spec: TrainSpec, *,
                 seed: int, evaluate: Evaluate | None = None, metric: str = "accuracy",
                 checkpoint_dir: Path | None = None, log: Callable[..., None] | None = None,
                 progress: bool | None = None, on_epoch_end: EpochEnd | None = None) -> None:
        self.session = session
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
        path = self.checkpoint_dir / pointer.read_text(encoding="utf-8").strip()
        return path if path.is_dir() else None

    def _save(self, state: TrainState) -> None:
        if self.checkpoint_dir is None:
            return
        name = f"step-{state.step:07d}"
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
        state = TrainState(**read_json(latest / "trainer.json"))
        best = latest / "best.npz"
        if best.exists():
            import numpy as np

            with np.load(best) as data:
                self._best_state = {k: data[k] for k in data.files}
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
                if ctx is not None:
                    ctx.checkpoint()
                micro = step_batches(plan, self.seed, state.step)
                n = sum(len(m) for m in micro)
                loss = 0.0
                for idx in micro:
                    weight = len(idx) / n
                    loss += weight * self.session.forward_backward(
                        [self.items[i] for i in idx], weight)
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
