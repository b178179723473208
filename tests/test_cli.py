"""The CLI contract: validate every example, exit 2 with a clear message for bad input,
the run directory, --resume after a kill, secrets never written."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path):
    proc = run_cli("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok: {path}")


def test_validate_loads_no_framework(tmp_path):
    code = ("import sys; from unified_prompt.validation import validate_spec_file;"
            f"validate_spec_file({str(EXAMPLES[0])!r});"
            "print([m for m in ('torch', 'paddle', 'openai', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


@pytest.mark.parametrize("text,needle", [
    ("finetune:\n  method: lora\n  rnk: 4\n", "finetune.rnk: unknown key"),
    ("eval:\n  limit: lots\n", "eval.limit: Input should be a valid integer"),
    ("seed: one\n", "seed: Input should be a valid integer"),
    ("seed: [1, 1]\n", "seeds: seeds repeat: [1, 1]"),
    ("seed: 6\nseed: 7\n", "bad.yaml:17: duplicate key 'seed' (first given on line 16)"),
])
def test_bad_spec_exits_2_naming_key_and_line(tmp_path, toy_spec, text, needle):
    bad = tmp_path / "bad.yaml"
    base = toy_spec.read_text().replace("seed: 5\n", "")
    bad.write_text(base[: base.index("finetune:")] + text, encoding="utf-8")
    proc = run_cli("validate", str(bad))
    assert proc.returncode == 2
    assert needle in proc.stderr and f"{bad}:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_field_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  dataset: rotten_tomatoes\n", encoding="utf-8")
    proc = run_cli("validate", str(bad))
    assert proc.returncode == 2 and "prompt: required key is missing" in proc.stderr


def test_broken_jsonl_exits_2_naming_file_and_line(toy_spec, toy_data):
    lines = (toy_data / "dev.jsonl").read_text().splitlines()
    lines[4] = lines[4][:-3]
    (toy_data / "dev.jsonl").write_text("\n".join(lines) + "\n")
    for command in ("validate", "run"):
        proc = run_cli(command, str(toy_spec))
        assert proc.returncode == 2, proc.stderr
        assert f"{toy_data / 'dev.jsonl'}:5: not valid JSON" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_unknown_backend_and_option_exit_2(toy_spec):
    proc = run_cli("validate", str(toy_spec), "--backend", "nope")
    assert proc.returncode == 2 and "pip install 'unified-prompt[nope]'" in proc.stderr
    proc = run_cli("validate", str(toy_spec), "--set", "backend.options.fake.colour=red")
    assert proc.returncode == 2 and "backend.options.fake.colour: unknown key" in proc.stderr


def test_verbalizer_must_cover_the_labels(toy_spec):
    proc = run_cli("validate", str(toy_spec), "--set", "prompt.verbalizer={positive: good, meh: so-so}")
    assert proc.returncode == 2 and "'negative'" in proc.stderr


def test_backends_and_datasets_commands():
    proc = run_cli("backends", "--json")
    caps = json.loads(proc.stdout)
    assert caps["fake"]["methods"] == ["full", "lora", "prompt_tuning"]
    proc = run_cli("datasets", "preview", "chinese_reviews", "-n", "2", "--split", "test")
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["label"] in ("positive", "negative")


def test_run_writes_the_run_directory_contract(tmp_path, toy_spec):
    out = tmp_path / "run"
    proc = run_cli("run", str(toy_spec), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    assert printed == metrics
    for key in ("backend", "model", "method", "task", "split", "n_examples", "metrics",
                "trainable_params", "total_params", "train_seconds", "eval_seconds", "seed"):
        assert key in metrics, key
    assert metrics["backend"] == "fake" and metrics["method"] == "lora"
    assert metrics["n_examples"] == 12 and metrics["trainable_params"] == 2 * 4 * 16
    assert set(metrics["metrics"]) == {"accuracy", "macro_f1"}
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "metrics.json", "predictions.jsonl", "events.jsonl", "adapter",
            "report.md"} <= names
    assert not [n for n in names if n.startswith(".")], "no temporary files left behind"
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 12 and {p["prediction"] for p in preds} <= {"positive", "negative"}
    manifest = json.loads((out / "adapter" / "manifest.json").read_text())
    assert manifest["method"] == "lora" and manifest["verbalizer"]["negative"] == ["bad", "差"]
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "step" for e in events) == 24
    assert [e["step"] for e in events if e["type"] == "eval" and e["split"] == "dev"] == [6, 12, 18, 24]
    again = run_cli("run", str(toy_spec), "--out", str(out))
    assert again.returncode == 2 and "already holds a finished run" in again.stderr


def test_killed_run_resumes_to_the_same_numbers(tmp_path, toy_spec):
    straight = tmp_path / "straight"
    assert run_cli("run", str(toy_spec), "--out", str(straight)).returncode == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "unified_prompt.cli", "run", str(toy_spec), "--out", str(out),
           "--set", "backend.options.fake.step_delay=0.2"]
    env = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (out / "checkpoints" / "latest").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    done = [json.loads(x)["step"] for x in (out / "events.jsonl").read_text().splitlines()
            if '"step"' in x and json.loads(x)["type"] == "step"]
    assert 0 < max(done) < 24, "killed part-way through training"
    refused = run_cli("run", str(toy_spec), "--out", str(out),
                      "--set", "backend.options.fake.step_delay=0.2")
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = run_cli("run", str(toy_spec), "--out", str(out), "--resume",
                      "--set", "backend.options.fake.step_delay=0.2")
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert a["metrics"] == b["metrics"]
    assert a["training"]["best_dev"] == b["training"]["best_dev"]
    assert (straight / "predictions.jsonl").read_text() == (out / "predictions.jsonl").read_text()
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "resume" for e in events)


def test_resume_with_a_changed_spec_is_refused(tmp_path, toy_spec):
    out = tmp_path / "run"
    assert run_cli("run", str(toy_spec), "--out", str(out)).returncode == 0
    proc = run_cli("run", str(toy_spec), "--out", str(out), "--resume", "--set", "seed=6")
    assert proc.returncode == 2 and "the spec differs" in proc.stderr


def test_secrets_are_never_written(tmp_path, toy_spec):
    out = tmp_path / "run"
    secret = "sk-test-" + "9" * 20
    proc = run_cli("run", str(toy_spec), "--out", str(out),
                   "--set", f"backend.options.fake.api_key={secret}")
    assert proc.returncode == 2  # not an option of the fake backend: rejected, not stored
    assert secret not in proc.stderr
    spec = toy_spec.read_text().replace("  model: fake-toy", "  model: fake-toy\n  options:\n"
                                        f"    other:\n      api_key: {secret}")
    toy_spec.write_text(spec)
    proc = run_cli("run", str(toy_spec), "--out", str(out), "--set", "finetune.max_steps=2")
    assert proc.returncode == 0, proc.stderr
    for path in Path(out).rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="ignore"), path
    assert "<redacted>" in (out / "config.yaml").read_text()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, toy_spec):
    out = tmp_path / "run"
    proc = run_cli("run", str(toy_spec), "--out", str(out), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["eval_examples"] == 12 and plan["requests"] == 0
    assert not out.exists()


def test_help_is_fast_enough_to_not_import_frameworks():
    code = ("import sys; from click.testing import CliRunner; from unified_prompt.cli import main;"
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output;"
            "print(sorted(m for m in ('torch','paddle','openai','numpy','pydantic','sklearn')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


def test_predictor_reproduces_the_runs_predictions(tmp_path, toy_spec):
    from unified_prompt.runner import Predictor
    from unified_prompt.testing.conformance import synthetic_examples

    out = tmp_path / "run"
    assert run_cli("run", str(toy_spec), "--out", str(out)).returncode == 0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    with Predictor.from_run(out) as predictor:
        got = predictor.predict([e.text for e in synthetic_examples()])
    assert [g["label"] for g in got] == [r["prediction"] for r in rows]
    assert got[0]["scores"] == rows[0]["scores"]


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_eval_adapter_reproduces_the_trained_runs_predictions(tmp_path, toy_spec, method):
    """eval.adapter evaluates a saved adapter without training; finetune.method none adopts
    the adapter's method settings (prompt tuning's soft tokens shape the prompt)."""
    trained = tmp_path / "trained"
    extra = ["--set", "finetune.num_virtual_tokens=3"] if method == "prompt_tuning" else []
    proc = run_cli("run", str(toy_spec), "--out", str(trained), "--set",
                   f"finetune={{method: {method}, max_steps: 12, lr: 0.05}}", *extra)
    assert proc.returncode == 0, proc.stderr
    reused = tmp_path / "reused"
    proc = run_cli("run", str(toy_spec), "--out", str(reused), "--set", "finetune={method: none}",
                   "--set", f"eval.adapter={trained / 'adapter'}")
    assert proc.returncode == 0, proc.stderr
    rows = lambda d: [json.loads(x) for x in (d / "predictions.jsonl").read_text().splitlines()]  # noqa: E731
    assert [r["scores"] for r in rows(reused)] == [r["scores"] for r in rows(trained)]
    from unified_prompt.runner import Predictor
    from unified_prompt.testing.conformance import synthetic_examples

    with Predictor.from_run(reused) as predictor:  # the run's eval.adapter, not the bare model
        got = predictor.predict([e.text for e in synthetic_examples()])
    assert [g["scores"] for g in got] == [r["scores"] for r in rows(reused)]
    # an adapter passed to Predictor by hand: the same method adoption and base-model check
    from unified_prompt.config import load_spec
    from unified_prompt.errors import UserInputError

    bare = load_spec(toy_spec, overrides=["finetune={method: none}"])
    with Predictor.from_spec(bare, adapter=trained / "adapter") as predictor:
        got = predictor.predict([e.text for e in synthetic_examples()])
    assert [g["scores"] for g in got] == [r["scores"] for r in rows(reused)]
    moved = tmp_path / "other-base"
    shutil.copytree(trained / "adapter", moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["base_model"]["checksum"] = "0" * 16
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match="trained on base model"):
        Predictor.from_spec(bare, adapter=moved)
    metrics = json.loads((reused / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["train_seconds"] == 0.0
    assert metrics["trainable_params"] == json.loads((trained / "metrics.json").read_text())[
        "trainable_params"]
    other = "prompt_tuning" if method == "lora" else "lora"
    bad = run_cli("run", str(toy_spec), "--out", str(tmp_path / "bad"), "--set",
                  f"finetune={{method: {other}}}", "--set", f"eval.adapter={trained / 'adapter'}")
    assert bad.returncode == 2 and "eval.adapter" in bad.stderr
    assert not (tmp_path / "bad").exists()
    missing = run_cli("run", str(toy_spec), "--out", str(tmp_path / "m"), "--set",
                      f"eval.adapter={tmp_path / 'nowhere'}")
    assert missing.returncode == 2 and "nowhere" in missing.stderr


@pytest.mark.parametrize("backend", ["fake", "hf"])
def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes(tmp_path, toy_spec, backend):
    """SIGINT mid-training: the job saves where it stands before the process exits (a Ctrl-C
    inside Thread.join used to let the main thread exit first, losing the checkpoint), on
    the fake backend and on hf (a tiny Llama)."""
    out = tmp_path / "run"
    spec = toy_spec.read_text().replace("max_steps: 24", "max_steps: 100000").replace(
        "checkpoint_every: 4", "checkpoint_every: 100000")
    toy_spec.write_text(spec)
    cmd = [sys.executable, "-m", "unified_prompt.cli", "run", str(toy_spec), "--out", str(out)]
    if backend == "fake":
        cmd += ["--set", "backend.options.fake.step_delay=0.05"]
    else:
        from unified_prompt.testing.tiny import tiny_model

        cmd += ["--set", "backend.name=hf", "--set", f"backend.model={tiny_model('llama')}",
                "--set", "backend.options.hf.device=cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not ((out / "events.jsonl").exists() and (
            out / "events.jsonl").read_text().count('"type": "step"') >= 8):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert (out / "checkpoints" / "latest").exists(), "the checkpoint was saved before exiting"
    step = json.loads((out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
                       / "trainer.json").read_text())["step"]
    assert step >= 8
