"""Data parallel on the paddle backend: `run --nproc 2` (paddle.distributed.launch, gloo on
CPU) follows the one-process run step for step; fsdp is refused with paddle's reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.dist_helpers import events, step_losses, train_spec
from unified_prompt.errors import CapabilityError
from unified_prompt.runner import Experiment


def test_lora_in_two_processes_follows_one_process(tmp_path, toy_data):
    spec = train_spec(tmp_path / "spec.yaml", toy_data, "paddle")
    one = Experiment.from_yaml(spec).run(out=tmp_path / "one", progress=False)
    proc = run_cli("run", str(spec), "--nproc", "2", "--out", str(tmp_path / "two"), "--json",
                   env={"UNIFIED_PROMPT_COLLECTIVE_TIMEOUT": "300"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    printed = proc.stdout[proc.stdout.find("{"):]
    assert json.loads(printed) == two  # rank 0 printed once; the other rank did not
    assert two["training"]["processes"] == 2
    losses = step_losses(tmp_path / "two")
    assert len(losses) == 10
    np.testing.assert_allclose(losses, step_losses(tmp_path / "one"), rtol=1e-5)
    assert two["metrics"] == one.metrics["metrics"]
    rows = [json.loads(x) for x in (tmp_path / "two" / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in one.predictions]
    dev = [e for e in events(tmp_path / "two") if e["type"] == "eval" and e.get("split") == "dev"]
    assert [e["step"] for e in dev] == [5, 10]


def test_fsdp_is_refused_with_the_reason(tmp_path, toy_data):
    spec = train_spec(tmp_path / "spec.yaml", toy_data, "paddle", parallel="fsdp")
    with pytest.raises(CapabilityError, match="group_sharded_parallel only support gpu"):
        Experiment.from_yaml(spec).run(progress=False)
