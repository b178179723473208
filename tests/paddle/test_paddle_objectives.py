"""finetune.objective on paddle: the paddle terms against the core's numpy reference, and a
session's loss against the reference computed from the same model's scores by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tests.objective_specs import OBJECTIVES, objective_setup, objective_spec
from unified_prompt.errors import CapabilityError
from unified_prompt.objectives import ObjectiveSpec, margin_loss, objective_loss, supcon_loss
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import synthetic_examples


def test_paddle_terms_match_numpy() -> None:
    from unified_prompt_paddle.objectives import margin_terms, supcon
    from unified_prompt_paddle.runtime import to_tensor

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 3)).astype(np.float32)
    gold = rng.integers(0, 3, size=7)
    got = margin_terms(to_tensor(scores), gold, 0.7).numpy()
    np.testing.assert_allclose(got, margin_loss(scores, gold, 0.7), rtol=1e-5)
    reps = rng.normal(size=(7, 5)).astype(np.float32)
    classes = np.array([0, 1, 0, 2, 1, 0, 3])
    got = float(supcon(to_tensor(reps), classes, 0.3).numpy())
    assert got == pytest.approx(supcon_loss(reps, classes, 0.3), rel=1e-5)
    assert float(supcon(to_tensor(reps[:3]), np.array([0, 1, 2]), 0.3).numpy()) == 0.0


@pytest.mark.parametrize("objective", OBJECTIVES, ids=["margin", "contrastive"])
def test_session_loss_is_the_reference_on_its_own_scores(paddle_backend, tiny_llama,
                                                         objective) -> None:
    from unified_prompt_paddle.runtime import paddle
    from unified_prompt_paddle.scoring import word_ids, word_logprobs

    builder = PromptBuilder(objective_spec(objective))
    items = builder.train_items(synthetic_examples()[:6])
    session = paddle_backend.start_training(tiny_llama, objective_setup(builder))
    loss = session.loss(items)
    prompts = [it.prompt for it in items]
    words = builder.verbalizer.flat_words
    scores = builder.verbalizer.label_scores(paddle_backend.score(session.model, prompts, words))
    reps: list = []
    with paddle().no_grad():
        word_logprobs(session.model, prompts, word_ids(session.model, prompts, words), reps)
    gold = np.array([it.label for it in items])
    expected = objective_loss(ObjectiveSpec(**objective), scores, gold, reps[0].numpy())
    assert loss == pytest.approx(expected, rel=1e-5)
    assert abs(loss - objective_loss(ObjectiveSpec(), scores, gold)) > 1e-3
    session.close()


def test_contrastive_refuses_masked_lms(paddle_backend, tiny_bert) -> None:
    builder = PromptBuilder(objective_spec({"name": "contrastive"}, "{text} It was {mask}."))
    with pytest.raises(CapabilityError, match=r"finetune\.objective contrastive"):
        paddle_backend.start_training(tiny_bert, objective_setup(builder))
