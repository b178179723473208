"""Named-entity recognition as generation: the output format, read both ways.

Every NER example is a token sequence with IOB2 tags. The model is asked for its entities
on one line, in the order they occur, each once:

    TYPE: span; TYPE: span        (or `none` when the text names no entity)

One line, because generation stops at the first newline on every backend. Training and
demonstrations show exactly this, rendered from the gold tags (`render_entities`).

Reading a generation (`parse_entities`) is lenient in defined ways and counts what it
cannot read: items are split on `;`, `；` and newlines; a leading bullet (`-`, `*`, `•`,
`1.`, `1)`) is dropped; the type is matched to the allowed types ignoring case, before the
first `:` or `：`; quotes around the span are dropped. An item with no colon, an unknown
type or an empty span is a format error. `none` (any case) is not.

Placing a predicted span back on the tokens (`place_entities`) ignores spaces (so `New
York` and `NewYork`, `江泽民` and `江 泽民` are the same span) and falls back to ignoring
case; the span must start and end on token boundaries. Every such occurrence that does
not overlap a longer predicted entity gets the type. A span found nowhere is `unplaced`:
the scorer counts it as a false positive (unified_prompt.ner_metrics).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: CJK ideographs, kana, CJK punctuation and full-width forms: one token each, no spaces.
_CJK_CLASS = ("\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
              "\uff00-\uffef")
_CJK = re.compile(f"[{_CJK_CLASS}]")
_TOKEN = re.compile(f"[{_CJK_CLASS}]|(?:(?![{_CJK_CLASS}])\\w)+|\\S")
_ITEM_SPLIT = re.compile("[;；\n]")
_BULLET = re.compile(r"^(?:[-*•]|\d+[.)])\s+")
_QUOTES = "\"'`“”‘’「」『』"
NONE = "none"


@dataclass(frozen=True)
class Entity:
    """One entity: its type and its tokens [start, end) in a token sequence."""

    type: str
    start: int
    end: int


def tokenize(text: str) -> list[tuple[str, int]]:
    """(token, character offset): each CJK character alone, runs of other letters and
    digits, and every other non-space character alone."""
    return [(m.group(), m.start()) for m in _TOKEN.finditer(text)]


def _glued(left: str, right: str) -> bool:
    return bool(_CJK.match(left[-1:]) or _CJK.match(right[:1]))


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The text a model sees for `tokens` and each token's offset in it: a space between
    tokens, except next to a CJK character (Chinese text reads without spaces)."""
    parts: list[str] = []
    offsets: list[int] = []
    pos = 0
    for i, tok in enumerate(tokens):
        if i and not _glued(tokens[i - 1], tok):
            parts.append(" ")
            pos += 1
        offsets.append(pos)
        parts.append(tok)
        pos += len(tok)
    return "".join(parts), offsets


def span_text(tokens: Sequence[str], start: int, end: int) -> str:
    return join_tokens(tokens[start:end])[0]


# -- tags ------------------------------------------------------------------------------
class TagError(ValueError):
    """A tag that is not BIO; `index` is its position in the sequence."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"tag {index} {problem}")
        self.index = index
        self.problem = problem


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB2 tags from IOB1, IOB2 or BIOES tags (S- starts and E- continues an entity; an I-
    that does not continue the same type starts one, as IOB1 means). ValueError names the
    first tag of another form (a TagError)."""
    out: list[str] = []
    prev = "O"
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise TagError(i, f"is {type(tag).__name__}, not a string")
        if tag == "O":
            out.append("O")
            prev = "O"
            continue
        prefix, dash, kind = tag.partition("-")
        if not dash or prefix not in ("B", "I", "E", "S") or not kind.strip():
            raise TagError(i, f"{tag!r} is not a BIO tag (O, B-TYPE or I-TYPE; BIOES E-/S- "
                              "are read too)")
        starts = prefix in ("B", "S") or prev[2:] != kind
        out.append(("B-" if starts else "I-") + kind)
        prev = out[-1]
    return out


def entities_from_tags(tags: Sequence[str]) -> list[Entity]:
    """Entities of IOB2 tags, in order."""
    out: list[Entity] = []
    start, kind = None, ""
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            out.append(Entity(kind, start, i))
            start = None
        if tag.startswith("B-"):
            start, kind = i, tag[2:]
    return out


