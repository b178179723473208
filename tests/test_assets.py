"""Tests for unified_prompt.assets: GGUF -> Hugging Face conversion and the model cache.

Fast tests cover the cache mechanics (with a stand-in converter), the tensor mapping and the
tokenizer/config built from the real GGUF metadata. The `slow` test converts the real model and
checks it against transformers' own GGUF loader, parameter by parameter and logit by logit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from unified_prompt.assets import (
    CHECKSUMS_FILE,
    ModelVerificationError,
    directory_checksum,
    known_models,
    resolve_model,
    verify_model_dir,
)
from unified_prompt.assets import gguf_convert as gc
from unified_prompt.errors import ModelNotFoundError

ALIAS = "smollm2-135m"

# Token ids of SmolLM2's tokenizer. The first group equals what transformers' GGUF tokenizer
# gives (the slow test re-checks that live). The second group is where transformers (5.23) is
# wrong: it ignores the `smollm` pre-tokenizer's per-digit split, which llama.cpp applies and
# SmolLM2's own tokenizer.json has (Digits + ByteLevel). There the ids below are llama.cpp's.
# fmt: off
AGREED_IDS = {
    "Hello world!": [19556, 905, 17],
    " leading space": [2899, 1898],
    "Numbers 12345 and 3.14159, 1,000,000": [
        39006, 216, 33, 34, 35, 36, 37, 284, 216, 35, 30, 33, 36, 33, 37, 41, 28, 216, 33, 28,
        32, 32, 32, 28, 32, 32, 32,
    ],
    "中文分词测试，你好世界！": [
        28589, 29184, 37349, 16313, 231, 43222, 229, 16313, 239, 12831, 18645, 250, 48392, 138,
        7906, 240, 178, 239, 230, 8083, 219,
    ],
    "emoji 😀👍🏽 ❤️": [
        391, 33777, 40303, 218, 10813, 235, 231, 10813, 233, 138, 4636, 247, 114, 31752,
    ],
    "<|im_start|>user\nhi<|im_end|>\n": [1, 4093, 198, 6004, 2, 198],
    "line1\n\nline2\r\n\ttabbed": [1311, 33, 198, 198, 1311, 34, 2738, 197, 15999, 5776],
    "It's, we'll; don't!?": [1589, 506, 28, 392, 3060, 43, 1326, 982, 17, 47],
}
DIGIT_SPLIT_IDS = {
    # "    " before a digit stays one whitespace token ('ĠĠĠĠ'), not 'ĠĠĠ' + 'Ġ'
    "x    42\n    7": [104, 289, 36, 34, 2367, 39],
    # a non-ASCII numeral is its own piece: 'Ġ' + 'Â½', not 'ĠÂ' + '½' (which splits its bytes)
    "²³ ½": [19133, 39050, 216, 16738],
}
# fmt: on
EXTRA_STRINGS = [
    "",
    "  ",
    "a  1",
    "Hello , world .",
    "<|endoftext|><repo_name>x",
    "def f(x):\n    return x**2",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache, so the user's ~/.cache is never touched."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("UNIFIED_PROMPT_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    return known_models()[ALIAS].source_path()


@pytest.fixture(scope="module")
def reader(gguf_path: Path):
    return gc.open_gguf(gguf_path)


# --------------------------------------------------------------------------- resolve_model


def test_unknown_ref_raises_with_known_aliases(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=ALIAS):
        resolve_model("no-such-model", cache_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"without config\.json"):
        resolve_model(str(empty))


def test_existing_folder_is_returned_as_is(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == tmp_path


def test_catalog_entry() -> None:
    info = known_models()[ALIAS]
    assert info.architecture == "LlamaForCausalLM"
    assert info.licence == "Apache-2.0"
    assert info.parameters == 134_515_008
    assert info.source_path().name == info.source_file


def test_import_is_cheap() -> None:
    code = (
        "import sys, unified_prompt.assets;"
        "heavy = {'numpy', 'gguf', 'tokenizers', 'safetensors', 'torch', 'paddle', 'openai',"
        " 'tqdm'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- cache mechanics


class FakeConverter:
    """Stands in for the 9 s real conversion; counts calls and can be slowed or made to fail."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, source: Path, out_dir: Path, *, progress: bool = True) -> dict:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        (Path(out_dir) / "config.json").write_text('{"model_type": "llama"}')
        (Path(out_dir) / "model.safetensors").write_bytes(b"weights" * 100)
        (Path(out_dir) / "tokenizer.json").write_text('{"model": {}}')
        if self.fail:
            raise RuntimeError("conversion failed half way")
        return {}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeConverter:
    converter = FakeConverter()
    monkeypatch.setattr(gc, "convert_gguf", converter)
    return converter


