"""Encoder-decoder models (T5, BART) on the paddle backend: the conformance suite on the tiny
T5, the weight mapping, what paddlenlp cannot do (refused by name), adapters and the CLI.

Number-for-number agreement with transformers lives in tests/parity/test_paddle_seq2seq_parity.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unified_prompt.backend import GenerationParams, ModelKind
from unified_prompt.errors import CapabilityError
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.tiny import tiny_model


class TestPaddleT5(BackendConformance):
    """Every standard test on the tiny T5 (prefix tuning and raw text are not declared)."""

    backend_name = "paddle"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("t5"))


@pytest.fixture(scope="module")
def t5(paddle_backend):
    return paddle_backend.load_model(str(tiny_model("t5")))


@pytest.fixture(scope="module", params=["t5", "bart"])
def s2s(request, paddle_backend):
    return paddle_backend.load_model(str(tiny_model(request.param)))


@pytest.fixture(scope="module")
def bart(paddle_backend):
    return paddle_backend.load_model(str(tiny_model("bart")))


def _builder(backend, model, method: str = "none", task: str = "classification", **settings):
    return TestPaddleT5().builder(backend, model, method, task, **settings)


def _with_template(builder, template: str):
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.prompts.builder import PromptBuilder

    data = builder.spec.model_dump(mode="json", exclude_none=True)
    data["prompt"]["template"] = template
    return PromptBuilder(ExperimentSpec.model_validate(data))


def test_every_checkpoint_tensor_is_mapped(s2s) -> None:
    from safetensors.numpy import load_file

    weights = load_file(str(s2s.folder / "model.safetensors"))
    assert {r.hf for r in s2s.rules} == set(weights) - {"final_logits_bias"}
    params = dict(s2s.net.named_parameters())
    for rule in s2s.rules:
        value = params[rule.paddle].numpy()
        expected = weights[rule.hf].T if rule.transpose else weights[rule.hf]
        np.testing.assert_array_equal(value, expected, err_msg=rule.hf)
    assert s2s.kind == ModelKind.SEQ2SEQ
    assert s2s.total_params == sum(int(v.size) for k, v in weights.items()
                                   if k != "final_logits_bias")  # a buffer, as in torch
    if "final_logits_bias" in weights:
        np.testing.assert_array_equal(s2s.net.final_logits_bias.numpy(),
                                      weights["final_logits_bias"])


def test_encoder_input_puts_the_sentinel_at_the_mask(paddle_backend, t5) -> None:
    from unified_prompt_paddle.seq2seq import encoder_inputs, layout

    lay = layout(t5)
    prompt = _builder(paddle_backend, t5).render(synthetic_examples()[:1])[0]
    enc = encoder_inputs(t5, [prompt])[0]
    tok = t5.tokenizer
    assert enc.ids[-2:] == (lay.sentinel, tok.special.eos)
    assert tok.backend.id_to_token(lay.sentinel) == "<extra_id_0>"
    assert tok.decode(list(enc.ids[:-2])) == prompt.text()
    assert lay.prefix(enc) == [t5.hf_config["decoder_start_token_id"], lay.sentinel]
    assert lay.enders(lay.prefix(enc)) == {tok.special.eos,
                                           tok.backend.token_to_id("<extra_id_1>")}


def test_bart_layout_masks_inside_bos_and_eos(paddle_backend, bart) -> None:
    from unified_prompt_paddle.seq2seq import encoder_inputs, layout

    lay = layout(bart)
    tok = bart.tokenizer
    prompt = _builder(paddle_backend, bart).render(synthetic_examples()[:1])[0]
    enc = encoder_inputs(bart, [prompt])[0]
    assert (enc.ids[0], enc.ids[-2], enc.ids[-1]) == (tok.special.bos, tok.special.mask,
                                                      tok.special.eos)
    assert lay.prefix(enc) == [tok.special.eos, tok.special.bos]  # </s> <s>, then the word


def test_scores_are_the_decoders_token_log_probs(paddle_backend, s2s) -> None:
    """A two-token word scores log p(w0 | prefix) + log p(w1 | prefix, w0), read off a
    single decoder pass over prefix + word (no shortcut)."""
    from unified_prompt_paddle.runtime import paddle
    from unified_prompt_paddle.seq2seq import decode, encode, encoder_inputs, head, layout

    prompt = _builder(paddle_backend, s2s).render(synthetic_examples()[:1])[0]
    word = "absolutely wonderful"
    ids = s2s.tokenizer.encode_text(prompt.mask_lead() + word)
    assert len(ids) >= 2
    got = paddle_backend.score(s2s, [prompt], [word]).logprob[0, 0]
    enc = encoder_inputs(s2s, [prompt])
    with paddle().no_grad():
        memory, mask = encode(s2s, enc)
        prefix = layout(s2s).prefix(enc[0])
        hidden, _ = decode(s2s, memory, mask, np.array([0]), [prefix + ids])
        logits = head(s2s, hidden).numpy()[0]
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1,
                                                                             keepdims=True)) \
        - logits.max(-1, keepdims=True)
    start = len(prefix) - 1
    expected = sum(logp[start + k, t] for k, t in enumerate(ids))
    assert got == pytest.approx(expected, abs=1e-5)


def test_prefix_tuning_is_refused_naming_the_model(paddle_backend, s2s) -> None:
    builder = _builder(paddle_backend, s2s, "prefix_tuning")
    with pytest.raises(CapabilityError, match=f"{s2s.arch.model_type}.*PrefixModelForCausalLM"):
        paddle_backend.start_training(s2s, TestPaddleT5().setup_for(builder))
    assert "prefix_tuning" not in paddle_backend.model_capabilities(s2s).methods
    assert not paddle_backend.model_capabilities(s2s).raw_text
    with pytest.raises(CapabilityError, match="causal"):
        paddle_backend.text_logprobs(s2s, ["hello"])


@pytest.mark.parametrize(("kind", "change", "message"), [
    ("t5", {"relative_attention_max_distance": 64}, "max_distance 128"),
    ("t5", {"feed_forward_proj": "gelu"}, "feed_forward_proj 'gelu'"),
    ("bart", {"normalize_before": True}, "post-norm only"),
    ("bart", {"activation_function": "gelu_new"}, "activation 'gelu_new'"),
])
def test_unsupported_variants_are_refused(tmp_path: Path, paddle_backend, kind, change,
                                          message) -> None:
    folder = tmp_path / kind
    shutil.copytree(tiny_model(kind), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CapabilityError, match=message):
        paddle_backend.load_model(str(folder))


@pytest.mark.parametrize("method", ["lora", "prompt_tuning", "full"])
def test_adapter_reloads_to_identical_scores(paddle_backend, s2s, method, tmp_path: Path) -> None:
    builder = _builder(paddle_backend, s2s, method)
    if method == "prompt_tuning":
        builder = _with_template(builder, "{soft:3} Review: {text}\nSentiment: {mask}")
    session = paddle_backend.start_training(s2s, TestPaddleT5().setup_for(builder))
    items = builder.train_items(synthetic_examples())
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    session.train_mode(False)
    initial = paddle_backend.score(session.model, prompts, words).logprob
    session.train_mode(True)
    losses = []
    for _ in range(4):
        losses.append(session.forward_backward(items, 1.0))
        session.optimizer_step({"lora": 1e-2, "prompt_tuning": 5e-2, "full": 1e-3}[method], 1.0)
    assert losses[-1] < losses[0]
    session.train_mode(False)
    trained = paddle_backend.score(session.model, prompts, words).logprob
    session.save_adapter(tmp_path / "adapter")
    loaded = paddle_backend.load_adapter(s2s, tmp_path / "adapter")
    np.testing.assert_array_equal(paddle_backend.score(loaded, prompts, words).logprob, trained)
    assert np.abs(initial - trained).max() > 1e-4


def test_lora_folder_runs_in_paddlenlps_own_forward(paddle_backend, s2s, tmp_path: Path
                                                    ) -> None:
    """Our LoRA folder is paddlenlp's: LoRAModel.from_pretrained on the mapped network, run
    through paddlenlp's own forward, gives our decoder's logits."""
    from paddlenlp.peft import LoRAModel
    from unified_prompt_paddle.loading import clone_net
    from unified_prompt_paddle.runtime import paddle
    from unified_prompt_paddle.seq2seq import decode, encode, head

    from unified_prompt.encoding import Encoded

    builder = _builder(paddle_backend, s2s, "lora")
    session = paddle_backend.start_training(s2s, TestPaddleT5().setup_for(builder))
    state = session.trainable_state()
    rng = np.random.default_rng(0)
    session.load_trainable_state({k: (rng.standard_normal(v.shape) * 0.1).astype(np.float32)
                                  for k, v in state.items()})
    session.train_mode(False)
    session.save_adapter(tmp_path / "lora")
    plain = LoRAModel.from_pretrained(clone_net(s2s), str(tmp_path / "lora"))
    plain.eval()
    ids = [504, 3300, 314, 4155, 28, s2s.tokenizer.special.eos]
    dec = [int(s2s.hf_config["decoder_start_token_id"]), 504, 28]
    pd = paddle()
    with pd.no_grad():
        memory, mask = encode(session.model, [Encoded(tuple(ids))])
        hidden, _ = decode(session.model, memory, mask, np.array([0]), [dec])
        ours = head(session.model, hidden).numpy()
        out = plain(input_ids=pd.to_tensor([ids]), decoder_input_ids=pd.to_tensor([dec]),
                    use_cache=False, return_dict=True)
    np.testing.assert_allclose(ours, out.logits.numpy(), atol=1e-4)


def test_generation_training_lowers_the_loss_on_the_target(paddle_backend, s2s) -> None:
    from unified_prompt.data.example import Example

    builder = _builder(paddle_backend, s2s, "full", task="generation")
    session = paddle_backend.start_training(s2s, TestPaddleT5().setup_for(builder))
    items = builder.train_items([Example(f"g{i}", {"text": t}, target="good")
                                 for i, t in enumerate(["a film", "a dull mess", "I loved it"])])
    first = session.loss(items)
    for _ in range(15):
        session.forward_backward(items, 1.0)
        session.optimizer_step(0.01, 1.0)
    assert session.loss(items) < 0.5 * first
    session.train_mode(False)
    out = paddle_backend.generate(session.model, builder.render(
        [Example("x", {"text": "a film"})]), GenerationParams(max_new_tokens=3))
    assert out[0].strip().startswith("good")


def test_cli_run_trains_and_evaluates_t5(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n"
                            for e in synthetic_examples()), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: classification\n"
        f"backend: {{name: paddle, model: {tiny_model('t5')}}}\n"
        f"data: {{files: {{train: {data}, test: {data}}}}}\n"
        "prompt:\n  template: \"Review: {text}\\nSentiment: {mask}\"\n"
        "  verbalizer: {positive: [good], negative: [bad]}\n"
        "finetune: {method: lora, r: 4, alpha: 8, lr: 0.01, max_steps: 3, batch_size: 4}\n",
        encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "unified_prompt.cli", "run", str(spec),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "paddle" and metrics["method"] == "lora"
    assert metrics["n_examples"] == len(synthetic_examples())
    assert 0 < metrics["trainable_params"] < metrics["total_params"]
    assert set(metrics["metrics"]) >= {"accuracy", "macro_f1"}
