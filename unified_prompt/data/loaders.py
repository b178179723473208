"""JSONL / CSV / TSV files into Examples, with errors that name the file and line."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from unified_prompt.data.conversations import MESSAGES, conversation_example
from unified_prompt.data.example import Example
from unified_prompt.errors import DataError

_SPECIAL = ("id", "label", "target")
#: The qa task's extra column: the acceptable answers.
_QA_SPECIAL = (*_SPECIAL, "answers")


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    for fmt, names in (("jsonl", (".jsonl", ".json", ".ndjson")), ("csv", (".csv",)),
                       ("tsv", (".tsv", ".tab"))):
        if any(s in names for s in suffixes):
            return fmt
    raise DataError("cannot tell the format from the file name; set data.format "
                    "(jsonl, csv or tsv)", path=str(path))


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) with line endings kept (csv needs them); a leading UTF-8 BOM is
    dropped, and a byte that is not UTF-8 is a DataError naming its line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise DataError("is a directory, not a data file", path=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror})", path=str(path)) from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise DataError("not UTF-8 text (save the file as UTF-8)", path=str(path),
                                line=lineno) from None
            yield lineno, text


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _rows(path: Path, fmt: str, columns: Mapping[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs; raises DataError on the first unreadable line."""
    if fmt == "jsonl":
        for lineno, line in _decoded_lines(path):
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_constant=_no_constants)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON ({exc.msg} at column {exc.colno})",
                                path=str(path), line=lineno) from None
            except (ValueError, RecursionError) as exc:
                raise DataError(f"not valid JSON ({exc})", path=str(path), line=lineno) from None
            if not isinstance(row, dict):
                raise DataError(f"expected a JSON object, got {type(row).__name__}",
                                path=str(path), line=lineno)
            yield lineno, row
        return
    numbered = _decoded_lines(path)
    current = {"line": 1}

    def lines() -> Iterator[str]:
        for lineno, text in numbered:
            current["line"] = lineno
            yield text

    reader = csv.DictReader(lines(), delimiter="\t" if fmt == "tsv" else ",")
    try:
        if not reader.fieldnames:
            raise DataError("empty file: no header row", path=str(path), line=1)
        for name, col in columns.items():
            if col not in reader.fieldnames:
                raise DataError(f"data.fields.{name}: no column {col!r} (the header has "
                                f"{', '.join(reader.fieldnames)})", path=str(path), line=1)
        for row in reader:
            if None in row:
                raise DataError(f"{len(reader.fieldnames) + len(row[None])} columns, the "
                                f"header has {len(reader.fieldnames)}",
                                path=str(path), line=reader.line_num)
            yield current["line"], row
    except csv.Error as exc:
        raise DataError(f"malformed {fmt.upper()}: {exc}", path=str(path),
                        line=current["line"]) from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_text(value: Any) -> bool:
    """Strings and numbers are text; null, booleans, lists and objects are not."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {type(None): "null", bool: "a boolean", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _answers(value: Any, column: str) -> tuple[str, ...]:
    """A qa row's answers: a string, a list of strings, or SQuAD's {"text": [...], ...}."""
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    if _is_text(value):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"answers {column!r} must be a string or a list of strings, not "
                         f"{_kind(value)}")
    if not value:
        raise ValueError(f"answers {column!r} is an empty list; give at least one answer")
    for i, answer in enumerate(value):
        if not _is_text(answer) or _text(answer).strip() == "":
            raise ValueError(f"answers {column!r}: item {i} is "
                             f"{'empty' if _is_text(answer) else _kind(answer)}, not an answer")
    return tuple(_text(a) for a in value)


def checked_examples(examples: list[Example], path: Path) -> list[Example]:
    """A file's examples, refused when there are none or two share an id (the error names
    both lines; each example's meta carries its line)."""
    if not examples:
        raise DataError("no examples in file", path=str(path))
    seen: dict[str, int] = {}
    for ex in examples:
        if ex.id in seen:
            raise DataError(f"duplicate id {ex.id!r} (first on line {seen[ex.id]})",
                            path=str(path), line=ex.meta["line"])
        seen[ex.id] = ex.meta["line"]
    return examples


def load_file(path: str | Path, *, fmt: str = "auto", fields: Mapping[str, str] | None = None,
              label_map: Mapping[str, str] | None = None, task: str = "classification",
              require: tuple[str, ...] = (), id_prefix: str | None = None) -> list[Example]:
    """Read examples. `fields` maps example field -> column; other columns pass through.

    `require` lists example fields (e.g. "text", "label") every row must have.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    fields = dict(fields or {})
    special = _QA_SPECIAL if task == "qa" else _SPECIAL
    columns = {name: fields.get(name, name) for name in set(fields) | set(special)}
    label_map = {str(k): str(v) for k, v in (label_map or {}).items()}
    prefix = id_prefix if id_prefix is not None else path.stem
    examples: list[Example] = []
    conversation = fields.get(MESSAGES, MESSAGES)
    for lineno, row in _rows(path, fmt, fields):
        if task == "generation" and conversation in row:  # multi-turn chat data
            ex_id = row.get(columns["id"])
            examples.append(conversation_example(
                row, conversation, str(path), lineno,
                _text(ex_id) if _is_text(ex_id) and ex_id != "" else f"{prefix}-{lineno}"))
            continue
        for need in require:
            col = columns.get(need, need)
            if row.get(col) in (None, ""):
                raise DataError(f"missing {need!r} (column {col!r})", path=str(path), line=lineno)
        for name, col in fields.items():
            if col not in row:
                raise DataError(f"no {col!r} (data.fields.{name})", path=str(path), line=lineno)
        for name in ("label", "target", "id"):
            value = row.get(columns[name])
            if value is not None and not _is_text(value):
                raise DataError(f"{name} {columns[name]!r} must be text or a number, not "
                                f"{_kind(value)}", path=str(path), line=lineno)
        texts: dict[str, str] = {}
        not_text: dict[str, str] = {}
        mapped = {columns[name] for name in columns}
        named = [(key, key) for key in row if key not in mapped] + \
            [(name, col) for name, col in columns.items() if name not in special and col in row]
        for name, col in named:
            if _is_text(row[col]):
                texts[name] = _text(row[col])
            else:
                not_text[name] = _kind(row[col])
        label = row.get(columns["label"])
        label = None if label in (None, "") else _text(label)
        if label is not None and label_map:
            if label not in label_map:
                raise DataError(f"label {label!r} is not in data.label_map "
                                f"({', '.join(label_map)})", path=str(path), line=lineno)
            label = label_map[label]
        target = row.get(columns["target"])
        answers: tuple[str, ...] = ()
        if task == "qa":
            try:
                answers = _answers(row.get(columns["answers"]), columns["answers"])
            except ValueError as exc:
                raise DataError(str(exc), path=str(path), line=lineno) from None
            target = answers[0]
        ex_id = row.get(columns["id"])
        examples.append(Example(
            id=_text(ex_id) if ex_id not in (None, "") else f"{prefix}-{lineno}",
            fields=texts, label=label if task == "classification" else None,
            target=_text(target) if target not in (None, "") else None, answers=answers,
            meta={"source": str(path), "line": lineno, "not_text": not_text}))
    return checked_examples(examples, path)
