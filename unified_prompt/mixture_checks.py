"""The checks of a spec's `mixture:` section that need the template and verbalizer (called
by the spec's own validation, so kept apart from unified_prompt.mixture, which runs tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unified_prompt.config import ExperimentSpec


def mixture_problem(spec: ExperimentSpec) -> str | None:
    """What makes `spec.mixture` unusable, naming the key; None when it is fine."""
    from unified_prompt.methods import METHODS
    from unified_prompt.prompts.template import Template
    from unified_prompt.prompts.verbalizer import Verbalizer

    mixture = spec.mixture
    assert mixture is not None
    if spec.task != "classification":
        return f"mixture: multi-task training mixes classification tasks (task is {spec.task})"
    if METHODS[spec.finetune.method].runs == "hosted":
        return "mixture: a hosted fine-tuning job trains one dataset; use a local method"
    if spec.data.augment is not None:
        return ("data.augment: augmentation is not applied to a mixture's tasks yet; drop "
                "data.augment or the mixture")
    names = [mixture.name] + [t.name for t in mixture.tasks]
    for i, task in enumerate(mixture.tasks):
        key = f"mixture.tasks.{i}"
        if task.name in names[: i + 1]:
            return f"{key}.name: {task.name!r} is already a task name (names: {names})"
        template = Template(task.prompt.template)
        if not template.has_mask:
            return f"{key}.prompt.template: classification needs a {{mask}} slot"
        if not task.prompt.verbalizer or len(task.prompt.verbalizer) < 2:
            return f"{key}.prompt.verbalizer: classification needs at least two labels"
        try:
            Verbalizer(task.prompt.verbalizer)
        except Exception as exc:  # ConfigError with the verbalizer's own message
            return f"{key}.prompt.verbalizer: {exc}"
        main_soft = Template(spec.prompt.template).soft_slots
        if template.soft_slots != main_soft:
            return (f"{key}.prompt.template: its {{soft}} slots must be the top-level "
                    "template's (every task trains the same soft vectors)")
    return None
