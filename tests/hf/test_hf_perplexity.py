"""Perplexity on hf (tiny Llama): the run's figure equals exp(-mean token log-prob) of the
targets as score() computes them at the mask, through a different code path."""

from __future__ import annotations

import math

from tests.perplexity_run import run_and_score


def test_run_reports_the_perplexity_score_gives(tmp_path, backend, llama):
    scores, expected = run_and_score(tmp_path, "hf", backend, llama, {"device": "cpu"})
    assert list(scores) == ["perplexity", "bleu"]
    assert math.isclose(scores["perplexity"], expected, rel_tol=1e-4)
