"""`matrix` / `portability.check` on hf and paddle with the tiny Llama: the runs, the
converted adapters, the comparison and its exit codes, identical tracking tag sets; and
the copyable example test in examples/ run against the same tiny setup."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.toy_runs import toy_data, toy_spec_data
from unified_prompt import portability
from unified_prompt.testing.tiny import tiny_model
from unified_prompt.tracking.tensorboard_sink import read_scalars

ROOT = Path(__file__).resolve().parents[2]
#: Prompt tuning from a text init starts from the same numbers on both frameworks (LoRA's A
#: is drawn by torch on hf and by numpy on paddle, so LoRA runs part after step 1).
SETTINGS = {"method": "prompt_tuning", "num_virtual_tokens": 3, "init": "text",
            "init_text": "Is this review positive", "lr": 0.003, "max_steps": 6,
            "eval_every": 3, "batch_size": 4}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unified_prompt.cli", *args], cwd=ROOT,
                          env={**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"},
                          capture_output=True, text=True, timeout=600)


def tiny_spec(tmp_path, **finetune):
    spec = toy_spec_data(toy_data(tmp_path / "data"), **{**SETTINGS, **finetune})
    spec["finetune"].pop("r", None)
    spec["backend"] = {"name": "hf", "model": str(tiny_model("llama")),
                       "options": {"hf": {"device": "cpu"}}}
    return spec


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    spec = tiny_spec(root)
    (root / "spec.yaml").write_text(json.dumps(spec))  # JSON is YAML
    result = portability.check(root / "spec.yaml", backends=["hf", "paddle"], convert=True,
                               out=root / "out")
    return root, result


def test_matrix_runs_each_backend_and_each_converted_adapter(matrix):
    root, result = matrix
    out = root / "out"
    assert [r.label for r in result.runs] == ["hf", "paddle", "hf-to-paddle", "paddle-to-hf"]
    assert [(p.a, p.b) for p in result.pairs] == [("hf", "paddle"), ("hf", "hf-to-paddle"),
                                                  ("paddle", "paddle-to-hf")]
    for label in ("hf", "paddle", "hf-to-paddle", "paddle-to-hf"):
        assert (out / label / "metrics.json").exists()
    assert json.loads((out / "paddle" / "metrics.json").read_text())["backend"] == "paddle"
    converted = json.loads((out / "converted" / "hf-to-paddle" / "manifest.json").read_text())
    assert converted["backend"] == "paddle" and converted["converted_from"]["backend"] == "hf"
    result.assert_agrees()
    cross = result.pair("hf", "paddle")
    assert cross.same == cross.n_common == 12
    assert cross.loss.steps == 6 and cross.loss.relative[1] < 1e-5
    for source, target in (("hf", "paddle"), ("paddle", "hf")):
        pair = result.pair(source, f"{source}-to-{target}")
        assert pair.same == pair.n_common == 12 and pair.prob_max < 1e-4 and pair.loss is None
    saved = json.loads((out / "compare.json").read_text())
    assert saved["ok"] and len(saved["pairs"]) == 3
    page = (out / "report.md").read_text()
    assert "# Portability matrix" in page and page.count("| agree |") == 3
    assert "![Training loss by step, every run](figures/loss.png)" in page


def test_the_same_tags_on_both_frameworks(matrix):
    root, _ = matrix
    hf, pd = (read_scalars(root / "out" / b / "tensorboard") for b in ("hf", "paddle"))
    assert set(hf) == set(pd) and "train/loss" in hf and "dev/accuracy" in hf
    assert {t: [s for s, _ in v] for t, v in hf.items()} == \
        {t: [s for s, _ in v] for t, v in pd.items()}


def test_cli_matrix_reuses_finished_runs_and_exits_1_beyond_tolerance(matrix):
    root, _ = matrix
    out = root / "out"
    before = (out / "hf" / "metrics.json").stat().st_mtime
    proc = run_cli("matrix", str(root / "spec.yaml"), "--backends", "hf,paddle", "--convert",
                   "--out", str(out), "--tolerance", "loss=1e-12", "--json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert not data["ok"] and any("relative loss difference" in f
                                  for f in data["pairs"][0]["failures"])
    assert (out / "hf" / "metrics.json").stat().st_mtime == before, "finished runs reused"
    refused = run_cli("matrix", str(root / "spec.yaml"), "--backends", "hf", "--out", str(out))
    assert refused.returncode == 2 and "at least two backends" in refused.stderr
    no_training = run_cli("matrix", str(root / "spec.yaml"), "--backends", "hf,paddle",
                          "--convert", "--set", "finetune={method: none}", "--out",
                          str(root / "zs"))
    assert no_training.returncode == 2 and "--convert needs" in no_training.stderr


def test_the_example_portability_test_passes_on_the_tiny_model(tmp_path, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(tiny_spec(tmp_path, max_steps=3, eval_every=3)))
    loaded = importlib.util.spec_from_file_location(
        "example_portability", ROOT / "examples" / "test_portability.py")
    example = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(example)
    monkeypatch.setattr(example, "SPEC", spec)
    monkeypatch.setattr(example, "SETTINGS", [])
    example.test_the_spec_gives_the_same_numbers_on_hf_and_paddle(tmp_path)
