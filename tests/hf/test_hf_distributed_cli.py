"""`unified-prompt run` under torchrun on hf: `--nproc 2` finishes like one process, and a
run whose rank 1 is killed with SIGKILL resumes under the launcher to the same metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil

from tests.conftest import ROOT, run_cli
from tests.dist_helpers import events, step_losses, train_spec

ENV = {"UNIFIED_PROMPT_COLLECTIVE_TIMEOUT": "300"}
STEPS = 30


def torchrun_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2", "-m", "unified_prompt.cli", *args]


def test_kill_one_rank_then_resume_under_the_launcher(tmp_path, toy_data):
    spec = train_spec(tmp_path / "spec.yaml", toy_data, "hf", max_steps=STEPS,
                      checkpoint_every=4, eval_every=10)
    straight = tmp_path / "straight"
    proc = run_cli("run", str(spec), "--nproc", "2", "--out", str(straight), env=ENV,
                   timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "launching 2 processes" in proc.stderr

    out = tmp_path / "killed"
    env = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0", **ENV}
    group = subprocess.Popen(torchrun_cli("run", str(spec), "--out", str(out)), cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not (out / "checkpoints" / "latest").exists() and time.time() < deadline:
        assert group.poll() is None, group.stderr.read().decode()[-3000:]
        time.sleep(0.05)
    ranks = {int(c.environ().get("RANK", -1)): c for c in psutil.Process(group.pid).children()}
    ranks[1].send_signal(signal.SIGKILL)
    group.communicate(timeout=600)
    assert group.returncode != 0  # the agent stopped the group
    assert not (out / "metrics.json").exists()
    done = [e["step"] for e in events(out) if e["type"] == "step"]
    assert 0 < max(done) < STEPS, "killed part-way through training"

    resumed = subprocess.run(torchrun_cli("run", str(spec), "--out", str(out), "--resume"),
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert a["metrics"] == b["metrics"]
    assert a["training"]["best_dev"] == b["training"]["best_dev"]
    assert (straight / "predictions.jsonl").read_text() == (out / "predictions.jsonl").read_text()
    resume = [e["step"] for e in events(out) if e["type"] == "resume"]
    assert len(resume) == 1 and resume[0] % 4 == 0
    # the resumed tail follows the uninterrupted losses step for step
    tail = step_losses(out)[-(STEPS - resume[0]):]
    np.testing.assert_allclose(tail, step_losses(straight)[resume[0]:], rtol=1e-6)
