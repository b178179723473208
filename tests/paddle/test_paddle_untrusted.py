"""Adapter folders from someone else: a crafted pickle never runs, and every malformed
file is a clear error (exit 2) rather than a traceback."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from unified_prompt_paddle.pdparams import load_arrays, save_arrays

from tests.conftest import run_cli
from tests.paddle.test_paddle_adapters import Helper, trained
from unified_prompt.adapters import write_manifest
from unified_prompt.errors import UserInputError


class _Payload:
    """Unpickling this writes a file: the side effect a refused pickle must not have."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_array_pickles_of_every_protocol_load(tmp_path: Path, protocol: int) -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.int64),
              "StructuredToParameterName@@": {"a": "linear_0.w_0"}}
    path = tmp_path / "w.pdparams"
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))
    loaded = load_arrays(path)
    assert set(loaded) == {"a", "b"}
    np.testing.assert_array_equal(loaded["a"], arrays["a"])


def test_what_paddle_save_writes_loads(tmp_path: Path) -> None:
    from unified_prompt_paddle.runtime import paddle

    pd = paddle()
    state = {"w": pd.to_tensor(np.arange(4, dtype=np.float32)), "h": pd.ones([2], "float16")}
    pd.save(state, str(tmp_path / "p.pdparams"))
    loaded = load_arrays(tmp_path / "p.pdparams")
    assert loaded["w"].tolist() == [0, 1, 2, 3] and loaded["h"].dtype == np.float16
    save_arrays(tmp_path / "ours.pdparams", {"w": np.arange(3)})
    assert pd.load(str(tmp_path / "ours.pdparams"))["w"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("case", ["code", "code-in-object-array", "list", "str-values",
                                  "int-keys", "truncated", "empty", "text"])
def test_anything_but_a_dict_of_arrays_is_refused(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    payload = {
        "code": lambda: pickle.dumps({"w": _Payload(marker)}),
        "code-in-object-array": lambda: pickle.dumps(
            {"w": np.array([_Payload(marker)], dtype=object)}),
        "list": lambda: pickle.dumps([np.ones(2)]),
        "str-values": lambda: pickle.dumps({"w": "weights"}),
        "int-keys": lambda: pickle.dumps({1: np.ones(2)}),
        "truncated": lambda: pickle.dumps({"w": np.ones(100)})[:60],
        "empty": lambda: b"",
        "text": lambda: b"hello world\n" * 10,
    }[case]()
    path = tmp_path / "w.pdparams"
    path.write_bytes(payload)
    with pytest.raises(UserInputError, match=r"w\.pdparams"):
        load_arrays(path)
    assert not marker.exists()


@pytest.fixture
def lora_folder(paddle_backend, tiny_llama, tmp_path: Path) -> Path:
    session, _ = trained(paddle_backend, tiny_llama, "lora", steps=1)
    session.save_adapter(tmp_path / "a")
    write_manifest(tmp_path / "a", backend="paddle", method="lora",
                   base_model={"name": Helper.model_ref()})
    return tmp_path / "a"


def test_a_crafted_adapter_is_refused_by_convert_and_run(lora_folder: Path, tmp_path: Path,
                                                         toy_data: Path) -> None:
    marker = tmp_path / "pwned"
    (lora_folder / "lora_model_state.pdparams").write_bytes(
        pickle.dumps({"w": _Payload(marker)}))
    proc = run_cli("convert", str(lora_folder), str(tmp_path / "out"), "--to", "hf")
    assert proc.returncode == 2, proc.stderr
    assert "refused to load builtins.exec" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()
    spec = tmp_path / "eval.yaml"
    spec.write_text(f"""\
backend: {{name: paddle, model: {Helper.model_ref()}}}
data: {{files: {{test: {toy_data}/test.jsonl}}}}
prompt:
  template: "Review: {{text}} Sentiment: {{mask}}"
  verbalizer: {{positive: good, negative: bad}}
eval: {{adapter: {lora_folder}}}
""", encoding="utf-8")
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2, proc.stderr
    assert "lora_model_state.pdparams" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("case,needle", [
    ("unknown-target", "target_modules"),
    ("unknown-target-meta", "target_modules"),
    ("r-not-a-number", "lora_config.json"),
    ("config-missing-key", "lora_config.json"),
    ("meta-not-json", "unified_prompt_paddle.json"),
    ("wrong-shape", "shape"),
    ("weights-linked-out", "outside"),
])
def test_malformed_paddle_adapters_are_clear_errors(lora_folder: Path, tmp_path: Path,
                                                    case: str, needle: str) -> None:
    a = lora_folder
    meta, config = a / "unified_prompt_paddle.json", a / "lora_config.json"
    if case == "unknown-target":
        meta.unlink()
        _edit_json(config, target_modules=["nonexistent_module"])
    elif case == "unknown-target-meta":
        cfg = json.loads(meta.read_text())["config"]
        _edit_json(meta, config={**cfg, "target_modules": ["bogus"]})
    elif case == "r-not-a-number":
        meta.unlink()
        _edit_json(config, r="eight")
    elif case == "config-missing-key":
        meta.unlink()
        data = json.loads(config.read_text())
        del data["r"]
        config.write_text(json.dumps(data))
    elif case == "meta-not-json":
        meta.write_text("{")
    elif case == "wrong-shape":
        weights = load_arrays(a / "lora_model_state.pdparams")
        weights[next(iter(weights))] = np.zeros((3, 3), np.float32)
        save_arrays(a / "lora_model_state.pdparams", weights)
    elif case == "weights-linked-out":
        outside = tmp_path / "elsewhere.pdparams"
        shutil.move(a / "lora_model_state.pdparams", outside)
        (a / "lora_model_state.pdparams").symlink_to(outside)
    proc = run_cli("convert", str(a), str(tmp_path / "out"), "--to", "hf")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
