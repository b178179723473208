"""Scoring: shapes, the KV-cache path against the naive path, batch independence, soft
tokens anywhere in the template, masked-LM arithmetic, and numbers against raw torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_helpers import MASKED_TEMPLATE, TEMPLATE
from unified_prompt_hf.scoring import score

from unified_prompt.prompts.segments import Rendered, Soft, Text
from unified_prompt.prompts.template import Template
from unified_prompt.testing.conformance import synthetic_examples

WORDS = ["good", "absolutely wonderful", "bad", "差", "so-so, I suppose"]


def render(template: str, n: int = 6) -> list[Rendered]:
    t = Template(template)
    return [t.render(e.fields) for e in synthetic_examples()[:n]]


def test_scores_match_a_raw_forward(backend, llama):
    prompts = render(TEMPLATE, 3)
    got = backend.score(llama, prompts, WORDS).logprob
    tok, module = llama.codec.tokenizer, llama.module
    for i, p in enumerate(prompts):
        ctx = tok(p.prefix_text(), add_special_tokens=False)["input_ids"]
        for w, word in enumerate(WORDS):
            cont = tok(" " + word, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = module(torch.tensor([ctx + cont])).logits[0]
            lsm = torch.log_softmax(logits, -1)
            want = sum(float(lsm[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
            assert got[i, w] == pytest.approx(want, abs=1e-4)


def test_kv_cache_path_equals_naive_path(backend, llama):
    prompts = render(TEMPLATE)
    cached = backend.score(llama, prompts, WORDS, batch_size=4)
    naive = score(llama, prompts, WORDS, batch_size=4, naive=True)
    np.testing.assert_allclose(cached.logprob, naive.logprob, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(cached.n_tokens, naive.n_tokens)
    assert cached.n_tokens[0].tolist()[1] >= 2 and cached.n_tokens[0].tolist()[4] >= 3


@pytest.mark.parametrize("chunk", [1, 3])
def test_continuation_chunking_does_not_change_scores(backend, llama, chunk):
    prompts = render(TEMPLATE, 4)
    ref = backend.score(llama, prompts, WORDS).logprob
    small = llama.derive(options=llama.options.model_copy(update={"score_chunk": chunk}))
    np.testing.assert_allclose(backend.score(small, prompts, WORDS).logprob, ref, atol=1e-5)


def test_single_token_words_share_one_forward(backend, llama, monkeypatch):
    from unified_prompt_hf import scoring

    calls = []
    real = scoring.run_prompt
    monkeypatch.setattr(scoring, "run_prompt", lambda *a, **k: calls.append(1) or real(*a, **k))
    cont = []
    monkeypatch.setattr(scoring, "run_continuation", lambda *a, **k: cont.append(1))
    prompts = render(TEMPLATE, 5)
    out = backend.score(llama, prompts, ["good", "bad", "fine"], batch_size=8)
    assert len(calls) == 1 and not cont, "one forward for 5 prompts x 3 single-token words"
    assert out.n_tokens.max() == 1


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_scores_do_not_depend_on_batch_companions(backend, llama, bert, kind):
    model = llama if kind == "llama" else bert
    prompts = render(TEMPLATE if kind == "llama" else MASKED_TEMPLATE)
    prompts[2] = Template(TEMPLATE if kind == "llama" else MASKED_TEMPLATE).render(
        {"text": "a very long review " * 20})
    together = backend.score(model, prompts, WORDS, batch_size=6).logprob
    for i, p in enumerate(prompts):
        alone = backend.score(model, [p], WORDS, batch_size=1).logprob[0]
        np.testing.assert_allclose(together[i], alone, atol=1e-5, rtol=0)


def test_masked_scores_are_per_mask_log_probs(backend, bert):
    prompts = render(MASKED_TEMPLATE, 2)
    got = backend.score(bert, prompts, WORDS)
    tok, module = bert.codec.tokenizer, bert.module
    for i, p in enumerate(prompts):
        conts = [tok(" " + w, add_special_tokens=False)["input_ids"] for w in WORDS]
        k = max(len(c) for c in conts)
        text = p.fill_mask(" ".join([tok.mask_token] * k))
        ids = tok(text)["input_ids"]
        masks = [j for j, t in enumerate(ids) if t == tok.mask_token_id]
        with torch.no_grad():
            lsm = torch.log_softmax(module(torch.tensor([ids])).logits[0], -1)
        for w, c in enumerate(conts):
            want = sum(float(lsm[masks[j], t]) for j, t in enumerate(c))
            assert got.logprob[i, w] == pytest.approx(want, abs=1e-4)
            assert got.n_tokens[i, w] == len(c)


def test_soft_tokens_sit_where_the_template_puts_them(backend, llama):
    """A soft slot mid-template: scores equal a raw forward with the vectors spliced in."""
    from unified_prompt_hf.handle import HFModel
    from unified_prompt_hf.methods.common import text_init
    from unified_prompt_hf.methods.soft_adapter import frozen_slot as _frozen_slot
    from unified_prompt_hf.soft import SoftPrompts

    torch.manual_seed(0)
    vecs = {0: torch.randn(3, 32) * 0.05, 1: text_init(llama, "hello there", 2)}
    handle: HFModel = llama.derive(soft=SoftPrompts({k: _frozen_slot(llama, v)
                                                      for k, v in vecs.items()}))
    prompt = Rendered.of([Text("Review: great"), Soft(0, 3), Text(" movie"), Soft(1, 2),
                          Text("\nSentiment:"), ])
    prompt = Template('Review: {text}{soft:3} movie{soft:2}\nSentiment: {mask}').render(
        {"text": "great"})
    got = backend.score(handle, [prompt], ["good", "absolutely wonderful"]).logprob[0]
    tok, module = llama.codec.tokenizer, llama.module
    a = tok("Review: great", add_special_tokens=False)["input_ids"]
    b = tok(" movie", add_special_tokens=False)["input_ids"]
    c = tok("\nSentiment:", add_special_tokens=False)["input_ids"]
    emb = module.get_input_embeddings()
    for w, word in enumerate(["good", "absolutely wonderful"]):
        cont = tok(" " + word, add_special_tokens=False)["input_ids"]
        parts = [emb(torch.tensor(a)), vecs[0], emb(torch.tensor(b)), vecs[1],
                 emb(torch.tensor(c + cont))]
        x = torch.cat(parts)[None]
        with torch.no_grad():
            lsm = torch.log_softmax(module(inputs_embeds=x).logits[0], -1)
        n_ctx = x.shape[1] - len(cont)
        want = sum(float(lsm[n_ctx - 1 + j, t]) for j, t in enumerate(cont))
        assert got[w] == pytest.approx(want, abs=1e-4)
    plain = backend.score(llama, [Template(TEMPLATE).render({"text": "great"})], ["good"])
    assert not np.allclose(plain.logprob[0, 0], got[0])


def test_soft_prompt_without_trained_vectors_is_a_user_error(backend, llama):
    from unified_prompt.errors import UserInputError

    prompt = Template("{soft:4}" + TEMPLATE).render({"text": "fine"})
    with pytest.raises(UserInputError, match="soft"):
        backend.score(llama, [prompt], ["good"])


def test_long_prompts_are_cut_from_the_front(backend, llama):
    short = llama.derive(max_length=24)
    prompt = Template(TEMPLATE).render({"text": "word " * 200})
    out = backend.score(short, [prompt], WORDS)
    assert np.all(np.isfinite(out.logprob))


def test_empty_inputs(backend, llama):
    out = backend.score(llama, [], ["good"])
    assert out.logprob.shape == (0, 1)


def test_top_tokens(backend, llama, bert):
    for model, tpl in ((llama, TEMPLATE), (bert, MASKED_TEMPLATE)):
        top = backend.top_tokens(model, render(tpl, 2), 5)
        assert len(top) == 2 and all(len(t) == 5 for t in top)
        lps = [lp for _, lp in top[0]]
        assert lps == sorted(lps, reverse=True) and all(lp <= 0 for lp in lps)
