"""Hosted fine-tuning jobs: upload, create, re-attach, and a Job handle that polls.

The core has already converted and validated the JSONL; it is validated again here before
upload, because this API can be called directly too. A job is tagged with metadata
{unified_prompt_run: <run token>} so a restarted run finds it instead of paying twice;
creating one is never blindly retried after a dropped connection (the host may have created
it): the run token is looked up first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from unified_prompt.backend import HostedJobRequest
from unified_prompt.data.hosted_format import validate_file
from unified_prompt.errors import BackendError
from unified_prompt.jobs import EventCallback, Job, JobEvent, JobStatus
from unified_prompt_openai.client.accounting import Accounting
from unified_prompt_openai.client.transport import Transport

RUN_KEY = "unified_prompt_run"
_STATUSES = {s.value: s for s in JobStatus}


def job_status(value: Any) -> JobStatus:
    """Lenient: `paused` is real though the spec omits it; an unknown status is treated as
    still running (never as finished)."""
    return _STATUSES.get(str(value), JobStatus.RUNNING)


def job_error(job: Any) -> str | None:
    """The job's error message; a healthy job's `error: {}` (the real API) is no error."""
    err = getattr(job, "error", None)
    if err is None:
        return None
    if isinstance(err, dict):
        message, code = err.get("message"), err.get("code")
    else:
        message, code = getattr(err, "message", None), getattr(err, "code", None)
    if not message and not code:
        return None
    return f"{message or 'no message'}" + (f" ({code})" if code else "")


def method_body(request: HostedJobRequest) -> dict[str, Any]:
    spec = request.spec
    hp: dict[str, Any] = {"n_epochs": spec.n_epochs, "batch_size": spec.batch_size,
                          "learning_rate_multiplier": spec.learning_rate_multiplier}
    if spec.kind == "dpo" and spec.beta is not None:
        hp["beta"] = spec.beta
    return {"type": spec.kind, spec.kind: {"hyperparameters": hp}}


class HostedFineTuning:
    def __init__(self, transport: Transport, accounting: Accounting) -> None:
        self.transport = transport
        self.accounting = accounting

    def _call(self, what: str, call: Any, **kwargs: Any) -> Any:
        return self.transport.run(self.transport.send(what, call, **kwargs))

    def upload(self, path: Path, kind: str) -> str:
        validate_file(path, kind)  # type: ignore[arg-type]
        data = Path(path).read_bytes()
        name = Path(path).name
        result = self._call(f"uploading {name}", lambda c: c.files.create(
            file=(name, data, "application/jsonl"), purpose="fine-tune"))
        return str(result.id)

    def create(self, request: HostedJobRequest) -> str:
        kind = request.spec.kind
        training = self.upload(request.training_file, kind)
        validation = (self.upload(request.validation_file, kind)
                      if request.validation_file is not None else None)
        body: dict[str, Any] = {"model": request.model, "training_file": training,
                                "method": method_body(request), "seed": request.seed,
                                "metadata": {RUN_KEY: request.run_token}}
        if validation:
            body["validation_file"] = validation
        if request.spec.suffix:
            body["suffix"] = request.spec.suffix
        for attempt in range(4):
            try:
                job = self._call("creating the fine-tuning job",
                                 lambda c: c.fine_tuning.jobs.create(**body),
                                 retry_connection=False)
                return str(job.id)
            except BackendError as exc:
                if not _connection_error(exc) or attempt == 3:
                    raise
                found = self.find(request.run_token)  # the host may have created it
                if found is not None:
                    return found
                time.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    def find(self, run_token: str, max_pages: int = 20) -> str | None:
        """The newest live job tagged with this run token (jobs are listed newest first)."""
        after = None
        for _ in range(max_pages):
            page = self._call("listing fine-tuning jobs", lambda c, a=after: c.fine_tuning.jobs.list(
                limit=100, metadata={RUN_KEY: run_token}, **({"after": a} if a else {})))
            for job in page.data:
                meta = getattr(job, "metadata", None) or {}
                if meta.get(RUN_KEY) == run_token and job_status(job.status) not in (
                        JobStatus.FAILED, JobStatus.CANCELLED):
                    return str(job.id)
            if not page.data or not getattr(page, "has_more", False):
                return None
            after = page.data[-1].id
        return None

    def job(self, job_id: str, poll_seconds: float) -> HostedJob:
        return HostedJob(self, job_id, poll_seconds)


def _connection_error(exc: BaseException) -> bool:
    import openai

    return isinstance(exc.__cause__, openai.APIConnectionError)


class HostedJob(Job):
    """A hosted job seen through polling. Events are listed newest first and paged with
    after/limit; each is delivered once, oldest first."""

    def __init__(self, api: HostedFineTuning, job_id: str, poll_seconds: float) -> None:
        self.api = api
        self.id = job_id
        self.poll_seconds = poll_seconds
        self._job: Any = None
        self._events: list[JobEvent] = []
        self._seen: set[str] = set()
        self._accounted = False

    # -- polling ---------------------------------------------------------------------
    def refresh(self) -> Any:
        self._job = self.api._call(f"polling job {self.id}",
                                   lambda c: c.fine_tuning.jobs.retrieve(self.id))
        if str(self._job.status) == "succeeded" and not self._accounted and self._job.trained_tokens:
            self._accounted = True
            self.api.accounting.record_training(str(self._job.model),
                                                int(self._job.trained_tokens))
        return self._job

    def _fetch_events(self) -> list[JobEvent]:
        new: list[Any] = []
        after = None
        while True:
            page = self.api._call(
                f"listing events of job {self.id}",
                lambda c, a=after: c.fine_tuning.jobs.list_events(
                    self.id, limit=100, **({"after": a} if a else {})))
            stop = False
            for ev in page.data:
                if ev.id in self._seen:
                    stop = True
                    break
                new.append(ev)
            if stop or not page.data or not getattr(page, "has_more", False):
                break
            after = page.data[-1].id
        out = []
        for ev in reversed(new):
            self._seen.add(ev.id)
            data = ev.data if isinstance(getattr(ev, "data", None), dict) else {}
            out.append(JobEvent(str(ev.message), type=str(getattr(ev, "type", None) or "message"),
                                level=str(ev.level or "info"), data=data,
                                created_at=float(ev.created_at), id=str(ev.id)))
        self._events.extend(out)
        return out

    @property
    def status(self) -> JobStatus:
        return job_status(self.refresh().status)

    def events(self) -> list[JobEvent]:
        self._fetch_events()
        return list(self._events)

    def wait(self, *, on_event: EventCallback | None = None,
             timeout: float | None = None) -> JobStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = job_status(self.refresh().status)  # validating_files is not terminal
            for ev in self._fetch_events():
                if on_event is not None:
                    on_event(ev)
            if status.terminal:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                return status
            time.sleep(self.poll_seconds)

    # -- control ---------------------------------------------------------------------
    def cancel(self) -> None:
        self.api._call(f"cancelling job {self.id}", lambda c: c.fine_tuning.jobs.cancel(self.id))

    def pause(self) -> None:
        self.api._call(f"pausing job {self.id}", lambda c: c.fine_tuning.jobs.pause(self.id))

    def resume(self) -> None:
        self.api._call(f"resuming job {self.id}", lambda c: c.fine_tuning.jobs.resume(self.id))

    def checkpoints(self) -> list[dict[str, Any]]:
        """Checkpoints newest first, as the API lists them."""
        out: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.api._call(
                f"listing checkpoints of job {self.id}",
                lambda c, a=after: c.fine_tuning.jobs.checkpoints.list(
                    self.id, limit=100, **({"after": a} if a else {})))
            out += [cp.model_dump(mode="json") for cp in page.data]
            if not page.data or not getattr(page, "has_more", False):
                return out
            after = page.data[-1].id

    # -- outcome ---------------------------------------------------------------------
    @property
    def result(self) -> dict[str, Any]:
        """fine_tuned_model only once the job succeeded (it may be set, unusable, earlier)."""
        job = self._job or self.refresh()
        if job_status(job.status) != JobStatus.SUCCEEDED:
            return {}
        out: dict[str, Any] = {"fine_tuned_model": job.fine_tuned_model,
                               "base_model": job.model, "status": str(job.status)}
        if job.trained_tokens is not None:
            out["trained_tokens"] = int(job.trained_tokens)
        if getattr(job, "result_files", None):
            out["result_files"] = list(job.result_files)
        return out

    @property
    def error(self) -> str | None:
        job = self._job or self.refresh()
        return job_error(job)
