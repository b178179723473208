"""The backend as the core sees it: light import, options, errors at the boundary, model
info, an untouched base after training, and a whole run through the runner."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unified_prompt.backend import ModelKind
from unified_prompt.errors import (
    BackendError,
    CapabilityError,
    ConfigError,
    ModelNotFoundError,
    UserInputError,
)
from unified_prompt.registry import create_backend
from unified_prompt.testing.tiny import tiny_model


def test_importing_the_backend_loads_no_framework():
    code = ("import sys; from unified_prompt.registry import backend_class; "
            "c = backend_class('hf'); c.capabilities; c.Options(); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_options_are_validated():
    with pytest.raises(ConfigError, match=r"backend\.options\.hf\.devise"):
        create_backend("hf", {"devise": "cpu"})
    with pytest.raises(ConfigError):
        create_backend("hf", {"dtype": "int8"})
    b = create_backend("hf", {"device": "cpu", "dtype": "float32", "max_length": 64,
                              "threads": 2})
    assert b.options.max_length == 64


def test_model_info(backend, llama, bert):
    from unified_prompt.assets import directory_checksum

    info = backend.model_info(llama)
    assert info.kind == ModelKind.CAUSAL and info.total_params == sum(
        p.numel() for p in llama.module.parameters())
    assert info.checksum == directory_checksum(tiny_model("llama"))
    assert info.tokenizer_checksum and info.vocab_size == 49152
    assert backend.model_info(bert).kind == ModelKind.MASKED


def test_bad_model_paths_are_model_not_found(backend, tmp_path):
    with pytest.raises(ModelNotFoundError):
        backend.load_model(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError):
        backend.load_model(str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelNotFoundError):
        backend.load_model(str(broken))


def test_framework_errors_become_backend_errors(backend, llama):
    from unified_prompt.prompts.template import Template

    broken = llama.derive(module=None)
    with pytest.raises(BackendError):
        backend.score(broken, [Template("{text} {mask}").render({"text": "x"})], ["a"])


def test_unsupported_things_are_capability_errors(backend, llama):
    from hf_helpers import make_builder, make_setup

    with pytest.raises(CapabilityError):
        backend.start_training(llama, make_setup(make_builder("lora", r=2,
                                                              target_modules=["nope"])))


def test_asking_for_a_missing_gpu_is_a_capability_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(CapabilityError):
        create_backend("hf", {"device": "cuda"}).load_model(str(tiny_model("llama")))


def test_masked_lm_needs_a_mask(backend, bert):
    from unified_prompt.prompts.template import Template

    with pytest.raises(UserInputError, match="mask"):
        backend.score(bert, [Template("{text}").render({"text": "x"})], ["good"])


def test_training_leaves_the_base_model_untouched(backend, llama):
    import numpy as np
    from hf_helpers import make_builder, make_setup

    from unified_prompt.testing.conformance import synthetic_examples

    builder = make_builder()
    prompts = builder.render(synthetic_examples()[:3])
    words = builder.verbalizer.flat_words
    before = backend.score(llama, prompts, words).logprob
    for method in ("lora", "full", "prefix_tuning"):
        b = make_builder(method, lr=0.05)
        s = backend.start_training(llama, make_setup(b))
        items = b.train_items(synthetic_examples())
        s.forward_backward(items, 1.0)
        s.optimizer_step(0.05, 1.0)
        assert not np.allclose(backend.score(s.model, prompts, words).logprob, before)
    np.testing.assert_array_equal(backend.score(llama, prompts, words).logprob, before)
    assert not any(p.requires_grad for p in llama.module.parameters())


def test_a_run_trains_saves_and_reports(tmp_path, toy_data):
    import json

    from unified_prompt.runner import Experiment

    spec = {"task": "classification", "seed": 1,
            "backend": {"name": "hf", "model": str(tiny_model("llama"))},
            "data": {"files": {k: str(toy_data / f"{k}.jsonl") for k in ("train", "dev", "test")}},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["good"], "negative": ["bad"]}},
            "finetune": {"method": "prompt_tuning", "num_virtual_tokens": 4, "max_steps": 6,
                         "batch_size": 4, "lr": 0.05, "checkpoint_every": 3}}
    result = Experiment.from_dict(spec).run(out=tmp_path / "run", progress=False)
    adapter = tmp_path / "run" / "adapter"
    assert (adapter / "manifest.json").exists() and (adapter / "adapter_config.json").exists()
    assert result.metrics["trainable_params"] == 4 * 32
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 6 and metrics["peak_rss_mb"] > 0
