"""Local training's one entry point: a TrainSession driven by the core's Trainer over
training items, with the caller's callbacks, cancellable, resumable.

The runner (`unified-prompt run`) and the OpenAI-compatible server's fine-tuning jobs both
call `train_locally`; what differs between them (dev evaluation and keeping the best
weights; events into events.jsonl or into a job's API events; an adapter saved at each
epoch's end) is what they pass in `TrainCallbacks`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_prompt.backend import TrainItem, TrainSession
from unified_prompt.distributed import World
from unified_prompt.errors import JobFailedError
from unified_prompt.jobs import JobCancelledError, JobContext, LocalJob
from unified_prompt.methods import TrainSpec
from unified_prompt.training import EpochEnd, Evaluate, Sampler, Trainer, TrainOutcome


@dataclass(frozen=True)
class TrainCallbacks:
    """What a caller plugs into a training run (each optional).

    log: every event the loop records (train_start, step, eval, checkpoint, resume,
         keep_best), as `log(kind, **data)`: the runner writes them to events.jsonl.
    evaluate: dev metrics of the session's current weights; with it the loop evaluates
         every `eval_every` steps, keeps the best weights by `metric`, stops early.
    on_epoch_end: called after each epoch's last optimizer step (and the run's last),
         with the step and its loss: where a server saves a checkpoint model.
    """

    log: Callable[..., None] | None = None
    evaluate: Evaluate | None = None
    metric: str = "accuracy"
    on_epoch_end: EpochEnd | None = None


def train_locally(session: TrainSession, items: Sequence[TrainItem], spec: TrainSpec,
                  callbacks: TrainCallbacks | None = None, *, seed: int,
                  checkpoint_dir: Path | None = None, resume: bool = False,
                  progress: bool | None = None, job: JobContext | None = None,
                  world: World | None = None, sampler: Sampler | None = None) -> TrainOutcome:
    """Train `session` on `items` as `spec` says; returns what the loop reached.

    Checkpoints go into `checkpoint_dir` (and `resume` continues from its latest). Inside
    a job already (`job`: the server's), the loop runs here, pausing and cancelling with
    that job; otherwise it runs in a LocalJob of its own, so Ctrl-C cancels it cleanly.
    A cancelled run checkpoints where it stands first, so --resume continues from there.
    `world`: the processes training together (see unified_prompt.distributed).
    `sampler`: the micro-batches of each step, when not the epoch-shuffled default.
    """
    cb = callbacks or TrainCallbacks()
    trainer = Trainer(session, items, spec, seed=seed, evaluate=cb.evaluate, metric=cb.metric,
                      checkpoint_dir=checkpoint_dir, log=cb.log, progress=progress,
                      on_epoch_end=cb.on_epoch_end, world=world, sampler=sampler)
    if job is not None:
        return _run(trainer, job, resume)
    local = LocalJob(f"local-{secrets.token_hex(4)}",
                     lambda ctx: _run(trainer, ctx, resume).__dict__)
    try:
        status = local.wait()
    except KeyboardInterrupt:
        local.cancel()
        local.wait()
        raise
    if local.exception is not None:
        raise local.exception
    if status.value != "succeeded":
        raise JobFailedError(f"training {status.value}: {local.error}")
    return TrainOutcome(**local.result)


def _run(trainer: Trainer, ctx: Any, resume: bool) -> TrainOutcome:
    try:
        return trainer.run(ctx, resume=resume)
    except JobCancelledError:
        trainer.save_now()
        raise
