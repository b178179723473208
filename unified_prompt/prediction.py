"""Predictions for new inputs from a finished run or a spec and adapter, for app code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unified_prompt.adapters import MANIFEST, check_base_model, spec_for_adapter
from unified_prompt.artifacts import RunDir, drop_redacted
from unified_prompt.backend import Backend
from unified_prompt.config import ExperimentSpec, build_spec
from unified_prompt.data.conversations import MESSAGES
from unified_prompt.data.example import Example
from unified_prompt.data.resolve import load_splits
from unified_prompt.errors import UserInputError
from unified_prompt.evaluation import Evaluator
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.registry import create_backend
from unified_prompt.sampling import group


class Predictor:
    """Predictions for new inputs from a finished run (its spec and adapter), for app code.

        with Predictor.from_run("runs/lora") as p:
            p.predict(["A gripping, beautiful film."])   # [{"label": "positive", "scores": {...}}]
    """

    def __init__(self, spec: ExperimentSpec, backend: Backend, model: Any,
                 builder: PromptBuilder) -> None:
        self.spec = spec
        self.backend = backend
        self.model = model
        self.builder = builder
        self.evaluator = Evaluator(backend, builder, spec, progress=False)

    @classmethod
    def from_spec(cls, spec: ExperimentSpec, *, adapter: str | Path | None = None,
                  task: str | None = None) -> Predictor:
        """The spec's model with `adapter`, else with the spec's eval.adapter, as `run`
        evaluates it: finetune.method none adopts the adapter's method settings, and an
        adapter trained on another base model is refused. A spec with `mixture:` needs
        `task`, the name of the task whose prompt (template, verbalizer) to predict with."""
        spec = _single_task(spec, task)
        if adapter is None and spec.eval.adapter:
            adapter = spec.eval.adapter
        manifest = None
        if adapter is not None and (Path(adapter) / MANIFEST).exists():
            spec, manifest = spec_for_adapter(spec, adapter)
        pool: list[Example] = []
        if spec.prompt.demonstrations.k:
            pool = load_splits(spec.data, spec.task, spec.seed).train
        builder = PromptBuilder(spec, pool)
        backend = create_backend(spec.backend.name, spec.backend.options_for())
        model = backend.load_model(spec.backend.model)
        if adapter is not None:
            if manifest is not None:
                check_base_model(manifest, backend.model_info(model).checksum,
                                 spec.backend.model, adapter)
            model = backend.load_adapter(model, Path(adapter))
        builder.use_model(backend, model)
        return cls(spec, backend, model, builder)

    @classmethod
    def from_run(cls, run_dir: str | Path, *, task: str | None = None) -> Predictor:
        """The run's spec and adapter (or hosted fine-tuned model); `task` names the task to
        predict for when the run trained a mixture."""
        from unified_prompt.yaml_io import read_yaml_file

        run = RunDir(run_dir)
        data, _ = read_yaml_file(run.file(RunDir.CONFIG))
        spec = build_spec(drop_redacted(data))
        adapter = run.file(RunDir.ADAPTER)
        state = run.read_state()
        if state.get("fine_tuned_model"):
            data = spec.model_dump(mode="json", exclude_none=True)
            data["backend"]["model"] = state["fine_tuned_model"]
            data["finetune"] = {"method": "none"}
            spec = build_spec(data)
        return cls.from_spec(spec, adapter=adapter if adapter.exists() else None, task=task)

    def predict(self, inputs: Sequence[str | dict[str, Any]]) -> list[dict[str, Any]]:
        """A label with probabilities per input (classification), or generated text as the
        run's evaluation generates it (eval.decoding; with n > 1 all n as `texts`, the first
        as `text`; for task ner, the entities it names that occur in the input's `text`).
        An input is a text, a dict of the template's fields, or {"messages": [...]}: a
        conversation (chat data) whose next assistant turn to generate."""
        examples = [Example(f"input-{i}", {"text": x} if isinstance(x, str) else dict(x))
                    for i, x in enumerate(inputs)]
        chats = self.spec.prompt.chat and self.spec.task == "generation"
        bad = next((i for i, ex in enumerate(examples) if MESSAGES in ex.fields), None)
        if bad is not None and not chats:
            raise UserInputError(f"input {bad}: a conversation (messages) needs prompt.chat: "
                                 f"true and task: generation (this run: task {self.spec.task}, "
                                 f"prompt.chat {self.spec.prompt.chat})")
        if self.spec.model_task == "generation":
            prompts = ([self.builder.conversation(ex.fields[MESSAGES], ex.id)
                        if MESSAGES in ex.fields else self.builder.render([ex])[0]
                        for ex in examples] if any(MESSAGES in ex.fields for ex in examples)
                       else self.builder.render(examples))
            n = self.spec.eval.decoding.n
            texts = group([t.strip() for t in self.evaluator.generate(
                self.model, prompts, "predict", decoded=True)], n)
            out = [{"text": t[0], **({"texts": t} if n > 1 else {})} for t in texts]
            if self.spec.task == "ner":
                from unified_prompt.ner_metrics import entities_in

                types = list(self.spec.prompt.entity_types or ())
                return [{**o, "entities": entities_in(ex.text, o["text"], types)}
                        for ex, o in zip(examples, out, strict=True)]
            return out
        verbalizer = self.builder.verbalizer
        assert verbalizer is not None
        import numpy as np

        probs = np.exp(self.evaluator.label_logprobs(self.model, examples, "predict"))
        return [{"label": verbalizer.labels[int(np.argmax(row))],
                 "scores": {lab: round(float(p), 6) for lab, p in zip(verbalizer.labels, row,
                                                                       strict=True)}}
                for row in probs]

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _single_task(spec: ExperimentSpec, task: str | None) -> ExperimentSpec:
    """The spec of the task named `task` of a mixture spec (a spec without a mixture as is)."""
    mixture = spec.mixture
    if mixture is None:
        if task is not None:
            raise UserInputError(f"task {task!r}: the spec has one task, not a mixture; "
                                 "leave task= out")
        return spec
    from unified_prompt.mixture import task_spec

    names = [mixture.name, *(t.name for t in mixture.tasks)]
    listed = ", ".join(repr(n) for n in names)
    if task is None:
        raise UserInputError(f"a mixture run: pass task= one of {listed} (whose prompt and "
                             "labels to predict with)")
    if task not in names:
        raise UserInputError(f"task {task!r}: not a task of this mixture ({listed})")
    return task_spec(spec, names.index(task))
