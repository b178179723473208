"""Real local fine-tuning for a hosted-style job, through the core.

Chat JSONL becomes TrainItems as `unified-prompt run` makes them from the same conversations
(unified_prompt.data.conversations.training_turns): one per assistant turn with weight 1
(the default), its prompt the backend's own chat template applied to the turns before it,
its target that turn; weight 0 turns are context only. The core's Trainer drives
`backend.start_training(model, TrainSetup(task="generation", ...))`: the same loop, batches
and learning-rate schedule a local run uses. DPO rows are approximated by supervised
training on the preferred answer (the local backends have no preference loss); the job
says so in a warning event.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from unified_prompt.backend import TrainItem
from unified_prompt.data.conversations import MESSAGES, conversation_example, training_turns
from unified_prompt.methods import METHODS, TrainSpec
from unified_prompt.prompts.segments import Mask, Rendered, Soft, Text
from unified_prompt_openai.api_defaults import AUTO_EPOCHS

SOFT_TOKENS = 8  # virtual tokens a soft-prompt job trains


@dataclass(frozen=True)
class ChatRow:
    messages: list[dict[str, str]]
    target: str


def parse_rows(lines: Iterable[str], kind: str, source: str = "training file") -> list[ChatRow]:
    """The training items of a JSONL the core's rules have already validated: a DPO row's
    preferred answer; each trained assistant turn of a supervised conversation."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        if kind == "dpo":
            rows.append(ChatRow(list(obj["input"]["messages"]),
                                obj["preferred_output"][0]["content"]))
            continue
        example = conversation_example(obj, MESSAGES, source, lineno, str(lineno))
        rows += [ChatRow([{"role": m["role"], "content": m["content"]} for m in before], reply)
                 for before, reply in training_turns(example)]
    return rows


def train_items(render_chat: Any, rows: list[ChatRow], soft_tokens: int = 0) -> list[TrainItem]:
    head = [Soft(0, soft_tokens)] if soft_tokens else []
    return [TrainItem(Rendered.of([*head, Text(render_chat(r.messages)), Mask()]),
                      target=r.target) for r in rows]


# The hosted API's ranges (its OpenAPI document's); "auto" is always allowed.
HP_RANGES: dict[str, tuple[float, float, bool]] = {  # name: (low, high, low is exclusive)
    "n_epochs": (1, 50, False), "batch_size": (1, 256, False),
    "learning_rate_multiplier": (0, math.inf, True), "beta": (0, 2, True)}


def hyperparameter_problem(hp: dict[str, Any]) -> tuple[str, str] | None:
    """(name, message) of the first hyperparameter out of the hosted API's range: caught
    when the job is created, not minutes later when training starts."""
    for name, (low, high, open_low) in HP_RANGES.items():
        value = hp.get(name)
        if value is None or value == "auto":
            continue
        if isinstance(value, bool) or (name in ("n_epochs", "batch_size")
                                       and not isinstance(value, int)):
            return name, f"{name} must be an integer or 'auto', not {value!r}"
        too_low = value <= low if open_low else value < low
        if too_low or value > high:
            bound = f"greater than {low}" if open_low else f"at least {low}"
            if high < math.inf:
                bound += f" and at most {high}"
            return name, f"{name} must be {bound} (or 'auto'); got {value}"
    return None


def resolve_hyperparameters(hp: dict[str, Any], n_examples: int) -> dict[str, Any]:
    """'auto' made concrete the way the hosted API reports it once a job runs."""
    epochs = hp.get("n_epochs")
    batch = hp.get("batch_size")
    mult = hp.get("learning_rate_multiplier")
    return {"n_epochs": AUTO_EPOCHS if epochs in (None, "auto") else int(epochs),
            "batch_size": (max(1, min(8, n_examples // 10 or 1)) if batch in (None, "auto")
                           else int(batch)),
            "learning_rate_multiplier": 1.0 if mult in (None, "auto") else float(mult)}


def soft_tokens(method: str) -> int:
    """Virtual tokens a job's prompts carry: SOFT_TOKENS for a soft-prompt method."""
    return SOFT_TOKENS if METHODS[method].soft_slots else 0


def train_spec(method: str, hp: dict[str, Any], seed: int) -> TrainSpec:
    cls = METHODS[method].spec
    assert issubclass(cls, TrainSpec)
    extra: dict[str, Any] = {"init": "random", "num_virtual_tokens": SOFT_TOKENS} \
        if soft_tokens(method) else {}
    return cls(method=method, epochs=hp["n_epochs"], batch_size=hp["batch_size"],
               lr=cls.default_lr * hp["learning_rate_multiplier"], eval_limit=None,
               keep_best=False, checkpoint_every=10**9, warmup_ratio=0.0, seed=seed, **extra)


def estimate_trained_tokens(rows: list[ChatRow], epochs: int) -> int:
    chars = sum(len(m["content"]) for r in rows for m in r.messages) + \
        sum(len(r.target) for r in rows)
    return (chars // 4 + 4 * len(rows)) * epochs
