"""Raw-text and search primitives agree across frameworks on the same tiny weights.

`serve --backend paddle` and `serve --backend hf` then answer an OpenAI client with the same
tokens and log-probs (1e-4), the same greedy continuations and the same chat prompts, and
AutoPrompt's first-order swap scores agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from unified_prompt_paddle.tiny import tiny_model  # installed: conftest skips otherwise

from unified_prompt.backend import GenerationParams
from unified_prompt.config import ExperimentSpec
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples

TEXTS = ["Review: a fine film\nSentiment: good", "Sentiment:  差 absolutely wonderful  \n\n x",
         "é😀 ok", "a"]


class Spec(BackendConformance):
    backend_name = "paddle"


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def causal(request, backends):
    hf, pd = backends
    ref = str(tiny_model(request.param))
    return hf.load_model(ref), pd.load_model(ref)


def test_text_logprobs_agree(backends, causal) -> None:
    hf, pd = backends
    for a, b in zip(hf.text_logprobs(causal[0], TEXTS, top_k=3),
                    pd.text_logprobs(causal[1], TEXTS, top_k=3), strict=True):
        assert [(t.token, t.offset, t.id) for t in a] == [(t.token, t.offset, t.id) for t in b]
        assert [t.logprob is None for t in a] == [t.logprob is None for t in b]
        for x, y in zip(a, b, strict=True):
            if x.logprob is not None:
                assert abs(x.logprob - y.logprob) <= 1e-4
            assert [v for _, v in x.top] == pytest.approx([v for _, v in y.top], abs=1e-4)


def test_generate_text_agrees(backends, causal) -> None:
    hf, pd = backends
    texts = ["Review: a fine film\nSentiment:", "Hello", ""]
    params = GenerationParams(max_new_tokens=5, stop=("atch",))
    for a, b in zip(hf.generate_text(causal[0], texts, params, top_k=2),
                    pd.generate_text(causal[1], texts, params, top_k=2), strict=True):
        assert (a.text, a.finish_reason, a.prompt_tokens) == (b.text, b.finish_reason,
                                                              b.prompt_tokens)
        assert [(t.token, t.offset, t.id) for t in a.tokens] == \
            [(t.token, t.offset, t.id) for t in b.tokens]
        assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens],
                                                              abs=1e-4)


def test_chat_prompts_agree(backends, causal) -> None:
    hf, pd = backends
    messages = [{"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "Is this positive? a fine film"}]
    assert hf.render_chat(causal[0], messages) == pd.render_chat(causal[1], messages)


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_token_gradients_agree(backends, kind: str) -> None:
    hf, pd = backends
    ref = str(tiny_model(kind))
    a, b = hf.load_model(ref), pd.load_model(ref)
    assert hf.vocabulary(a) == pd.vocabulary(b)
    spec = Spec().spec(pd, b, "prompt_tuning", num_virtual_tokens=1)
    data = spec.model_dump(mode="json", exclude_none=True)
    data["prompt"]["template"] = "{soft:2} " + data["prompt"]["template"]
    builder = PromptBuilder(ExperimentSpec.model_validate(data))
    setup = Spec().setup_for(builder)
    items = builder.train_items(synthetic_examples()[:4])
    triggers = {0: pd.tokenize(b, "the film")[:2]}
    assert hf.tokenize(a, "the film")[:2] == triggers[0]
    ga = np.asarray(hf.token_gradients(a, items, setup, triggers)[0])
    gb = np.asarray(pd.token_gradients(b, items, setup, triggers)[0])
    scale = np.abs(ga).max()
    assert np.abs(ga - gb).max() <= 1e-3 * scale + 1e-7
