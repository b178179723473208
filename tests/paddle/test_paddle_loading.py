"""Loading Hugging Face folders into paddlenlp: import cost, weights, tokens, numerics."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from unified_prompt.prompts.template import Template
from unified_prompt.testing.tiny import tiny_model

TEXTS = ["a wonderful film", "Boring and far too long; I hated it!", "差 你好 x", "  spaced  ",
         "ok 1234"]


def test_backend_module_does_not_import_paddle() -> None:
    code = ("import sys, unified_prompt_paddle.backend as b; "
            "from unified_prompt.registry import backend_class; backend_class('paddle'); "
            "print(sorted(m for m in ('paddle', 'paddlenlp', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_capabilities_cover_every_method(paddle_backend) -> None:
    caps = paddle_backend.capabilities
    assert caps.methods == {"prompt_tuning", "p_tuning", "prefix_tuning", "lora", "full"}
    assert caps.adapters and caps.score and caps.generate


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_tokenizer_ids_match_transformers(paddle_backend, kind: str) -> None:
    transformers = pytest.importorskip("transformers")
    folder = tiny_model(kind)
    ours = paddle_backend.load_model(str(folder)).tokenizer
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    for text in TEXTS:
        assert ours.encode_text(text) == theirs(text, add_special_tokens=False)["input_ids"]
    special = ours.special
    assert special.eos == theirs.eos_token_id
    assert special.mask == theirs.mask_token_id
    if kind == "bert":
        assert (special.cls, special.sep, special.pad) == (101, 102, 0)
    else:
        assert special.add_bos is False


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_logits_match_transformers(paddle_backend, kind: str) -> None:
    """Same weights, fp32, CPU: vocabulary logits agree to 1e-4 (real and padded rows)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from unified_prompt_paddle.forward import head, run
    from unified_prompt_paddle.runtime import paddle

    folder = tiny_model(kind)
    model = paddle_backend.load_model(str(folder))
    cls = (transformers.AutoModelForCausalLM if kind == "llama"
           else transformers.AutoModelForMaskedLM)
    reference = cls.from_pretrained(folder, dtype=torch.float32).eval()
    ids = np.array([[101, 2023, 2001, 1037, 2204, 3185, 102, 0],
                    [101, 2023, 2001, 1037, 2919, 2143, 1012, 102]], dtype=np.int64)
    mask = np.array([[1] * 7 + [0], [1] * 8], dtype=np.int64)
    positions = np.tile(np.arange(8), (2, 1))
    with paddle().no_grad():
        hidden, _ = run(model, ids, mask, positions)
        ours = head(model, hidden).numpy()
    with torch.no_grad():
        theirs = reference(input_ids=torch.tensor(ids),
                           attention_mask=torch.tensor(mask)).logits.numpy()
    valid = mask.astype(bool)
    assert np.abs(ours - theirs)[valid].max() <= 1e-4


def test_scores_match_a_transformers_reference(paddle_backend) -> None:
    """Multi-token and Chinese label words, KV-cache continuation vs. one full sequence each."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from unified_prompt.encoding import encode_causal, encode_continuation

    folder = tiny_model("llama")
    model = paddle_backend.load_model(str(folder))
    reference = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    template = Template("Review: {text}\nSentiment: {mask}")
    prompts = [template.render({"text": t}) for t in TEXTS[:3]]
    words = ["good", "absolutely wonderful", "bad", "差"]
    ours = paddle_backend.score(model, prompts, words, batch_size=2).logprob
    encode = model.tokenizer.encode_text
    for i, prompt in enumerate(prompts):
        for j, word in enumerate(words):
            cont = encode_continuation(prompt, word, encode)
            ctx = encode_causal(prompt, encode, model.tokenizer.special, max_length=1024,
                                reserve=len(cont)).ids
            with torch.no_grad():
                lp = torch.log_softmax(reference(torch.tensor([list(ctx) + cont])).logits[0], -1)
            expected = sum(float(lp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))
            assert abs(ours[i, j] - expected) <= 1e-4


def test_unsupported_architecture_is_a_core_error(paddle_backend, tmp_path) -> None:
    from unified_prompt.errors import UnifiedPromptError

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(UnifiedPromptError, match="mamba"):
        paddle_backend.load_model(str(folder))


def test_errors_while_scoring_are_core_errors(paddle_backend, tiny_llama) -> None:
    """Scoring is inside the core's boundary too (it used to leak paddle's errors raw)."""
    from unified_prompt.errors import BackendError

    broken = tiny_llama.derive(net=None)
    with pytest.raises(BackendError, match=r"^paddle backend: scoring failed") as err:
        paddle_backend.score(broken, [Template("{text} {mask}").render({"text": "x"})], ["a"])
    assert isinstance(err.value.__cause__, AttributeError)


def test_log_softmax_is_exact_and_fast() -> None:
    """forward.log_softmax replaces paddle's CPU kernel (seconds on a 49k vocabulary)."""
    import time

    from unified_prompt_paddle.forward import log_softmax
    from unified_prompt_paddle.runtime import paddle

    x = np.random.default_rng(0).standard_normal((6, 49152)).astype(np.float32) * 5
    started = time.perf_counter()
    ours = log_softmax(paddle().to_tensor(x)).numpy()
    assert time.perf_counter() - started < 1.0
    x64 = x.astype(np.float64)
    top = x64.max(-1, keepdims=True)
    expected = x64 - top - np.log(np.exp(x64 - top).sum(-1, keepdims=True))
    np.testing.assert_allclose(ours, expected, atol=1e-4)  # paddle's own kernel: 5e-5 here


def test_layer_norm_gradient_is_exact_with_a_frozen_scale(paddle_backend) -> None:
    """paddle 3.3's CPU layer_norm drops a frozen scale from the input gradient; the
    backend's LayerNorms (layers.exact_layer_norms) do not."""
    from unified_prompt_paddle.layers import exact_layer_norms
    from unified_prompt_paddle.runtime import paddle

    pd = paddle()
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((3, 8)).astype(np.float32)
    g_np = rng.standard_normal((3, 8)).astype(np.float32)
    norm = pd.nn.LayerNorm(8)
    norm.weight.set_value((1 + rng.standard_normal(8)).astype(np.float32))
    norm.bias.set_value(rng.standard_normal(8).astype(np.float32))
    holder = pd.nn.Sequential(norm)
    exact_layer_norms(holder)
    grads = []
    for frozen in (False, True):
        norm.weight.stop_gradient = norm.bias.stop_gradient = frozen
        x = pd.to_tensor(x_np, stop_gradient=False)
        (holder(x) * pd.to_tensor(g_np)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-5)
    mean = x_np.mean(-1, keepdims=True)
    xhat = (x_np - mean) / np.sqrt(x_np.var(-1, keepdims=True) + 1e-5)
    gy = g_np * norm.weight.numpy()
    expected = (gy - gy.mean(-1, keepdims=True) - xhat * (gy * xhat).mean(-1, keepdims=True)) \
        / np.sqrt(x_np.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(grads[1], expected, atol=1e-4)