def test_convert_once_then_reuse(fake: FakeConverter, _isolated_cache: Path) -> None:
    first = resolve_model(ALIAS, progress=False)
    assert first.parent == _isolated_cache / "models"
    assert first.name.startswith(f"{ALIAS}-") and len(first.name) == len(ALIAS) + 13
    verify_model_dir(first, full=True)
    record = json.loads((first / CHECKSUMS_FILE).read_text())
    assert set(record["files"]) == {"config.json", "model.safetensors", "tokenizer.json"}
    assert oct(first.stat().st_mode & 0o777) != oct(0o700), "folder should not stay mkdtemp-private"

    start = time.perf_counter()
    second = resolve_model(ALIAS, progress=False)
    assert time.perf_counter() - start < 0.5
    assert second == first and fake.calls == 1
    assert not [p for p in first.parent.iterdir() if ".tmp-" in p.name]


def test_cache_dir_argument_beats_env(fake: FakeConverter, tmp_path: Path) -> None:
    path = resolve_model(ALIAS, cache_dir=tmp_path / "explicit", progress=False)
    assert path.parent == tmp_path / "explicit" / "models"


def test_truncated_file_is_rebuilt(fake: FakeConverter) -> None:
    path = resolve_model(ALIAS, progress=False)
    (path / "model.safetensors").write_bytes(b"short")
    with pytest.raises(ModelVerificationError, match="bytes"):
        verify_model_dir(path)
    assert resolve_model(ALIAS, progress=False) == path
    assert fake.calls == 2
    verify_model_dir(path, full=True)


def test_full_verification_catches_same_size_edit(fake: FakeConverter) -> None:
    path = resolve_model(ALIAS, progress=False)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[0] ^= 1
    weights.write_bytes(bytes(data))
    verify_model_dir(path)  # sizes still match: the cheap check cannot see it
    with pytest.raises(ModelVerificationError, match="sha256"):
        verify_model_dir(path, full=True)


