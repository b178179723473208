"""`unified-prompt validate`: everything that can be checked without loading a framework.

Keys and types (pydantic), the template, metric names, the backend's own options (read
from its class, which imports no framework), the dataset name or every line of the data
files, and that the verbalizer covers the data's labels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from unified_prompt.config import ExperimentSpec, load_spec
from unified_prompt.errors import BackendNotInstalledError
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
    from unified_prompt.data.checks import check_data
    from unified_prompt.data.resolve import load_splits

    splits = load_splits(spec.data, spec.task, spec.seed)
    check_data(spec, splits)  # the same checks `run` makes before it loads a model
    sizes = ", ".join(f"{k} {v}" for k, v in splits.sizes().items())
    if spec.mixture is not None:  # each task of a mixture, checked the same way
        from unified_prompt.mixture import load_tasks

        tasks = load_tasks(spec)
        sizes = "; ".join(f"{t.name}: " + ", ".join(f"{k} {v}" for k, v in
                                                    t.splits.sizes().items()) for t in tasks)
    if spec.data.augment is not None:
        from unified_prompt.augmentation import count

        limit = getattr(spec.finetune, "train_limit", None)
        added = count(spec, splits.train[:limit] if limit else splits.train)
        detail = ", ".join(f"{k} {v}" for k, v in added.items()) or "none"
        sizes += f"; augmentation: +{sum(added.values())} training examples ({detail})"
    return sizes


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
    seeds = ""
    if spec.seeds is not None:
        from unified_prompt.seeds import seed_specs

        seed_specs(spec, None)  # what a multi-seed run refuses (finetune.seed), refused here
        seeds = f"; seeds: {', '.join(map(str, spec.seeds))}"
    return (f"{spec.task}, backend {spec.backend.name}, model {spec.backend.model}, "
            f"method {spec.finetune.method}; data: {sizes}{seeds}")
