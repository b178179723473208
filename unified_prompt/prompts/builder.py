"""Turns examples into rendered prompts for one experiment: template, demonstrations,
soft slots, label words and calibration inputs, decided once for every backend."""

from __future__ import annotations

from collections.abc import Sequence

from unified_prompt.backend import TrainItem
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.methods import METHODS
from unified_prompt.prompts.demos import DemoSelector
from unified_prompt.prompts.segments import Rendered
from unified_prompt.prompts.template import Template
from unified_prompt.prompts.verbalizer import Verbalizer


def experiment_template(spec: ExperimentSpec, source: str | None = None) -> Template:
    """The spec's template (or `source`, an alternative such as data.augment's templates);
    soft-prompt methods get a soft prefix if it has no {soft} slot."""
    template = Template(spec.prompt.template if source is None else source)
    ft = spec.finetune
    if METHODS[ft.method].soft_slots and not template.soft_slots:
        init_text = getattr(ft, "init_text", None) if getattr(ft, "init", None) == "text" else None
        template = template.with_soft_prefix(ft.num_virtual_tokens, init_text)
    return template


class PromptBuilder:
    def __init__(self, spec: ExperimentSpec, demo_pool: Sequence[Example] = ()) -> None:
        self.spec = spec
        self.task = spec.task
        self.template = experiment_template(spec)
        self.verbalizer = (Verbalizer(spec.prompt.verbalizer)
                           if spec.task == "classification" and spec.prompt.verbalizer else None)
        demos = spec.prompt.demonstrations
        self.selector = DemoSelector(demo_pool, k=demos.k, selection=demos.selection,
                                     seed=spec.seed, per_label=spec.task == "classification",
                                     ids=demos.ids)

    @property
    def truncate(self) -> dict[str, int]:
        return dict(self.spec.prompt.truncate)

    def answer(self, example: Example) -> str:
        """What goes at the mask for this example: its label's first word, or its target."""
        if self.task == "classification":
            assert self.verbalizer is not None and example.label is not None
            return self.verbalizer.answer(example.label)
        return example.target or ""

    def render(self, examples: Sequence[Example]) -> list[Rendered]:
        chosen = self.selector.select(examples)
        sep = self.spec.prompt.demonstrations.separator
        out = []
        for ex, demo_examples in zip(examples, chosen, strict=False):
            demos = tuple(self.template.render_demo(d.fields, self.answer(d), self.truncate)
                          for d in demo_examples)
            out.append(self.template.render(ex.fields, demos=demos, separator=sep,
                                            example_id=ex.id, truncate=self.truncate))
        return out

    def content_free(self) -> list[Rendered]:
        """Contextual calibration inputs: each content-free string in every field."""
        fields = self.template.fields
        examples = [Example(id=f"content-free-{i}", fields={f: text for f in fields})
                    for i, text in enumerate(self.spec.prompt.calibration.content_free)]
        return self.render(examples)

    def train_items(self, examples: Sequence[Example]) -> list[TrainItem]:
        prompts = self.render(examples)
        if self.task == "classification":
            assert self.verbalizer is not None
            return [TrainItem(p, label=self.verbalizer.label_index(ex.label or ""))
                    for p, ex in zip(prompts, examples, strict=False)]
        return [TrainItem(p, target=ex.target or "") for p, ex in zip(prompts, examples, strict=False)]

    def check_fields(self, examples: Sequence[Example]) -> None:
        """Render one example early so a missing field fails before a model loads."""
        if examples:
            self.template.render(examples[0].fields)
