"""The classification objectives (unified_prompt.objectives) as torch tensors.

Each function returns what the core's numpy reference computes for the same numbers:
per-example terms stay per example (so mixed-task batches concatenate them), the
contrastive term is one number for the whole forward pass.
"""

from __future__ import annotations

import torch

from unified_prompt.objectives import ObjectiveSpec


def margin_terms(scores: torch.Tensor, gold: torch.Tensor, margin: float) -> torch.Tensor:
    """(B,) mean over the other labels of max(0, margin - s_gold + s_other)."""
    gold_score = scores.gather(1, gold[:, None])
    hinge = torch.clamp(margin - gold_score + scores, min=0.0)
    others = torch.ones_like(hinge).scatter(1, gold[:, None], 0.0)
    return (hinge * others).sum(1) / (scores.shape[1] - 1)


def supcon(reps: torch.Tensor, classes: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss over the rows of `reps` (L2-normalised here)."""
    z = torch.nn.functional.normalize(reps.float(), dim=1)
    sim = z @ z.T / temperature
    n = sim.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    log_den = torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    positive = (classes[:, None] == classes[None, :]) & ~eye
    counts = positive.sum(1)
    has = counts > 0
    if not bool(has.any()):
        return sim.sum() * 0.0  # no pair of one class in this batch: nothing to pull together
    per_anchor = -((sim - log_den) * positive).sum(1)[has] / counts[has]
    return per_anchor.mean()


def combine(objective: ObjectiveSpec, ce: torch.Tensor, margins: torch.Tensor | None,
            reps: torch.Tensor | None, classes: torch.Tensor) -> torch.Tensor:
    """The batch loss: ce_weight * mean CE + weight * (mean margin | SupCon)."""
    loss = ce.mean() * objective.ce_weight
    if objective.name == "margin":
        assert margins is not None
        loss = loss + objective.weight * margins.mean()
    elif objective.name == "contrastive":
        assert reps is not None
        loss = loss + objective.weight * supcon(reps, classes, objective.temperature)
    return loss
