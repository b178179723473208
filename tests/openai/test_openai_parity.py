"""Through the server, a local model gives the same predictions as the local backend
itself: echo scoring reproduces the exact label-word log-probs."""

from __future__ import annotations

import numpy as np
import openai_testkit as kit
import pytest

from unified_prompt.runner import Experiment


def _run(data: dict, tmp_path, name: str):
    return Experiment.from_dict(data).run(out=tmp_path / name, progress=False)


@pytest.mark.parametrize("prompt,echo_batch", [
    ({}, 1),
    ({"demonstrations": {"k": 1}, "calibration": "contextual"}, 1),
    ({}, 7),
], ids=["zero-shot", "one-shot-calibrated", "seven-examples-per-request"])
def test_predictions_through_the_server_equal_the_fake_backend(server, tmp_path, prompt,
                                                               echo_batch):
    files = kit.write_data(tmp_path / "data", train=8, dev=0, test=40)
    direct = _run(kit.run_spec(files, backend="fake", prompt=prompt), tmp_path, "fake")
    options = kit.backend_options(server, echo_batch=echo_batch)
    hosted = _run(kit.run_spec(files, options=options, prompt=prompt), tmp_path, "openai")
    assert [r["prediction"] for r in hosted.predictions] == \
        [r["prediction"] for r in direct.predictions]
    for a, b in zip(hosted.predictions, direct.predictions, strict=True):
        assert a["id"] == b["id"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    assert hosted.scores == direct.scores
    assert len({r["prediction"] for r in direct.predictions}) == 2, "a non-trivial check"
    usage = hosted.metrics["usage"]
    n_prompts = 40 + (3 if prompt.get("calibration") else 0)
    per_request = -(-n_prompts // echo_batch)
    assert usage["requests"] == per_request + 1  # (+1: the echo probe at load time)
    assert hosted.metrics["backend"] == "openai"


@pytest.mark.slow
def test_hf_predictions_through_the_server_equal_the_hf_backend(tmp_path):
    """`serve --backend hf --model smollm2-135m` + examples/sentiment.yaml on 200 test
    examples: the same zero-shot predictions as the hf backend directly."""
    pytest.importorskip("unified_prompt_hf")  # a missing raw-text primitive fails, not skips
    overrides = ["eval.limit=200"]
    direct = Experiment.from_yaml(kit.DATA.parents[2] / "examples" / "sentiment.yaml",
                                  overrides=overrides).run(progress=False)
    with kit.serve(backend="hf", model="smollm2-135m", served_name="smollm2-135m") as srv:
        opts = [f"backend.options.openai.{k}={v}" for k, v in
                {"base_url": srv.base_url, "api_key": kit.API_KEY, "cache": False,
                 "concurrency": 4}.items()]
        hosted = Experiment.from_yaml(kit.DATA.parents[2] / "examples" / "sentiment.yaml",
                                      overrides=overrides + opts, backend="openai"
                                      ).run(progress=False)
    assert [r["prediction"] for r in hosted.predictions] == \
        [r["prediction"] for r in direct.predictions]
    for a, b in zip(hosted.predictions, direct.predictions, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-3)


def test_tiny_hf_model_through_the_server_scores_as_the_hf_backend(tmp_path):
    """`serve --backend hf` on the tiny Llama, scored by echo: the hf backend's own
    label-word log-probs, for words of one, two and three tokens."""
    pytest.importorskip("unified_prompt_hf")
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.registry import create_backend
    from unified_prompt.testing.conformance import synthetic_examples
    from unified_prompt.testing.tiny import tiny_model

    words = ["good", "absolutely wonderful", "差"]
    files = kit.write_data(tmp_path / "data", train=4, dev=0, test=4)
    spec = ExperimentSpec.model_validate(kit.run_spec(files, backend="hf", model="x"))
    prompts = PromptBuilder(spec).render(synthetic_examples()[:4])
    model = str(tiny_model("llama"))
    local = create_backend("hf", {"device": "cpu"})
    try:
        direct = local.score(local.load_model(model), prompts, words)
    finally:
        local.close()
    assert direct.n_tokens[0].tolist() == [1, 2, 3]
    with kit.serve(backend="hf", model=model, served_name="tiny-llama",
                   backend_options={"device": "cpu"}) as srv:
        client = create_backend("openai", kit.backend_options(srv, scoring="echo"))
        try:
            hosted = client.score(client.load_model("tiny-llama"), prompts, words)
        finally:
            client.close()
    np.testing.assert_allclose(hosted.logprob, direct.logprob, atol=1e-4, rtol=0)
    assert hosted.n_tokens.tolist() == direct.n_tokens.tolist()
