"""Which paddlenlp class runs which Hugging Face architecture, and how their weights map.

The mapping is data (name pairs + layout changes), pure numpy, so the same table loads a
checkpoint, names the canonical full-fine-tuning state, and converts adapters both ways.
paddle's Linear stores (in, out) where torch stores (out, in): every Linear weight is
transposed; embeddings, tied output heads and GPT-2's Conv1D weights are not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind
from unified_prompt.errors import CapabilityError, ModelNotFoundError


@dataclass(frozen=True, eq=False)
class Rule:
    """One parameter: its Hugging Face name, its paddle name, and the layout change.

    transpose: torch Linear (out, in) vs paddle (in, out). linear: the weight of a
    projection LoRA can target. out_perm: Hugging Face output feature k is paddle feature
    out_perm[k] (GPT-2's fused q/k/v columns), along `perm_axis` of the Hugging Face array.
    """

    hf: str
    paddle: str
    transpose: bool = False
    linear: bool = False
    out_perm: np.ndarray | None = None
    perm_axis: int = 0


@dataclass(frozen=True)
class Architecture:
    """A Hugging Face `model_type` and the paddlenlp model that computes the same function."""

    model_type: str
    kind: ModelKind
    paddle_class: str
    config_class: str
    base: str  # attribute of the paddle model holding the transformer body
    lora_defaults: tuple[str, ...]  # Hugging Face module names (PEFT's defaults)

    # -- configs -----------------------------------------------------------------
    def paddle_config(self, hf: dict[str, Any]) -> dict[str, Any]:
        """paddlenlp config kwargs for a Hugging Face config.json (fp32, no fused kernels)."""
        if self.model_type == "llama":
            heads = hf["num_attention_heads"]
            head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
            if head_dim * heads != hf["hidden_size"]:
                raise ModelNotFoundError("paddlenlp's Llama needs head_dim * heads == hidden_size "
                                         f"(this model has {head_dim} x {heads} != "
                                         f"{hf['hidden_size']})")
            if hf.get("rope_scaling"):
                raise ModelNotFoundError("rope_scaling is not mapped to paddlenlp's Llama yet")
            if hf.get("attention_bias") or hf.get("mlp_bias"):
                raise ModelNotFoundError("paddlenlp's Llama has no attention/MLP biases")
            return {
                "vocab_size": hf["vocab_size"], "hidden_size": hf["hidden_size"],
                "intermediate_size": hf["intermediate_size"],
                "num_hidden_layers": hf["num_hidden_layers"], "num_attention_heads": heads,
                "num_key_value_heads": hf.get("num_key_value_heads") or heads,
                "max_position_embeddings": hf.get("max_position_embeddings", 2048),
                "seq_length": hf.get("max_position_embeddings", 2048),
                "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
                "rope_theta": hf.get("rope_theta", 10000.0),
                "bos_token_id": hf.get("bos_token_id", 1), "eos_token_id": hf.get("eos_token_id", 2),
                "pad_token_id": hf.get("pad_token_id") or 0,
                # the output head is handled by loading.tie_output_head
                "tie_word_embeddings": False,
                "use_flash_attention": False, "use_fused_rms_norm": False,
                "use_fused_rope": False, "fuse_attention_qkv": False, "fuse_attention_ffn": False,
            }
        if self.model_type == "gpt2":
            if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
                raise ModelNotFoundError("paddlenlp's GPT computes tanh-approximated GELU; this "
                                         f"model uses {hf.get('activation_function')!r}")
            return {
                "vocab_size": hf["vocab_size"], "hidden_size": hf["hidden_size"],
                "num_hidden_layers": hf["num_hidden_layers"],
                "num_attention_heads": hf["num_attention_heads"],
                "intermediate_size": hf["intermediate_size"], "hidden_activation": "gelu",
                "hidden_dropout_prob": hf.get("resid_pdrop", 0.1),
                "attention_probs_dropout_prob": hf.get("attn_pdrop", 0.1),
                "max_position_embeddings": hf["max_position_embeddings"],
                "normalize_before": True, "fuse_attention_qkv": True,
                "use_flash_attention": False, "use_fused_dropout_add": False,
                "bos_token_id": hf.get("bos_token_id"), "eos_token_id": hf.get("eos_token_id"),
                "pad_token_id": hf.get("pad_token_id") or 0, "type_vocab_size": 0,
            }
        if self.model_type in ("bert", "ernie"):
            cfg = {
                "vocab_size": hf["vocab_size"], "hidden_size": hf["hidden_size"],
                "num_hidden_layers": hf["num_hidden_layers"],
                "num_attention_heads": hf["num_attention_heads"],
                "intermediate_size": hf["intermediate_size"],
                "hidden_act": hf.get("hidden_act", "gelu"),
                "hidden_dropout_prob": hf.get("hidden_dropout_prob", 0.1),
                "attention_probs_dropout_prob": hf.get("attention_probs_dropout_prob", 0.1),
                "max_position_embeddings": hf.get("max_position_embeddings", 512),
                "type_vocab_size": hf.get("type_vocab_size", 2),
                "layer_norm_eps": hf.get("layer_norm_eps", 1e-12),
                "pad_token_id": hf.get("pad_token_id") or 0,
                "initializer_range": hf.get("initializer_range", 0.02),
            }
            if self.model_type == "ernie":
                cfg["use_task_id"] = bool(hf.get("use_task_id", False))
                cfg["task_type_vocab_size"] = hf.get("task_type_vocab_size", 3)
            else:
                cfg["fuse"] = False
            return cfg
        if self.model_type == "t5":
            return t5_config(hf)
        if self.model_type == "bart":
            return bart_config(hf)
        raise AssertionError(self.model_type)

    # -- weights -----------------------------------------------------------------
    def rules(self, hf: dict[str, Any]) -> list[Rule]:
        """Every parameter of the architecture, Hugging Face name <-> paddle name."""
        if self.model_type == "llama":
            return _llama_rules(hf)
        if self.model_type == "gpt2":
            return _gpt2_rules(hf)
        if self.model_type == "t5":
            return t5_rules(hf)
        if self.model_type == "bart":
            return bart_rules(hf)
        return _bert_rules(hf, self.model_type)

    def tied(self, hf: dict[str, Any]) -> bool:
        if self.kind == ModelKind.MASKED or self.model_type == "gpt2":
            return True
        if self.model_type in ("t5", "bart"):  # both configs default to tied
            return bool(hf.get("tie_word_embeddings", True))
        return bool(hf.get("tie_word_embeddings", False))


def _llama_rules(hf: dict[str, Any]) -> list[Rule]:
    out = [Rule("model.embed_tokens.weight", "llama.embed_tokens.weight"),
           Rule("model.norm.weight", "llama.norm.weight")]
    for i in range(hf["num_hidden_layers"]):
        h, p = f"model.layers.{i}.", f"llama.layers.{i}."
        for lin in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            out.append(Rule(f"{h}{lin}.weight", f"{p}{lin}.weight", True, True))
        for norm in ("input_layernorm", "post_attention_layernorm"):
            out.append(Rule(f"{h}{norm}.weight", f"{p}{norm}.weight"))
    if not hf.get("tie_word_embeddings", False):
        out.append(Rule("lm_head.weight", "lm_head.weight", True))
    return out


_BERT_LAYER = (
    ("attention.self.query", "self_attn.q_proj", True),
    ("attention.self.key", "self_attn.k_proj", True),
    ("attention.self.value", "self_attn.v_proj", True),
    ("attention.output.dense", "self_attn.out_proj", True),
    ("attention.output.LayerNorm", "norm1", False),
    ("intermediate.dense", "linear1", True),
    ("output.dense", "linear2", True),
    ("output.LayerNorm", "norm2", False),
)


def _bert_rules(hf: dict[str, Any], prefix: str) -> list[Rule]:
    e = f"{prefix}.embeddings."
    out = [Rule(e + "word_embeddings.weight", e + "word_embeddings.weight"),
           Rule(e + "position_embeddings.weight", e + "position_embeddings.weight"),
           Rule(e + "token_type_embeddings.weight", e + "token_type_embeddings.weight"),
           Rule(e + "LayerNorm.weight", e + "layer_norm.weight"),
           Rule(e + "LayerNorm.bias", e + "layer_norm.bias")]
    if prefix == "ernie" and hf.get("use_task_id"):
        out.append(Rule(e + "task_type_embeddings.weight", e + "task_type_embeddings.weight"))
    for i in range(hf["num_hidden_layers"]):
        h, p = f"{prefix}.encoder.layer.{i}.", f"{prefix}.encoder.layers.{i}."
        for hn, pn, linear in _BERT_LAYER:
            out.append(Rule(f"{h}{hn}.weight", f"{p}{pn}.weight", linear, linear))
            out.append(Rule(f"{h}{hn}.bias", f"{p}{pn}.bias"))
    c = "cls.predictions."
    out += [Rule(c + "transform.dense.weight", c + "transform.weight", True, True),
            Rule(c + "transform.dense.bias", c + "transform.bias"),
            Rule(c + "transform.LayerNorm.weight", c + "layer_norm.weight"),
            Rule(c + "transform.LayerNorm.bias", c + "layer_norm.bias"),
            Rule(c + "bias", c + "decoder_bias")]
    return out


def qkv_perm(hf: dict[str, Any]) -> np.ndarray:
    """GPT-2's c_attn columns (q | k | v, each heads x head_dim) in paddlenlp's fused
    qkv_proj order (per head: q, k, v)."""
    heads, hidden = int(hf["num_attention_heads"]), int(hf["hidden_size"])
    head_dim = hidden // heads
    out = np.empty(3 * hidden, dtype=np.int64)
    for part in range(3):
        for head in range(heads):
            hf_start = part * hidden + head * head_dim
            pd_start = head * 3 * head_dim + part * head_dim
            out[hf_start:hf_start + head_dim] = np.arange(pd_start, pd_start + head_dim)
    return out


def _gpt2_rules(hf: dict[str, Any]) -> list[Rule]:
    """GPT-2's Conv1D weights are already (in, out), as paddle's Linear: no transposes."""
    t, g = "transformer.", "gpt."
    out = [Rule(t + "wte.weight", g + "embeddings.word_embeddings.weight"),
           Rule(t + "wpe.weight", g + "embeddings.position_embeddings.weight"),
           Rule(t + "ln_f.weight", g + "decoder.norm.weight"),
           Rule(t + "ln_f.bias", g + "decoder.norm.bias")]
    perm = qkv_perm(hf)
    for i in range(hf["num_hidden_layers"]):
        h, p = f"{t}h.{i}.", f"{g}decoder.layers.{i}."
        out += [Rule(h + "attn.c_attn.weight", p + "self_attn.qkv_proj.weight", linear=True,
                     out_perm=perm, perm_axis=1),
                Rule(h + "attn.c_attn.bias", p + "self_attn.qkv_proj.bias", out_perm=perm)]
        for hn, pn in (("attn.c_proj", "self_attn.out_proj"), ("mlp.c_fc", "linear1"),
                       ("mlp.c_proj", "linear2")):
            out += [Rule(f"{h}{hn}.weight", f"{p}{pn}.weight", linear=True),
                    Rule(f"{h}{hn}.bias", f"{p}{pn}.bias")]
        for hn, pn in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out += [Rule(f"{h}{hn}.weight", f"{p}{pn}.weight"),
                    Rule(f"{h}{hn}.bias", f"{p}{pn}.bias")]
    return out


def t5_config(hf: dict[str, Any]) -> dict[str, Any]:
    """paddlenlp's T5Config for a Hugging Face T5 config, refusing what it computes differently.

    paddlenlp 2.8's relative position buckets always use max_distance 128 (its
    `compute_bias` never passes the config's value), and its feed-forward knows relu,
    gated-gelu (gelu_new) and gated-silu only.
    """
    ffn = str(hf.get("feed_forward_proj", "relu"))
    if ffn not in ("relu", "gated-gelu", "gated-silu"):
        raise CapabilityError(f"t5: paddlenlp's T5 has no feed_forward_proj {ffn!r} "
                              "(it knows relu, gated-gelu, gated-silu)")
    distance = int(hf.get("relative_attention_max_distance", 128))
    if distance != 128:
        raise CapabilityError("t5: paddlenlp 2.8's T5 buckets relative positions with "
                              f"max_distance 128 whatever the config says (this model: {distance})")
    return {
        "vocab_size": hf["vocab_size"], "d_model": hf["d_model"], "d_kv": hf["d_kv"],
        "d_ff": hf["d_ff"], "num_layers": hf["num_layers"],
        "num_decoder_layers": hf.get("num_decoder_layers") or hf["num_layers"],
        "num_heads": hf["num_heads"],
        "relative_attention_num_buckets": hf.get("relative_attention_num_buckets", 32),
        "dropout_rate": hf.get("dropout_rate", 0.1),
        "layer_norm_epsilon": hf.get("layer_norm_epsilon", 1e-6),
        "feed_forward_proj": ffn, "tie_word_embeddings": bool(hf.get("tie_word_embeddings", True)),
        "pad_token_id": hf.get("pad_token_id", 0), "eos_token_id": hf.get("eos_token_id", 1),
        "decoder_start_token_id": hf.get("decoder_start_token_id", 0),
    }


def _t5_stack_rules(hf: dict[str, Any], stack: str, n_layers: int, gated: bool) -> list[Rule]:
    h, p = f"{stack}.", f"t5.{stack}."
    out = [Rule(f"{h}final_layer_norm.weight", f"{p}final_layer_norm.weight"),
           Rule(f"{h}block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                f"{p}block.0.layer.0.SelfAttention.relative_attention_bias.weight")]
    attentions = ["SelfAttention"] + (["EncDecAttention"] if stack == "decoder" else [])
    ffn = ("wi_0", "wi_1", "wo") if gated else ("wi", "wo")
    for i in range(n_layers):
        b = f"block.{i}.layer."
        for j, attn in enumerate(attentions):
            for lin in ("q", "k", "v", "o"):
                name = f"{b}{j}.{attn}.{lin}.weight"
                out.append(Rule(h + name, p + name, True, True))
            out.append(Rule(f"{h}{b}{j}.layer_norm.weight", f"{p}{b}{j}.layer_norm.weight"))
        j = len(attentions)
        for lin in ffn:
            name = f"{b}{j}.DenseReluDense.{lin}.weight"
            out.append(Rule(h + name, p + name, True, True))
        out.append(Rule(f"{h}{b}{j}.layer_norm.weight", f"{p}{b}{j}.layer_norm.weight"))
    return out


def t5_rules(hf: dict[str, Any]) -> list[Rule]:
    """T5's names are paddlenlp's under `t5.` (the shared embedding serves both stacks)."""
    gated = str(hf.get("feed_forward_proj", "relu")).startswith("gated")
    out = [Rule("shared.weight", "t5.shared.weight")]
    out += _t5_stack_rules(hf, "encoder", int(hf["num_layers"]), gated)
    out += _t5_stack_rules(hf, "decoder", int(hf.get("num_decoder_layers") or hf["num_layers"]),
                           gated)
    if not hf.get("tie_word_embeddings", True):
        out.append(Rule("lm_head.weight", "lm_head.weight", True))
    return out


def bart_config(hf: dict[str, Any]) -> dict[str, Any]:
    """paddlenlp's BartConfig; it builds post-norm layers from paddle's nn.Transformer*, so
    pre-norm variants (mBART: normalize_before, add_final_layer_norm) are refused, and its
    activation is paddle.nn.functional's function of that name (exact gelu, relu)."""
    if hf.get("normalize_before") or hf.get("add_final_layer_norm"):
        raise CapabilityError("bart: paddlenlp's BART is post-norm only (this config asks for "
                              "normalize_before / add_final_layer_norm, as mBART does)")
    act = str(hf.get("activation_function", "gelu"))
    if act not in ("gelu", "relu"):
        raise CapabilityError(f"bart: paddlenlp's BART has no activation {act!r} matching "
                              "transformers' (gelu, relu)")
    keys = ("vocab_size", "max_position_embeddings", "encoder_layers", "encoder_ffn_dim",
            "encoder_attention_heads", "decoder_layers", "decoder_ffn_dim",
            "decoder_attention_heads", "d_model")
    out: dict[str, Any] = {k: hf[k] for k in keys}
    out.update(activation_function=act, dropout=hf.get("dropout", 0.1),
               attention_dropout=hf.get("attention_dropout", 0.0),
               activation_dropout=hf.get("activation_dropout", 0.0),
               init_std=hf.get("init_std", 0.02), pad_token_id=hf.get("pad_token_id", 1),
               bos_token_id=hf.get("bos_token_id", 0), eos_token_id=hf.get("eos_token_id", 2),
               decoder_start_token_id=hf.get("decoder_start_token_id", 2),
               forced_eos_token_id=hf.get("forced_eos_token_id", 2),
               scale_embedding=bool(hf.get("scale_embedding", False)))
    return out


_BART_LAYER = {
    "encoder": (("self_attn", "self_attn"), ("self_attn_layer_norm", "norm1"),
                ("fc1", "linear1"), ("fc2", "linear2"), ("final_layer_norm", "norm2")),
    "decoder": (("self_attn", "self_attn"), ("self_attn_layer_norm", "norm1"),
                ("encoder_attn", "cross_attn"), ("encoder_attn_layer_norm", "norm2"),
                ("fc1", "linear1"), ("fc2", "linear2"), ("final_layer_norm", "norm3")),
}


def bart_rules(hf: dict[str, Any]) -> list[Rule]:
    """BART on paddle's nn.TransformerEncoder/Decoder layers inside paddlenlp's BartModel.

    final_logits_bias is a buffer (no rule: it does not train); loading.py copies it."""
    out = [Rule("model.shared.weight", "bart.shared.weight")]
    for side in ("encoder", "decoder"):
        h, p = f"model.{side}.", f"bart.{side}."
        for bias in ("weight", "bias"):
            out.append(Rule(f"{h}layernorm_embedding.{bias}",
                            f"{p}{side}_layernorm_embedding.{bias}"))
        out.append(Rule(f"{h}embed_positions.weight", f"{p}{side}_embed_positions.weight"))
        for i in range(int(hf[f"{side}_layers"])):
            hl, pl = f"{h}layers.{i}.", f"{p}{side}.layers.{i}."
            for hn, pn in _BART_LAYER[side]:
                if hn.endswith("attn"):
                    for proj, pproj in (("q_proj", "q_proj"), ("k_proj", "k_proj"),
                                        ("v_proj", "v_proj"), ("out_proj", "out_proj")):
                        out.append(Rule(f"{hl}{hn}.{proj}.weight", f"{pl}{pn}.{pproj}.weight",
                                        True, True))
                        out.append(Rule(f"{hl}{hn}.{proj}.bias", f"{pl}{pn}.{pproj}.bias"))
                else:
                    linear = hn.startswith("fc")
                    out.append(Rule(f"{hl}{hn}.weight", f"{pl}{pn}.weight", linear, linear))
                    out.append(Rule(f"{hl}{hn}.bias", f"{pl}{pn}.bias"))
    if not hf.get("tie_word_embeddings", True):
        out.append(Rule("lm_head.weight", "lm_head_weight"))
    return out


#: model_type -> (common key, the family's own key): config.json spellings of the sizes.
_CONFIG_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "gpt2": (("hidden_size", "n_embd"), ("num_hidden_layers", "n_layer"),
             ("num_attention_heads", "n_head"), ("max_position_embeddings", "n_positions")),
    "t5": (("hidden_size", "d_model"), ("num_hidden_layers", "num_layers"),
           ("num_attention_heads", "num_heads"), ("intermediate_size", "d_ff")),
    # BART: the encoder's sizes (what soft prompts and PEFT's prompt configs need)
    "bart": (("hidden_size", "d_model"), ("num_hidden_layers", "encoder_layers"),
             ("num_attention_heads", "encoder_attention_heads"),
             ("intermediate_size", "encoder_ffn_dim")),
}


