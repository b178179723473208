"""The same search runs unchanged on another backend where its primitives exist: openai
against `unified-prompt serve` (the fake model behind a real local server), and refuses
clearly where they do not."""

from __future__ import annotations

import pytest

from unified_prompt.errors import CapabilityError
from unified_prompt.search import run_search

pytest.importorskip("unified_prompt_openai")

KEY = "sk-search-test"


@pytest.fixture(scope="module")
def served():
    from unified_prompt_openai.server.config import ServeConfig
    from unified_prompt_openai.server.run import ServerThread

    with ServerThread(ServeConfig(backend="fake", model="fake-search", api_key=KEY)) as srv:
        yield srv


def _openai(spec, srv):
    spec = {**spec, "backend": {"name": "openai", "model": "fake-search",
                                "options": {"openai": {"base_url": srv.base_url, "api_key": KEY,
                                                       "cache": False}}}}
    return spec


def test_rl_and_propose_run_against_unified_prompt_serve(make_task, served, tmp_path):
    spec = _openai(make_task({"template": "Review: {text} camera heavy\nSentiment: {mask}"}),
                   served)
    rl = run_search(spec, strategy="rl", budget=200, out=tmp_path / "rl",
                    options={"dev_limit": 12, "steps": 3, "batch": 6, "samples": 3,
                             "check_every": 3})
    assert rl.backend == "openai" and rl.usage["search"]["calls"] <= 200
    assert (tmp_path / "rl" / "best.yaml").exists()
    propose = run_search(spec, strategy="propose", budget=100,
                         options={"dev_limit": 12, "rounds": 1, "per_round": 2})
    assert propose.extras["proposer"]["backend"] == "openai"


@pytest.mark.parametrize("strategy,needs", [("gradient", "token gradients"),
                                            ("verbalizer", "next-token distributions")])
def test_openai_refuses_what_it_cannot_do(make_task, served, strategy, needs):
    spec = _openai(make_task({"template": "Review: {text} camera heavy\nSentiment: {mask}"}),
                   served)
    with pytest.raises(CapabilityError) as err:
        run_search(spec, strategy=strategy, budget=500)
    assert needs in str(err.value) and "'openai'" in str(err.value)


def test_a_generation_search_runs_against_unified_prompt_serve(served, tmp_path):
    """Generation specs need `generate` on the target, which a hosted model has."""
    from test_search_generation import TEMPLATE, generation_task

    spec = _openai(generation_task(tmp_path / "task", {"template": "heavy summer camera\n"
                                                       + TEMPLATE}, n_dev=8, n_test=6), served)
    result = run_search(spec, strategy="propose", budget=60, out=tmp_path / "out",
                        options={"dev_limit": 8, "rounds": 1, "per_round": 2})
    assert result.backend == "openai" and result.metric == "rouge_l"
    assert 8 <= result.usage["search"]["calls"] <= 60
    assert result.usage["backend_reported"]["requests"] >= result.usage["search"]["calls"]
    assert set(result.test["best"]) == {"rouge_l", "bleu"}
