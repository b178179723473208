"""The classification objectives (unified_prompt.objectives) as paddle tensors: the same
arithmetic as the core's numpy reference and the hf backend's torch version."""

from __future__ import annotations

from typing import Any

import numpy as np

from unified_prompt.objectives import ObjectiveSpec
from unified_prompt_paddle.runtime import paddle, to_tensor


def margin_terms(scores: Any, gold: np.ndarray, margin: float) -> Any:
    """(B,) mean over the other labels of max(0, margin - s_gold + s_other)."""
    pd = paddle()
    gold_score = pd.take_along_axis(scores, to_tensor(gold[:, None]), axis=1)
    hinge = pd.clip(margin - gold_score + scores, min=0.0)
    others = np.ones(tuple(scores.shape), dtype=np.float32)
    others[np.arange(len(gold)), gold] = 0.0
    return (hinge * to_tensor(others)).sum(axis=1) / (scores.shape[1] - 1)


def supcon(reps: Any, classes: np.ndarray, temperature: float) -> Any:
    """Supervised contrastive loss over the rows of `reps` (L2-normalised here)."""
    pd = paddle()
    z = pd.nn.functional.normalize(reps.astype("float32"), axis=1)
    sim = pd.matmul(z, z, transpose_y=True) / temperature
    n = len(classes)
    eye = np.eye(n, dtype=bool)
    log_den = pd.logsumexp(sim + to_tensor(np.where(eye, -np.inf, 0.0).astype(np.float32)),
                           axis=1, keepdim=True)
    positive = (classes[:, None] == classes[None, :]) & ~eye
    counts = positive.sum(1)
    has = np.flatnonzero(counts > 0)
    if not len(has):
        return sim.sum() * 0.0
    per_anchor = -((sim - log_den) * to_tensor(positive.astype(np.float32))).sum(axis=1)
    picked = pd.gather(per_anchor, to_tensor(has.astype(np.int64)))
    return (picked / to_tensor(counts[has].astype(np.float32))).mean()


def combine(objective: ObjectiveSpec, ce: Any, margins: Any | None, reps: Any | None,
            classes: np.ndarray) -> Any:
    """The batch loss: ce_weight * mean CE + weight * (mean margin | SupCon)."""
    loss = ce.mean() * objective.ce_weight
    if objective.name == "margin":
        loss = loss + objective.weight * margins.mean()
    elif objective.name == "contrastive":
        loss = loss + objective.weight * supcon(reps, classes, objective.temperature)
    return loss
