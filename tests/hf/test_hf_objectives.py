"""finetune.objective on hf: the torch terms against the core's numpy reference, and a
session's loss against the reference computed from the same model's scores by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from unified_prompt_hf.objectives import margin_terms, supcon

from tests.objective_specs import OBJECTIVES, objective_setup, objective_spec
from unified_prompt.errors import CapabilityError
from unified_prompt.objectives import ObjectiveSpec, margin_loss, objective_loss, supcon_loss
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import synthetic_examples


def test_torch_terms_match_numpy() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 3))
    gold = rng.integers(0, 3, size=7)
    got = margin_terms(torch.tensor(scores), torch.tensor(gold), 0.7).numpy()
    np.testing.assert_allclose(got, margin_loss(scores, gold, 0.7), rtol=1e-12)
    reps = rng.normal(size=(7, 5))
    classes = np.array([0, 1, 0, 2, 1, 0, 3])  # 2 and 3 once: anchors without positives
    got = float(supcon(torch.tensor(reps), torch.tensor(classes), 0.3))
    assert got == pytest.approx(supcon_loss(reps, classes, 0.3), rel=1e-6)


@pytest.mark.parametrize("objective", OBJECTIVES, ids=["margin", "contrastive"])
@pytest.mark.parametrize("checkpointing", [False, True], ids=["cached", "naive"])
def test_session_loss_is_the_reference_on_its_own_scores(backend, llama, objective,
                                                         checkpointing) -> None:
    from unified_prompt_hf.scoring import word_logprobs

    spec = objective_spec(objective)
    if checkpointing:
        spec.finetune.gradient_checkpointing = True
    builder = PromptBuilder(spec)
    items = builder.train_items(synthetic_examples()[:6])
    session = backend.start_training(llama, objective_setup(builder))
    loss = session.loss(items)
    prompts = [it.prompt for it in items]
    words = builder.verbalizer.flat_words
    scores = builder.verbalizer.label_scores(backend.score(session.model, prompts, words))
    reps: list[torch.Tensor] = []
    with torch.no_grad():
        word_logprobs(session.model, prompts, words, reps=reps)
    gold = np.array([it.label for it in items])
    expected = objective_loss(ObjectiveSpec(**objective), scores, gold,
                              reps[0].double().numpy())
    assert loss == pytest.approx(expected, rel=1e-5)
    plain = objective_loss(ObjectiveSpec(), scores, gold)
    assert abs(loss - plain) > 1e-3  # the objective changed the number
    session.close()


def test_contrastive_refuses_masked_lms(backend, bert) -> None:
    builder = PromptBuilder(objective_spec({"name": "contrastive"}, "{text} It was {mask}."))
    with pytest.raises(CapabilityError, match=r"finetune\.objective contrastive"):
        backend.start_training(bert, objective_setup(builder))
