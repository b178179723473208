"""Helpers shared by the hf backend tests (specs and train setups over the tiny models)."""

from __future__ import annotations

from unified_prompt.backend import TrainSetup
from unified_prompt.config import ExperimentSpec
from unified_prompt.prompts.builder import PromptBuilder

TEMPLATE = "Review: {text}\nSentiment: {mask}"
MASKED_TEMPLATE = "{text} It was {mask}."
VERBALIZER = {"positive": ["good", "absolutely wonderful"], "negative": ["bad", "差"]}
def make_builder(method: str = "none", *, task: str = "classification",
                 template: str = TEMPLATE, word_score: str = "sum",
                 **settings) -> PromptBuilder:
    finetune = {"method": method, **settings}
    data = {"task": task, "seed": 3, "backend": {"name": "hf", "model": "x"},
            "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": template, "word_score": word_score}, "finetune": finetune}
    if task == "classification":
        data["prompt"]["verbalizer"] = VERBALIZER
    return PromptBuilder(ExperimentSpec.model_validate(data))


def make_setup(builder: PromptBuilder) -> TrainSetup:
    spec = builder.spec
    v = builder.verbalizer
    return TrainSetup(method=spec.finetune, task=spec.task, seed=spec.seed,
                      words=v.flat_words if v else (), word_label=v.word_label if v else (),
                      n_labels=len(v.labels) if v else 0, word_score=spec.prompt.word_score,
                      soft_slots=builder.template.soft_slots, total_steps=10)
