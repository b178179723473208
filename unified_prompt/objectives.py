"""Training objectives for classification fine-tuning, and their reference arithmetic.

`finetune.objective` chooses what a local classification run minimises:

- `cross_entropy` (the default): softmax cross-entropy over the label scores (the
  verbalizer's log-sum-exp of word log-probs, what prediction reads).
- `margin`: cross-entropy (times `ce_weight`) plus `weight` times a multi-class hinge on the
  same label scores: for each example, the mean over the other labels j of
  max(0, margin - (s_gold - s_j)). It pushes the gold label's log-score at least `margin`
  nats above every other label's, then stops pushing.
- `contrastive`: cross-entropy (times `ce_weight`) plus `weight` times supervised
  contrastive loss (SupCon, Khosla et al. 2020) over the representation the LM head reads
  where the label word goes (a causal LM's last prompt token), L2-normalised, at
  `temperature`. Positives are the other examples of the batch with the same label (and
  the same task in a mixture); anchors without a positive are left out, and a batch with
  none contributes 0.

Batch-level definition (contrastive): SupCon is computed over the examples of one forward
pass, i.e. one micro-batch of `finetune.batch_size` examples, and under N processes each
process's share of it; the step's loss is the share-weighted sum, exactly as for
cross-entropy. So 1 and N processes follow the same trajectory for `cross_entropy` and
`margin` (per-example losses), while `contrastive` sees fewer pairs per process under N.

The numpy functions here are the reference the backends' torch and paddle versions are
tested against; they are not used for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from unified_prompt.strict import Strict

if TYPE_CHECKING:
    import numpy as np

ObjectiveName = Literal["cross_entropy", "margin", "contrastive"]


CONTRASTIVE_CAUSAL_ONLY = ("finetune.objective contrastive reads the last prompt token's hidden "
                           "state of a causal LM; masked LMs are not supported (use margin)")


class ObjectiveSpec(Strict):
    """`finetune.objective`: a name (`objective: margin`) or a mapping with its settings."""

    name: ObjectiveName = "cross_entropy"
    weight: float = Field(1.0, ge=0, description="Weight of the margin or contrastive term.")
    ce_weight: float = Field(1.0, ge=0, description="Weight of cross-entropy beside it "
                             "(0: the margin or contrastive term alone).")
    margin: float = Field(1.0, gt=0, description="margin: the gap in nats the gold label's "
                          "log-score must keep over each other label's.")
    temperature: float = Field(0.1, gt=0, description="contrastive: the SupCon temperature.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _something_to_minimise(self) -> ObjectiveSpec:
        if self.name == "cross_entropy" and self.ce_weight == 0:
            raise ValueError("objective cross_entropy with ce_weight 0 trains nothing")
        if self.name != "cross_entropy" and self.ce_weight == 0 and self.weight == 0:
            raise ValueError(f"objective {self.name}: weight and ce_weight are both 0")
        return self

    @property
    def default(self) -> bool:
        return self.name == "cross_entropy" and self.ce_weight == 1.0


def objective_problem(task: str, method: str, objective: ObjectiveSpec | None) -> str | None:
    """Why `finetune.objective` cannot apply to this spec, or None when it can."""
    if objective is None or objective.default:
        return None
    if task != "classification":
        return (f"finetune.objective {objective.name} trains label scores: it applies to "
                f"task classification only (this spec's task is {task})")
    return None


def by_task(items: Sequence[Any]) -> list[tuple[int, list[int]]]:
    """Positions of a batch's TrainItems grouped by task, tasks in order of first appearance
    (each backend scores one task's items against that task's label words at a time)."""
    groups: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.task, []).append(i)
    return list(groups.items())


#: Added to a label index per task, so SupCon's classes never equate two tasks' labels.
TASK_CLASS_STRIDE = 1_000_000


# -- the reference arithmetic (numpy; the backends compute the same in their framework) --
def cross_entropy(scores: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per-example -log softmax(scores)[gold]; scores (B, L)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    top = s.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(s - top).sum(axis=1))
    return log_z - s[np.arange(len(s)), gold]


def margin_loss(scores: np.ndarray, gold: np.ndarray, margin: float) -> np.ndarray:
    """Per-example mean over the other labels of max(0, margin - s_gold + s_other)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    n_labels = s.shape[1]
    hinge = np.maximum(0.0, margin - s[np.arange(len(s)), gold][:, None] + s)
    hinge[np.arange(len(s)), gold] = 0.0
    return hinge.sum(axis=1) / (n_labels - 1)


def supcon_loss(reps: np.ndarray, classes: np.ndarray, temperature: float) -> float:
    """SupCon over L2-normalised rows of `reps`: the mean over anchors that have a
    positive of -mean_p log(exp(z_a.z_p / t) / sum_{k != a} exp(z_a.z_k / t))."""
    import numpy as np

    z = np.asarray(reps, dtype=np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    sim = z @ z.T / temperature
    n = len(z)
    total, anchors = 0.0, 0
    for a in range(n):
        others = [k for k in range(n) if k != a]
        positives = [k for k in others if classes[k] == classes[a]]
        if not positives:
            continue
        top = sim[a, others].max()
        log_den = top + np.log(np.exp(sim[a, others] - top).sum())
        total += -np.mean([sim[a, p] - log_den for p in positives])
        anchors += 1
    return total / anchors if anchors else 0.0


def objective_loss(objective: ObjectiveSpec, scores: np.ndarray, gold: np.ndarray,
                   reps: np.ndarray | None = None, classes: np.ndarray | None = None) -> float:
    """The whole batch loss a backend must return for these scores (and representations)."""
    import numpy as np

    gold = np.asarray(gold)
    loss = objective.ce_weight * float(cross_entropy(scores, gold).mean())
    if objective.name == "margin":
        loss += objective.weight * float(margin_loss(scores, gold, objective.margin).mean())
    elif objective.name == "contrastive":
        assert reps is not None
        loss += objective.weight * supcon_loss(reps, gold if classes is None else classes,
                                               objective.temperature)
    return loss
