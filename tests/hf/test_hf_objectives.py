"""finetune.objective on hf: the torch terms against the core's numpy reference, and a
session's loss against the reference computed from the same model's scores by hand."""

from __future__ import annotations

import pytest
import torch
from unified_prompt_hf.objectives import margin_terms, supcon

from tests import objective_specs as shared


def test_torch_terms_match_numpy() -> None:
    shared.check_terms_match_numpy(
        lambda scores, gold: margin_terms(torch.tensor(scores), torch.tensor(gold), 0.7).numpy(),
        lambda reps, classes: float(supcon(torch.tensor(reps), torch.tensor(classes), 0.3)),
        dtype=float, rtol=1e-12)


@pytest.mark.parametrize("objective", shared.OBJECTIVES, ids=["margin", "contrastive"])
@pytest.mark.parametrize("checkpointing", [False, True], ids=["cached", "naive"])
def test_session_loss_is_the_reference_on_its_own_scores(backend, llama, objective,
                                                         checkpointing) -> None:
    from unified_prompt_hf.scoring import word_logprobs

    spec = shared.objective_spec(objective)
    if checkpointing:
        spec.finetune.gradient_checkpointing = True

    def reference_reps(model, prompts, words):
        reps: list[torch.Tensor] = []
        with torch.no_grad():
            word_logprobs(model, prompts, words, reps=reps)
        return reps[0].double().numpy()

    shared.check_session_loss(backend, llama, objective, spec, reference_reps)


def test_contrastive_refuses_masked_lms(backend, bert) -> None:
    shared.check_contrastive_refused(backend, bert)
