"""Fine-tuning jobs with the hosted lifecycle, run for real in a background LocalJob.

validating_files (the core's JSONL rules) -> queued (one training at a time) -> running
(the core's local training entry point, as `unified-prompt run` trains; pause and cancel
take effect between steps) -> succeeded, with the adapter registered as
`ft:{base}:{org}:{suffix}:{id}` and one checkpoint model per epoch.
Events and checkpoints are listed newest first and paged with after/limit, like the API.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.data.hosted_format import validate_lines
from unified_prompt.errors import DataError
from unified_prompt.jobs import JobCancelledError, JobContext, JobStatus, LocalJob
from unified_prompt_openai.server import training as tr
from unified_prompt_openai.server.errors import APIError, not_found, redact_paths
from unified_prompt_openai.server.files import FileStore
from unified_prompt_openai.server.models import ModelRegistry
from unified_prompt_openai.server.paging import page
from unified_prompt_openai.server.persist import JsonStore
from unified_prompt_openai.server.schemas import FineTuningJobRequest


@dataclass
class JobRecord:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    method: dict[str, Any]
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    phase: str = "validating_files"
    finished_at: int | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None  # the terminal status, once the work has ended
    job: LocalJob | None = None  # None for a job restored from an earlier run of the server
    lock: threading.Lock = field(default_factory=threading.Lock)

    SAVED = ("id", "model", "training_file", "validation_file", "method", "hyperparameters",
             "suffix", "seed", "metadata", "created_at", "phase", "finished_at",
             "fine_tuned_model", "trained_tokens", "error", "checkpoints")

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            events = list(self.events)
        return {**{k: getattr(self, k) for k in self.SAVED}, "events": events,
                "outcome": self.outcome or self.status}

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> JobRecord:
        """A job as an earlier run of the server left it; one it left unfinished has lost
        its training and is failed with an error that says so."""
        record = cls(**{k: saved[k] for k in cls.SAVED}, events=saved.get("events", []),
                     outcome=saved.get("outcome"))
        if record.outcome not in ("succeeded", "failed", "cancelled"):
            record.error = {"code": "server_restarted", "param": None, "message":
                            f"The server stopped while this job was {record.outcome}; its "
                            "training was lost. Create a new job to train again."}
            record.outcome = "failed"
            record.finished_at = int(time.time())
            record.event(record.error["message"], level="error", data={"status": "failed"})
        return record

    def event(self, message: str, *, level: str = "info", type: str = "message",
              data: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.events.append({"object": "fine_tuning.job.event",
                                "id": f"ftevent-{self.id[6:]}{len(self.events):05d}",
                                "created_at": int(time.time()), "level": level,
                                "message": message, "type": type, "data": data or {}})

    @property
    def status(self) -> str:
        if self.job is None:
            return self.outcome or "failed"
        local = self.job.status
        if local.terminal:
            return local.value
        if local == JobStatus.PAUSED:
            return "paused"
        return self.phase


class _Ctx:
    """What the core's Trainer sees as its JobContext: pause/cancel from the LocalJob,
    step metrics into this job's API events."""

    def __init__(self, ctx: JobContext, record: JobRecord, total_steps: int) -> None:
        self._ctx = ctx
        self._record = record
        self._total = total_steps

    def checkpoint(self) -> None:
        self._ctx.checkpoint()

    def emit(self, message: str, *, type: str = "message", level: str = "info",
             **data: Any) -> None:
        if "step" in data and "train_loss" in data:
            data = {"step": data["step"], "train_loss": float(data["train_loss"]),
                    "total_steps": self._total}
        self._record.event(message, level=level, type=type, data=data)

    @property
    def cancelled(self) -> bool:
        return self._ctx.cancelled


