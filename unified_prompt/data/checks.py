"""The checks `validate` and `run` both make on a spec's data before any model loads.

One function, so the two commands cannot disagree: every example of every split has the
text fields the template names, every label in the data has label words and every
labelled verbalizer entry occurs in the data, every ner entity's type is one of
prompt.entity_types, fixed demonstration ids exist, and the
evaluated split is not empty. Errors name the file and line of the first offending example.
"""

from __future__ import annotations

from collections.abc import Sequence

from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.data.resolve import Splits
from unified_prompt.data.splits import SPLITS
from unified_prompt.errors import ConfigError, DataError


def _where(example: Example) -> tuple[str | None, int | None]:
    meta = example.meta or {}
    return meta.get("source"), meta.get("line")


def check_fields(examples: Sequence[Example], fields: Sequence[str]) -> None:
    """Every example has each template field as text (file and line of the first that does not)."""
    for ex in examples:
        for name in fields:
            if name in ex.fields:
                continue
            path, line = _where(ex)
            kind = (ex.meta or {}).get("not_text", {}).get(name)
            problem = (f"field {name!r} is {kind}, not text" if kind else
                       f"no field {name!r}, which the template uses as {{{name}}}"
                       " (map a column to it with data.fields)")
            raise DataError(f"example {ex.id!r}: {problem}", path=path, line=line)


def check_labels(splits: Splits, labels: Sequence[str]) -> None:
    """Data labels and verbalizer labels must be the same set."""
    first: dict[str, Example] = {}
    for name in SPLITS:
        for ex in splits.get(name):
            if ex.label is not None:
                first.setdefault(ex.label, ex)
    unknown = [lab for lab in first if lab not in labels]
    if unknown:
        path, line = _where(first[unknown[0]])
        raise DataError(
            f"label(s) {', '.join(map(repr, unknown))} have no words in prompt.verbalizer "
            f"(its labels: {', '.join(labels)}); add them, or map raw labels with "
            "data.label_map", path=path, line=line)
    unused = [lab for lab in labels if lab not in first]
    if unused and first:
        raise ConfigError(
            f"prompt.verbalizer: label(s) {', '.join(map(repr, unused))} occur in no split of "
            f"the data (its labels: {', '.join(sorted(first))}); remove them or fix the data",
            problems=[("prompt.verbalizer", f"labels not in the data: {unused}")])


def check_entity_types(splits: Splits, entity_types: Sequence[str]) -> None:
    """Every entity in the data has a type of prompt.entity_types."""
    from unified_prompt.ner_format import entities_from_tags

    for name in SPLITS:
        for ex in splits.get(name):
            for ent in entities_from_tags(ex.tags):
                if ent.type not in entity_types:
                    path, line = _where(ex)
                    raise DataError(
                        f"example {ex.id!r}: unknown entity type {ent.type!r} (prompt."
                        f"entity_types: {', '.join(entity_types)}); add it there or fix the "
                        "data", path=path, line=line)


def check_data(spec: ExperimentSpec, splits: Splits) -> None:
    """Raise a UserInputError for the first problem in `splits` as `spec` would use them."""
    from unified_prompt.prompts.builder import experiment_template
    from unified_prompt.prompts.verbalizer import Verbalizer

    fields = experiment_template(spec).fields
    if spec.task == "ner":
        from unified_prompt.prompts.builder import NER_TYPES_FIELD

        fields = [f for f in fields if f != NER_TYPES_FIELD]
        check_entity_types(splits, list(spec.prompt.entity_types or ()))
    for name in SPLITS:
        check_fields(splits.get(name), fields)
    if spec.data.augment is not None:  # its templates' fields, in training examples only
        from unified_prompt.augmentation import check_augment_spec
        from unified_prompt.prompts.template import Template

        check_augment_spec(spec)
        for source in spec.data.augment.templates:
            check_fields(splits.train, Template(source).fields)
    if spec.task == "classification" and spec.prompt.verbalizer:
        check_labels(splits, Verbalizer(spec.prompt.verbalizer).labels)
    demos = spec.prompt.demonstrations
    if demos.selection == "fixed" and demos.ids:
        known = {ex.id for ex in splits.train}
        missing = [i for i in demos.ids if i not in known]
        if missing:
            raise ConfigError(
                f"prompt.demonstrations.ids: {', '.join(map(repr, missing[:5]))} not in the "
                "training split", problems=[("prompt.demonstrations.ids", "unknown ids")])
    check_conversations(spec, splits)
    if not splits.get(spec.eval.split):
        raise DataError(f"eval.split {spec.eval.split!r} has no examples")


def check_conversations(spec: ExperimentSpec, splits: Splits) -> None:
    """Multi-turn chat data (rows with `messages`) runs through the chat template, without
    demonstrations, and trains hosted models by supervised fine-tuning."""
    from unified_prompt.data.conversations import is_conversation

    first = next((ex for name in SPLITS for ex in splits.get(name) if is_conversation(ex)), None)
    if first is None:
        return
    path, line = _where(first)
    where = f"{path}:{line}: " if path and line else ""
    if not spec.prompt.chat:
        raise ConfigError(f"prompt.chat: {where}the data holds conversations (messages); set "
                          "prompt.chat: true so they go through the model's chat template",
                          problems=[("prompt.chat", "conversation data needs chat: true")])
    if spec.prompt.demonstrations.k:
        raise ConfigError("prompt.demonstrations: conversation data takes no demonstrations "
                          "(put example turns in the conversations)",
                          problems=[("prompt.demonstrations.k", "not with conversations")])
    if getattr(spec.finetune, "kind", "supervised") != "supervised":
        raise ConfigError("finetune.kind: conversation data trains by supervised fine-tuning",
                          problems=[("finetune.kind", "conversations are supervised data")])
