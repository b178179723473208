"""finetune.objective on paddle: the paddle terms against the core's numpy reference, and a
session's loss against the reference computed from the same model's scores by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tests import objective_specs as shared


def test_paddle_terms_match_numpy() -> None:
    from unified_prompt_paddle.objectives import margin_terms, supcon
    from unified_prompt_paddle.runtime import to_tensor

    shared.check_terms_match_numpy(
        lambda scores, gold: margin_terms(to_tensor(scores), gold, 0.7).numpy(),
        lambda reps, classes: float(supcon(to_tensor(reps), classes, 0.3).numpy()),
        dtype=np.float32, rtol=1e-5)


@pytest.mark.parametrize("objective", shared.OBJECTIVES, ids=["margin", "contrastive"])
def test_session_loss_is_the_reference_on_its_own_scores(paddle_backend, tiny_llama,
                                                         objective) -> None:
    from unified_prompt_paddle.runtime import paddle
    from unified_prompt_paddle.scoring import word_ids, word_logprobs

    def reference_reps(model, prompts, words):
        reps: list = []
        with paddle().no_grad():
            word_logprobs(model, prompts, word_ids(model, prompts, words), reps)
        return reps[0].numpy()

    shared.check_session_loss(paddle_backend, tiny_llama, objective,
                              shared.objective_spec(objective), reference_reps)


def test_contrastive_refuses_masked_lms(paddle_backend, tiny_bert) -> None:
    shared.check_contrastive_refused(paddle_backend, tiny_bert)
