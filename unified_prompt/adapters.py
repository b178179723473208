"""Adapter folders: the backend's native files plus the project's manifest.json.

The manifest records what the adapter needs to be used correctly elsewhere: the base
model (and its checksum), the tokenizer checksum, the template and verbalizer it was
trained with, the method and its settings, and the metrics it reached.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import atomic_write_json, read_json
from unified_prompt.errors import UserInputError

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
