"""prompt.chat and multi-turn chat data give the same numbers on hf and paddle: the tiny
Llama carries SmolLM2's tokenizer and chat template, so the same chat prompts, greedy
generations, label scores after the assistant header, and assistant-turn training losses."""

from __future__ import annotations

import numpy as np
import pytest
from unified_prompt_paddle.tiny import tiny_model  # installed: conftest skips otherwise

from unified_prompt.backend import GenerationParams
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples

CONVERSATION = Example("c1", {"text": "and the acting?"}, target="great acting", meta={
    "messages": [{"role": "user", "content": "the film was a delight"},
                 {"role": "assistant", "content": "great fun"},
                 {"role": "user", "content": "and the acting?"},
                 {"role": "assistant", "content": "great acting"}]})


class Spec(BackendConformance):
    backend_name = "hf"


@pytest.fixture(scope="module")
def llamas(backends):
    hf, pd = backends
    ref = str(tiny_model("llama"))
    return hf.load_model(ref), pd.load_model(ref)


def _builders(backends, llamas, task: str, method: str = "none", **settings):
    data = Spec().spec(backends[0], llamas[0], method, task, **settings) \
        .model_dump(mode="json", exclude_none=True)
    data["prompt"] |= {"chat": True, "system": "Answer in a few words."}
    spec = ExperimentSpec.model_validate(data)
    out = []
    for backend, model in zip(backends, llamas, strict=True):
        builder = PromptBuilder(spec, synthetic_examples())
        builder.use_model(backend, model)
        out.append(builder)
    return out


def test_chat_prompts_end_at_the_assistant_header(backends, llamas) -> None:
    a, b = _builders(backends, llamas, "generation")
    pa, pb = a.render(synthetic_examples()[:3]), b.render(synthetic_examples()[:3])
    assert [p.text() for p in pa] == [p.text() for p in pb]
    assert pa[0].text().startswith("<|im_start|>system\nAnswer in a few words.<|im_end|>")
    assert pa[0].text().endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_chat_generation_agrees(backends, llamas) -> None:
    hf, pd = backends
    a, b = _builders(backends, llamas, "generation")
    params = GenerationParams(max_new_tokens=6, stop=())
    ga = hf.generate(llamas[0], a.render(synthetic_examples()[:4]), params)
    gb = pd.generate(llamas[1], b.render(synthetic_examples()[:4]), params)
    assert ga == gb and any(ga)


def test_chat_label_scores_agree(backends, llamas) -> None:
    hf, pd = backends
    a, b = _builders(backends, llamas, "classification")
    words = a.verbalizer.flat_words
    sa = hf.score(llamas[0], a.render(synthetic_examples()), words).logprob
    sb = pd.score(llamas[1], b.render(synthetic_examples()), words).logprob
    assert np.abs(sa - sb).max() <= 1e-4
    plain = hf.score(llamas[0], PromptBuilder(a.spec).render(synthetic_examples()), words)
    assert np.abs(sa - plain.logprob).max() > 1e-3  # the chat template changed the context


def test_conversation_loss_agrees_on_assistant_turns(backends, llamas) -> None:
    hf, pd = backends
    a, b = _builders(backends, llamas, "generation", "lora")
    items_a, items_b = a.train_items([CONVERSATION]), b.train_items([CONVERSATION])
    assert [(i.prompt.text(), i.target) for i in items_a] == \
        [(i.prompt.text(), i.target) for i in items_b]
    assert [i.target for i in items_a] == ["great fun", "great acting"]
    setup = Spec().setup_for(a)
    sa, sb = hf.start_training(llamas[0], setup), pd.start_training(llamas[1], setup)
    rng = np.random.default_rng(4)
    state = {k: (rng.standard_normal(v.shape) * 0.1).astype(np.float32)
             for k, v in sa.trainable_state().items()}
    sa.load_trainable_state(state)
    sb.load_trainable_state(state)
    for _ in range(2):
        assert sa.forward_backward(items_a) == pytest.approx(sb.forward_backward(items_b),
                                                             rel=1e-5)
        sa.optimizer_step(0.01, 1.0)
        sb.optimizer_step(0.01, 1.0)
    assert sa.loss(items_a) == pytest.approx(sb.loss(items_b), rel=1e-5)