def normalized(hf: dict[str, Any]) -> dict[str, Any]:
    """config.json with the common key names (GPT-2 writes n_embd, T5 d_model, ...)."""
    out = dict(hf)
    for common, own in _CONFIG_ALIASES.get(str(out.get("model_type")), ()):
        if common not in out and own in out:
            out[common] = out[own]
    if out.get("model_type") == "gpt2":
        out.setdefault("intermediate_size", out.get("n_inner") or 4 * out["hidden_size"])
    return out


def read_config(folder: Path) -> dict[str, Any]:
    """A model folder's config.json, normalized."""
    return normalized(json.loads((folder / "config.json").read_text(encoding="utf-8")))


ARCHITECTURES: dict[str, Architecture] = {
    a.model_type: a for a in (
        Architecture("llama", ModelKind.CAUSAL, "LlamaForCausalLM", "LlamaConfig", "llama",
                     ("q_proj", "v_proj")),
        Architecture("gpt2", ModelKind.CAUSAL, "GPTForCausalLM", "GPTConfig", "gpt",
                     ("c_attn",)),
        Architecture("bert", ModelKind.MASKED, "BertForMaskedLM", "BertConfig", "bert",
                     ("query", "value")),
        Architecture("ernie", ModelKind.MASKED, "ErnieForMaskedLM", "ErnieConfig", "ernie",
                     ("query", "value")),
        Architecture("t5", ModelKind.SEQ2SEQ, "T5ForConditionalGeneration", "T5Config", "t5",
                     ("q", "v")),
        Architecture("bart", ModelKind.SEQ2SEQ, "BartForConditionalGeneration", "BartConfig",
                     "bart", ("q_proj", "v_proj")),
    )
}


def architecture_for(hf: dict[str, Any], where: str = "") -> Architecture:
    model_type = hf.get("model_type")
    arch = ARCHITECTURES.get(str(model_type))
    if arch is None:
        raise ModelNotFoundError(f"{where}: model_type {model_type!r} has no paddlenlp mapping in "
                                 f"the paddle backend (supported: {', '.join(sorted(ARCHITECTURES))})")
    return arch


def module_map(rules: list[Rule]) -> dict[str, str]:
    """Hugging Face module path -> paddle module path, for every Linear (LoRA targets)."""
    return {r.hf[: -len(".weight")]: r.paddle[: -len(".weight")]
            for r in rules if r.linear and r.hf.endswith(".weight")}
