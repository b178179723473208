"""The paddle backend's T5 and BART against plain transformers (+ peft) on the same tiny
folders.

The torch side is computed here with transformers directly (not through the hf backend):
the same encoder ids (T5: `<extra_id_0>` at the mask, `</s>` at the end; BART: `<mask>`
inside `<s> ... </s>`), the decoder fed the same lead (T5: `<pad> <extra_id_0>`, BART:
`</s> <s>`) and then the word; scores within 1e-4, greedy outputs
identical, LoRA and prompt-tuning losses from one state within 1e-5 relative, and a LoRA
adapter converted to PEFT's format loads into peft and scores the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unified_prompt.backend import GenerationParams
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.tiny import tiny_model

SOFT_TEMPLATE = "{soft:3} Review: {text}\nSentiment: {mask}"


class Spec(BackendConformance):
    backend_name = "paddle"


@pytest.fixture(scope="module", params=["t5", "bart"])
def pair(request, backends):
    import torch
    from transformers import AutoModelForSeq2SeqLM

    folder = tiny_model(request.param)
    net = AutoModelForSeq2SeqLM.from_pretrained(str(folder), dtype=torch.float32)
    net.generation_config.forced_eos_token_id = None  # plain greedy: nothing forced at the end
    net.eval()
    return net, backends[1].load_model(str(folder))


def _builder(model, method: str = "none", template: str | None = None, task: str =
             "classification", **settings: Any) -> PromptBuilder:
    from unified_prompt.registry import create_backend

    spec = Spec().spec(create_backend("paddle"), model, method, task, **settings)
    if template is not None:
        data = spec.model_dump(mode="json", exclude_none=True)
        data["prompt"]["template"] = template
        spec = ExperimentSpec.model_validate(data)
    return PromptBuilder(spec, synthetic_examples())


def _torch_word_logprobs(net, model, prompts, words, soft: np.ndarray | None = None
                         ) -> np.ndarray:
    """(prompts, words) summed log-probs from transformers, one example at a time."""
    import torch
    from unified_prompt_paddle.seq2seq import encoder_inputs, layout

    lay = layout(model)
    out = np.zeros((len(prompts), len(words)))
    for i, (prompt, enc) in enumerate(zip(prompts, encoder_inputs(model, prompts),
                                          strict=True)):
        ids = torch.tensor([enc.ids])
        embeds = net.get_input_embeddings()(ids)
        if enc.soft:
            assert soft is not None
            for k, (_, pos) in enumerate(enc.soft):
                embeds[0, pos] = torch.from_numpy(soft[k])
        for j, word in enumerate(words):
            wid = model.tokenizer.encode_text(prompt.mask_lead() + word)
            prefix = lay.prefix(enc)
            dec = torch.tensor([prefix + wid[:-1]])
            logits = net(inputs_embeds=embeds, decoder_input_ids=dec).logits[0]
            logp = torch.log_softmax(logits, -1)
            start = len(prefix) - 1
            out[i, j] = float(sum(logp[start + k, t] for k, t in enumerate(wid)))
    return out


def _classification_loss(scores: np.ndarray, builder: PromptBuilder, items) -> float:
    index = np.asarray(builder.verbalizer.word_label)
    labels = np.stack([np.logaddexp.reduce(scores[:, index == j], axis=1)
                       for j in range(len(builder.verbalizer.labels))], axis=1)
    log_p = labels - np.logaddexp.reduce(labels, axis=1, keepdims=True)
    return float(-np.mean([log_p[k, item.label] for k, item in enumerate(items)]))


def test_label_scores_agree_with_transformers(backends, pair) -> None:
    import torch

    net, model = pair
    builder = _builder(model)
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    ours = backends[1].score(model, prompts, words, batch_size=3).logprob
    with torch.no_grad():
        theirs = _torch_word_logprobs(net, model, prompts, words)
    assert np.abs(ours - theirs).max() <= 1e-4


def test_greedy_generation_is_identical(backends, pair) -> None:
    import torch
    from unified_prompt_paddle.seq2seq import encoder_inputs, layout

    net, model = pair
    builder = _builder(model, task="generation")
    prompts = builder.render(synthetic_examples()[:4])
    params = GenerationParams(max_new_tokens=8)
    ours = backends[1].generate(model, prompts, params)
    lay = layout(model)
    for prompt, enc, text in zip(prompts, encoder_inputs(model, prompts), ours, strict=True):
        prefix = lay.prefix(enc)
        with torch.no_grad():
            got = net.generate(input_ids=torch.tensor([enc.ids]),
                               decoder_input_ids=torch.tensor([prefix]), max_new_tokens=8,
                               do_sample=False, num_beams=1)[0].tolist()[len(prefix):]
        ends = [k for k, t in enumerate(got) if t in lay.enders(prefix)]
        got = got[:ends[0]] if ends else got
        assert len(got) > 0
        assert text == model.tokenizer.decode(got).strip() or \
            text == model.tokenizer.decode(got), (prompt, text)


def _assert_learns(session, items, first: float, lr: float, steps: int = 6) -> None:
    """After the first forward/backward (loss `first`), `steps` more steps lower the loss."""
    last = first
    for _ in range(steps):
        session.optimizer_step(lr, 1.0)
        last = session.forward_backward(items, 1.0)
    assert last < first


def _random_state(session, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(v.shape) * 0.1).astype(np.float32)
            for k, v in session.trainable_state().items()}


def test_lora_loss_matches_peft_from_the_same_state(backends, pair) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    net, model = pair
    builder = _builder(model, "lora", r=4, alpha=8)
    session = backends[1].start_training(model, Spec().setup_for(builder))
    state = _random_state(session)
    session.load_trainable_state(state)
    items = builder.train_items(synthetic_examples())
    ours = session.forward_backward(items, 1.0)
    targets = sorted({k.split(".", 1)[1].rsplit(".", 1)[0] for k in state})
    import copy

    peft_net = get_peft_model(copy.deepcopy(net), LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    named = dict(peft_net.named_parameters())
    with torch.no_grad():
        for key, value in state.items():
            module, part = key[len("lora."):].rsplit(".", 1)
            named[f"base_model.model.{module}.lora_{part}.default.weight"].copy_(
                torch.from_numpy(value))
    peft_net.eval()
    with torch.no_grad():
        scores = _torch_word_logprobs(peft_net, model, [i.prompt for i in items],
                                      builder.verbalizer.flat_words)
    theirs = _classification_loss(scores, builder, items)
    assert ours == pytest.approx(theirs, rel=1e-5)
    _assert_learns(session, items, ours, lr=0.01)


def test_prompt_tuning_loss_matches_transformers(backends, pair) -> None:
    import torch

    net, model = pair
    builder = _builder(model, "prompt_tuning", template=SOFT_TEMPLATE)
    session = backends[1].start_training(model, Spec().setup_for(builder))
    items = builder.train_items(synthetic_examples())
    ours = session.forward_backward(items, 1.0)
    soft = session.trainable_state()["soft.0"]
    with torch.no_grad():
        scores = _torch_word_logprobs(net, model, [i.prompt for i in items],
                                      builder.verbalizer.flat_words, soft=soft)
    assert ours == pytest.approx(_classification_loss(scores, builder, items), rel=1e-5)
    _assert_learns(session, items, ours, lr=0.05)


def test_generation_loss_matches_transformers(backends, pair) -> None:
    import torch
    from unified_prompt_paddle.seq2seq import encoder_inputs, layout

    net, model = pair
    builder = _builder(model, "full", task="generation")
    session = backends[1].start_training(model, Spec().setup_for(builder))
    examples = [Example(f"g{i}", {"text": t}, target="the answer")
                for i, t in enumerate(["a film", "a dull mess", "I loved it"])]
    items = builder.train_items(examples)
    ours = session.forward_backward(items, 1.0)
    lay = layout(model)
    per = []
    with torch.no_grad():
        for item, enc in zip(items, encoder_inputs(model, [i.prompt for i in items]),
                             strict=True):
            target = model.tokenizer.encode_text(item.prompt.mask_lead() + item.target)
            labels = [*target, model.tokenizer.special.eos]
            prefix = lay.prefix(enc)
            dec = torch.tensor([prefix + labels[:-1]])
            logp = torch.log_softmax(net(input_ids=torch.tensor([enc.ids]),
                                         decoder_input_ids=dec).logits[0], -1)
            start = len(prefix) - 1
            per.append(-float(sum(logp[start + k, t] for k, t in enumerate(labels)))
                       / len(labels))
    assert ours == pytest.approx(float(np.mean(per)), rel=1e-5)


def test_converted_lora_adapter_loads_in_peft(backends, pair, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from unified_prompt_paddle.convert import convert_adapter

    net, model = pair
    builder = _builder(model, "lora", r=4, alpha=8)
    session = backends[1].start_training(model, Spec().setup_for(builder))
    session.load_trainable_state(_random_state(session, seed=1))
    session.train_mode(False)
    session.save_adapter(tmp_path / "paddle")
    convert_adapter(tmp_path / "paddle", tmp_path / "hf", "hf", model=model.folder)
    prompts = builder.render(synthetic_examples()[:4])
    words = builder.verbalizer.flat_words
    ours = backends[1].score(session.model, prompts, words).logprob
    import copy

    peft_net = PeftModel.from_pretrained(copy.deepcopy(net), str(tmp_path / "hf"))
    peft_net.eval()
    with torch.no_grad():
        theirs = _torch_word_logprobs(peft_net, model, prompts, words)
    assert np.abs(ours - theirs).max() <= 1e-4
    back = backends[1].load_adapter(model, tmp_path / "hf")
    np.testing.assert_allclose(backends[1].score(back, prompts, words).logprob, ours,
                               atol=1e-6)


# -- against the hf backend (runs once the hf backend declares encoder-decoder models) -------
@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_paddle_agrees_with_the_hf_backend(backends, kind) -> None:
    """Same scores, top tokens, greedy text, trainable names and first losses as the hf
    backend's own encoder-decoder path (not only as raw transformers)."""
    from unified_prompt.backend import ModelKind

    hf, pd = backends
    if ModelKind.SEQ2SEQ not in hf.capabilities.model_kinds:
        pytest.skip("this hf backend has no encoder-decoder support")
    ref = str(tiny_model(kind))
    mh, mp = hf.load_model(ref), pd.load_model(ref)
    builder = _builder(mp)
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    a, b = hf.score(mh, prompts, words), pd.score(mp, prompts, words)
    np.testing.assert_array_equal(a.n_tokens, b.n_tokens)
    assert np.abs(a.logprob - b.logprob).max() <= 1e-4
    assert [[t for t, _ in row] for row in hf.top_tokens(mh, prompts[:3], 3)] == \
        [[t for t, _ in row] for row in pd.top_tokens(mp, prompts[:3], 3)]
    gen = _builder(mp, task="generation").render(synthetic_examples()[:4])
    params = GenerationParams(max_new_tokens=6)
    assert hf.generate(mh, gen, params) == pd.generate(mp, gen, params)
    assert hf.model_info(mh).total_params == pd.model_info(mp).total_params
    for method in ("lora", "prompt_tuning"):
        template = SOFT_TEMPLATE if method == "prompt_tuning" else None
        spec_builder = _builder(mp, method, template=template)
        setup = Spec().setup_for(spec_builder)
        sa, sb = hf.start_training(mh, setup), pd.start_training(mp, setup)
        start = sa.trainable_state()
        assert start.keys() == sb.trainable_state().keys()
        rng = np.random.default_rng(0)
        state = {k: (v + rng.standard_normal(v.shape) * 0.1).astype(np.float32)
                 for k, v in start.items()}
        sa.load_trainable_state(state)
        sb.load_trainable_state(state)
        items = spec_builder.train_items(synthetic_examples())
        assert sa.forward_backward(items, 1.0) == pytest.approx(sb.forward_backward(items, 1.0),
                                                                rel=1e-5)
        assert sa.optimizer_step(0.01, 1.0) == pytest.approx(sb.optimizer_step(0.01, 1.0),
                                                             rel=1e-4)


