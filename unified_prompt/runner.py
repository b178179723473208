"""The experiment algorithm, written once: zero-shot, few-shot in context, train then
evaluate; classification and generation; local training and hosted jobs.

    result = Experiment.from_yaml("examples/sentiment.yaml").run(backend="paddle")

The CLI is a thin layer over this: `unified-prompt run` prints the same RunResult. The
pieces a run is made of have their own modules (evaluation, local_training, result,
report, prediction); their public names are importable from here too.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unified_prompt.adapters import check_base_model, spec_for_adapter, write_manifest
from unified_prompt.artifacts import (
    RunDir,
    atomic_dir,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    spec_yaml,
)
from unified_prompt.backend import Backend, TrainSetup, WorkPlan
from unified_prompt.config import ExperimentSpec, build_spec, load_spec
from unified_prompt.data.checks import check_data
from unified_prompt.data.example import Example
from unified_prompt.data.resolve import Splits, load_splits
from unified_prompt.distributed import (
    ShardedInference,
    World,
    check_parallel,
    decide_on_main,
    open_world,
)
from unified_prompt.errors import CapabilityError, JobFailedError
from unified_prompt.evaluation import LABEL_TOKENS, Evaluator
from unified_prompt.figures.run import add_run_figures
from unified_prompt.jobs import JobEvent
from unified_prompt.local_training import TrainCallbacks, train_locally
from unified_prompt.methods import METHODS
from unified_prompt.metrics import check_metric_names
from unified_prompt.prediction import Predictor
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.registry import create_backend
from unified_prompt.report import render_report
from unified_prompt.result import RunResult, load_result, peak_rss_mb
from unified_prompt.seeds import SeedsResult, run_seeds
from unified_prompt.tracking import Tracking

__all__ = ["LABEL_TOKENS", "Evaluator", "Experiment", "Predictor", "RunResult", "SeedsResult",
           "load_result", "peak_rss_mb", "render_report"]


class Experiment:
    """One experiment spec, runnable on any installed backend."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec

    @classmethod
    def from_yaml(cls, path: str | Path, *, overrides: list[str] | None = None,
                  backend: str | None = None) -> Experiment:
        return cls(load_spec(path, overrides=overrides, backend=backend))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        return cls(build_spec(data))

    def with_backend(self, name: str | None) -> Experiment:
        if not name or name == self.spec.backend.name:
            return self
        data = self.spec.model_dump(mode="json", exclude_none=True)
        data["backend"]["name"] = name
        return Experiment(build_spec(data))

    # -- the run ---------------------------------------------------------------------
    def run(self, *, backend: str | None = None, out: str | Path | None = None,
            resume: bool = False, progress: bool | None = None,
            dry_run: bool = False, world: World | None = None) -> RunResult:
        """`world`: the processes this run is one of (default: the launcher's, read from
        the environment; this process alone when none started it)."""
        exp = self.with_backend(backend)
        if exp.spec.seeds is not None:
            from unified_prompt.errors import ConfigError

            raise ConfigError(f"seed is a list {exp.spec.seeds}: run it with "
                              "Experiment.run_seeds() (or `unified-prompt run`)")
        return _Run(exp.spec, Path(out) if out else None, resume, progress,
                    world).execute(dry_run)

    def run_seeds(self, seeds: Sequence[int] | None = None, *, backend: str | None = None,
                  out: str | Path | None = None, resume: bool = False,
                  progress: bool | None = None) -> SeedsResult:
        """Run once per seed (default: the spec's `seed: [..]` list) into OUT/seed-<n>/,
        then aggregate mean, std and per-seed values into OUT/metrics.json."""
        exp = self.with_backend(backend)

        def run_one(spec: ExperimentSpec, run_dir: Path | None, resume: bool) -> RunResult:
            return _Run(spec, run_dir, resume, progress).execute(False)

        return run_seeds(exp.spec, seeds, Path(out) if out else None, resume, run_one)


