"""Hosted fine-tuning through `unified-prompt serve`: real local training behind the
hosted lifecycle, re-attachment after a killed client, and bad data stopped before upload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai_testkit as kit
import pytest

from unified_prompt.backend import HostedJobRequest
from unified_prompt.config import HostedSpec
from unified_prompt.errors import DataError
from unified_prompt.registry import create_backend
from unified_prompt.runner import Experiment

ROOT = Path(__file__).resolve().parents[2]
HOSTED = {"method": "hosted", "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 40,
          "suffix": "sst", "poll_seconds": 0.05}


def _cli(*args: str, env: dict | None = None, timeout: float = 120,
         background: bool = False):
    full = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0", **(env or {})}
    cmd = [sys.executable, "-m", "unified_prompt.cli", *args]
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout)


def test_hosted_job_trains_for_real_and_the_ft_model_is_evaluated(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=24, dev=12, test=24)
    data = kit.run_spec(files, options=kit.backend_options(server), finetune=HOSTED)
    result = Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    training = metrics["training"]
    assert training["fine_tuned_model"].startswith("ft:fake-tiny:unified-prompt:sst:")
    assert 0.0 <= metrics["metrics"]["accuracy"] <= 1.0
    assert metrics["method"] == "hosted" and result.metrics["model"] == "fake-tiny"
    assert metrics["usage"]["trained_tokens"] == training["trained_tokens"] > 0
    record = server.state.jobs.get(training["job_id"])
    statuses = [e["data"].get("status") for e in record.events if e["data"].get("status")]
    assert statuses == ["validating_files", "queued", "running", "succeeded"]
    assert len(record.checkpoints) == 2 and "valid_loss" in record.checkpoints[-1]["metrics"]
    events = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    job_events = [e for e in events if e["type"] == "job_event"]
    assert [e["id"] for e in job_events] == [e["id"] for e in record.events], \
        "every job event delivered once, oldest first"
    # the fine-tuned model answers through the same endpoints as the base model
    ft = create_backend("openai", kit.backend_options(server))
    model = ft.load_model(training["fine_tuned_model"])
    assert ft.model_info(model).name == training["fine_tuned_model"]
    ft.close()


def test_dpo_jobs_are_sent_with_their_method(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=12, dev=0, test=4)
    data = kit.run_spec(files, options=kit.backend_options(server),
                        finetune={**HOSTED, "kind": "dpo", "beta": 0.2, "n_epochs": 1,
                                  "validation": False})
    result = Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
    record = server.state.jobs.get(result.metrics["training"]["job_id"])
    assert record.method["type"] == "dpo" and record.hyperparameters["beta"] == 0.2
    assert any(e["level"] == "warn" and "dpo" in e["message"] for e in record.events)


def test_killed_client_resumes_without_a_second_job(tmp_path):
    with kit.serve(backend_options={"step_delay": 0.15}) as srv:
        files = kit.write_data(tmp_path / "data", train=24, dev=0, test=8)
        spec = kit.write_spec(tmp_path / "spec.yaml", kit.run_spec(
            files, options=kit.backend_options(srv),
            finetune={**HOSTED, "n_epochs": 3, "validation": False}))
        out = tmp_path / "run"
        proc = _cli("run", str(spec), "--out", str(out), background=True)
        state = out / "state.json"
        deadline = time.monotonic() + 60
        while not (state.exists() and "job_id" in json.loads(state.read_text() or "{}")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the client never recorded a job id"
            time.sleep(0.05)
        job_id = json.loads(state.read_text())["job_id"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert srv.state.jobs.get(job_id).status in ("validating_files", "queued", "running")
        resumed = _cli("run", str(spec), "--out", str(out), "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert kit.count(srv, "POST", "/v1/fine_tuning/jobs") == 1, "no second job"
        assert kit.count(srv, "POST", "/v1/files") == 1, "the training file was uploaded once"
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["training"]["job_id"] == job_id
        events = (out / "events.jsonl").read_text()
        assert '"job_reattached"' in events


def test_too_few_examples_fail_before_any_upload_with_exit_2(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=6, dev=0, test=4)
    spec = kit.write_spec(tmp_path / "spec.yaml", kit.run_spec(
        files, options=kit.backend_options(server), finetune={**HOSTED, "validation": False}))
    uploads = kit.count(server, "POST", "/v1/files")
    run = _cli("run", str(spec), "--out", str(tmp_path / "run"))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "rejected before upload" in run.stderr
    assert "6 examples; hosted fine-tuning needs at least 10" in run.stderr
    assert kit.count(server, "POST", "/v1/files") == uploads, "nothing was uploaded"


def test_an_oversize_example_fails_before_any_upload_naming_its_line(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=12, dev=0, test=4)
    rows = kit.examples(12, "tr")
    rows[4]["text"] = "word " * 50_000
    Path(files["train"]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = kit.run_spec(files, options=kit.backend_options(server),
                        finetune={**HOSTED, "validation": False})
    uploads = kit.count(server, "POST", "/v1/files")
    with pytest.raises(DataError) as err:
        Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
    assert err.value.line is not None
    assert f"line {err.value.line}: about" in str(err.value)
    assert "over the 65536-token limit for one example" in str(err.value)
    assert kit.count(server, "POST", "/v1/files") == uploads, "nothing was uploaded"


def test_wrong_roles_are_rejected_by_the_backend_before_upload(server, tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": "a"}]} for i in range(12)]
    rows[6]["messages"][0]["role"] = "bot"
    bad = tmp_path / "train.supervised.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    backend = create_backend("openai", kit.backend_options(server))
    uploads = kit.count(server, "POST", "/v1/files")
    request = HostedJobRequest(spec=HostedSpec(method="hosted"), model="fake-tiny",
                               training_file=bad, validation_file=None, run_token="t", seed=1)
    with pytest.raises(DataError) as err:
        backend.create_hosted_job(request)
    assert err.value.line == 7 and "role 'bot' is not one of" in str(err.value)
    assert kit.count(server, "POST", "/v1/files") == uploads
    backend.close()


def test_job_controls_and_paged_events(server, tmp_path):
    """cancel / pause / resume through the Job handle; more events than one page, each
    delivered once and oldest first."""
    backend = create_backend("openai", kit.backend_options(server))
    rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"Review {i}"},
                                            {"role": "assistant", "content": "good"}]}) + "\n"
                   for i in range(12))
    path = tmp_path / "train.supervised.jsonl"
    path.write_text(rows)
    spec = HostedSpec(method="hosted", n_epochs=12, batch_size=1, poll_seconds=0.05)
    job_id = backend.create_hosted_job(HostedJobRequest(spec=spec, model="fake-tiny",
                                                        training_file=path,
                                                        validation_file=None,
                                                        run_token="paged", seed=2))
    assert backend.find_hosted_job("paged") == job_id
    job = backend.hosted_job(job_id)
    seen = []
    status = job.wait(on_event=seen.append, timeout=60)
    assert status.value == "succeeded"
    server_ids = [e["id"] for e in server.state.jobs.get(job_id).events]
    assert len(server_ids) > 150, "more than one page of events"
    assert [e.id for e in seen] == server_ids
    assert job.result["fine_tuned_model"].startswith("ft:fake-tiny:")
    assert len(job.checkpoints()) == 12
    long = HostedSpec(method="hosted", n_epochs=50, batch_size=1, poll_seconds=0.05)
    second = backend.hosted_job(backend.create_hosted_job(HostedJobRequest(
        spec=long, model="fake-tiny", training_file=path, validation_file=None,
        run_token="cancel-me", seed=2)))
    second.pause()
    assert second.status.value == "paused"
    second.resume()
    second.cancel()
    assert second.wait(timeout=10).value == "cancelled"
    with pytest.raises(Exception, match="cancelled"):
        second.raise_for_status()
    assert backend.find_hosted_job("cancel-me") is None, "a cancelled job is not re-attached"
    backend.close()
