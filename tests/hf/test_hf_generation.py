"""Generation: greedy against a plain loop, stop strings, batch independence, soft prompts
and adapters, masked-LM generation, seeded sampling."""

from __future__ import annotations

import pytest
import torch
from hf_helpers import MASKED_TEMPLATE, TEMPLATE, make_builder, make_setup

from unified_prompt.backend import GenerationParams
from unified_prompt.prompts.template import Template
from unified_prompt.testing.conformance import synthetic_examples


def prompts_for(template: str, n: int = 4):
    t = Template(template)
    return [t.render(e.fields) for e in synthetic_examples()[:n]]


def greedy_reference(model, prompt, n):
    tok, module = model.codec.tokenizer, model.module
    ids = tok(prompt.prefix_text(), add_special_tokens=False)["input_ids"]
    out = []
    for _ in range(n):
        with torch.no_grad():
            nxt = int(module(torch.tensor([ids + out])).logits[0, -1].argmax())
        if nxt == tok.eos_token_id:
            break
        out.append(nxt)
    return tok.decode(out)


def test_greedy_matches_a_plain_loop(backend, llama):
    prompts = prompts_for(TEMPLATE, 3)
    got = backend.generate(llama, prompts, GenerationParams(max_new_tokens=6, stop=()))
    for p, text in zip(prompts, got, strict=True):
        want = greedy_reference(llama, p, 6)
        assert text == (want[1:] if want.startswith(" ") else want)


def test_batch_independent_and_deterministic(backend, llama):
    prompts = prompts_for(TEMPLATE, 4)
    params = GenerationParams(max_new_tokens=8, stop=())
    batched = backend.generate(llama, prompts, params, batch_size=4)
    single = [backend.generate(llama, [p], params, batch_size=1)[0] for p in prompts]
    assert batched == single


def test_stop_strings_cut_the_text(backend, llama):
    prompts = prompts_for(TEMPLATE, 2)
    full = backend.generate(llama, prompts, GenerationParams(max_new_tokens=8, stop=()))
    stop = full[0][2:4]
    assert stop
    cut = backend.generate(llama, prompts[:1], GenerationParams(max_new_tokens=8, stop=(stop,)))
    assert cut[0] == full[0][: full[0].index(stop)]


def test_max_new_tokens(backend, llama):
    text = backend.generate(llama, prompts_for(TEMPLATE, 1),
                            GenerationParams(max_new_tokens=3, stop=()))[0]
    assert len(llama.codec.encode_text(" " + text)) <= 4


def test_sampling_is_seeded(backend, llama):
    prompts = prompts_for(TEMPLATE, 2)
    a = backend.generate(llama, prompts, GenerationParams(8, temperature=1.0, stop=(), seed=4))
    b = backend.generate(llama, prompts, GenerationParams(8, temperature=1.0, stop=(), seed=4))
    assert a == b


@pytest.mark.parametrize("method,settings", [("prompt_tuning", {"num_virtual_tokens": 4}),
                                             ("prefix_tuning", {"num_virtual_tokens": 4}),
                                             ("lora", {"r": 4})])
def test_generation_learns_a_target_with_each_method(backend, peaky_llama, method, settings):
    builder = make_builder(method, task="generation", **settings)
    session = backend.start_training(peaky_llama, make_setup(builder))
    items = [it.__class__(it.prompt, target="the answer")
             for it in builder.train_items(synthetic_examples()[:4])]
    before = session.loss(items)
    for _ in range(50):
        session.forward_backward(items, 1.0)
        session.optimizer_step(0.05, 1.0)
    assert session.loss(items) < before / 2
    out = backend.generate(session.model, [it.prompt for it in items],
                           GenerationParams(max_new_tokens=6, stop=("\n",)))
    assert any(o.startswith("the answer") for o in out), out


def test_masked_lm_generates_by_filling_masks(backend, bert):
    prompts = prompts_for(MASKED_TEMPLATE, 3)
    params = GenerationParams(max_new_tokens=4, stop=())
    out = backend.generate(bert, prompts, params, batch_size=3)
    assert out == [backend.generate(bert, [p], params)[0] for p in prompts]
    tok, module = bert.codec.tokenizer, bert.module
    written: list[int] = []
    base = tok(prompts[0].fill_mask(tok.mask_token))["input_ids"]
    at0 = base.index(tok.mask_token_id)
    for _ in range(4):
        ids = base[:at0] + written + [tok.mask_token_id] + base[at0 + 1:]
        at = at0 + len(written)
        with torch.no_grad():
            nxt = int(module(torch.tensor([ids])).logits[0, at].argmax())
        if nxt in (tok.sep_token_id, tok.cls_token_id, tok.pad_token_id):
            break
        written.append(nxt)
    assert out[0] == tok.decode(written)
