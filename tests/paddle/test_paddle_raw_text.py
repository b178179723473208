"""Raw-text primitives (serving) and search primitives (AutoPrompt) on the tiny models."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from unified_prompt.backend import GenerationParams
from unified_prompt.config import ExperimentSpec
from unified_prompt.errors import CapabilityError
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.tiny import tiny_model

MESSAGES = [{"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Is this positive? a fine film"},
            {"role": "assistant", "content": "yes"}, {"role": "user", "content": "Sure?"}]


class Spec(BackendConformance):
    backend_name = "paddle"


def _soft_builder(backend: Any, model: Any, n: int = 2) -> PromptBuilder:
    spec = Spec().spec(backend, model, "prompt_tuning", num_virtual_tokens=1)
    data = spec.model_dump(mode="json", exclude_none=True)
    data["prompt"]["template"] = f"{{soft:{n}}} " + data["prompt"]["template"]
    return PromptBuilder(ExperimentSpec.model_validate(data))


# -- raw text ----------------------------------------------------------------------------
def test_modules_stay_framework_light() -> None:
    code = ("import sys, unified_prompt_paddle.chat, unified_prompt_paddle.backend; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_render_chat_matches_transformers(paddle_backend, tiny_llama) -> None:
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AutoTokenizer.from_pretrained(tiny_model("llama"))
    expected = theirs.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert paddle_backend.render_chat(tiny_llama, MESSAGES) == expected


def test_render_chat_without_a_template_falls_back(paddle_backend, tiny_bert) -> None:
    assert paddle_backend.render_chat(tiny_bert, MESSAGES[:2]) == (
        "system: Answer in one word.\nuser: Is this positive? a fine film\nassistant:")


def test_masked_models_refuse_raw_text(paddle_backend, tiny_bert) -> None:
    with pytest.raises(CapabilityError):
        paddle_backend.text_logprobs(tiny_bert, ["a fine film"])
    with pytest.raises(CapabilityError):
        paddle_backend.generate_text(tiny_bert, ["a fine film"], GenerationParams())


def test_text_pieces_join_and_split_characters(paddle_backend, tiny_llama) -> None:
    texts = ["Sentiment:  差 absolutely wonderful  \n\n x", "", "é😀 ok"]
    out = paddle_backend.text_logprobs(tiny_llama, texts, top_k=2, batch_size=2)
    assert out[1] == ()
    for text, tokens in zip(texts, out, strict=True):
        assert "".join(t.token for t in tokens) == text
        assert [t.id for t in tokens] == tiny_llama.tokenizer.encode_text(text)
        if tokens:
            assert tokens[0].logprob is None and tokens[0].top == ()  # no BOS on this model
            assert all(t.logprob is not None and len(t.top) == 2 for t in tokens[1:])
    assert [t.token for t in out[0][:5]] == ["Sent", "iment", ":", " ", " 差"]


def test_text_logprobs_do_not_depend_on_the_batch(paddle_backend, tiny_llama) -> None:
    texts = ["a fine film", "Review: a dull, lifeless mess\nSentiment: bad", "x y"]
    together = paddle_backend.text_logprobs(tiny_llama, texts, batch_size=3)
    for text, tokens in zip(texts, together, strict=True):
        (alone,) = paddle_backend.text_logprobs(tiny_llama, [text])
        assert [t.logprob for t in tokens] == pytest.approx([t.logprob for t in alone], abs=1e-5)


def test_too_long_texts_lose_their_front(paddle_backend, tiny_llama) -> None:
    short = tiny_llama.derive(max_length=8)
    text = "one two three four five six seven eight nine ten"
    (tokens,) = paddle_backend.text_logprobs(short, [text])
    (full,) = paddle_backend.text_logprobs(tiny_llama, [text])
    assert "".join(t.token for t in tokens) == text
    kept = [t.logprob for t in tokens if t.logprob is not None]
    assert len(tokens) == 10 and len(kept) == 7  # 8 positions: the first kept is unconditioned
    (gen,) = paddle_backend.generate_text(short, [text], GenerationParams(max_new_tokens=3,
                                                                          stop=()))
    assert gen.prompt_tokens == 10 and len(gen.tokens) == 3
    assert full[-1].logprob != pytest.approx(tokens[-1].logprob, abs=1e-6)


def test_generate_text_matches_generate(paddle_backend, tiny_llama) -> None:
    """Raw-text continuation of a prompt's prefix is what `generate` writes for it."""
    builder = Spec().builder(paddle_backend, tiny_llama, task="generation")
    prompts = builder.render(synthetic_examples()[:3])
    params = GenerationParams(max_new_tokens=5, stop=())
    direct = paddle_backend.generate(tiny_llama, prompts, params)
    raw = paddle_backend.generate_text(tiny_llama, [p.prefix_text() for p in prompts], params,
                                       top_k=1)
    for text, gen, prompt in zip(direct, raw, prompts, strict=True):
        assert gen.text.removeprefix(prompt.mask_lead()) == text
        assert all(t.top[0][1] == pytest.approx(t.logprob) for t in gen.tokens)  # greedy


