"""`unified-prompt validate`: everything that can be checked without loading a framework.

Keys and types (pydantic), the template, metric names, the backend's own options (read
from its class, which imports no framework), the dataset name or every line of the data
files, and that the verbalizer covers the data's labels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from unified_prompt.config import ExperimentSpec, load_spec
from unified_prompt.errors import BackendNotInstalledError, ConfigError, DataError
from unified_prompt.metrics import check_metric_names


def _check_backend_options(spec: ExperimentSpec) -> None:
    from unified_prompt.registry import available, backend_class

    installed = set(available())
    names = {spec.backend.name, *spec.backend.options}
    for name in sorted(names):
        if name not in installed:
            if name == spec.backend.name:
                raise BackendNotInstalledError(name, sorted(installed))
            warnings.warn(f"backend.options.{name}: backend {name!r} is not installed; "
                          "its options were not checked", stacklevel=2)
            continue
        backend_class(name).parse_options(spec.backend.options_for(name))


def _check_data(spec: ExperimentSpec) -> str:
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.prompts.builder import PromptBuilder

    splits = load_splits(spec.data, spec.task, spec.seed)
    builder = PromptBuilder(spec)
    labels: set[str] = set()
    for name in ("train", "dev", "test"):
        examples = splits.get(name)
        builder.check_fields(examples)
        labels |= {ex.label for ex in examples if ex.label is not None}
    if spec.task == "classification" and builder.verbalizer is not None:
        missing = sorted(labels - set(builder.verbalizer.labels))
        if missing:
            raise ConfigError(
                f"prompt.verbalizer has no words for label(s) {', '.join(map(repr, missing))} "
                "found in the data (map raw labels with data.label_map)",
                problems=[("prompt.verbalizer", f"missing {missing}")])
    demos = spec.prompt.demonstrations
    if demos.selection == "fixed" and demos.ids:
        known = {ex.id for ex in splits.train}
        missing = [i for i in demos.ids if i not in known]
        if missing:
            raise ConfigError(
                f"prompt.demonstrations.ids: {', '.join(map(repr, missing[:5]))} not in the "
                "training split", problems=[("prompt.demonstrations.ids", "unknown ids")])
    sizes = splits.sizes()
    if not sizes[spec.eval.split]:
        raise DataError(f"eval.split {spec.eval.split!r} has no examples")
    return ", ".join(f"{k} {v}" for k, v in sizes.items())


def validate_spec_file(path: str | Path, *, overrides: list[str] | None = None,
                       backend: str | None = None) -> str:
    """Raise a UserInputError naming what is wrong; return a one-line summary."""
    spec = load_spec(path, overrides=overrides, backend=backend)
    if spec.eval.adapter:
        from unified_prompt.adapters import spec_for_adapter

        spec, _ = spec_for_adapter(spec)
    check_metric_names(spec.metrics, spec.task)
    _check_backend_options(spec)
    sizes = _check_data(spec)
    return (f"{spec.task}, backend {spec.backend.name}, model {spec.backend.model}, "
            f"method {spec.finetune.method}; data: {sizes}")
