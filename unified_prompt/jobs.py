"""Job handles: one shape for a local training run and a hosted fine-tuning job.

Callers see `status`, `events()`, `wait()` and `cancel()` whether the work runs in a thread
here or on a remote host, so the runner, the CLI and the server treat both alike.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from unified_prompt.errors import CapabilityError, JobFailedError


class JobStatus(str, Enum):
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobEvent:
    """One line of a job's log; `type` is "message" or "metrics" as in the hosted API."""

    message: str
    type: str = "message"
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EventCallback = Callable[[JobEvent], None]


class Job(ABC):
    """A training job, local or hosted."""

    id: str

    @property
    @abstractmethod
    def status(self) -> JobStatus: ...

    @abstractmethod
    def events(self) -> list[JobEvent]:
        """All events so far, oldest first."""

    @abstractmethod
    def wait(self, *, on_event: EventCallback | None = None,
             timeout: float | None = None) -> JobStatus:
        """Block until a terminal status, passing each new event to `on_event` once."""

    @abstractmethod
    def cancel(self) -> None: ...

    def pause(self) -> None:
        raise CapabilityError(f"job {self.id} cannot be paused")

    def resume(self) -> None:
        raise CapabilityError(f"job {self.id} cannot be resumed")

    @property
    def result(self) -> dict[str, Any]:
        """What the job produced (e.g. fine_tuned_model, trained_tokens); empty until done."""
        return {}

    @property
    def error(self) -> str | None:
        return None

    def raise_for_status(self) -> None:
        status = self.status
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobFailedError(f"job {self.id} {status.value}: {self.error or 'no reason given'}")


class JobCancelledError(Exception):
    """Raised inside a local job's work function when cancel() was called."""


class JobContext:
    """Handed to a local job's work function: emit events, check for cancel/pause."""

    def __init__(self, job: LocalJob) -> None:
        self._job = job

    def emit(self, message: str, *, type: str = "message", level: str = "info",
             **data: Any) -> None:
        self._job._add(JobEvent(message, type=type, level=level, data=data))

    def checkpoint(self) -> None:
        """Block while paused; raise JobCancelledError if cancelled. Call once per step."""
        job = self._job
        while job._paused.is_set() and not job._cancelled.is_set():
            time.sleep(0.05)
        if job._cancelled.is_set():
            raise JobCancelledError()

    @property
    def cancelled(self) -> bool:
        return self._job._cancelled.is_set()


class LocalJob(Job):
    """Runs `work(ctx)` in a thread; `work` returns the job's result dict."""

    def __init__(self, job_id: str, work: Callable[[JobContext], dict[str, Any]], *,
                 start: bool = True) -> None:
        self.id = job_id
        self._work = work
        self._events: list[JobEvent] = []
        self._lock = threading.Lock()
        self._status = JobStatus.QUEUED
        self._cancelled = threading.Event()
        self._paused = threading.Event()
        # Set when the work returns. wait() polls this, not Thread.join: on Python 3.11 a
        # Ctrl-C landing inside join() marks a running thread as stopped, so the caller
        # would go on (and exit) while the work is still saving its checkpoint.
        self._done = threading.Event()
        self._result: dict[str, Any] = {}
        self._error: str | None = None
        self._exception: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"job-{job_id}", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def _add(self, event: JobEvent) -> None:
        with self._lock:
            self._events.append(event)

    def _set(self, status: JobStatus, message: str | None = None) -> None:
        self._status = status
        self._add(JobEvent(message or f"job {status.value}", data={"status": status.value}))

    def _run(self) -> None:
        self._set(JobStatus.RUNNING)
        try:
            self._result = self._work(JobContext(self)) or {}
        except JobCancelledError:
            self._set(JobStatus.CANCELLED)
        except BaseException as exc:
            self._exception = exc
            self._error = f"{type(exc).__name__}: {exc}"
            self._set(JobStatus.FAILED, f"job failed: {self._error}")
        else:
            self._set(JobStatus.SUCCEEDED)
        finally:
            self._done.set()

    @property
    def status(self) -> JobStatus:
        if self._paused.is_set() and self._status == JobStatus.RUNNING:
            return JobStatus.PAUSED
        return self._status

    def events(self) -> list[JobEvent]:
        with self._lock:
            return list(self._events)

    def wait(self, *, on_event: EventCallback | None = None,
             timeout: float | None = None) -> JobStatus:
        seen = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._done.wait(0.1)
            if on_event is not None:
                events = self.events()
                for ev in events[seen:]:
                    on_event(ev)
                seen = len(events)
            if self._done.is_set():
                if on_event is not None:
                    for ev in self.events()[seen:]:
                        on_event(ev)
                return self._status
            if deadline is not None and time.monotonic() > deadline:
                return self.status

    def cancel(self) -> None:
        self._cancelled.set()
        self._paused.clear()

    def pause(self) -> None:
        self._paused.set()
        self._add(JobEvent("job paused", data={"status": "paused"}))

    def resume(self) -> None:
        self._paused.clear()
        self._add(JobEvent("job resumed", data={"status": "running"}))

    @property
    def result(self) -> dict[str, Any]:
        return dict(self._result)

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def exception(self) -> BaseException | None:
        """The exception the work raised, so callers can re-raise it with its type."""
        return self._exception
