"""Tracking sinks of the event stream, read back and checked against events.jsonl:
TensorBoard files (by default) and an MLflow sqlite store (optional)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.toy_runs import events, toy_data, toy_run, toy_spec_data
from unified_prompt.runner import Experiment
from unified_prompt.tracking.tensorboard_sink import TensorBoardSink, read_scalars


def _expected(run):
    """tag -> [(step, value)] as the event stream says."""
    evs = events(run)
    steps = [e for e in evs if e["type"] == "step"]
    out = {f"train/{k}": [(e["step"], e[k]) for e in steps] for k in ("loss", "lr", "grad_norm")}
    for e in evs:
        if e["type"] == "eval":
            at = e.get("step", steps[-1]["step"] if steps else 0)
            for k, v in e["metrics"].items():
                out.setdefault(f"{e['split']}/{k}", []).append((at, v))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_data(tmp_path_factory.mktemp("tracking") / "data")


def test_tensorboard_files_hold_the_event_stream(tmp_path, data):
    run = toy_run(tmp_path / "run", data)
    got = read_scalars(run / "tensorboard")
    want = _expected(run)
    assert set(got) == set(want) == {"train/loss", "train/lr", "train/grad_norm", "dev/accuracy",
                                     "test/accuracy", "test/macro_f1"}
    for tag, points in want.items():  # TensorBoard keeps float32
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == [float(np.float32(v)) for _, v in points], tag
    off = toy_run(tmp_path / "off", data, tracking={"tensorboard": False}, max_steps=2)
    assert not (off / "tensorboard").exists()


def test_a_resumed_run_replaces_what_the_killed_one_logged_past_its_checkpoint(tmp_path):
    folder = tmp_path / "tb"
    first = TensorBoardSink(folder)
    for step in range(1, 8):
        first.write({"type": "step", "step": step, "loss": 1.0 + step, "lr": 0.1, "time": step})
    first.close()  # the killed process got this far; its checkpoint was at step 4
    second = TensorBoardSink(folder)
    second.write({"type": "resume", "step": 4, "time": 10})
    for step in range(5, 9):
        second.write({"type": "step", "step": step, "loss": 2.0 + step, "lr": 0.1, "time": 10 + step})
    second.close()
    loss = read_scalars(folder)["train/loss"]
    assert loss == [(1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0), (5, 7.0), (6, 8.0), (7, 9.0), (8, 10.0)]


def test_tracking_libraries_load_only_when_used():
    code = ("import sys, unified_prompt, unified_prompt.runner, unified_prompt.cli; "
            "print(sorted(m for m in ('tensorboardX', 'mlflow', 'matplotlib', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    # tensorboardX would import torch whenever it is installed; a paddle run must not pay that
    code = ("import sys; from unified_prompt.tracking.tensorboard_sink import _tensorboardx; "
            "_tensorboardx(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="the mlflow extra is not installed")


@needs_mlflow
def test_mlflow_run_mirrors_the_run_directory(tmp_path, data):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    secret = "sk-test-" + "7" * 20
    run = toy_run(tmp_path / "run", data, tracking={"mlflow": {"uri": uri, "experiment": "toys"}})
    pointer = json.loads((run / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    info = client.get_run(pointer["run_id"])
    assert info.info.status == "FINISHED" and info.info.run_name == "run"
    for tag, points in _expected(run).items():
        history = client.get_metric_history(pointer["run_id"], tag)
        assert [(m.step, m.value) for m in history] == points, tag
    params = info.data.params
    assert params["finetune.r"] == "4" and params["backend.name"] == "fake"
    assert params["tracking.mlflow.experiment"] == "toys"
    artifacts = {a.path for a in client.list_artifacts(pointer["run_id"])}
    assert {"metrics.json", "report.md", "predictions.jsonl", "events.jsonl", "figures",
            "adapter", "tensorboard"} <= artifacts
    assert "checkpoints" not in artifacts
    assert client.get_experiment_by_name("toys").artifact_location.startswith(
        (tmp_path / "store").as_uri())
    # a secret in backend options is redacted in the params, as in config.yaml
    other = tmp_path / "secret"
    spec = toy_spec_data(data, max_steps=2)
    spec["backend"]["options"] = {"other": {"api_key": secret}}
    spec["tracking"] = {"mlflow": {"uri": uri}}
    Experiment.from_dict(spec).run(out=other, progress=False)
    run_id = json.loads((other / "mlflow.json").read_text())["run_id"]
    assert client.get_run(run_id).data.params["backend.options.other.api_key"] == "<redacted>"


@needs_mlflow
def test_a_tracking_failure_is_a_warning_not_a_failed_run(tmp_path, data):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = toy_run(tmp_path / "run", data, max_steps=2,
                  tracking={"mlflow": {"uri": f"sqlite:///{blocker}/sub/mlflow.db"}})
    assert (run / "metrics.json").exists()
    warnings = [e for e in events(run) if e["type"] == "warning"]
    assert [w["sink"] for w in warnings] == ["mlflow"] and warnings[0]["source"] == "tracking"
    assert read_scalars(run / "tensorboard")["train/loss"]  # the other sink went on
