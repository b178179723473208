"""Multi-seed runs: OUT/seed-<n>/ are normal run directories, OUT/metrics.json aggregates
them (mean, sample std, per-seed values), finished seeds are reused, a killed run resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli
from unified_prompt.errors import ConfigError
from unified_prompt.runner import Experiment


def _losses(run_dir):
    return [json.loads(x)["loss"] for x in (run_dir / "events.jsonl").read_text().splitlines()
            if json.loads(x)["type"] == "step"]


def test_run_seeds_aggregates_the_per_seed_runs(tmp_path, toy_spec):
    out = tmp_path / "seeds"
    result = Experiment.from_yaml(toy_spec).run_seeds([1, 2, 3], out=out)
    per_seed = [json.loads((out / f"seed-{s}" / "metrics.json").read_text()) for s in (1, 2, 3)]
    assert [m["seed"] for m in per_seed] == [1, 2, 3]
    agg = json.loads((out / "metrics.json").read_text())
    assert agg == result.metrics
    for key in ("backend", "model", "method", "task", "split", "n_examples", "trainable_params",
                "total_params", "train_seconds", "eval_seconds"):
        assert key in agg
    assert agg["seed"] == agg["seeds"] == [1, 2, 3]
    assert set(agg["metrics"]) == {"accuracy", "macro_f1"}
    for name in agg["metrics"]:
        values = np.array([m["metrics"][name] for m in per_seed])
        assert agg["metrics_per_seed"][name] == values.tolist()
        assert agg["metrics"][name] == pytest.approx(values.mean(), abs=1e-12)
        assert agg["metrics_std"][name] == pytest.approx(values.std(ddof=1), abs=1e-12)
    assert agg["train_seconds"] == pytest.approx(sum(m["train_seconds"] for m in per_seed),
                                                 abs=2e-3)
    # different seeds really train differently
    losses = [_losses(out / f"seed-{s}") for s in (1, 2, 3)]
    assert len(losses[0]) == 24 and losses[0] != losses[1] and losses[1] != losses[2]
    report = (out / "report.md").read_text()
    assert "| metric | mean | std | seed 1 | seed 2 | seed 3 |" in report
    assert f"| accuracy | {agg['metrics']['accuracy']:.4f} |" in report


def test_a_seed_directory_is_the_single_seed_run(tmp_path, toy_spec):
    """seed-<n>/ holds exactly what `run --set seed=n` writes (config bytes, numbers)."""
    out = tmp_path / "seeds"
    Experiment.from_yaml(toy_spec).run_seeds([7], out=out)
    single = tmp_path / "single"
    Experiment.from_yaml(toy_spec, overrides=["seed=7"]).run(out=single)
    assert (out / "seed-7" / "config.yaml").read_bytes() == (single / "config.yaml").read_bytes()
    assert (out / "seed-7" / "predictions.jsonl").read_bytes() == \
        (single / "predictions.jsonl").read_bytes()
    assert _losses(out / "seed-7") == _losses(single)
    agg = json.loads((out / "metrics.json").read_text())
    assert agg["metrics_std"] == {"accuracy": None, "macro_f1": None}  # one seed: no std


def test_a_seed_list_is_not_run_as_one_seed(toy_spec):
    exp = Experiment.from_yaml(toy_spec, overrides=["seed=[1, 2]"])
    assert exp.spec.seeds == [1, 2] and exp.spec.seed == 1
    with pytest.raises(ConfigError, match="run_seeds"):
        exp.run()
    pinned = Experiment.from_yaml(toy_spec, overrides=["seed=[1, 2]", "finetune.seed=3"])
    with pytest.raises(ConfigError, match=r"finetune\.seed"):
        pinned.run_seeds()


def test_cli_seed_list_validates_runs_and_reuses_finished_seeds(tmp_path, toy_spec):
    spec = tmp_path / "multi.yaml"
    spec.write_text(toy_spec.read_text().replace("seed: 5\n", "seed: [4, 9]\n"))
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 0 and "seeds: 4, 9" in proc.stdout, proc.stderr
    out = tmp_path / "out"
    proc = run_cli("run", str(spec), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == json.loads((out / "metrics.json").read_text())
    assert printed["seeds"] == [4, 9] and sorted(p.name for p in out.iterdir()) == \
        ["metrics.json", "report.md", "seed-4", "seed-9"]
    events = (out / "seed-4" / "events.jsonl").read_text()
    # rerun: both seeds finished, so they are reused (nothing retrained) and --seeds adds one
    proc = run_cli("run", str(spec), "--out", str(out), "--json", "--seeds", "4,9,11")
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert (out / "seed-4" / "events.jsonl").read_text() == events
    assert again["metrics_per_seed"]["accuracy"][:2] == printed["metrics_per_seed"]["accuracy"]
    assert again["seeds"] == [4, 9, 11] and (out / "seed-11" / "metrics.json").exists()


@pytest.mark.parametrize("args,needle", [
    (["--seeds", "1,x"], "--seeds: expected comma-separated integers"),
    (["--seeds", "1,1"], "seeds repeat"),
    (["--seeds", "1,-2"], "greater than or equal to 0"),
])
def test_bad_seeds_exit_2(tmp_path, toy_spec, args, needle):
    proc = run_cli("run", str(toy_spec), "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


def test_killed_multi_seed_run_resumes_to_the_same_numbers(tmp_path, toy_spec):
    straight = tmp_path / "straight"
    assert run_cli("run", str(toy_spec), "--out", str(straight), "--seeds", "1,2").returncode == 0
    out = tmp_path / "killed"
    slow = ["--set", "backend.options.fake.step_delay=0.1"]
    cmd = [sys.executable, "-m", "unified_prompt.cli", "run", str(toy_spec), "--out", str(out),
           "--seeds", "1,2", *slow]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    latest = out / "seed-2" / "checkpoints" / "latest"
    deadline = time.time() + 90
    while not latest.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "seed-1" / "metrics.json").exists()
    assert not (out / "seed-2" / "metrics.json").exists() and not (out / "metrics.json").exists()
    refused = run_cli("run", str(toy_spec), "--out", str(out), "--seeds", "1,2", *slow)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = run_cli("run", str(toy_spec), "--out", str(out), "--seeds", "1,2", "--resume", *slow)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert a["metrics_per_seed"] == b["metrics_per_seed"] and a["metrics"] == b["metrics"]
    events = [json.loads(x) for x in (out / "seed-2" / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "resume" for e in events)
