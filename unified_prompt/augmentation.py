"""Data augmentation for small training sets (`data.augment`): extra training examples
made from the train split only, decided before any model runs.

Two methods, both deterministic for a given seed and train split:

- `templates` (template paraphrase): every training example once more under each
  alternative template, so the model learns the task rather than one wording;
- `demonstrations` (LM-BFF style): every training example again with k demonstrations,
  drawn from the *other* training examples, in front of it; `copies` draws per example.

An augmented example is a recipe (source example, template, demonstration ids) rendered by
the same template code as every other prompt. The recipes and their rendered prompts are
written atomically to RUN/augmented.jsonl; `--resume` rebuilds the items from that file
rather than drawing again. Dev and test are never touched.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_prompt.data.example import Example
from unified_prompt.errors import DataError

if TYPE_CHECKING:
    from unified_prompt.backend import TrainItem
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.prompts.template import Template

FILE = "augmented.jsonl"
METHOD_NAMES = ("templates", "demonstrations")


@dataclass(frozen=True)
class Recipe:
    """One augmented example: which training example, under which template (0: the spec's
    prompt.template, i: data.augment.templates[i-1]), with which demonstrations (None: the
    ones the spec's prompt.demonstrations gives that example)."""

    id: str
    source: str
    method: str
    template: int
    demos: tuple[str, ...] | None = None


@dataclass
class Augmented:
    items: list[TrainItem]
    rows: list[dict[str, Any]]
    reused: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self, n_original: int) -> dict[str, Any]:
        return {"original": n_original, "added": len(self.items), "methods": dict(self.counts),
                "file": FILE, "reused": self.reused}


# -- checks (spec and data) -----------------------------------------------------------------
def check_augment_spec(spec: ExperimentSpec) -> None:
    """What is wrong with data.augment given the rest of the spec (`validate` and `run` call
    this through data.checks.check_data, before a model loads)."""
    from unified_prompt.errors import ConfigError
    from unified_prompt.methods import METHODS
    from unified_prompt.prompts.builder import experiment_template

    def refuse(key: str, problem: str) -> None:
        raise ConfigError(f"{key}: {problem}", problems=[(key, problem)])

    augment = spec.data.augment
    assert augment is not None
    method = spec.finetune.method
    if METHODS[method].runs != "local":
        refuse("data.augment", "adds training examples for local fine-tuning; "
               f"finetune.method {method!r} trains nothing locally")
    main = experiment_template(spec)
    for i, source in enumerate(augment.templates):
        alt = experiment_template(spec, source)
        where = f"data.augment.templates[{i}]"
        if alt.has_mask != main.has_mask:
            refuse(where, f"{'needs' if main.has_mask else 'must not have'} a {{mask}} slot, "
                   "like prompt.template")
        if alt.soft_slots != main.soft_slots:
            refuse(where, "its {soft} slots differ from prompt.template's; the trained soft "
                   "prompt must be the same in every template")


# -- planning ---------------------------------------------------------------------------------
def _draw_demos(ex: Example, groups: dict[str | None, list[Example]], k: int,
                rng: random.Random) -> tuple[str, ...]:
    """k per group (label), never `ex` itself: k+1 drawn, `ex` dropped, k kept."""
    picked: list[Example] = []
    for key in sorted(groups, key=lambda x: (x is None, x or "")):
        group = groups[key]
        draw = rng.sample(group, min(k + 1, len(group)))
        picked.extend([d for d in draw if d.id != ex.id][:k])
    rng.shuffle(picked)
    return tuple(d.id for d in picked)


def plan(spec: ExperimentSpec, train: Sequence[Example]) -> list[Recipe]:
    """The augmented examples for this spec and train split, in a fixed order."""
    augment = spec.data.augment
    if augment is None:
        return []
    seed = spec.seed if augment.seed is None else augment.seed
    out: list[Recipe] = []
    for ex in train:
        out.extend(Recipe(f"{ex.id}~t{i}", ex.id, "templates", i)
                   for i in range(1, len(augment.templates) + 1))
    demos = augment.demonstrations
    if demos is not None:
        per_label = spec.task == "classification"
        groups: dict[str | None, list[Example]] = {}
        for ex in train:
            groups.setdefault(ex.label if per_label else None, []).append(ex)
        for ex in train:
            for copy in range(demos.copies):
                rng = random.Random(f"augment:{seed}:{ex.id}:{copy}")
                ids = _draw_demos(ex, groups, demos.k, rng)
                if ids:
                    out.append(Recipe(f"{ex.id}~d{copy}", ex.id, "demonstrations", 0, ids))
    return out


