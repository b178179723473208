"""Raw-text primitives (what `unified-prompt serve --backend hf` answers with): echoed
log-probs reproduce score(), continuations match generate(), chat rendering, limits."""

from __future__ import annotations

import numpy as np
import pytest
from hf_helpers import make_builder, make_setup

from unified_prompt.backend import GenerationParams
from unified_prompt.errors import CapabilityError
from unified_prompt.registry import create_backend
from unified_prompt.testing.conformance import synthetic_examples
from unified_prompt.testing.tiny import tiny_model

WORDS = ["good", "absolutely wonderful", "差"]  # one, two and three tokens


def echo_scores(backend, model, prompts, words, **kw) -> np.ndarray:
    """What an OpenAI client scoring by echo computes from text_logprobs."""
    out = np.zeros((len(prompts), len(words)))
    texts = [p.prefix_text() + p.mask_lead() + w for p in prompts for w in words]
    echoed = backend.text_logprobs(model, texts, **kw)
    for k, tokens in enumerate(echoed):
        i, w = divmod(k, len(words))
        cut = len(prompts[i].prefix_text())
        assert "".join(t.token for t in tokens) == texts[k]
        out[i, w] = sum(t.logprob for t in tokens if t.offset >= cut)
    return out


def test_echo_reproduces_score_for_multi_token_words_in_any_batch(backend, llama):
    prompts = make_builder().render(synthetic_examples()[:5])
    direct = backend.score(llama, prompts, WORDS).logprob
    assert backend.score(llama, prompts, WORDS).n_tokens[0].tolist() == [1, 2, 3]
    for batch_size in (1, 4, 16):
        echoed = echo_scores(backend, llama, prompts, WORDS, batch_size=batch_size)
        np.testing.assert_allclose(echoed, direct, atol=1e-4, rtol=0)


def test_echo_on_a_prompt_tuned_model_keeps_its_soft_tokens(backend, llama):
    """A model trained with `{soft} text {mask}` is served with its virtual tokens first."""
    builder = make_builder("prompt_tuning", template="{soft:3}Review: {text}\nSentiment: {mask}",
                           num_virtual_tokens=3, init="random")
    session = backend.start_training(llama, make_setup(builder))
    try:
        tuned = session.model
        prompts = builder.render(synthetic_examples()[:3])
        direct = backend.score(tuned, prompts, WORDS).logprob
        np.testing.assert_allclose(echo_scores(backend, tuned, prompts, WORDS), direct,
                                   atol=1e-4, rtol=0)
        assert not np.allclose(direct, backend.score(llama, make_builder().render(
            synthetic_examples()[:3]), WORDS).logprob, atol=1e-3), "the soft tokens count"
    finally:
        session.close()


def test_echo_with_a_bos_model_conditions_the_first_token_on_it(backend, llama):
    """A tokenizer that adds BOS: score() and the echo both put it first, once."""
    import copy
    import dataclasses

    codec = copy.copy(llama.codec)
    codec.special = dataclasses.replace(codec.special, add_bos=True)
    with_bos = llama.derive(codec=codec)
    prompts = make_builder().render(synthetic_examples()[:3])
    direct = backend.score(with_bos, prompts, WORDS).logprob
    assert not np.allclose(direct, backend.score(llama, prompts, WORDS).logprob, atol=1e-3)
    np.testing.assert_allclose(echo_scores(backend, with_bos, prompts, WORDS), direct,
                               atol=1e-4, rtol=0)
    (plain,), (spelled,) = (backend.text_logprobs(with_bos, ["Hi there"]),
                            backend.text_logprobs(with_bos, ["<|im_start|>Hi there"]))
    assert plain[0].logprob is not None  # given BOS
    assert spelled[0].id == codec.special.bos and spelled[0].logprob is None  # not doubled
    assert [t.logprob for t in spelled[1:]] == pytest.approx([t.logprob for t in plain],
                                                             abs=1e-5)