def test_generate_text_cuts_a_stop_inside_a_token(paddle_backend, tiny_llama) -> None:
    params = GenerationParams(max_new_tokens=4, stop=())
    (free,) = paddle_backend.generate_text(tiny_llama, ["Hello"], params)
    word = free.tokens[0].token  # " match" on this model
    assert len(word.strip()) >= 3
    stop = word.strip()[1:]
    (cut,) = paddle_backend.generate_text(tiny_llama, ["Hello"],
                                          GenerationParams(max_new_tokens=4, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text == word[:word.index(stop)] == "".join(t.token for t in cut.tokens)
    assert [t.id for t in cut.tokens] == [free.tokens[0].id]


def test_sampling_is_seeded(paddle_backend, tiny_llama) -> None:
    params = GenerationParams(max_new_tokens=4, temperature=1.0, stop=(), seed=5)
    a = paddle_backend.generate_text(tiny_llama, ["Hello", "Hello"], params, batch_size=2)
    b = paddle_backend.generate_text(tiny_llama, ["Hello", "Hello"], params, batch_size=1)
    assert a == b and a[0].text != a[1].text


def test_a_soft_prompt_leads_raw_text_as_it_leads_prompts(paddle_backend, tiny_llama) -> None:
    builder = _soft_builder(paddle_backend, tiny_llama)
    session = paddle_backend.start_training(tiny_llama, Spec().setup_for(builder))
    session.train_mode(False)
    words = ["good", "absolutely wonderful"]
    prompt = builder.render(synthetic_examples()[:1])[0]
    direct = paddle_backend.score(session.model, [prompt], words).logprob[0]
    prefix = prompt.prefix_text()
    texts = [prefix + prompt.mask_lead() + w for w in words]
    for tokens, expected in zip(paddle_backend.text_logprobs(session.model, texts), direct,
                                strict=True):
        assert tokens[0].logprob is not None  # the soft tokens condition the first one
        echoed = sum(t.logprob for t in tokens if t.offset >= len(prefix))
        assert echoed == pytest.approx(float(expected), abs=1e-4)


# -- search primitives -------------------------------------------------------------------
def _peaky(paddle_backend: Any, kind: str) -> Any:
    """A tiny model with larger random weights (peaked distributions): its loss moves enough
    along a token swap for float32 finite differences to resolve it."""
    from unified_prompt.assets import cache_root
    from unified_prompt.testing.tiny import build_tiny_model

    path = build_tiny_model(kind, cache_root() / "tiny" / f"{kind}-peaky-paddle-tests-v1",  # type: ignore[arg-type]
                            seed=0, initializer_range=0.2)
    return paddle_backend.load_model(str(path))


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_token_gradients_match_finite_differences(paddle_backend, kind: str) -> None:
    """grads[k, j] - grads[k, t] is the loss's derivative along E[j] - E[t] at position k
    (trigger t there), checked by central differences of the session's own loss."""
    model = _peaky(paddle_backend, kind)
    builder = _soft_builder(paddle_backend, model)
    setup = Spec().setup_for(builder)
    items = builder.train_items(synthetic_examples()[:4])
    triggers = {0: paddle_backend.tokenize(model, "the film")[:2]}
    before = {n: p.numpy().copy() for n, p in model.net.named_parameters()}
    grads = paddle_backend.token_gradients(model, items, setup, triggers)[0]
    assert all(p.grad is None for p in model.net.parameters()), "no gradient left behind"
    assert all(np.array_equal(before[n], p.numpy()) for n, p in model.net.named_parameters())

    emb = model.net.get_input_embeddings().weight.numpy().astype(np.float64)
    rows = emb[triggers[0]]
    session = paddle_backend.start_training(model, setup)

    def loss(at: np.ndarray) -> float:
        session.load_trainable_state({"soft.0": at.astype(np.float32)})
        return session.loss(items)

    def slope(direction: np.ndarray, h: float) -> float:
        return (loss(rows + h * direction) - loss(rows - h * direction)) / (2 * h)

    rng = np.random.default_rng(0)
    checked = []
    for k in range(2):
        for j in rng.choice(len(emb), size=3, replace=False):
            direction = np.zeros_like(rows)
            direction[k] = emb[j] - rows[k]
            numeric = slope(direction, 1e-2)
            predicted = grads[k, j] - grads[k, triggers[0][k]]
            checked.append(abs(predicted))
            assert predicted == pytest.approx(numeric, rel=2e-2, abs=2e-5)
    assert max(checked) > 1e-3, "a check that can fail"
    session.close()


def test_token_gradients_reject_mismatched_triggers(paddle_backend, tiny_llama) -> None:
    from unified_prompt.errors import UserInputError

    builder = _soft_builder(paddle_backend, tiny_llama, n=2)
    items = builder.train_items(synthetic_examples()[:2])
    with pytest.raises(UserInputError, match="soft slot 0 holds 2 tokens but 1"):
        paddle_backend.token_gradients(tiny_llama, items, Spec().setup_for(builder), {0: [5]})


def test_vocabulary_covers_the_embedding(paddle_backend, tiny_llama) -> None:
    vocab = paddle_backend.vocabulary(tiny_llama)
    assert len(vocab) == tiny_llama.net.get_input_embeddings().weight.shape[0]
    (great,) = paddle_backend.tokenize(tiny_llama, " great")
    assert vocab[great] == " great"
