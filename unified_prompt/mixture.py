"""Multi-task training: several classification tasks in one run, mixed by weight.

A spec with `mixture:` trains its own task (top-level `data` and `prompt`, named
`mixture.name`, weight `mixture.weight`) together with each of `mixture.tasks` (its own
data, template, verbalizer and weight). One model and one set of trained weights (LoRA,
soft prompt, ...) serve every task; each training example is scored against its own task's
label words (TrainItem.task, TrainSetup.tasks).

Sampling: every slot of an optimizer step's batch draws its task with probability
weight / sum(weights), from a generator seeded by (training seed, step); within a task the
examples are taken in a shuffled order (seeded by (seed, task, pass)) and reshuffled after
each pass over that task. So a step's batch is a function of the seed and the step alone
(runs resume, and 1 and N processes see the same batches). An "epoch" is as many steps as
one pass over all tasks' examples together would take.

Evaluation: each task on its own split (its own eval.limit examples), with its own
template and verbalizer; metrics.json holds `tasks: {name: {n_examples, metrics}}` and, as
the headline `metrics`, the unweighted mean of each metric over the tasks; every
prediction row carries its `task`. Dev evaluations during training average the tasks'
dev metric the same way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unified_prompt.backend import LabelSpace, TrainItem
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.data.example import Example
    from unified_prompt.data.resolve import Splits
    from unified_prompt.prompts.builder import PromptBuilder


@dataclass
class MixTask:
    """One task of a mixture, ready to render and evaluate: a spec of its own (the
    mixture's spec with this task's data and prompt), its splits and its prompt builder."""

    name: str
    weight: float
    spec: ExperimentSpec
    splits: Splits
    builder: PromptBuilder


def task_spec(spec: ExperimentSpec, index: int) -> ExperimentSpec:
    """Task `index` (0: the spec's own) as a single-task spec."""
    if index == 0:
        return spec.model_copy(update={"mixture": None})
    assert spec.mixture is not None
    task = spec.mixture.tasks[index - 1]
    return spec.model_copy(update={"data": task.data, "prompt": task.prompt, "mixture": None})


def load_tasks(spec: ExperimentSpec, main_splits: Splits | None = None,
               main_builder: PromptBuilder | None = None) -> list[MixTask]:
    """Every task of the mixture, the spec's own first; data checked as `run` checks it."""
    from unified_prompt.data.checks import check_data
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.errors import UserInputError
    from unified_prompt.prompts.builder import PromptBuilder

    mixture = spec.mixture
    assert mixture is not None
    out = []
    entries = [(mixture.name, mixture.weight)] + [(t.name, t.weight) for t in mixture.tasks]
    for i, (name, weight) in enumerate(entries):
        sub = task_spec(spec, i)
        if i == 0 and main_splits is not None and main_builder is not None:
            splits, builder = main_splits, main_builder
        else:
            try:
                splits = load_splits(sub.data, sub.task, sub.seed)
                builder = PromptBuilder(sub, splits.train)
                check_data(sub, splits)
            except UserInputError as exc:
                raise type(exc)(f"mixture task {name!r} (mixture.tasks.{i - 1}): {exc}") from None
        out.append(MixTask(name, weight, sub, splits, builder))
    return out


def label_spaces(tasks: Sequence[MixTask]) -> tuple[LabelSpace, ...]:
    from unified_prompt.backend import LabelSpace

    out = []
    for task in tasks:
        verbalizer = task.builder.verbalizer
        assert verbalizer is not None
        out.append(LabelSpace(verbalizer.flat_words, verbalizer.word_label,
                              len(verbalizer.labels), task.spec.prompt.word_score))
    return tuple(out)


def train_items(tasks: Sequence[MixTask], limit: int | None) -> tuple[list[TrainItem], list[int]]:
    """Every task's training items (each task's first `limit`), tagged with its task, and
    each task's count; items lie task after task."""
    from dataclasses import replace

    items: list[TrainItem] = []
    sizes = []
    for index, task in enumerate(tasks):
        train = task.splits.train[:limit] if limit else task.splits.train
        if not train:
            from unified_prompt.errors import DataError

            raise DataError(f"mixture task {task.name!r} has no training examples")
        items += [replace(item, task=index) for item in task.builder.train_items(train)]
        sizes.append(len(train))
    return items, sizes


class MixtureSampler:
    """Micro-batches of item indices for each optimizer step, tasks drawn by weight."""

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int,
                 batch_size: int, grad_accum: int) -> None:
        self.sizes = list(sizes)
        self.weights = list(weights)
        self.seed = seed
        self.batch_size = batch_size
        self.per_step = batch_size * grad_accum
        self.offsets = [sum(self.sizes[:t]) for t in range(len(self.sizes))]
        self._cursor_at = [[0] * len(self.sizes)]  # per task, examples taken before step s
        self._orders: dict[tuple[int, int], list[int]] = {}

    def _tasks_of(self, step: int) -> list[int]:
        rng = random.Random(f"mixture:{self.seed}:{step}")
        return rng.choices(range(len(self.sizes)), weights=self.weights, k=self.per_step)

    def _cursors(self, step: int) -> list[int]:
        while len(self._cursor_at) <= step:
            s = len(self._cursor_at) - 1
            cursor = list(self._cursor_at[s])
            for t in self._tasks_of(s):
                cursor[t] += 1
            self._cursor_at.append(cursor)
        return list(self._cursor_at[step])

    def _order(self, task: int, lap: int) -> list[int]:
        key = (task, lap)
        if key not in self._orders:
            order = list(range(self.sizes[task]))
            random.Random(f"mixture:{self.seed}:{task}:{lap}").shuffle(order)
            self._orders[key] = order
        return self._orders[key]

    def __call__(self, step: int) -> list[list[int]]:
        cursor = self._cursors(step)
        items = []
        for t in self._tasks_of(step):
            lap, k = divmod(cursor[t], self.sizes[t])
            items.append(self.offsets[t] + self._order(t, lap)[k])
            cursor[t] += 1
        return [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]


