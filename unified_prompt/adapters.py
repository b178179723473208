"""Adapter folders: the backend's native files plus the project's manifest.json.

The manifest records what the adapter needs to be used correctly elsewhere: the base
model (and its checksum), the tokenizer checksum, the template and verbalizer it was
trained with, the method and its settings, and the metrics it reached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unified_prompt.artifacts import atomic_write_json, read_json
from unified_prompt.errors import UserInputError

if TYPE_CHECKING:
    from unified_prompt.config import ExperimentSpec

MANIFEST = "manifest.json"
FORMAT = "unified-prompt-adapter"
VERSION = 1


def write_manifest(folder: Path, **fields: Any) -> dict[str, Any]:
    from unified_prompt import __version__

    manifest = {"format": FORMAT, "version": VERSION, "created_at": time.time(),
                "unified_prompt": __version__, **fields}
    atomic_write_json(Path(folder) / MANIFEST, manifest)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise UserInputError(f"{folder}: not an adapter folder (no {MANIFEST})")
    manifest = read_json(path)
    if manifest.get("format") != FORMAT:
        raise UserInputError(f"{path}: not a unified-prompt adapter manifest")
    if manifest.get("version", 0) > VERSION:
        raise UserInputError(f"{path}: manifest version {manifest['version']} is newer than "
                             f"this unified-prompt understands ({VERSION}); upgrade")
    return manifest


def spec_for_adapter(spec: ExperimentSpec, path: str | Path | None = None
                     ) -> tuple[ExperimentSpec, dict[str, Any]]:
    """The spec to evaluate an adapter (`path`, else eval.adapter) with: its method settings
    shape the prompt (soft tokens), so finetune.method none adopts the manifest's and
    another method must match."""
    from unified_prompt.config import build_spec
    from unified_prompt.errors import ConfigError
    from unified_prompt.methods import LOCAL_METHODS

    where = Path(str(path if path is not None else spec.eval.adapter))
    manifest = read_manifest(where)
    method = manifest.get("method")
    if method not in LOCAL_METHODS:
        raise ConfigError(f"eval.adapter: {where} holds a {method!r} adapter; "
                          f"expected one of {', '.join(LOCAL_METHODS)}")
    if spec.finetune.method == "none":
        data = spec.model_dump(mode="json", exclude_none=True)
        data["finetune"] = manifest.get("method_config") or {"method": method}
        spec = build_spec(data)
    elif spec.finetune.method != method:
        raise ConfigError(f"eval.adapter: the adapter is {method!r} but finetune.method is "
                          f"{spec.finetune.method!r}; set finetune.method to none or {method}")
    return spec, manifest


def check_base_model(manifest: dict[str, Any], checksum: str | None, model: str,
                     adapter: str | Path) -> None:
    """Refuse an adapter trained on another base model: it would load, and give silently
    wrong numbers."""
    trained_on = (manifest.get("base_model") or {}).get("checksum")
    if trained_on and checksum and trained_on != checksum:
        raise UserInputError(
            f"eval.adapter: {adapter} was trained on base model "
            f"{manifest['base_model'].get('name')!r} (checksum {trained_on[:12]}...), but "
            f"backend.model {model!r} has checksum {checksum[:12]}...")


@dataclass(frozen=True)
class AdapterConverter:
    """Converts adapter folders between backends' formats. A backend that can registers one
    under the `unified_prompt.converters` entry-point group, so the core (matrix --convert)
    finds it by name without importing the backend.

    `convert(src, dst, to, *, overwrite)` writes the adapter at `src` in backend `to`'s
    format at `dst` (with its manifest) and returns `dst`."""

    pairs: frozenset[tuple[str, str]]
    convert: Callable[..., Path]

    def can(self, source: str, target: str) -> bool:
        return (source, target) in self.pairs