def test_failed_conversion_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, _isolated_cache: Path
) -> None:
    monkeypatch.setattr(gc, "convert_gguf", FakeConverter(fail=True))
    with pytest.raises(RuntimeError, match="half way"):
        resolve_model(ALIAS, progress=False)
    leftovers = [p for p in (_isolated_cache / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_concurrent_callers_convert_once(monkeypatch: pytest.MonkeyPatch) -> None:
    converter = FakeConverter(delay=0.3)
    monkeypatch.setattr(gc, "convert_gguf", converter)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(resolve_model(ALIAS, progress=False))
        except BaseException as error:  # reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert converter.calls == 1
    assert len(set(results)) == 1


def test_directory_checksum(fake: FakeConverter, tmp_path: Path) -> None:
    path = resolve_model(ALIAS, progress=False)
    recorded = directory_checksum(path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (copy / name).write_bytes((path / name).read_bytes())
    assert directory_checksum(copy) == recorded  # hashed in full, no checksums.json there
    (copy / "config.json").write_text('{"model_type": "llama", "transformers_version": "9"}')
    assert directory_checksum(copy) == recorded  # configs do not identify a model
    (copy / "tokenizer.json").write_text('{"model": {"changed": 1}}')
    assert directory_checksum(copy) != recorded


# --------------------------------------------------------------------------- conversion pieces


def _llama_cpp_permute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's convert_hf_to_gguf does to q/k rows (the forward direction)."""
    half = weight.shape[0] // n_head // 2
    split = weight.reshape(n_head, 2, half, *weight.shape[1:])
    return split.swapaxes(1, 2).reshape(weight.shape)


@pytest.mark.parametrize(("n_head", "head_dim", "cols"), [(9, 64, 576), (3, 64, 576), (4, 8, 1)])
def test_unpermute_rope_inverts_llama_cpp(n_head: int, head_dim: int, cols: int) -> None:
    original = (
        np.random.default_rng(0).standard_normal((n_head * head_dim, cols)).astype(np.float32)
    )
    restored = gc.unpermute_rope(_llama_cpp_permute(original, n_head), n_head)
    assert np.array_equal(restored, original)
    bias = original[:, 0].copy()
    assert np.array_equal(gc.unpermute_rope(_llama_cpp_permute(bias, n_head), n_head), bias)


def test_tensor_names() -> None:
    assert gc.hf_tensor_name("token_embd.weight") == "model.embed_tokens.weight"
    assert gc.hf_tensor_name("output_norm.weight") == "model.norm.weight"
    assert gc.hf_tensor_name("output.weight") == "lm_head.weight"
    assert gc.hf_tensor_name("blk.29.attn_q.weight") == "model.layers.29.self_attn.q_proj.weight"
    assert gc.hf_tensor_name("blk.0.attn_output.weight") == "model.layers.0.self_attn.o_proj.weight"
    assert gc.hf_tensor_name("blk.3.ffn_down.weight") == "model.layers.3.mlp.down_proj.weight"
    assert gc.hf_tensor_name("blk.3.attn_norm.weight") == "model.layers.3.input_layernorm.weight"
    assert (
        gc.hf_tensor_name("blk.3.ffn_norm.weight")
        == "model.layers.3.post_attention_layernorm.weight"
    )
    with pytest.raises(gc.GGUFConversionError):
        gc.hf_tensor_name("rope_freqs.weight")


def test_config_from_metadata(reader) -> None:
    config = gc.build_config(reader)
    expected = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 576,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "intermediate_size": 1536,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-05,
        "max_position_embeddings": 8192,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
        "torch_dtype": "float32",
    }
    assert {k: config[k] for k in expected} == expected
    assert gc.generation_config(config) == {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}


def test_tokenizer_from_metadata(reader) -> None:
    tokenizer = gc.build_tokenizer(reader)
    assert tokenizer.get_vocab_size() == 49152
    for text, ids in {**AGREED_IDS, **DIGIT_SPLIT_IDS}.items():
        assert tokenizer.encode(text).ids == ids, text
    for text in [*AGREED_IDS, *DIGIT_SPLIT_IDS, *EXTRA_STRINGS]:
        assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text
    assert tokenizer.decode(AGREED_IDS["<|im_start|>user\nhi<|im_end|>\n"]) == "user\nhi\n"
    files = gc.tokenizer_files(reader, model_max_length=8192)
    config = json.loads(files["tokenizer_config.json"])
    assert config["bos_token"] == "<|im_start|>" and config["eos_token"] == "<|im_end|>"
    assert config["pad_token"] == "<|im_end|>" and config["unk_token"] == "<|endoftext|>"
    assert config["add_bos_token"] is False and config["model_max_length"] == 8192
    assert "<|im_start|>" in config["chat_template"] == files["chat_template.jinja"]
    assert len(config["added_tokens_decoder"]) == 17


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_model(ALIAS, cache_dir=tmp_path_factory.mktemp("real-cache"), progress=False)


@pytest.mark.slow
def test_real_conversion_matches_transformers_gguf_loader(converted: Path, gguf_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    verify_model_dir(converted, full=True)
    start = time.perf_counter()
    assert resolve_model(ALIAS, cache_dir=converted.parent.parent) == converted
    assert time.perf_counter() - start < 0.5

    ours = transformers.AutoModelForCausalLM.from_pretrained(converted).eval()
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name
    ).eval()
    assert type(ours).__name__ == "LlamaForCausalLM"
    assert ours.dtype == theirs.dtype == torch.float32
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == ref.keys()
    unequal = [name for name in mine if not torch.equal(mine[name], ref[name])]
    assert unequal == []
    assert sum(p.numel() for p in ours.parameters()) == known_models()[ALIAS].parameters

    tok = transformers.AutoTokenizer.from_pretrained(converted)
    batch = tok(
        ["The capital of France is", "Ünïcödé, 中文 and emoji 😀 ok."],
        return_tensors="pt",
        padding=True,
    )
    with torch.no_grad():
        assert torch.equal(ours(**batch).logits, theirs(**batch).logits)
        generated = ours.generate(
            **tok("The capital of France is", return_tensors="pt"),
            max_new_tokens=3,
            do_sample=False,
        )
    assert "Paris" in tok.decode(generated[0])


@pytest.mark.slow
def test_real_tokenizer_matches_transformers_gguf_tokenizer(
    converted: Path, gguf_path: Path
) -> None:
    transformers = pytest.importorskip("transformers")

    ours = transformers.AutoTokenizer.from_pretrained(converted)
    theirs = transformers.AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    for text, ids in AGREED_IDS.items():
        assert ours(text)["input_ids"] == theirs(text)["input_ids"] == ids, text
    for text, ids in DIGIT_SPLIT_IDS.items():
        assert ours(text)["input_ids"] == ids, text  # llama.cpp's split; transformers' differs
    for text in [*AGREED_IDS, *DIGIT_SPLIT_IDS, *EXTRA_STRINGS]:
        ids = ours(text)["input_ids"]
        assert ours.decode(ids) == text
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(
            ids, skip_special_tokens=True
        )
    for attr in ("bos_token", "eos_token", "pad_token", "unk_token", "all_special_tokens"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    chat = [{"role": "user", "content": "Hi there"}]
    assert ours.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        theirs.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    )
    assert ours.model_max_length == 8192
    assert os.path.isfile(converted / "generation_config.json")
