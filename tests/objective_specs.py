"""The spec, training setup and checks the backends' objective tests share (hf and paddle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from unified_prompt.backend import TrainSetup
from unified_prompt.config import ExperimentSpec
from unified_prompt.objectives import ObjectiveSpec, margin_loss, objective_loss, supcon_loss
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.conformance import synthetic_examples

#: Each objective with settings away from its defaults, so a setting that is ignored shows.
OBJECTIVES = [{"name": "margin", "margin": 3.0, "weight": 0.7, "ce_weight": 0.4},
              {"name": "contrastive", "temperature": 0.25, "weight": 2.0}]


def objective_spec(objective: dict, template: str = "Review: {text}\nSentiment: {mask}"
                   ) -> ExperimentSpec:
    """LoRA with `objective`, label words with several tokens and a Chinese one."""
    return ExperimentSpec.model_validate({
        "data": {"dataset": "rotten_tomatoes"},
        "prompt": {"template": template,
                   "verbalizer": {"positive": ["good", "absolutely wonderful"],
                                  "negative": ["bad", "差"]}},
        "finetune": {"method": "lora", "r": 2, "objective": objective}})


def objective_setup(builder: PromptBuilder) -> TrainSetup:
    v = builder.verbalizer
    assert v is not None
    return TrainSetup(method=builder.spec.finetune, task="classification", seed=3,
                      words=v.flat_words, word_label=v.word_label, n_labels=len(v.labels))


def check_terms_match_numpy(margin_terms: Callable[[np.ndarray, np.ndarray], np.ndarray],
                            supcon: Callable[[np.ndarray, np.ndarray], float],
                            dtype: type, rtol: float) -> None:
    """A backend's margin terms (margin 0.7) and SupCon (temperature 0.3), as numpy in and
    out, against the core's numpy reference on random scores and representations."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 3)).astype(dtype)
    gold = rng.integers(0, 3, size=7)
    np.testing.assert_allclose(margin_terms(scores, gold), margin_loss(scores, gold, 0.7),
                               rtol=rtol)
    reps = rng.normal(size=(7, 5)).astype(dtype)
    classes = np.array([0, 1, 0, 2, 1, 0, 3])  # 2 and 3 once: anchors without positives
    assert supcon(reps, classes) == pytest.approx(supcon_loss(reps, classes, 0.3),
                                                  rel=max(rtol, 1e-6))
    assert supcon(reps[:3], np.array([0, 1, 2])) == 0.0  # no positive pair at all


def check_session_loss(backend: Any, model: Any, objective: dict, spec: ExperimentSpec,
                       reference_reps: Callable[[Any, list, list[str]], np.ndarray]) -> None:
    """A training session's loss is the core's reference objective computed from the same
    model's own label scores and (`reference_reps(session model, prompts, words)`, without
    gradients) the representations SupCon reads; and it differs from plain cross-entropy."""
    builder = PromptBuilder(spec)
    items = builder.train_items(synthetic_examples()[:6])
    session = backend.start_training(model, objective_setup(builder))
    loss = session.loss(items)
    prompts = [it.prompt for it in items]
    words = builder.verbalizer.flat_words
    scores = builder.verbalizer.label_scores(backend.score(session.model, prompts, words))
    reps = reference_reps(session.model, prompts, words)
    gold = np.array([it.label for it in items])
    expected = objective_loss(ObjectiveSpec(**objective), scores, gold, reps)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert abs(loss - objective_loss(ObjectiveSpec(), scores, gold)) > 1e-3  # it changed the number
    session.close()


def check_contrastive_refused(backend: Any, masked_lm: Any) -> None:
    """A masked LM has no last-prompt-token representation: contrastive is refused at start."""
    from unified_prompt.errors import CapabilityError

    builder = PromptBuilder(objective_spec({"name": "contrastive"}, "{text} It was {mask}."))
    with pytest.raises(CapabilityError, match=r"finetune\.objective contrastive"):
        backend.start_training(masked_lm, objective_setup(builder))
