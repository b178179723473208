"""Shared fixtures: a CLI runner that uses the installed entry point, and small data files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unified_prompt.testing.conformance import synthetic_examples

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `unified-prompt ARGS` in a fresh process, the way a user does."""
    full_env = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "unified_prompt.cli", *args], cwd=cwd or ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def toy_data(tmp_path: Path) -> Path:
    """Train/dev/test JSONL files of the synthetic sentiment task (repeated for size)."""
    folder = tmp_path / "data"
    folder.mkdir()
    examples = synthetic_examples()
    for split, reps in (("train", 3), ("dev", 1), ("test", 1)):
        rows = [{"id": f"{split}-{r}-{e.id}", "text": e.text, "label": e.label}
                for r in range(reps) for e in examples]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows),
                                               encoding="utf-8")
    return folder


@pytest.fixture
def toy_spec(tmp_path: Path, toy_data: Path) -> Path:
    """A fake-backend spec over toy_data, with LoRA training that checkpoints often."""
    spec = tmp_path / "toy.yaml"
    spec.write_text(f"""\
name: toy
task: classification
seed: 5
backend:
  name: fake
  model: fake-toy
data:
  files:
    train: {toy_data}/train.jsonl
    dev: {toy_data}/dev.jsonl
    test: {toy_data}/test.jsonl
prompt:
  template: "Review: {{text}}\\nSentiment: {{mask}}"
  verbalizer:
    positive: [good, absolutely wonderful]
    negative: [bad, 差]
finetune:
  method: lora
  r: 4
  lr: 0.02
  max_steps: 24
  batch_size: 4
  eval_every: 6
  checkpoint_every: 4
""", encoding="utf-8")
    return spec
