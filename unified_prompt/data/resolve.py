"""From a spec's `data` section to train/dev/test lists of Examples."""

from __future__ import annotations

from dataclasses import dataclass

from unified_prompt.config import DataSpec
from unified_prompt.data.bundled import dataset_info, load_dataset
from unified_prompt.data.example import Example
from unified_prompt.data.loaders import load_file
from unified_prompt.data.splits import SPLITS, k_shot, split_examples
from unified_prompt.errors import DataError


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]

    def get(self, name: str) -> list[Example]:
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {n: len(self.get(n)) for n in SPLITS}


def _require(task: str) -> tuple[str, ...]:
    return {"classification": ("label",), "qa": ("answers",)}.get(task, ("target",))


def _from_files(spec: DataSpec, task: str) -> dict[str, list[Example]]:
    files = spec.files
    assert files is not None
    if task == "ner":
        from unified_prompt.data.ner_data import load_ner_file

        loaded = {name: load_ner_file(path, fmt=spec.format, fields=spec.fields, id_prefix=name)
                  for name in SPLITS if (path := getattr(files, name)) is not None}
    else:
        loaded = {name: load_file(path, fmt=spec.format, fields=spec.fields,
                                  label_map=spec.label_map, task=task, require=_require(task),
                                  id_prefix=name)
                  for name in SPLITS if (path := getattr(files, name)) is not None}
    if "train" not in loaded and not ("dev" in loaded and "test" in loaded):
        if "test" in loaded and len(loaded) == 1:
            return {"train": [], "dev": [], "test": loaded["test"]}
        raise DataError("data.files needs train (other splits are cut from it), or test alone "
                        "for evaluation only")
    missing = [n for n in SPLITS if n not in loaded]
    if missing and "train" in loaded:
        frac = spec.split
        parts = {"train": frac.train, **{n: getattr(frac, n) for n in missing}}
        total = sum(parts.values())
        cut = split_examples(loaded["train"], {n: v / total for n, v in parts.items()}, frac.seed)
        loaded.update(cut)
    for name in SPLITS:
        loaded.setdefault(name, [])
    return loaded


def load_splits(spec: DataSpec, task: str, seed: int) -> Splits:
    """Load, split, limit and k-shot sample; the same spec always gives the same lists."""
    if spec.dataset is not None:
        info = dataset_info(spec.dataset)
        if info.task != task:
            raise DataError(f"dataset {spec.dataset!r} is a {info.task} dataset but the spec's "
                            f"task is {task!r}")
        frac = spec.split
        parts = split_examples(load_dataset(spec.dataset),
                               {"train": frac.train, "dev": frac.dev, "test": frac.test}, frac.seed)
    else:
        parts = _from_files(spec, task)
    if spec.k_shot:
        parts["train"] = k_shot(parts["train"], spec.k_shot, seed)
    for name, n in spec.limit.items():
        parts[name] = parts[name][:n]
    return Splits(parts["train"], parts["dev"], parts["test"])
