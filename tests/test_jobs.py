"""Local job handles: status, events, cancel, pause, failures carrying their exception."""

import threading

import pytest

from unified_prompt.errors import JobFailedError
from unified_prompt.jobs import JobStatus, LocalJob


def test_success_streams_each_event_once():
    def work(ctx):
        for i in range(3):
            ctx.checkpoint()
            ctx.emit(f"step {i}", type="metrics", step=i)
        return {"fine_tuned_model": "m"}

    job = LocalJob("j1", work)
    seen = []
    assert job.wait(on_event=seen.append) == JobStatus.SUCCEEDED
    messages = [e.message for e in seen]
    assert messages.count("step 1") == 1 and messages[-1] == "job succeeded"
    assert job.result == {"fine_tuned_model": "m"}
    job.raise_for_status()


def test_cancel_and_pause():
    gate = threading.Event()

    def work(ctx):
        while True:
            gate.set()
            ctx.checkpoint()

    job = LocalJob("j2", work)
    gate.wait(5)
    job.pause()
    assert job.status == JobStatus.PAUSED
    job.resume()
    job.cancel()
    assert job.wait(timeout=5) == JobStatus.CANCELLED
    with pytest.raises(JobFailedError, match="cancelled"):
        job.raise_for_status()


def test_failure_keeps_the_exception():
    def work(ctx):
        raise ValueError("boom")

    job = LocalJob("j3", work)
    assert job.wait() == JobStatus.FAILED
    assert isinstance(job.exception, ValueError) and "boom" in job.error