def test_first_token_and_offsets(backend, llama):
    text = "Sentiment: absolutely wonderful 差\n\nok"
    (tokens,) = backend.text_logprobs(llama, [text], top_k=2)
    assert tokens[0].logprob is None and tokens[0].top == ()  # SmolLM2 adds no BOS
    assert "".join(t.token for t in tokens) == text
    assert [t.offset for t in tokens] == [sum(len(u.token) for u in tokens[:k])
                                          for k in range(len(tokens))]
    assert [t.id for t in tokens] == backend.tokenize(llama, text)
    assert " wonderful" in [t.token for t in tokens]
    assert backend.text_logprobs(llama, [""]) == [()]


def test_long_texts_lose_their_front(backend):
    short = create_backend("hf", {"device": "cpu", "max_length": 16})
    model = short.load_model(str(tiny_model("llama")))
    text = " ".join(f"word{i}" for i in range(30))
    (tokens,) = short.text_logprobs(model, [text])
    ids = short.tokenize(model, text)
    assert len(tokens) == len(ids) > 16
    assert all(t.logprob is None for t in tokens[:len(ids) - 15])
    assert all(t.logprob is not None for t in tokens[len(ids) - 15:])
    (gen,) = short.generate_text(model, [text], GenerationParams(max_new_tokens=4, stop=()))
    assert gen.prompt_tokens == len(ids) and len(gen.tokens) == 4


def test_generate_text_continues_like_generate(backend, peaky_llama):
    prompts = make_builder().render(synthetic_examples()[:4])
    params = GenerationParams(max_new_tokens=8, stop=())
    expected = backend.generate(peaky_llama, prompts, params)
    texts = [p.prefix_text() for p in prompts]
    for batch_size in (1, 3):
        gens = backend.generate_text(peaky_llama, texts, params, top_k=3, batch_size=batch_size)
        for prompt, gen, want in zip(prompts, gens, expected, strict=True):
            assert gen.text.removeprefix(prompt.mask_lead()) == want
            assert gen.text == "".join(t.token for t in gen.tokens)
            assert gen.prompt_tokens == len(backend.tokenize(peaky_llama, prompt.prefix_text()))
            for t in gen.tokens:
                assert t.top[0][1] >= t.logprob - 1e-5 and t.top[0][1] >= t.top[2][1]
            assert [t.offset for t in gen.tokens] == [
                len(prompt.prefix_text()) + sum(len(u.token) for u in gen.tokens[:k])
                for k in range(len(gen.tokens))]


def test_stop_strings_cut_inside_a_token(backend, peaky_llama):
    text = make_builder().render(synthetic_examples()[:1])[0].prefix_text()
    params = GenerationParams(max_new_tokens=8, stop=())
    (free,) = backend.generate_text(peaky_llama, [text], params)
    piece = next(t.token for t in free.tokens if len(t.token.strip()) >= 2)
    stop = piece.strip()[1:]  # starts inside that token
    (cut,) = backend.generate_text(peaky_llama, [text], GenerationParams(8, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert free.text.startswith(cut.text) and stop not in cut.text
    assert cut.text == free.text[:free.text.index(stop)]
    assert cut.text == "".join(t.token for t in cut.tokens)


def test_sampling_is_seeded(backend, llama):
    params = GenerationParams(max_new_tokens=6, temperature=1.0, stop=(), seed=11)
    prompts = ["Review: fine\nSentiment:"] * 2
    first = backend.generate_text(llama, prompts, params)
    assert first == backend.generate_text(llama, prompts, params)
    assert first[0].text != first[1].text  # it samples: two draws of one prompt differ


def test_render_chat_template_and_fallback(backend, llama, bert):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = backend.render_chat(llama, messages)
    assert text.endswith("<|im_start|>assistant\n") and "Be brief." in text
    assert backend.render_chat(bert, messages) == "system: Be brief.\nuser: Hi\nassistant:"


def test_masked_models_have_no_raw_text_log_probs(backend, bert):
    with pytest.raises(CapabilityError, match="causal"):
        backend.text_logprobs(bert, ["a fine film"])
    with pytest.raises(CapabilityError, match="causal"):
        backend.generate_text(bert, ["a fine film"], GenerationParams())
