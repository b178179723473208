"""Contextual and batch calibration of label scores (Zhao et al., 2021; Zhou et al., 2024).

A small LM prefers some label words whatever the input; dividing each label's probability
by the probability it gets on a content-free input (contextual) or on average over the
evaluation inputs (batch) removes that prior.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unified_prompt.prompts.verbalizer import log_softmax

if TYPE_CHECKING:
    import numpy as np


def label_prior(reference_scores: np.ndarray) -> np.ndarray:
    """Mean label distribution over reference inputs, as log-probabilities (labels,)."""
    import numpy as np

    probs = np.exp(log_softmax(np.asarray(reference_scores, dtype=np.float64)))
    return np.log(np.clip(probs.mean(axis=0), 1e-12, None))


def calibrate(label_scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Calibrated label log-probabilities: normalise, divide by the prior, renormalise."""
    import numpy as np

    return log_softmax(log_softmax(np.asarray(label_scores, dtype=np.float64)) - prior)


def calibrated(label_scores: np.ndarray, method: str,
               reference: np.ndarray | None = None) -> np.ndarray:
    """Label log-probabilities under prompt.calibration.method: `contextual` divides by the
    prior on `reference` (the content-free inputs' label scores), `batch` by the prior over
    `label_scores` themselves, anything else (or contextual without a reference) only
    normalises."""
    if method == "contextual" and reference is not None:
        return calibrate(label_scores, label_prior(reference))
    if method == "batch":
        return calibrate(label_scores, label_prior(label_scores))
    return log_softmax(label_scores)
