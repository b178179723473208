"""The one mapping from run events to tracked scalars (tag, value, step).

    step                 -> train/loss, train/lr, train/grad_norm   at the step
    eval (split dev)     -> dev/<metric>                            at the step
    eval (final, split)  -> <split>/<metric>                        at the last step trained (0 without)
"""

from __future__ import annotations

from typing import Any

Scalar = tuple[str, float, int]


class ScalarStream:
    """Turns events into scalars; remembers the last step for the final evaluation."""

    def __init__(self) -> None:
        self.last_step = 0

    def scalars(self, event: dict[str, Any]) -> list[Scalar]:
        kind = event.get("type")
        step = event.get("step")
        if kind == "step" and step is not None:
            self.last_step = int(step)
            return [(f"train/{k}", float(event[k]), int(step))
                    for k in ("loss", "lr", "grad_norm") if event.get(k) is not None]
        if kind == "eval" and isinstance(event.get("metrics"), dict):
            split = event.get("split") or "eval"
            at = int(step) if step is not None else self.last_step
            return [(f"{split}/{k}", float(v), at) for k, v in event["metrics"].items()
                    if isinstance(v, (int, float))]
        return []