def count(spec: ExperimentSpec, train: Sequence[Example]) -> dict[str, int]:
    """How many examples each method adds (what `validate` reports)."""
    return dict(Counter(r.method for r in plan(spec, train)))


# -- rendering --------------------------------------------------------------------------------
class _Renderer:
    def __init__(self, spec: ExperimentSpec, builder: PromptBuilder,
                 train: Sequence[Example]) -> None:
        from unified_prompt.prompts.builder import experiment_template

        self.spec = spec
        self.builder = builder
        self.train = list(train)
        self.by_id = {ex.id: ex for ex in self.train}
        augment = spec.data.augment
        assert augment is not None
        self.templates: list[Template] = [builder.template] + [
            experiment_template(spec, s) for s in augment.templates]
        self._spec_demos: dict[str, list[Example]] | None = None

    def spec_demos(self, ex: Example) -> list[Example]:
        """The demonstrations the spec gives `ex` in training (the same as the original)."""
        if self._spec_demos is None:
            chosen = self.builder.selector.select(self.train)
            self._spec_demos = {e.id: d for e, d in zip(self.train, chosen, strict=True)}
        return self._spec_demos[ex.id]

    def item(self, recipe: Recipe) -> tuple[TrainItem, dict[str, Any]]:
        from unified_prompt.backend import TrainItem

        builder = self.builder
        ex = self.by_id[recipe.source]
        template = self.templates[recipe.template]
        demos = (self.spec_demos(ex) if recipe.demos is None
                 else [self.by_id[i] for i in recipe.demos])
        rendered = template.render(
            ex.fields, demos=tuple(template.render_demo(d.fields, builder.answer(d),
                                                        builder.truncate) for d in demos),
            separator=self.spec.prompt.demonstrations.separator, example_id=recipe.id,
            truncate=builder.truncate)
        row: dict[str, Any] = {
            "id": recipe.id, "source": recipe.source, "method": recipe.method,
            "template_index": recipe.template, "template": template.source,
            "demos": list(recipe.demos) if recipe.demos is not None else None,
            "prompt": rendered.text()}
        if builder.verbalizer is not None:
            row["label"] = ex.label
            return TrainItem(rendered, label=builder.verbalizer.label_index(ex.label or "")), row
        row["target"] = ex.target or ""
        return TrainItem(rendered, target=ex.target or ""), row


def read_recipes(path: Path, train: Sequence[Example], n_templates: int) -> list[Recipe]:
    """The recipes of an earlier attempt's augmented.jsonl, checked against this train split."""
    known = {ex.id for ex in train}
    out: list[Recipe] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            recipe = Recipe(str(row["id"]), str(row["source"]), str(row["method"]),
                            int(row["template_index"]),
                            None if row.get("demos") is None else tuple(map(str, row["demos"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"unreadable augmented example ({exc}); delete the file to draw "
                            "the augmentation again", path=str(path), line=lineno) from None
        unknown = [i for i in (recipe.source, *(recipe.demos or ())) if i not in known]
        if unknown or recipe.method not in METHOD_NAMES or \
                not 0 <= recipe.template <= n_templates:
            what = (f"example {unknown[0]!r} is not in the training split" if unknown else
                    f"method {recipe.method!r} / template_index {recipe.template} is not in "
                    "this spec")
            raise DataError(f"{what}; delete the file to draw the augmentation again",
                            path=str(path), line=lineno)
        out.append(recipe)
    return out


def augment(spec: ExperimentSpec, builder: PromptBuilder, train: Sequence[Example],
            path: Path | None = None, *, resuming: bool = False,
            write: bool = True) -> Augmented:
    """The augmented training items; written to `path` (atomically), or read back from it
    when resuming a run that wrote it."""
    from unified_prompt.artifacts import atomic_write_jsonl

    assert spec.data.augment is not None
    reused = bool(resuming and path is not None and path.exists())
    recipes = (read_recipes(path, train, len(spec.data.augment.templates)) if reused and path
               else plan(spec, train))
    renderer = _Renderer(spec, builder, train)
    items, rows = [], []
    for recipe in recipes:
        item, row = renderer.item(recipe)
        items.append(item)
        rows.append(row)
    if path is not None and write and not reused:
        atomic_write_jsonl(path, rows)
    return Augmented(items, rows, reused, dict(Counter(r.method for r in recipes)))
