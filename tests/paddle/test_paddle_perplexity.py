"""Perplexity on paddle (the same tiny Llama): equal to what paddle's score() gives for
the targets, and to the hf backend's figure for the same weights."""

from __future__ import annotations

import math

from tests.perplexity_run import run_and_score


def test_run_reports_the_perplexity_score_gives(tmp_path, paddle_backend, tiny_llama):
    scores, expected = run_and_score(tmp_path, "paddle", paddle_backend, tiny_llama, {})
    assert math.isclose(scores["perplexity"], expected, rel_tol=1e-4)
    from unified_prompt.registry import create_backend
    from unified_prompt.testing.tiny import tiny_model

    hf = create_backend("hf", {"device": "cpu"})
    try:
        llama = hf.load_model(str(tiny_model("llama")))
        hf_scores, _ = run_and_score(tmp_path, "hf", hf, llama, {"device": "cpu"})
    finally:
        hf.close()
    assert math.isclose(scores["perplexity"], hf_scores["perplexity"], rel_tol=1e-3)
