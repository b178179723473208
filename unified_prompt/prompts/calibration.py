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
