"""The sampling-options check the hf and paddle decoding tests share: a fixed seed repeats
the texts, another seed changes them, a vanishing top_p is greedy decoding, n > 1 gives n
texts per prompt."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from unified_prompt.backend import GenerationParams
from unified_prompt.prompts.segments import Rendered
from unified_prompt.prompts.template import Template
from unified_prompt.testing.conformance import synthetic_examples

TEMPLATE = "Review: {text}\nSentiment: {mask}"


def sampling_prompts(n: int = 3) -> list[Rendered]:
    t = Template(TEMPLATE)
    return [t.render(e.fields) for e in synthetic_examples()[:n]]


def check_seeded_sampling(generate: Callable[[Sequence[Rendered], GenerationParams], list[str]]
                          ) -> None:
    """`generate(prompts, params)` is a backend's generate on a loaded model."""
    prompts = sampling_prompts()

    def gen(**kw):
        return generate(prompts, GenerationParams(8, stop=(), **kw))

    greedy = gen()
    a = gen(temperature=1.0, seed=4)
    assert a == gen(temperature=1.0, seed=4)
    assert a != gen(temperature=1.0, seed=5) and a != greedy
    assert gen(temperature=1.0, seed=4, top_p=1e-6) == greedy
    assert gen(temperature=1.0, seed=4, top_p=0.9) == gen(temperature=1.0, seed=4, top_p=0.9)
    many = gen(temperature=1.0, seed=4, n=3)
    assert len(many) == 9 and many == gen(temperature=1.0, seed=4, n=3)
    assert len(set(many[:3])) > 1  # the n samples of one prompt differ
