"""task: ner data: token/tag sequences or texts with entities, into Examples.

Three shapes, all becoming tokens with IOB2 tags (`Example.tokens`, `Example.tags`), the
text the model reads (`fields["text"]`, with each token's offset in `meta["offsets"]`) and
the target in the output format (unified_prompt.ner_format):

- JSONL `{"tokens": [...], "tags": [...]}`: BIO tags (IOB1, IOB2; BIOES read too); the text
  is the tokens joined by spaces (none between Chinese characters).
- JSONL `{"text": "...", "entities": [...]}`: each entity `{"type": T, "text": S}` (the
  first free occurrence of S), `{"type": T, "start": i, "end": j}` (character offsets, end
  exclusive) or `[i, j, T]`; the text is tokenized (each CJK character a token, runs of
  letters and digits, single punctuation) and each span must fall on token boundaries.
- CoNLL text (`format: conll`, or files named .conll / .bio / .iob): a token per line with
  its tag in the last column, a blank line between sentences, -DOCSTART- lines skipped.

Column names map through `data.fields` (e.g. `tags: ner_tags`). Errors name file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unified_prompt.data.example import Example
from unified_prompt.data.loaders import _decoded_lines, _kind, _rows, _text, checked_examples
from unified_prompt.errors import DataError
from unified_prompt.ner_format import (
    Entity,
    TagError,
    entity_list,
    join_tokens,
    render_entities,
    tags_from_entities,
    to_iob2,
    tokenize,
)

_CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".conllu")
_ROLES = ("id", "tokens", "tags", "text", "entities")


def ner_example(ex_id: str, text: str, tokens: Sequence[str], offsets: Sequence[int],
                tags: Sequence[str], fields: Mapping[str, str] | None = None,
                meta: Mapping[str, Any] | None = None) -> Example:
    """An Example from tokens at `offsets` in `text` with IOB2 `tags`."""
    pairs = entity_list(tokens, tags, text, offsets)
    return Example(id=ex_id, fields={**(fields or {}), "text": text},
                   target=render_entities(pairs), tokens=tuple(tokens), tags=tuple(tags),
                   meta={**(meta or {}), "offsets": list(offsets)})


def from_tags(ex_id: str, tokens: Any, tags: Any, **kw: Any) -> Example:
    """ValueError for tokens that are not a list of words or tags that do not fit them."""
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"tokens must be a non-empty list of strings, not {_kind(tokens)}"
                         if not isinstance(tokens, list) else "tokens is an empty list")
    for i, tok in enumerate(tokens):
        if not isinstance(tok, str) or not tok or tok != "".join(tok.split()):
            raise ValueError(f"token {i} is {tok!r}: tokens are non-empty strings without "
                             "spaces")
    if not isinstance(tags, list):
        raise ValueError(f"tags must be a list of strings, not {_kind(tags)}")
    if len(tags) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    text, offsets = join_tokens(tokens)
    return ner_example(ex_id, text, tokens, offsets, to_iob2(tags), **kw)


def _span(i: int, item: Any, text: str, used: list[tuple[int, int]]) -> tuple[str, int, int]:
    if isinstance(item, list) and len(item) == 3:
        start, end, kind = item
    elif isinstance(item, dict):
        kind = item.get("type", item.get("label"))
        if "start" in item or "end" in item:
            start, end = item.get("start"), item.get("end")
        elif isinstance(item.get("text"), str) and item["text"].strip():
            surface = item["text"].strip()
            start = text.find(surface)
            while start >= 0 and any(s < start + len(surface) and start < e for s, e in used):
                start = text.find(surface, start + 1)
            if start < 0:
                raise ValueError(f"entity {i}: text {surface!r} does not occur in the text"
                                 + (" (again)" if surface in text else ""))
            end = start + len(surface)
        else:
            raise ValueError(f"entity {i} needs text, or start and end")
    else:
        raise ValueError(f"entity {i} is {_kind(item)}: give {{type, text}}, {{type, start, "
                         "end}} or [start, end, type]")
    if not isinstance(kind, str) or not kind.strip():
        raise ValueError(f"entity {i} has no type (a 'type' string)")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
        raise ValueError(f"entity {i}: start and end must be integers")
    if not 0 <= start < end <= len(text):
        raise ValueError(f"entity {i} ({kind}) span {start}-{end} is outside the text "
                         f"({len(text)} characters) or empty")
    return kind.strip(), start, end


def from_spans(ex_id: str, text: Any, entities: Any, **kw: Any) -> Example:
    """ValueError for a span outside the text, off token boundaries, or overlapping."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string" if isinstance(text, str) else
                         f"text must be a string, not {_kind(text)}")
    if not isinstance(entities, list):
        raise ValueError(f"entities must be a list, not {_kind(entities)}")
    pieces = tokenize(text)
    tokens = [t for t, _ in pieces]
    offsets = [o for _, o in pieces]
    starts = {o: i for i, o in enumerate(offsets)}
    ends = {o + len(t): i + 1 for i, (t, o) in enumerate(pieces)}
    used: list[tuple[int, int]] = []
    spans: list[Entity] = []
    for i, item in enumerate(entities):
        kind, start, end = _span(i, item, text, used)
        surface = text[start:end]
        start += len(surface) - len(surface.lstrip())
        end -= len(surface) - len(surface.rstrip())
        if start not in starts or end not in ends:
            raise ValueError(f"entity {i} ({kind}) {text[start:end]!r} at {start}-{end} "
                             "does not start and end on token boundaries")
        if any(s < end and start < e for s, e in used):
            raise ValueError(f"entity {i} ({kind}) {text[start:end]!r} overlaps another")
        used.append((start, end))
        spans.append(Entity(kind, starts[start], ends[end]))
    return ner_example(ex_id, text, tokens, offsets,
                       tags_from_entities(len(tokens), spans), **kw)