class _Run:
    """State of one execution of an experiment (kept off Experiment so it is reusable)."""

    def __init__(self, spec: ExperimentSpec, out: Path | None, resume: bool,
                 progress: bool | None, world: World | None = None) -> None:
        self.adapter_manifest: dict[str, Any] | None = None
        if spec.eval.adapter:
            spec, self.adapter_manifest = spec_for_adapter(spec)
        self.spec = spec
        self.run = RunDir(out) if out else None
        self.resume = resume
        self.progress = progress
        self.backend: Backend | None = None
        self.tasks: list[Any] | None = None  # a mixture's tasks (unified_prompt.mixture.MixTask)
        self.world = world
        self._own_world = world is None
        # sinks of the event stream (TensorBoard, MLflow), opened on the first event: only
        # rank 0 logs events, so only rank 0 writes tracking files
        self.tracking = Tracking(spec, self.run)

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory (rank 0, or the only one)."""
        return self.world is None or self.world.is_main

    def log(self, kind: str, **data: Any) -> None:
        if self.run is not None and self.main:
            self.tracking.publish(self.run.log_event(kind, **data))

    def config_yaml(self) -> str:
        return spec_yaml(self.spec)

    def execute(self, dry_run: bool) -> RunResult:
        spec = self.spec
        check_metric_names(spec.metrics, spec.task)
        if dry_run:
            return self._dry_run()
        try:
            prepared = self._prepare()  # user errors surface before anything is written
            resuming = False
            if self.run is not None:
                created = not self.run.path.exists()
                resuming, finished = decide_on_main(self.world, self._open_run_dir)
                if finished:
                    return self._finished_result()
            try:
                return self._execute(resuming, *prepared)
            except BaseException:
                if self.run is not None and created and not resuming and self.main:
                    self.run.discard_if_empty()
                raise
        finally:
            self.tracking.close()
            if self.backend is not None:
                self.backend.close()
            if self.world is not None and self._own_world:
                self.world.close()

    def _open_run_dir(self) -> tuple[bool, bool]:
        """(resuming, finished earlier): rank 0 creates or reopens the run directory."""
        assert self.run is not None
        resuming = self.run.prepare(self.config_yaml(), resume=self.resume)
        return resuming, resuming and self.run.finished

    def _finished_result(self) -> RunResult:
        assert self.run is not None and self.world is not None
        if self.world.size == 1:
            return load_result(self.run.path)
        result = load_result(self.run.path) if self.main else None
        metrics = self.world.broadcast_json(result.metrics if result else None)
        return result or RunResult(metrics)

    def _prepare(self) -> tuple[Splits, PromptBuilder, Backend]:
        spec = self.spec
        splits = load_splits(spec.data, spec.task, spec.seed)
        builder = PromptBuilder(spec, splits.train)
        check_data(spec, splits)  # what `validate` checks, before a model loads
        backend = create_backend(spec.backend.name, spec.backend.options_for())
        self.backend = backend
        caps = backend.capabilities
        caps.require_method(spec.finetune.method, backend.name)
        parallel = getattr(spec.finetune, "parallel", "ddp")
        if self.world is None:
            self.world = open_world(backend, parallel)
        if METHODS[spec.finetune.method].runs == "local":
            check_parallel(backend, parallel, self.world)
        if not self.world.is_main:
            self.progress = False
        self.inference: Any = ShardedInference(backend, self.world)
        if spec.model_task == "generation" and not caps.generate:
            raise CapabilityError(f"backend {backend.name!r} cannot generate text")
        if "perplexity" in spec.metrics:
            from unified_prompt.perplexity import require_perplexity

            require_perplexity(backend)  # before a model loads or trains
        backend.set_budget(spec.budget)
        if spec.mixture is not None:  # the mixture's other tasks, loaded and checked like the spec's
            from unified_prompt.mixture import load_tasks

            self.tasks = load_tasks(spec, splits, builder)
        return splits, builder, backend

    def _eval_examples(self, splits: Splits) -> list[Example]:
        examples = splits.get(self.spec.eval.split)
        if self.spec.eval.limit:
            examples = examples[: self.spec.eval.limit]
        if not examples:
            from unified_prompt.errors import DataError

            raise DataError(f"the {self.spec.eval.split} split is empty; nothing to evaluate")
        return examples

    def _dry_run(self) -> RunResult:
        spec = self.spec
        splits, builder, backend = self._prepare()
        examples = self._eval_examples(splits)
        prompts = builder.render(examples)
        n_extra = len(spec.prompt.calibration.content_free) \
            if spec.prompt.calibration.method == "contextual" else 0
        ft = spec.finetune
        limit = getattr(ft, "train_limit", None) or None
        train = splits.train[:limit] if ft.method != "none" else []
        if self.tasks is not None:  # a mixture: every task's prompts and training examples
            from unified_prompt.mixture import eval_examples

            examples = [ex for t in self.tasks for ex in eval_examples(t)]
            prompts = [p for t in self.tasks for p in t.builder.render(eval_examples(t))]
            if ft.method != "none":
                train = [ex for t in self.tasks for ex in t.splits.train[:limit]]
        chars = sum(len(p.text()) for p in prompts)
        plan = WorkPlan(
            model=spec.backend.model,
            score_prompts=len(prompts) + n_extra if spec.task == "classification" else 0,
            words=len(builder.verbalizer.flat_words) if builder.verbalizer else 0,
            generate_prompts=len(prompts) if spec.model_task == "generation" else 0,
            prompt_chars=chars, max_new_tokens=spec.eval.max_new_tokens * (
                spec.eval.decoding.n if spec.model_task == "generation" else 1),
            train_examples=len(train), train_chars=sum(len(e.text) for e in train),
            hosted_training=ft.method == "hosted",
            hosted_epochs=ft.n_epochs if isinstance(getattr(ft, "n_epochs", None), int) else None)
        estimate = {"eval_examples": len(examples), **backend.estimate(plan)}
        budget = spec.budget
        if budget.max_cost_usd is not None and (estimate.get("cost_usd") or 0) > budget.max_cost_usd:
            estimate["over_budget"] = True
        return RunResult(self._base_metrics(examples, backend), plan=estimate)

    def _base_metrics(self, examples: Sequence[Example], backend: Backend) -> dict[str, Any]:
        spec = self.spec
        return {"backend": backend.name, "model": spec.backend.model,
                "method": spec.finetune.method, "task": spec.task, "split": spec.eval.split,
                "n_examples": len(examples), "dataset": spec.data.dataset, "seed": spec.seed}

    def _execute(self, resuming: bool, splits: Splits, builder: PromptBuilder,
                 backend: Backend) -> RunResult:
        spec = self.spec
        examples = self._eval_examples(splits)
        self.log("start", backend=backend.name, model=spec.backend.model,
                 method=spec.finetune.method, resume=resuming, splits=splits.sizes())
        model = backend.load_model(spec.backend.model)
        # a mixture's tasks render with their own builders (the first task's is `builder`)
        for task_builder in [t.builder for t in self.tasks] if self.tasks else [builder]:
            task_builder.use_model(self.inference, model)
        info = backend.model_info(model)
        trainable, train_seconds, training = 0, 0.0, {}
        runs = METHODS[spec.finetune.method].runs
        if self.adapter_manifest is not None:
            model, trainable = self._load_saved_adapter(backend, model, info)
            training = {"adapter": str(spec.eval.adapter)}
        elif runs == "local":
            model, trainable, train_seconds, training = self._train_local(
                backend, model, builder, splits, resuming)
        elif runs == "hosted":
            model, train_seconds, training = self._train_hosted(backend, builder, splits)
            builder.use_model(self.inference, model)  # mixtures never train hosted
        started = time.perf_counter()
        per_task = None
        if self.tasks is not None:
            from unified_prompt.mixture import eval_examples, evaluate_tasks

            task_examples = [eval_examples(t) for t in self.tasks]
            examples = [ex for exs in task_examples for ex in exs]
            scores, per_task, rows = evaluate_tasks(self.inference, self.tasks, model,
                                                    task_examples, self.progress)
        else:
            evaluator = Evaluator(self.inference, builder, spec, self.progress)
            scores, rows = evaluator.evaluate(model, examples)
        eval_seconds = time.perf_counter() - started
        metrics = {**self._base_metrics(examples, backend), "metrics": scores,
                   "trainable_params": trainable, "total_params": info.total_params,
                   "train_seconds": round(train_seconds, 3), "eval_seconds": round(eval_seconds, 3),
                   "peak_rss_mb": peak_rss_mb(), "template": builder.template.source,
                   "calibration": spec.prompt.calibration.method,
                   "demonstrations": spec.prompt.demonstrations.k, "versions": _versions(backend)}
        if per_task is not None:
            metrics["tasks"] = per_task
        if training:
            metrics["training"] = training
        if spec.task == "ner":
            metrics["ner"] = evaluator.details
        usage = backend.usage()
        if usage:
            metrics["usage"] = usage
        self.log("eval", split=spec.eval.split, metrics=scores, seconds=round(eval_seconds, 3))
        result = RunResult(metrics, rows, self.run.path if self.run else None)
        if self.run is not None and self.main:
            atomic_write_jsonl(self.run.file(RunDir.PREDICTIONS), rows)
            drawn = rows if self.tasks is None else \
                [r for r in rows if r["task"] == self.tasks[0].name]  # one task's labels
            atomic_write_text(self.run.file(RunDir.REPORT), render_report(result, spec)
                              + add_run_figures(self.run.path, metrics, drawn, self.log))
            atomic_write_json(self.run.file(RunDir.METRICS), metrics)  # last: marks "finished"
            self.log("finish", metrics=scores)
        return result

    def _load_saved_adapter(self, backend: Backend, model: Any, info: Any) -> tuple[Any, int]:
        """eval.adapter: the adapter applied to the loaded base model it was trained on."""
        manifest = self.adapter_manifest or {}
        check_base_model(manifest, info.checksum, self.spec.backend.model, self.spec.eval.adapter)
        self.log("adapter", path=str(self.spec.eval.adapter), method=manifest.get("method"))
        return (backend.load_adapter(model, Path(str(self.spec.eval.adapter))),
                int(manifest.get("trainable_params") or 0))

    # -- local training --------------------------------------------------------------
    def _train_local(self, backend: Backend, model: Any, builder: PromptBuilder,
                     splits: Splits, resuming: bool) -> tuple[Any, int, float, dict[str, Any]]:
        spec = self.spec
        ft = spec.finetune
        state = self.run.read_state() if self.run else {}
        adapter_dir = self.run.file(RunDir.ADAPTER) if self.run else None
        if resuming and state.get("training_done") and adapter_dir and adapter_dir.exists():
            self.log("resume", detail="training finished earlier; loading the saved adapter")
            return (backend.load_adapter(model, adapter_dir), state["trainable_params"],
                    state["train_seconds"], state.get("training", {}))
        train = splits.train[: ft.train_limit] if ft.train_limit else splits.train
        items = builder.train_items(train)
        seed = spec.train_seed()
        mixing = None
        if self.tasks is not None:  # every task's items, drawn by weight
            from unified_prompt.mixture import MixtureTraining

            mixing = MixtureTraining.build(self.tasks, ft.train_limit, ft.eval_limit, seed,
                                           ft.batch_size, ft.grad_accum)
            items = mixing.items
        augmentation = self._augment(builder, train, resuming) if mixing is None else None
        if augmentation is not None:
            items += augmentation.items
        verbalizer = builder.verbalizer
        dev = splits.dev[: ft.eval_limit] if ft.eval_limit else splits.dev
        evaluator = Evaluator(self.inference, builder, spec, progress=False)
        metric = {"classification": "accuracy", "qa": "f1", "ner": "f1"}.get(spec.task, "rouge_l")
        setup = TrainSetup(
            method=ft, task=spec.model_task, seed=seed,
            words=verbalizer.flat_words if verbalizer else (),
            word_label=verbalizer.word_label if verbalizer else (),
            n_labels=len(verbalizer.labels) if verbalizer else 0,
            word_score=spec.prompt.word_score, soft_slots=builder.template.soft_slots,
            work_dir=self.run.file(RunDir.CHECKPOINTS) if self.run else None, world=self.world,
            tasks=mixing.spaces if mixing else ())
        session = backend.start_training(model, setup)

        def evaluate() -> dict[str, float]:
            if mixing is not None:  # the mean over the tasks of each one's dev metric
                return mixing.evaluate(self.inference, session.model, metric)
            return evaluator.evaluate(session.model, dev, "dev", [metric])[0]

        callbacks = TrainCallbacks(log=self.log, evaluate=evaluate if dev else None,
                                   metric=metric)
        outcome = train_locally(session, items, ft, callbacks, seed=seed,
                                checkpoint_dir=setup.work_dir, resume=resuming,
                                progress=self.progress, world=self.world,
                                sampler=mixing.sampler if mixing else None)
        training = {"steps": outcome.steps, "best_dev": outcome.best_metric,
                    "best_step": outcome.best_step, "stopped_early": outcome.stopped_early,
                    "train_examples": len(items), "lr": ft.learning_rate}
        if augmentation is not None:
            training["augmentation"] = augmentation.summary(len(train))
        if self.world is not None and self.world.size > 1:
            training |= {"processes": self.world.size, "parallel": ft.parallel}
        if mixing is not None:
            training["train_examples_per_task"] = mixing.sizes
        if adapter_dir is not None and not self.main:
            if session.sharded:  # the weights are gathered with rank 0, which writes them
                session.save_adapter(adapter_dir)
        elif adapter_dir is not None:
            with atomic_dir(adapter_dir) as tmp:
                session.save_adapter(tmp)
                info = backend.model_info(model)
                write_manifest(
                    tmp, backend=backend.name, method=ft.method, task=spec.task,
                    method_config=ft.model_dump(mode="json"),
                    base_model={"name": spec.backend.model, "checksum": info.checksum},
                    tokenizer_checksum=info.tokenizer_checksum,
                    template=builder.template.source,
                    verbalizer=verbalizer.to_dict() if verbalizer else None,
                    word_score=spec.prompt.word_score, dev_metrics=outcome.history[-1:],
                    trainable_params=session.trainable_params)
            self.run.write_state(training_done=True, trainable_params=session.trainable_params,
                                 train_seconds=outcome.train_seconds, training=training)
        return session.model, session.trainable_params, outcome.train_seconds, training

    def _augment(self, builder: PromptBuilder, train: list[Example],
                 resuming: bool) -> Any:
        """data.augment's extra training items, written to (or, resuming, read from)
        RUN/augmented.jsonl by rank 0."""
        if self.spec.data.augment is None:
            return None
        from unified_prompt.augmentation import FILE, augment

        path = self.run.file(FILE) if self.run is not None else None
        out = augment(self.spec, builder, train, path, resuming=resuming, write=self.main)
        self.log("augment", added=len(out.items), methods=out.counts, reused=out.reused)
        return out

    # -- hosted training -------------------------------------------------------------
    def _train_hosted(self, backend: Backend, builder: PromptBuilder,
                      splits: Splits) -> tuple[Any, float, dict[str, Any]]:
        from unified_prompt.backend import HostedJobRequest
        from unified_prompt.hosted import hosted_training_files

        spec = self.spec
        ft = spec.finetune
        if self.run is None:
            raise CapabilityError("hosted fine-tuning needs a run directory (--out) so the job "
                                  "id survives a restart")
        state = self.run.read_state()
        token = state.get("run_token") or secrets.token_hex(8)
        self.run.write_state(run_token=token)
        started = time.perf_counter()
        job_id = state.get("job_id") or backend.find_hosted_job(token)
        if job_id is None:
            train_file, val_file = hosted_training_files(spec, builder, splits,
                                                         self.run.file("hosted"))
            request = HostedJobRequest(spec=ft, model=spec.backend.model, training_file=train_file,
                                       validation_file=val_file, run_token=token,
                                       seed=spec.train_seed())
            job_id = backend.create_hosted_job(request)
            self.log("job_created", job_id=job_id)
        else:
            self.log("job_reattached", job_id=job_id)
        self.run.write_state(job_id=job_id)  # before polling: a restart re-attaches
        job = backend.hosted_job(job_id)
        seen = {e["id"] for e in self.run.events() if e.get("type") == "job_event" and e.get("id")}

        def on_event(ev: JobEvent) -> None:
            if ev.id is None or ev.id not in seen:
                self.log("job_event", id=ev.id, message=ev.message, level=ev.level,
                         data=ev.data, created_at=ev.created_at)
                if ev.id:
                    seen.add(ev.id)
                if self.progress is not False:
                    print(f"[{job_id}] {ev.message}", file=sys.stderr)

        job.wait(on_event=on_event)
        job.raise_for_status()
        result = job.result
        fine_tuned = result.get("fine_tuned_model")
        if not fine_tuned:
            raise JobFailedError(f"job {job_id} succeeded without a fine_tuned_model")
        self.run.write_state(fine_tuned_model=fine_tuned)
        model = backend.load_model(fine_tuned)
        training = {"job_id": job_id, "fine_tuned_model": fine_tuned,
                    **{k: v for k, v in result.items() if k != "fine_tuned_model"}}
        return model, time.perf_counter() - started, training


def _versions(backend: Backend) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("unified-prompt", f"unified-prompt-{backend.name}"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


