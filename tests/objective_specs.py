"""The spec and training setup the backends' objective tests share (hf and paddle)."""

from __future__ import annotations

from unified_prompt.backend import TrainSetup
from unified_prompt.config import ExperimentSpec
from unified_prompt.prompts.builder import PromptBuilder

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