@dataclass
class MixtureTraining:
    """What local training of a mixture needs: every task's items (tagged), their label
    spaces, the weighted sampler and each task's dev slice."""

    tasks: list[MixTask]
    items: list[TrainItem]
    spaces: tuple[LabelSpace, ...]
    sampler: MixtureSampler
    dev: list[list[Example]]
    sizes: dict[str, int]

    @classmethod
    def build(cls, tasks: Sequence[MixTask], train_limit: int | None, eval_limit: int | None,
              seed: int, batch_size: int, grad_accum: int) -> MixtureTraining:
        items, sizes = train_items(tasks, train_limit)
        dev = [t.splits.dev[:eval_limit] if eval_limit else list(t.splits.dev) for t in tasks]
        sampler = MixtureSampler(sizes, [t.weight for t in tasks], seed, batch_size, grad_accum)
        return cls(list(tasks), items, label_spaces(tasks), sampler, dev,
                   {t.name: n for t, n in zip(tasks, sizes, strict=True)})

    def evaluate(self, inference: Any, model: Any, metric: str) -> dict[str, float]:
        """Dev `metric`, the mean over the tasks that have dev examples."""
        keep = [i for i, exs in enumerate(self.dev) if exs]
        return evaluate_tasks(inference, [self.tasks[i] for i in keep], model,
                              [self.dev[i] for i in keep], False, [metric])[0]


def eval_examples(task: MixTask) -> list[Example]:
    spec = task.spec
    examples = task.splits.get(spec.eval.split)
    return examples[: spec.eval.limit] if spec.eval.limit else examples


def evaluate_tasks(inference: Any, tasks: Sequence[MixTask], model: Any,
                   examples: Sequence[Sequence[Example]], progress: bool | None,
                   metric_names: Sequence[str] | None = None
                   ) -> tuple[dict[str, float], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(headline: each metric's mean over the tasks, per-task blocks, rows tagged by task)."""
    from unified_prompt.evaluation import Evaluator

    per_task: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for task, exs in zip(tasks, examples, strict=True):
        evaluator = Evaluator(inference, task.builder, task.spec, progress)
        metrics, task_rows = evaluator.evaluate(model, exs, f"eval {task.name}", metric_names)
        per_task[task.name] = {"n_examples": len(exs), "dataset": task.spec.data.dataset,
                               "weight": task.weight, "metrics": metrics}
        rows += [{"task": task.name, **row} for row in task_rows]
    names = list(next(iter(per_task.values()))["metrics"])
    headline = {n: round(sum(b["metrics"][n] for b in per_task.values()) / len(per_task), 6)
                for n in names}
    return headline, per_task, rows
