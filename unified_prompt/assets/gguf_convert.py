"""Turn a llama.cpp GGUF file into a plain Hugging Face Llama folder, without any ML framework.

Both the torch and the paddle backends load the result, so it has to be an ordinary checkpoint:
`config.json`, float32 `model.safetensors` and a `tokenizers` `tokenizer.json`. Only `gguf`
(its numpy reader and dequantiser), `numpy`, `safetensors.numpy` and `tokenizers` are used;
they are imported inside the functions so that importing this module stays cheap.

Two things llama.cpp changes on the way in are undone here:

* q/k projection rows are permuted so that rotary pairs sit next to each other
  (llama.cpp rotates interleaved pairs, HF rotates the two halves of each head);
* the tokenizer is stored as flat metadata arrays instead of a `tokenizer.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    from gguf import GGUFReader
    from tokenizers import Tokenizer

# Bump when the output of the conversion changes: cached folders written by another version
# are then rebuilt instead of reused.
CONVERTER_VERSION = 1

WEIGHTS_FILE = "model.safetensors"

# GGUF token types (llama.cpp `llama_token_type`): 3 = control, 4 = user defined.
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

# GGUF tensor name suffix inside a block -> HF Llama module path inside `model.layers.N`.
_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
_TOP_RE = re.compile(r"^([a-z_]+)\.(weight|bias)$")

# llama.cpp's pre-tokenizer names whose split is "every digit alone, then GPT-2's regex"
# (llama-vocab.cpp groups SMOLLM with STARCODER & co.). This is also what SmolLM2's own
# tokenizer.json does (Digits(individual_digits) + ByteLevel), i.e. how the model was trained.
_DIGIT_SPLIT_PRE = {
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva-7b",
}
# Pre-tokenizer names that are plain GPT-2 byte-level splitting.
_GPT2_PRE = {"default", "gpt2", "gpt-2", "mpt", "olmo", "jais"}


class GGUFConversionError(ValueError):
    """The GGUF file holds something this converter does not know how to map."""


# --------------------------------------------------------------------------- metadata


def open_gguf(path: str | Path) -> GGUFReader:
    """Memory-map a GGUF file (parsing its ~100k tokenizer strings takes a few seconds)."""
    from gguf import GGUFReader

    return GGUFReader(str(path))


def read_field(reader: GGUFReader, key: str, default: Any = None) -> Any:
    """One metadata value as a Python object (str, int, float, bool or list)."""
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def _require(reader: GGUFReader, key: str) -> Any:
    value = read_field(reader, key)
    if value is None:
        raise GGUFConversionError(f"GGUF metadata lacks {key!r}")
    return value


def _f32(value: float) -> float:
    """The shortest decimal for a float32 value (GGUF stores 1e-5 as 9.99999974e-06).

    Both spellings round to the same float32, so the model computes the same thing; the short
    one keeps config.json readable and equal to the upstream config.
    """
    import numpy as np

    return float(str(np.float32(value)))


def build_config(reader: GGUFReader) -> dict[str, Any]:
    """A LlamaConfig dict read from the GGUF metadata (transformers and paddlenlp both read it)."""
    arch = _require(reader, "general.architecture")
    if arch != "llama":
        raise GGUFConversionError(f"only llama-architecture GGUF files are supported, not {arch!r}")

    def key(name: str) -> Any:
        return _require(reader, f"{arch}.{name}")

    hidden = int(key("embedding_length"))
    heads = int(key("attention.head_count"))
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = read_field(reader, f"{arch}.vocab_size")
    if vocab is None and tokens is not None:
        vocab = len(tokens.data)
    names = {tensor.name for tensor in reader.tensors}
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": int(vocab),
        "hidden_size": hidden,
        "intermediate_size": int(key("feed_forward_length")),
        "num_hidden_layers": int(key("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(read_field(reader, f"{arch}.attention.head_count_kv", heads)),
        "head_dim": int(read_field(reader, f"{arch}.rope.dimension_count", hidden // heads)),
        "hidden_act": "silu",
        "max_position_embeddings": int(key("context_length")),
        "rms_norm_eps": _f32(key("attention.layer_norm_rms_epsilon")),
        "rope_theta": _f32(read_field(reader, f"{arch}.rope.freq_base", 10000.0)),
        "rope_scaling": None,
        "attention_bias": "blk.0.attn_q.bias" in names,
        "attention_dropout": 0.0,
        "mlp_bias": "blk.0.ffn_up.bias" in names,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "tie_word_embeddings": "output.weight" not in names,
        "torch_dtype": "float32",
    }
    for name, gguf_name in (("bos", "bos"), ("eos", "eos"), ("pad", "padding")):
        token_id = read_field(reader, f"tokenizer.ggml.{gguf_name}_token_id")
        if token_id is not None:
            config[f"{name}_token_id"] = int(token_id)
    if read_field(reader, f"{arch}.rope.scaling.type") not in (None, "none"):
        raise GGUFConversionError("GGUF files with RoPE scaling are not supported yet")
    return config


def generation_config(config: dict[str, Any]) -> dict[str, Any]:
    """Only the special ids: sampling settings are chosen per experiment, not baked in."""
    keys = ("bos_token_id", "eos_token_id", "pad_token_id")
    return {k: config[k] for k in keys if k in config}


# --------------------------------------------------------------------------- tokenizer


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character table that byte-level BPE vocabularies are spelled in."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def _pre_tokenizer(pre: str | None) -> Any:
    """llama.cpp's split for this `tokenizer.ggml.pre`, as a `tokenizers` pre-tokenizer."""
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre in _DIGIT_SPLIT_PRE:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre is None or pre in _GPT2_PRE:
        return byte_level
    raise GGUFConversionError(
        f"unsupported GGUF pre-tokenizer {pre!r} (known: {sorted(_DIGIT_SPLIT_PRE | _GPT2_PRE)})"
    )


