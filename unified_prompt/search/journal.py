"""The search directory: config.yaml first, search.jsonl as candidates are scored, then
best.yaml, report.md and, last, result.json (its presence marks a finished search).

Every whole file is written atomically (unified_prompt.artifacts); search.jsonl is appended
one flushed line per candidate, like the runner's events.jsonl, so a killed search leaves
every candidate it paid for. Rows carry no clock times, so the same seed writes the same file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import append_jsonl, atomic_write_json, atomic_write_text
from unified_prompt.errors import RunDirectoryError


class SearchDir:
    CONFIG = "config.yaml"
    CANDIDATES = "search.jsonl"
    BEST = "best.yaml"
    REPORT = "report.md"
    RESULT = "result.json"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.created = False

    def file(self, name: str) -> Path:
        return self.path / name

    def open(self, config_yaml: str) -> None:
        """Create the folder; refuse one that holds anything (a search is not resumed)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"--out {self.path} exists and is not a directory")
        if self.path.exists() and any(self.path.iterdir()):
            what = ("a finished search" if self.file(self.RESULT).exists() else
                    "an unfinished search" if self.file(self.CANDIDATES).exists() else "files")
            raise RunDirectoryError(f"--out {self.path} already holds {what}; choose another folder")
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(self.CONFIG), config_yaml)

    def append(self, row: dict[str, Any]) -> None:
        append_jsonl(self.file(self.CANDIDATES), row)

    def finish(self, best_yaml: str, report: str, result: dict[str, Any]) -> None:
        atomic_write_text(self.file(self.BEST), best_yaml)
        atomic_write_text(self.file(self.REPORT), report)
        atomic_write_json(self.file(self.RESULT), result)  # last: marks "finished"

    def discard_if_empty(self) -> None:
        """Remove a folder this search created if it failed before scoring anything."""
        if self.created and self.path.is_dir() and not self.file(self.CANDIDATES).exists():
            shutil.rmtree(self.path, ignore_errors=True)


class Journal:
    """Every candidate and its score, in memory and (with --out) in search.jsonl."""

    def __init__(self, folder: SearchDir | None) -> None:
        self.folder = folder
        self.rows: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        row = {"i": len(self.rows), **row}
        self.rows.append(row)
        if self.folder is not None:
            self.folder.append(row)
