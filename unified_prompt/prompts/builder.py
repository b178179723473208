"""Turns examples into rendered prompts for one experiment: template, demonstrations,
soft slots, label words and calibration inputs, decided once for every backend."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from unified_prompt.backend import Backend, TrainItem
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.conversations import history, is_conversation, training_turns
from unified_prompt.data.example import Example
from unified_prompt.decoding import plain_chat
from unified_prompt.methods import METHODS
from unified_prompt.prompts.chat import ChatPrompter, as_chat
from unified_prompt.prompts.demos import DemoSelector
from unified_prompt.prompts.segments import Mask, Rendered, Text
from unified_prompt.prompts.template import Template
from unified_prompt.prompts.verbalizer import Verbalizer

#: task: ner: the template field that shows prompt.entity_types.
NER_TYPES_FIELD = "entity_types"


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
        self.chat: ChatPrompter | None = None
        self.shared_fields: dict[str, str] = {}
        if spec.task == "ner" and spec.prompt.entity_types:
            from unified_prompt.ner_format import types_text

            self.shared_fields[NER_TYPES_FIELD] = types_text(spec.prompt.entity_types)

    def use_model(self, backend: Backend, model: Any) -> None:
        """prompt.chat: prompts are written as chat by this backend for this model (called
        once the model is loaded; before, `render` gives the plain prompts)."""
        if self.spec.prompt.chat:
            self.chat = functools.partial(backend.chat_prompt, model)

    @property
    def truncate(self) -> dict[str, int]:
        return dict(self.spec.prompt.truncate)

    def answer(self, example: Example) -> str:
        """What goes at the mask for this example: its label's first word, or its target."""
        if self.task == "classification":
            assert self.verbalizer is not None and example.label is not None
            return self.verbalizer.answer(example.label)
        return example.target or ""

    def chat_turns(self, turns: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Conversation turns as sent: prompt.system first unless the turns have their own,
        each user turn written through the template ({text}: its content)."""
        system = self.spec.prompt.system
        out: list[dict[str, Any]] = [{"role": "system", "content": system}] \
            if system and not (turns and turns[0]["role"] == "system") else []
        for turn in turns:
            if turn["role"] == "user":
                text = self.template.render({"text": turn["content"]}, truncate=self.truncate)
                turn = {**turn, "content": text.prefix_text()}
            out.append(dict(turn))
        return out

    def conversation(self, turns: Sequence[dict[str, Any]], example_id: str | None) -> Rendered:
        """Chat turns (conversation data) as the prompt for the assistant's next turn: each
        user turn written through the template, prompt.system first unless the turns have
        their own. Before the model is loaded, plain "role: content" lines."""
        messages = [{"role": m["role"], "content": m["content"]} for m in self.chat_turns(turns)]
        if self.chat is None:
            return Rendered((Text(plain_chat(messages)), Mask()), example_id,
                            {"messages": messages})
        chat = self.chat(messages)
        return Rendered(chat.segments, example_id, chat.meta)

    def render(self, examples: Sequence[Example]) -> list[Rendered]:
        if any(is_conversation(ex) for ex in examples):
            return [self.conversation(history(ex), ex.id) if is_conversation(ex)
                    else self.render([ex])[0] for ex in examples]
        chosen = self.selector.select(examples)
        sep = self.spec.prompt.demonstrations.separator
        out = []
        for ex, demo_examples in zip(examples, chosen, strict=False):
            demos = tuple(self.template.render_demo({**self.shared_fields, **d.fields},
                                                    self.answer(d), self.truncate)
                          for d in demo_examples)
            out.append(self.template.render({**self.shared_fields, **ex.fields}, demos=demos,
                                            separator=sep,
                                            example_id=ex.id, truncate=self.truncate))
        if self.chat is not None:
            return [as_chat(p, self.spec.prompt.system, self.chat) for p in out]
        return out

    def content_free(self) -> list[Rendered]:
        """Contextual calibration inputs: each content-free string in every field."""
        fields = self.template.fields
        examples = [Example(id=f"content-free-{i}", fields={f: text for f in fields})
                    for i, text in enumerate(self.spec.prompt.calibration.content_free)]
        return self.render(examples)

    def train_items(self, examples: Sequence[Example]) -> list[TrainItem]:
        """One item per example; a conversation gives one per trained assistant turn (the
        turn as target after the turns before it: the loss is on assistant tokens only)."""
        if any(is_conversation(ex) for ex in examples):
            return [item for ex in examples for item in (
                [TrainItem(self.conversation(before, ex.id), target=reply)
                 for before, reply in training_turns(ex)] if is_conversation(ex)
                else self.train_items([ex]))]
        prompts = self.render(examples)
        if self.task == "classification":
            assert self.verbalizer is not None
            return [TrainItem(p, label=self.verbalizer.label_index(ex.label or ""))
                    for p, ex in zip(prompts, examples, strict=False)]
        return [TrainItem(p, target=ex.target or "") for p, ex in zip(prompts, examples, strict=False)]

    def check_fields(self, examples: Sequence[Example]) -> None:
        """Render one example early so a missing field fails before a model loads."""
        if examples:
            self.template.render({**self.shared_fields, **examples[0].fields})