def build_tokenizer(reader: GGUFReader) -> Tokenizer:
    """A byte-level BPE `tokenizers.Tokenizer` equivalent to the one llama.cpp runs for this file.

    Control tokens become special added tokens (never split, skipped by
    `decode(skip_special_tokens=True)`); user-defined ones become plain added tokens.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    kind = _require(reader, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise GGUFConversionError(
            f"only byte-level BPE ('gpt2') GGUF tokenizers are supported, not {kind!r}"
        )
    tokens: list[str] = _require(reader, "tokenizer.ggml.tokens")
    merges: list[str] = _require(reader, "tokenizer.ggml.merges")
    types: list[int] = read_field(reader, "tokenizer.ggml.token_type", [])

    alphabet = _byte_alphabet()
    spelling = set(alphabet.values())
    # A token written with characters outside the byte alphabet was stored as raw text: respell it.
    vocab = {_respell(token, spelling, alphabet): index for index, token in enumerate(tokens)}
    pairs = [tuple(merge.split(" ", 1)) for merge in merges]
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=pairs,
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = None
    tokenizer.pre_tokenizer = _pre_tokenizer(read_field(reader, "tokenizer.ggml.pre"))
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B:1")

    # A "control" token spelled outside the byte alphabet is a llama.cpp mislabel; adding it
    # would grow the vocabulary past the embedding matrix, so it is left alone.
    special = [
        AddedToken(token, special=True, normalized=False)
        for token, kind_id in zip(tokens, types, strict=False)
        if kind_id == _TOKEN_CONTROL and set(token) <= spelling
    ]
    user = [
        AddedToken(token, special=False, normalized=False)
        for token, kind_id in zip(tokens, types, strict=False)
        if kind_id == _TOKEN_USER_DEFINED and token in vocab
    ]
    if special:
        tokenizer.add_special_tokens(special)
    if user:
        tokenizer.add_tokens(user)
    return tokenizer


def _respell(token: str, spelling: set[str], alphabet: dict[int, str]) -> str:
    if set(token) <= spelling:
        return token
    return "".join(alphabet[byte] for byte in token.encode("utf-8"))


def _special_token(reader: GGUFReader, name: str) -> str | None:
    token_id = read_field(reader, f"tokenizer.ggml.{name}_token_id")
    if token_id is None:
        return None
    return reader.fields["tokenizer.ggml.tokens"].contents(int(token_id))


def tokenizer_files(reader: GGUFReader, *, model_max_length: int) -> dict[str, str]:
    """File name -> text for every tokenizer file of the HF folder.

    `tokenizer_class` is `PreTrainedTokenizerFast` so that every transformers version loads
    `tokenizer.json` as is: with `GPT2Tokenizer` (what the upstream SmolLM2 repo names),
    transformers 5 rebuilds the backend with GPT-2's own pre-tokenizer and loses the digit split.
    """
    tokenizer = build_tokenizer(reader)
    specials = {
        f"{name}_token": _special_token(reader, key)
        for name, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding"))
    }
    specials = {k: v for k, v in specials.items() if v is not None}
    added = {
        str(token_id): {
            "content": token.content,
            "lstrip": token.lstrip,
            "normalized": token.normalized,
            "rstrip": token.rstrip,
            "single_word": token.single_word,
            "special": token.special,
        }
        for token_id, token in sorted(tokenizer.get_added_tokens_decoder().items())
    }
    chat_template = read_field(reader, "tokenizer.chat_template")
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": bool(read_field(reader, "tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(read_field(reader, "tokenizer.ggml.add_eos_token", False)),
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        **specials,
        "added_tokens_decoder": added,
    }
    if chat_template:
        config["chat_template"] = chat_template
    files = {
        "tokenizer.json": tokenizer.to_str(pretty=False),
        "tokenizer_config.json": _dumps(config),
        "special_tokens_map.json": _dumps(specials),
    }
    if chat_template:
        files["chat_template.jinja"] = chat_template
    return files


# --------------------------------------------------------------------------- weights


def hf_tensor_name(gguf_name: str) -> str:
    """The HF Llama parameter name for a GGUF tensor name (raises on names it cannot place)."""
    match = _BLOCK_RE.match(gguf_name)
    if match and match.group(2) in _BLOCK_NAMES:
        layer, part, kind = match.groups()
        return f"model.layers.{layer}.{_BLOCK_NAMES[part]}.{kind}"
    match = _TOP_RE.match(gguf_name)
    if match and match.group(1) in _TOP_NAMES:
        return f"{_TOP_NAMES[match.group(1)]}.{match.group(2)}"
    raise GGUFConversionError(f"no Hugging Face Llama name for GGUF tensor {gguf_name!r}")


def unpermute_rope(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation.

    llama.cpp's converter views each head's rows as (2, half) and stores them as (half, 2),
    interleaving the two rotary halves; reading them back as (half, 2) and swapping restores
    HF's order. Works for weights (2-D) and biases (1-D).
    """
    rows = weight.shape[0]
    half = rows // n_head // 2
    tail = weight.shape[1:]
    return weight.reshape(n_head, half, 2, *tail).swapaxes(1, 2).reshape(weight.shape)


