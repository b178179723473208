"""Checkpoints from someone else's run directory: loaded as data only (no pickle runs), a
damaged file is a clear error; resuming from our own files stays exact."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli
from unified_prompt.errors import UserInputError
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.tiny import tiny_model


class _Payload:
    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


class Helper(BackendConformance):
    backend_name = "hf"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("llama"))


def _session(backend, model):
    helper = Helper()
    builder = helper.builder(backend, model, "lora")
    session = backend.start_training(model, helper.setup_for(builder))
    items = builder.train_items(synthetic_examples())
    session.forward_backward(items[:4])
    session.optimizer_step(0.01, 1.0)
    return session, helper, builder


def test_rng_state_is_saved_without_pickle_and_restored(backend, llama, tmp_path: Path):
    session, helper, builder = _session(backend, llama)
    session.save_checkpoint(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "rng.safetensors").exists()
    assert not (tmp_path / "ckpt" / "rng.pt").exists()
    expected = (torch.rand(3).tolist(), random.random())
    other = backend.start_training(llama, helper.setup_for(builder))
    torch.manual_seed(999)
    random.seed(999)
    other.load_checkpoint(tmp_path / "ckpt")
    assert (torch.rand(3).tolist(), random.random()) == expected


@pytest.mark.parametrize("name", ["rng.pt", "optimizer.pt"])
def test_a_crafted_pickle_in_a_checkpoint_is_refused(backend, llama, tmp_path: Path, name):
    session, helper, builder = _session(backend, llama)
    ckpt = tmp_path / "ckpt"
    session.save_checkpoint(ckpt)
    marker = tmp_path / "pwned"
    if name == "rng.pt":
        (ckpt / "rng.safetensors").unlink()  # an older checkpoint's layout
    torch.save({"torch": _Payload(marker), "state": {}}, ckpt / name)
    other = backend.start_training(llama, helper.setup_for(builder))
    with pytest.raises(UserInputError, match=name.replace(".", r"\.")):
        other.load_checkpoint(ckpt)
    assert not marker.exists()


@pytest.mark.parametrize("name,damage", [
    ("trainable.safetensors", lambda b: b[:50]), ("rng.safetensors", lambda b: b[:30]),
    ("optimizer.pt", lambda b: b[: len(b) // 2]), ("session.json", lambda b: b"{not json"),
])
def test_a_damaged_checkpoint_file_is_named(backend, llama, tmp_path: Path, name, damage):
    session, helper, builder = _session(backend, llama)
    ckpt = tmp_path / "ckpt"
    session.save_checkpoint(ckpt)
    (ckpt / name).write_bytes(damage((ckpt / name).read_bytes()))
    other = backend.start_training(llama, helper.setup_for(builder))
    with pytest.raises(UserInputError, match=name.replace(".", r"\.")):
        other.load_checkpoint(ckpt)


def test_resume_from_a_crafted_run_directory_exits_2(tmp_path: Path, toy_data: Path):
    spec = tmp_path / "hf.yaml"
    spec.write_text(f"""\
seed: 5
backend: {{name: hf, model: {Helper.model_ref()}, options: {{hf: {{device: cpu}}}}}}
data:
  files: {{train: {toy_data}/train.jsonl, dev: {toy_data}/dev.jsonl, test: {toy_data}/test.jsonl}}
  limit: {{dev: 4, test: 4}}
prompt:
  template: "Review: {{text}} Sentiment: {{mask}}"
  verbalizer: {{positive: good, negative: bad}}
finetune: {{method: lora, max_steps: 4, batch_size: 4, checkpoint_every: 2, eval_every: 4}}
""", encoding="utf-8")
    out = tmp_path / "run"
    proc = run_cli("run", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for done in ("metrics.json", "state.json"):
        (out / done).unlink()
    ckpt = out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip() / "session"
    marker = tmp_path / "pwned"
    (ckpt / "rng.safetensors").unlink()
    torch.save({"torch": _Payload(marker)}, ckpt / "rng.pt")
    proc = run_cli("run", str(spec), "--out", str(out), "--resume")
    assert proc.returncode == 2, proc.stderr
    assert "rng.pt" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (out / "metrics.json").exists()
