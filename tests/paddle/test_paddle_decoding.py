"""Sampling options on paddle: a fixed seed repeats the texts, another seed changes them, a
vanishing top_p is greedy decoding, n > 1 gives n texts per prompt."""

from __future__ import annotations

from tests.sampling_checks import check_seeded_sampling


def test_seeded_sampling_top_p_and_n(paddle_backend, tiny_llama):
    check_seeded_sampling(
        lambda prompts, params: paddle_backend.generate(tiny_llama, prompts, params))