def iter_hf_tensors(reader: GGUFReader, config: dict[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    """(HF name, float32 array) for every tensor, dequantised and in HF layout.

    GGUF records shapes in ggml order (fastest axis first); the numpy view the reader gives is
    already in C order, i.e. (out_features, in_features) like torch's Linear.weight.
    """
    import numpy as np
    from gguf import dequantize

    n_head = config["num_attention_heads"]
    n_kv = config["num_key_value_heads"]
    for tensor in reader.tensors:
        name = hf_tensor_name(tensor.name)
        values = dequantize(tensor.data, tensor.tensor_type)
        values = np.ascontiguousarray(values, dtype=np.float32)
        if ".attn_q." in tensor.name:
            values = unpermute_rope(values, n_head)
        elif ".attn_k." in tensor.name:
            values = unpermute_rope(values, n_kv)
        expected = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        if values.shape != expected:
            raise GGUFConversionError(
                f"{tensor.name}: dequantised to {values.shape}, expected {expected}"
            )
        # Own the memory: some dequantised arrays are views into the memory-mapped file.
        yield name, np.array(values, dtype=np.float32, order="C", copy=True)


# --------------------------------------------------------------------------- the folder


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def convert_gguf(
    gguf_path: str | Path,
    out_dir: str | Path,
    *,
    progress: bool = True,
    on_tensor: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write a complete HF Llama folder for `gguf_path` into the existing folder `out_dir`.

    Not atomic by itself: `resolve_model` builds into a temporary folder and renames it.
    Returns the config dict that was written.
    """
    from safetensors.numpy import save_file

    out = Path(out_dir)
    reader = open_gguf(gguf_path)
    config = build_config(reader)
    files = {
        "config.json": _dumps(config),
        "generation_config.json": _dumps(generation_config(config)),
        **tokenizer_files(reader, model_max_length=config["max_position_embeddings"]),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")

    tensors: dict[str, np.ndarray] = {}
    desc = f"converting {Path(gguf_path).name}"
    bar = _progress_bar(total=len(reader.tensors), enabled=progress, desc=desc)
    try:
        for name, values in iter_hf_tensors(reader, config):
            tensors[name] = values
            if on_tensor is not None:
                on_tensor(name)
            bar.update(1)
        bar.set_postfix_str(f"writing {WEIGHTS_FILE}")
        _check_parameters(tensors, config)
        save_file(dict(sorted(tensors.items())), str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    finally:
        bar.close()
    return config


def _check_parameters(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
    """Fail before writing if a layer is missing: a partial checkpoint loads with random weights."""
    per_layer = [f"model.layers.{{}}.{part}.weight" for part in _BLOCK_NAMES.values()]
    needed = {"model.embed_tokens.weight", "model.norm.weight"}
    layers = range(config["num_hidden_layers"])
    needed |= {pattern.format(i) for i in layers for pattern in per_layer}
    if not config["tie_word_embeddings"]:
        needed.add("lm_head.weight")
    missing = sorted(needed - tensors.keys())
    if missing:
        raise GGUFConversionError(f"GGUF file lacks {len(missing)} tensors, e.g. {missing[:3]}")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(*, total: int, enabled: bool, desc: str) -> Any:
    """A tqdm bar on stderr, or a silent stand-in (tqdm is optional)."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with every install we support
        return _NoBar()
    import sys

    return tqdm(total=total, desc=desc, unit="tensor", file=sys.stderr, leave=False)