def _conll_sentences(path: Path) -> list[tuple[int, list[str], list[str]]]:
    """(first line, tokens, tags) per sentence of a CoNLL column file."""
    out: list[tuple[int, list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    first = 0
    for lineno, raw in _decoded_lines(path):
        cols = raw.split()
        if not cols or cols[0] == "-DOCSTART-":
            if tokens:
                out.append((first, tokens, tags))
            tokens, tags = [], []
            continue
        if len(cols) < 2:
            raise DataError(f"one column ({cols[0]!r}); a CoNLL line is a token and its tag "
                            "(the last column)", path=str(path), line=lineno)
        if not tokens:
            first = lineno
        tokens.append(cols[0])
        tags.append(cols[-1])
    if tokens:
        out.append((first, tokens, tags))
    return out


def _checked_tags(tags: list[str], path: Path, first: int) -> None:
    """A CoNLL error names the line of the bad tag itself."""
    try:
        to_iob2(tags)
    except TagError as exc:
        raise DataError(str(exc), path=str(path), line=first + exc.index) from None


def load_ner_file(path: str | Path, *, fmt: str = "auto", fields: Mapping[str, str] | None = None,
                  id_prefix: str | None = None) -> list[Example]:
    path = Path(path)
    prefix = id_prefix if id_prefix is not None else path.stem
    if fmt == "conll" or (fmt == "auto" and path.suffix.lower() in _CONLL_SUFFIXES):
        examples = []
        for n, (first, tokens, tags) in enumerate(_conll_sentences(path)):
            _checked_tags(tags, path, first)
            examples.append(from_tags(f"{prefix}-{n}", tokens, tags,
                                      meta={"source": str(path), "line": first}))
    elif fmt == "jsonl" or (fmt == "auto"
                            and path.suffix.lower() in (".jsonl", ".json", ".ndjson")):
        examples = _jsonl(path, dict(fields or {}), prefix)
    else:
        raise DataError("task ner reads JSONL (tokens + tags, or text + entities) or CoNLL "
                        "column files; set data.format to jsonl or conll", path=str(path))
    return checked_examples(examples, path)


def _jsonl(path: Path, fields: dict[str, str], prefix: str) -> list[Example]:
    columns = {role: fields.get(role, role) for role in _ROLES}
    out = []
    for lineno, row in _rows(path, "jsonl", {}):
        raw_id = row.get(columns["id"])
        ex_id = _text(raw_id) if raw_id not in (None, "") else f"{prefix}-{lineno}"
        extra = {k: _text(v) for k, v in row.items() if k not in columns.values()
                 and isinstance(v, (str, int, float)) and not isinstance(v, bool)}
        extra |= {name: _text(row[col]) for name, col in fields.items()
                  if name not in _ROLES and col in row}
        meta = {"source": str(path), "line": lineno}
        try:
            if columns["tokens"] in row or columns["tags"] in row:
                ex = from_tags(ex_id, row.get(columns["tokens"]), row.get(columns["tags"]),
                               fields=extra, meta=meta)
            elif columns["text"] in row and columns["entities"] in row:
                ex = from_spans(ex_id, row[columns["text"]], row[columns["entities"]],
                                fields=extra, meta=meta)
            else:
                raise ValueError(f"a ner row has {columns['tokens']!r} and "
                                 f"{columns['tags']!r}, or {columns['text']!r} and "
                                 f"{columns['entities']!r} (map other names with data.fields); "
                                 f"this one has {', '.join(map(repr, row)) or 'nothing'}")
        except ValueError as exc:
            raise DataError(str(exc), path=str(path), line=lineno) from None
        out.append(ex)
    return out