class FineTuneJobs:
    def __init__(self, registry: ModelRegistry, files: FileStore, workdir: Path, *,
                 organization: str, train_method: str, quirks: bool = False,
                 store: JsonStore | None = None) -> None:
        self.registry = registry
        self.files = files
        self.workdir = workdir
        self.organization = organization
        self.train_method = train_method
        self.quirks = quirks
        self.store = store
        self._jobs: dict[str, JobRecord] = {}
        self._slot = threading.Semaphore(1)
        self._save_lock = threading.Lock()
        for saved in (store.load("jobs") if store else None) or []:
            record = JobRecord.restored(saved)
            self._jobs[record.id] = record
        if self._jobs:
            self._save()

    def close(self) -> None:
        """At server stop: cancel what still trains, without recording that as the jobs'
        end (the saved state keeps them unfinished: the next start marks them failed)."""
        self.store = None
        for record in list(self._jobs.values()):
            if record.job is not None and not record.job.status.terminal:
                record.job.cancel()

    def _save(self) -> None:
        if self.store is not None:
            with self._save_lock:
                self.store.save("jobs", [r.snapshot() for r in list(self._jobs.values())])

    # -- API operations --------------------------------------------------------------
    def create(self, req: FineTuningJobRequest) -> dict[str, Any]:
        info = self.registry.info(req.model)
        if not info.base:
            raise APIError(400, "Fine-tuning a fine-tuned model is not supported by this "
                           "server; fine-tune the base model.", param="model")
        method = req.method.model_dump(exclude_none=True) if req.method else {"type": "supervised"}
        kind = method["type"]
        if kind == "reinforcement":
            raise APIError(400, "method.type 'reinforcement' is not supported by this server",
                           param="method.type")
        hp_src = (getattr(req.method, kind, None) if req.method else None)
        hp = (hp_src.hyperparameters.model_dump(exclude_none=True)
              if hp_src and hp_src.hyperparameters else
              (req.hyperparameters.model_dump(exclude_none=True) if req.hyperparameters else {}))
        problem = tr.hyperparameter_problem(hp)
        if problem is not None:
            where = (f"method.{kind}.hyperparameters" if hp_src and hp_src.hyperparameters
                     else "hyperparameters")
            raise APIError(400, f"Invalid hyperparameter: {problem[1]}.",
                           param=f"{where}.{problem[0]}", code="invalid_value")
        for name, file_id in (("training_file", req.training_file),
                              ("validation_file", req.validation_file)):
            if file_id is None:
                continue
            stored = self.files.find(file_id)
            if stored is None:
                raise APIError(400, f"{name}: no file with id '{file_id}'", param=name,
                               code="invalid_file")
            if stored.purpose != "fine-tune":
                raise APIError(400, f"{name}: file '{file_id}' has purpose "
                               f"'{stored.purpose}', not 'fine-tune'", param=name)
        job_id = f"ftjob-{secrets.token_hex(12)}"
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        record = JobRecord(job_id, req.model, req.training_file, req.validation_file,
                           method, hp, req.suffix, seed, req.metadata)
        record.event(f"Validating training file: {req.training_file}",
                     data={"status": "validating_files"})
        record.job = LocalJob(job_id, lambda ctx: self._work(record, ctx, kind), start=False)
        self._jobs[job_id] = record
        record.job.start()
        self._save()
        return self.to_dict(record)

    def get(self, job_id: str) -> JobRecord:
        record = self._jobs.get(job_id)
        if record is None:
            raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
        return record

    def list(self, after: str | None, limit: int,
             metadata: dict[str, str]) -> tuple[list[JobRecord], bool]:
        jobs = sorted(self._jobs.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        jobs = [r for r in jobs if all((r.metadata or {}).get(k) == v for k, v in metadata.items())]
        return page(jobs, after, limit, key=lambda r: r.id, max_limit=100)

    def cancel(self, job_id: str) -> dict[str, Any]:
        record = self.get(job_id)
        if record.status in ("succeeded", "failed", "cancelled"):
            raise APIError(400, f"Job {job_id} is already {record.status}.", param="fine_tuning_job_id")
        assert record.job is not None
        record.job.cancel()
        record.job.wait(timeout=10)
        self._save()
        return self.to_dict(record)

    def pause(self, job_id: str) -> dict[str, Any]:
        record = self.get(job_id)
        if record.status not in ("running", "queued", "validating_files"):
            raise APIError(400, f"Job {job_id} is {record.status}; only a running job can be "
                           "paused.", param="fine_tuning_job_id")
        assert record.job is not None
        record.job.pause()
        record.event("Job paused", data={"status": "paused"})
        self._save()
        return self.to_dict(record)

    def resume(self, job_id: str) -> dict[str, Any]:
        record = self.get(job_id)
        if record.status != "paused":
            raise APIError(400, f"Job {job_id} is {record.status}, not paused.",
                           param="fine_tuning_job_id")
        assert record.job is not None
        record.job.resume()
        record.event("Job resumed", data={"status": record.phase})
        self._save()
        return self.to_dict(record)

    def events(self, job_id: str, after: str | None, limit: int) -> tuple[list[dict], bool]:
        record = self.get(job_id)
        with record.lock:
            newest_first = list(reversed(record.events))
        return page(newest_first, after, limit, key=lambda e: e["id"], max_limit=100)

    def checkpoints(self, job_id: str, after: str | None, limit: int) -> tuple[list[dict], bool]:
        record = self.get(job_id)
        return page(list(reversed(record.checkpoints)), after, limit, key=lambda c: c["id"],
                    max_limit=100)

    def to_dict(self, r: JobRecord) -> dict[str, Any]:
        status = r.status
        error = r.error
        if error is None and self.quirks and status not in ("failed",):
            error = {}  # what the real API sends while a job is healthy
        hp = r.hyperparameters
        shown = {k: hp.get(k, "auto") for k in ("n_epochs", "batch_size",
                                                "learning_rate_multiplier")}
        method = dict(r.method)
        kind = method["type"]
        method[kind] = {"hyperparameters": {**shown, **({"beta": hp.get("beta", "auto")}
                                                         if kind == "dpo" else {})}}
        return {"object": "fine_tuning.job", "id": r.id, "model": r.model,
                "created_at": r.created_at, "finished_at": r.finished_at,
                "fine_tuned_model": r.fine_tuned_model if status == "succeeded" else None,
                "organization_id": self.organization, "result_files": [],
                "status": status, "validation_file": r.validation_file,
                "training_file": r.training_file, "hyperparameters": shown,
                "trained_tokens": r.trained_tokens if status == "succeeded" else None,
                "error": error, "seed": r.seed, "metadata": r.metadata, "method": method,
                "estimated_finish": None, "integrations": None}

    # -- the work --------------------------------------------------------------------
    def _work(self, r: JobRecord, ctx: JobContext, kind: str) -> dict[str, Any]:
        outcome = "failed"
        try:
            result = self._run(r, ctx, kind)
            outcome = "succeeded"
            return result
        except JobCancelledError:
            outcome = "cancelled"
            r.finished_at = int(time.time())
            r.event("Job cancelled", data={"status": "cancelled"})
            raise
        except DataError as exc:
            r.error = {"code": "invalid_training_file", "message": redact_paths(str(exc)),
                       "param": "training_file"}
            r.finished_at = int(time.time())
            r.event(f"Training file validation failed: {r.error['message']}", level="error",
                    data={"status": "failed"})
            raise
        except Exception as exc:
            reason = redact_paths(f"{type(exc).__name__}: {exc}")
            r.error = {"code": "server_error", "message": reason, "param": None}
            r.finished_at = int(time.time())
            r.event(f"Fine-tuning failed: {reason}", level="error", data={"status": "failed"})
            raise
        finally:
            r.outcome = outcome
            self._save()

    def _run(self, r: JobRecord, ctx: JobContext, kind: str) -> dict[str, Any]:
        from unified_prompt.backend import TrainSetup
        from unified_prompt.local_training import TrainCallbacks, train_locally
        from unified_prompt.training import TrainPlan

        rows = self._validated_rows(r.training_file, kind)
        val_rows = self._validated_rows(r.validation_file, kind) if r.validation_file else []
        r.hyperparameters = {**r.hyperparameters,
                             **tr.resolve_hyperparameters(r.hyperparameters, len(rows))}
        r.phase = "queued"
        r.event("Files validated, moving job to queued state", data={"status": "queued"})
        while not self._slot.acquire(timeout=0.05):
            ctx.checkpoint()
        try:
            ctx.checkpoint()
            r.phase = "running"
            r.event("Fine-tuning job started", data={"status": "running"})
            if kind == "dpo":
                r.event("dpo is approximated by supervised training on preferred outputs "
                        "(local backends have no preference loss)", level="warn")
            backend, registry = self.registry.backend, self.registry
            base = registry.base_handle
            soft = tr.soft_tokens(self.train_method)
            render = lambda msgs: registry.call(backend.render_chat, base, msgs)  # noqa: E731
            items = tr.train_items(render, rows, soft)
            val_items = tr.train_items(render, val_rows[:64], soft)
            spec = tr.train_spec(self.train_method, r.hyperparameters, r.seed)
            folder = self.workdir / r.id
            setup = TrainSetup(method=spec, task="generation", seed=r.seed,
                               soft_slots=(items[0].prompt.soft_slots if soft else ()),
                               work_dir=folder / "checkpoints")
            session = registry.call(backend.start_training, base, setup)
            name = self._model_name(r)
            total_steps = TrainPlan.build(spec, len(items), has_dev=False).total_steps

            def checkpoint(step: int, loss: float) -> None:
                """One checkpoint model per epoch, with its losses, as the API lists them."""
                metrics: dict[str, float] = {"step": float(step), "train_loss": float(loss)}
                if val_items:
                    session.train_mode(False)
                    metrics["valid_loss"] = float(session.loss(val_items))
                    session.train_mode(True)
                ckpt_dir = folder / f"ckpt-step-{step}"
                session.save_adapter(ckpt_dir)
                ckpt_name = f"{name}:ckpt-step-{step}"
                registry.register(ckpt_name, ckpt_dir, self.organization, load=False)
                r.checkpoints.append({
                    "object": "fine_tuning.job.checkpoint",
                    "id": f"ftckpt_{secrets.token_hex(10)}", "created_at": int(time.time()),
                    "fine_tuned_model_checkpoint": ckpt_name, "fine_tuning_job_id": r.id,
                    "metrics": metrics, "step_number": step})
                r.event(f"Checkpoint created at step {step}", type="metrics", data=metrics)

            adapter = folder / "adapter"
            try:  # a failed or cancelled job frees its session too
                train_locally(session, items, spec, TrainCallbacks(on_epoch_end=checkpoint),
                              seed=r.seed, progress=False, job=_Ctx(ctx, r, total_steps))
                session.save_adapter(adapter)
            finally:
                session.close()
            registry.register(name, adapter, self.organization)
            r.trained_tokens = tr.estimate_trained_tokens(rows, r.hyperparameters["n_epochs"])
            r.fine_tuned_model = name
            r.finished_at = int(time.time())
            r.event(f"New fine-tuned model created: {name}")
            r.event("The job has successfully completed", data={"status": "succeeded"})
            return {"fine_tuned_model": name}
        finally:
            self._slot.release()

    def _validated_rows(self, file_id: str, kind: str) -> list[tr.ChatRow]:
        stored = self.files.get(file_id)
        try:  # read once: the rules check these lines and training reads the same ones
            lines = stored.path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:  # as the core's validate_file reports it
            raise DataError(f"cannot read training file ({exc})", path=stored.filename) from None
        validate_lines(lines, kind, source=stored.filename)  # type: ignore[arg-type]
        return tr.parse_rows(lines, kind, stored.filename)

    def _model_name(self, r: JobRecord) -> str:
        return f"ft:{r.model}:{self.organization}:{r.suffix or ''}:{r.id[6:14]}"