def tags_from_entities(n: int, entities: Iterable[Entity]) -> list[str]:
    tags = ["O"] * n
    for ent in entities:
        tags[ent.start] = f"B-{ent.type}"
        for i in range(ent.start + 1, ent.end):
            tags[i] = f"I-{ent.type}"
    return tags


# -- the output format ------------------------------------------------------------------
def entity_list(tokens: Sequence[str], tags: Sequence[str], text: str | None = None,
                offsets: Sequence[int] | None = None) -> list[tuple[str, str]]:
    """(type, text) of each entity in order, each pair once; the text is cut from `text`
    at the tokens' character `offsets` when given (so it reads as the input did)."""
    pairs = []
    for e in entities_from_tags(tags):
        if text is not None and offsets is not None and len(offsets) == len(tokens):
            surface = text[offsets[e.start]: offsets[e.end - 1] + len(tokens[e.end - 1])]
        else:
            surface = span_text(tokens, e.start, e.end)
        pairs.append((e.type, surface))
    return list(dict.fromkeys(pairs))


def render_entities(pairs: Sequence[tuple[str, str]]) -> str:
    """The target text: `TYPE: span; TYPE: span`, or `none`."""
    return "; ".join(f"{t}: {s}" for t, s in pairs) if pairs else NONE


def types_text(entity_types: Sequence[str] | Mapping[str, str]) -> str:
    """What `{entity_types}` in a template shows: `PER (person), LOC (place)` or `PER, LOC`."""
    if isinstance(entity_types, Mapping):
        return ", ".join(f"{t} ({d})" if d else t for t, d in entity_types.items())
    return ", ".join(entity_types)


@dataclass
class Parsed:
    """What a generation says: (type, span) pairs, the items that could not be read, and
    the number of items read in all (entities, `none`s and errors)."""

    entities: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    items: int = 0


def parse_entities(text: str, entity_types: Iterable[str]) -> Parsed:
    canonical = {t.casefold(): t for t in entity_types}
    out = Parsed()
    for raw in _ITEM_SPLIT.split(text):
        item = _BULLET.sub("", raw.strip()).strip()
        if not item:
            continue
        out.items += 1
        if item.rstrip(".。").strip().casefold() == NONE:
            continue
        match = re.search("[:：]", item)
        if match is None:
            out.errors.append(item)
            continue
        kind = canonical.get(item[: match.start()].strip().strip(_QUOTES).casefold())
        span = item[match.end():].strip().strip(_QUOTES).strip()
        if kind is None or not span:
            out.errors.append(item)
            continue
        if (kind, span) not in out.entities:
            out.entities.append((kind, span))
    return out


# -- placing spans on tokens -------------------------------------------------------------
def _squeeze(text: str) -> str:
    return "".join(text.split())


def _occurrences(tokens: Sequence[str], span: str) -> list[tuple[int, int]]:
    """Token ranges whose text equals `span` ignoring spaces (then ignoring case too)."""
    starts, ends, pos = {}, {}, 0
    for i, tok in enumerate(tokens):
        starts[pos] = i
        pos += len(tok)
        ends[pos] = i + 1
    joined, needle = "".join(tokens), _squeeze(span)
    for hay, pin in ((joined, needle), (joined.casefold(), needle.casefold())):
        if not pin or len(hay) != len(joined):
            continue
        found, at = [], hay.find(pin)
        while at >= 0:
            if at in starts and at + len(pin) in ends:
                found.append((starts[at], ends[at + len(pin)]))
            at = hay.find(pin, at + 1)
        if found:
            return found
    return []


def place_entities(tokens: Sequence[str], pairs: Sequence[tuple[str, str]]
                   ) -> tuple[list[str], list[tuple[str, str]]]:
    """IOB2 tags for predicted (type, span) pairs, and the pairs found nowhere in the text.
    Longer spans are placed first; a trailing `.` or `。` is dropped when only that fits."""
    taken = [False] * len(tokens)
    placed: list[Entity] = []
    unplaced: list[tuple[str, str]] = []
    for kind, span in sorted(pairs, key=lambda p: -len(_squeeze(p[1]))):
        ranges = _occurrences(tokens, span) or _occurrences(tokens, span.rstrip(".。"))
        free = [(s, e) for s, e in ranges if not any(taken[s:e])]
        if not free:
            unplaced.append((kind, span))
            continue
        for s, e in free:
            taken[s:e] = [True] * (e - s)
            placed.append(Entity(kind, s, e))
    return tags_from_entities(len(tokens), placed), unplaced
