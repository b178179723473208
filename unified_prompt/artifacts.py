"""Run directories and files written atomically.

A run directory holds: config.yaml (resolved, secrets redacted), events.jsonl,
checkpoints/ (while training), adapter/ (with manifest.json), predictions.jsonl,
report.md and, last of all, metrics.json: its presence marks a finished run. Every file
is written to a temporary name and renamed, so a killed run leaves whole files or none.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from unified_prompt.errors import RunDirectoryError

# A key names a secret when it is an API key, a password, a secret, an auth header or a
# singular "...token" (max_new_tokens is a count, not a credential).
SECRET_KEY = re.compile(r"(api[_-]?key|secret|passw(or)?d|authorization|organi[sz]ation|"
                        r"(^|[_-])token$|^token$)", re.IGNORECASE)
REDACTED = "<redacted>"


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite(data: Any) -> Any:
    """`data` with NaN and infinities as null: what we write stays strict JSON (a diverged
    loss would otherwise appear as NaN, which JSON readers other than Python's refuse)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def to_json(data: Any, **kwargs: Any) -> str:
    return json.dumps(finite(data), ensure_ascii=False, default=str, allow_nan=False, **kwargs)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, to_json(data, indent=2) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(to_json(r) + "\n" for r in rows))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """One flushed line at the end of a log (events.jsonl, search.jsonl): a killed process
    leaves every line before the one it was writing."""
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(to_json(row) + "\n")
        fh.flush()


def read_json(path: Path) -> Any:
    """A JSON file's data; a file that is not UTF-8 JSON is a UserInputError naming it."""
    from unified_prompt.errors import UserInputError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise UserInputError(f"{path}: JSON nested too deeply") from None


class atomic_dir:  # noqa: N801 - used as a context manager like a function
    """Build a directory under a temporary name; it appears at `path` only when complete."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.path)


def redact_secrets(data: Any) -> Any:
    """A copy with every value under a secret-looking key replaced."""
    if isinstance(data, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) and v not in (None, "") else
                    redact_secrets(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_secrets(v) for v in data]
    return data


def drop_redacted(data: Any) -> Any:
    """A stored config without its redacted secrets, so the environment supplies them."""
    if isinstance(data, dict):
        return {k: drop_redacted(v) for k, v in data.items() if v != REDACTED}
    if isinstance(data, list):
        return [drop_redacted(v) for v in data]
    return data


def flat_keys(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys ({"a": {"b": 1}} -> {"a.b": 1}): how a spec's settings
    are compared across runs and logged as tracking params."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flat_keys(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def spec_data(spec: Any) -> dict[str, Any]:
    """An ExperimentSpec as the data a run or search writes (config.yaml, best.yaml), with
    secrets redacted where a spec holds them: its backend options. The other mappings
    (verbalizer labels, label_map, fields) are the user's data, kept whatever their names,
    so the file runs as it is."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["backend"]["options"] = redact_secrets(data["backend"].get("options", {}))
    return data


def spec_yaml(spec: Any) -> str:
    """`spec_data` as YAML, the text of a config.yaml."""
    import yaml

    return yaml.safe_dump(spec_data(spec), sort_keys=False, allow_unicode=True, width=100)


class RunDir:
    """One run's output folder and the rules for creating, resuming and finishing it."""

    CONFIG = "config.yaml"
    METRICS = "metrics.json"
    EVENTS = "events.jsonl"
    PREDICTIONS = "predictions.jsonl"
    REPORT = "report.md"
    ADAPTER = "adapter"
    CHECKPOINTS = "checkpoints"
    STATE = "state.json"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def finished(self) -> bool:
        return self.file(self.METRICS).exists()

    def prepare(self, config_yaml: str, *, resume: bool) -> bool:
        """Create or reopen the folder; returns True when resuming an unfinished run."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"--out {self.path} exists and is not a directory")
        existing = self.file(self.CONFIG)
        if self.path.exists() and any(self.path.iterdir()):
            if not existing.exists():
                raise RunDirectoryError(
                    f"--out {self.path} is not empty and holds no run; choose another folder")
            if not resume:
                what = "a finished run" if self.finished else "an unfinished run (add --resume)"
                raise RunDirectoryError(f"--out {self.path} already holds {what}")
            if existing.read_bytes() != config_yaml.encode("utf-8"):
                raise RunDirectoryError(
                    f"--resume: the spec differs from the one in {existing}; a resumed run must "
                    "use the same spec (compare the files, or start a new --out)")
            self._repair_events()
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(existing, config_yaml)
        return False

    def discard_if_empty(self) -> None:
        """Remove a run folder this invocation created if it failed before saving any
        progress, so a mistake does not leave a run that demands --resume."""
        progress = (self.CHECKPOINTS, self.STATE, self.ADAPTER, self.METRICS)
        if self.path.is_dir() and not any(self.file(n).exists() for n in progress):
            shutil.rmtree(self.path, ignore_errors=True)

    def _repair_events(self) -> None:
        """Drop a half-written last line left by a killed process."""
        path = self.file(self.EVENTS)
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data[: data.rfind(b"\n") + 1]
            atomic_write_text(path, keep.decode("utf-8"))

    def log_event(self, kind: str, **data: Any) -> dict[str, Any]:
        event = {"time": round(time.time(), 3), "type": kind, **data}
        append_jsonl(self.file(self.EVENTS), event)
        return event

    def events(self) -> list[dict[str, Any]]:
        path = self.file(self.EVENTS)
        if not path.exists():
            return []
        rows = []
        for lineno, line in enumerate(path.read_bytes().decode("utf-8", "replace").splitlines(),
                                      start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                raise RunDirectoryError(f"{path}:{lineno}: not valid JSON") from None
        return rows

    def read_state(self) -> dict[str, Any]:
        path = self.file(self.STATE)
        if not path.exists():
            return {}
        state = read_json(path)
        if not isinstance(state, dict):
            raise RunDirectoryError(f"{path}: expected a JSON object")
        return state

    def write_state(self, **updates: Any) -> None:
        state = self.read_state()
        state.update(updates)
        atomic_write_json(self.file(self.STATE), state)
