"""Sampling options on hf: a fixed seed repeats the texts, another seed changes them, a
vanishing top_p is greedy decoding, n > 1 gives n texts per prompt."""

from __future__ import annotations

from hf_helpers import TEMPLATE

from unified_prompt.backend import GenerationParams
from unified_prompt.prompts.template import Template
from unified_prompt.testing.conformance import synthetic_examples


def _prompts(n: int = 3):
    t = Template(TEMPLATE)
    return [t.render(e.fields) for e in synthetic_examples()[:n]]


def test_seeded_sampling_top_p_and_n(backend, llama):
    prompts = _prompts()

    def gen(**kw):
        return backend.generate(llama, prompts, GenerationParams(8, stop=(), **kw))

    greedy = gen()
    a = gen(temperature=1.0, seed=4)
    assert a == gen(temperature=1.0, seed=4)
    assert a != gen(temperature=1.0, seed=5) and a != greedy
    assert gen(temperature=1.0, seed=4, top_p=1e-6) == greedy
    assert gen(temperature=1.0, seed=4, top_p=0.9) == gen(temperature=1.0, seed=4, top_p=0.9)
    many = gen(temperature=1.0, seed=4, n=3)
    assert len(many) == 9 and many == gen(temperature=1.0, seed=4, n=3)
    assert len(set(many[:3])) > 1  # the n samples of one prompt differ
