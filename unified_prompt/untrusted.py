"""Checks for folders that may come from someone else: adapter folders, checkpoints, run
directories. Their files are read as data only (never unpickled by a general loader);
these helpers refuse the rest with a UserInputError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unified_prompt.artifacts import read_json
from unified_prompt.errors import UserInputError


def check_links_inside(folder: str | Path) -> None:
    """Refuse a folder holding a symlink that resolves outside it: a shared folder could
    otherwise make us read (and a conversion copy) any file the user can read."""
    root = Path(folder).resolve()
    for path in Path(folder).rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if target != root and root not in target.parents:
                raise UserInputError(f"{path}: a link to {target}, outside {folder}; "
                                     "copy the file into the folder instead")


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file that must hold an object (read_json names the file on bad JSON)."""
    data = read_json(Path(path))
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
