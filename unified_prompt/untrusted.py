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


def load_npz(path: str | Path) -> dict[str, Any]:
    """name -> array from an .npz (np.load refuses pickled objects by default); a missing,
    truncated or corrupt file is a UserInputError naming it."""
    import numpy as np

    try:
        with np.load(Path(path)) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise UserInputError(f"{path}: missing") from None
    except Exception as exc:  # zipfile, numpy's format parser and EOF errors all mean "damaged"
        raise UserInputError(f"{path}: damaged or not an .npz file ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None