@pytest.mark.parametrize("kind", ["t5", "bart"])
@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_converted_adapters_score_the_same_on_the_hf_backend(backends, kind, method,
                                                             tmp_path: Path) -> None:
    """`convert` both ways between the backends' seq2seq adapters keeps the scores."""
    from unified_prompt_paddle.convert import convert_adapter

    from unified_prompt.backend import ModelKind

    hf, pd = backends
    if ModelKind.SEQ2SEQ not in hf.capabilities.model_kinds:
        pytest.skip("this hf backend has no encoder-decoder support")
    ref = tiny_model(kind)
    models = {hf: hf.load_model(str(ref)), pd: pd.load_model(str(ref))}
    builder = _builder(models[pd], method,
                       template=SOFT_TEMPLATE if method == "prompt_tuning" else None)
    prompts = builder.render(synthetic_examples())
    words = builder.verbalizer.flat_words
    for src, dst, to in ((pd, hf, "hf"), (hf, pd, "paddle")):
        session = src.start_training(models[src], Spec().setup_for(builder))
        session.load_trainable_state(_random_state(session))
        session.train_mode(False)
        session.save_adapter(tmp_path / f"{to}-src")
        convert_adapter(tmp_path / f"{to}-src", tmp_path / f"{to}-dst", to, model=ref)
        loaded = dst.load_adapter(models[dst], tmp_path / f"{to}-dst")
        ours = src.score(session.model, prompts, words).logprob
        assert np.abs(dst.score(loaded, prompts, words).logprob - ours).max() <= 1e-4
