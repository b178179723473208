"""Synthetic tasks whose right answer is known: labels are what the fake model itself says
under a hidden prompt (template, label words or demonstrations), and each search starts
from a different prompt. A strategy that works finds its way towards the hidden one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unified_prompt import registry
from unified_prompt.config import build_spec
from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.testing.fake import FakeBackend

WORDS = ("film", "story", "actor", "scene", "plot", "music", "camera", "light", "dark", "quiet",
         "loud", "slow", "fast", "warm", "cold", "bright", "heavy", "gentle", "sharp", "simple",
         "strange", "old", "young", "long", "short", "river", "city", "garden", "window", "road",
         "winter", "summer", "morning", "evening")
MODEL = "fake-search"
TEMPLATE = "Review: {text}\nSentiment: {mask}"


class CountingBackend(FakeBackend):
    """The fake backend, counting calls as the search counts them (one per prompt), and
    recording which example ids each call touched."""

    name = "counting"
    calls = 0
    log: list[list[str | None]] = []

    def _count(self, prompts: Any) -> None:
        type(self).calls += len(prompts)
        type(self).log.append([getattr(p, "example_id", None) for p in prompts])

    def score(self, model, prompts, words, **kw):
        self._count(prompts)
        return super().score(model, prompts, words, **kw)

    def generate(self, model, prompts, params, **kw):
        self._count(prompts)
        return super().generate(model, prompts, params, **kw)

    def top_tokens(self, model, prompts, k, **kw):
        self._count(prompts)
        return super().top_tokens(model, prompts, k, **kw)

    def token_gradients(self, model, items, setup, triggers):
        self._count([i.prompt for i in items])
        return super().token_gradients(model, items, setup, triggers)


PROPOSER_WORDS = ["bright", "heavy", "river", "summer", "quiet", "road", "film", "camera"]


class ScriptedProposer(FakeBackend):
    """A proposer that reads the meta-prompt as an LLM would be asked to: it takes the best
    earlier three-word instruction shown (they come worst to best) and changes one word of
    it, or writes three random words when none is shown. Seeded by the generation seed."""

    name = "scripted"

    def generate(self, model, prompts, params, **kw):
        out = []
        for n, prompt in enumerate(prompts):
            text = prompt.segments[0].text
            if text.endswith('scores higher: "'):  # mode: segments
                out.append(self._segment(text, np.random.default_rng([params.seed or 0, n])))
                continue
            if "\nTemplate: " in text:  # mode: template
                out.append(self._template(text, np.random.default_rng([params.seed or 0, n])))
                continue
            shown = [line[len("Instruction: "):].split() for line in text.splitlines()
                     if line.startswith("Instruction: ")]
            shown = [words for words in shown if len(words) == 3]
            rng = np.random.default_rng([params.seed or 0, n])
            best = shown[-1] if shown else []
            if len(best) != 3:
                words = list(rng.choice(PROPOSER_WORDS, size=3))
            else:
                words = list(best)
                words[int(rng.integers(3))] = str(rng.choice(PROPOSER_WORDS))
            out.append(" ".join(words) + "\nsomething after the first line")
        return out

    @staticmethod
    def _segment(text: str, rng: np.random.Generator) -> str:
        """The best wording shown ("words" score, worst to best) with one word of a
        three-word wording changed, or three words written, closing the open quote."""
        shown = [line[1:line.index('"', 1)] for line in text.splitlines()
                 if line.startswith('"') and line.count('"') >= 2]
        words = shown[-1].rstrip(":").split() if shown else []
        if len(words) == 3 and all(w in PROPOSER_WORDS for w in words):
            words[int(rng.integers(3))] = str(rng.choice(PROPOSER_WORDS))
        else:
            words = list(rng.choice(PROPOSER_WORDS, size=3))
        return " ".join(words) + ':" 99\nanother line'

    @staticmethod
    def _template(text: str, rng: np.random.Generator) -> str:
        """The best template shown with one word of its three-word first line changed
        (or such a line written above it), as one line with \\n for line breaks."""
        shown = [line[len("Template: "):] for line in text.splitlines()
                 if line.startswith("Template: ") and "{text}" in line]
        lines = shown[-1].split("\\n")
        first = lines[0].split()
        if len(first) == 3 and all(w in PROPOSER_WORDS for w in first):
            first[int(rng.integers(3))] = str(rng.choice(PROPOSER_WORDS))
            lines[0] = " ".join(first)
        else:
            lines.insert(0, " ".join(rng.choice(PROPOSER_WORDS, size=3)))
        return "\\n".join(lines) + "\nAccuracy: 99"


class NoGradientsBackend(FakeBackend):
    name = "nograd"
    capabilities = FakeBackend.capabilities.__class__(
        **{**FakeBackend.capabilities.__dict__, "token_gradients": False, "top_tokens": False})


@pytest.fixture
def extra_backends(monkeypatch):
    """Make the test backends resolvable by name, like installed backends."""
    original = registry.backend_class
    extra = {"counting": CountingBackend, "nograd": NoGradientsBackend,
             "scripted": ScriptedProposer}
    monkeypatch.setattr(registry, "backend_class",
                        lambda name: extra[name] if name in extra else original(name))
    CountingBackend.calls = 0
    CountingBackend.log = []
    return extra


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 7)))) for _ in range(n)]


def label_examples(texts: list[str], spec_data: dict[str, Any], pool: list[Example] = (),
                   prefix: str = "x") -> list[Example]:
    """Label each text by the fake model's own choice under the spec's prompt."""
    spec = build_spec(spec_data)
    backend = FakeBackend()
    model = backend.load_model(MODEL)
    examples = [Example(f"{prefix}{i}", {"text": t}) for i, t in enumerate(texts)]
    builder = PromptBuilder(spec, pool)
    scores = builder.verbalizer.label_scores(
        backend.score(model, builder.render(examples), builder.verbalizer.flat_words))
    labels = [builder.verbalizer.labels[int(j)] for j in np.argmax(scores, axis=1)]
    return [Example(e.id, e.fields, label=lab) for e, lab in zip(examples, labels, strict=True)]


def _balanced(examples: list[Example], n_per_label: int) -> list[Example]:
    out, seen = [], {}
    for e in examples:
        if seen.get(e.label, 0) < n_per_label:
            out.append(e)
            seen[e.label] = seen.get(e.label, 0) + 1
    assert all(v == n_per_label for v in seen.values()) and len(seen) == 2, seen
    return out


def _write(folder: Path, name: str, examples: list[Example]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"id": e.id, "text": e.text, "label": e.label}) + "\n"
                            for e in examples), encoding="utf-8")
    return path


def base_spec(folder: Path, backend: str = "fake", **prompt: Any) -> dict[str, Any]:
    return {"task": "classification", "seed": 11, "backend": {"name": backend, "model": MODEL},
            "data": {"files": {s: str(folder / f"{s}.jsonl") for s in ("train", "dev", "test")}},
            "prompt": {"template": TEMPLATE,
                       "verbalizer": {"positive": ["film"], "negative": ["story"]}, **prompt}}


@pytest.fixture
def make_task(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """make_task(hidden_prompt=..., start_prompt=...) -> a spec dict over labelled files.

    The train split is labelled under the start prompt's rule when the hidden prompt uses
    demonstrations (so demonstrations carry the answers a reader would give), else under
    the hidden prompt; dev and test always under the hidden prompt.
    """

    def make(hidden: dict[str, Any] | Callable[[list[Example]], dict[str, Any]],
             start: dict[str, Any] | None = None, *, n_train: int = 12,
             n_dev: int = 12, n_test: int = 12, seed: int = 0, backend: str = "fake"
             ) -> dict[str, Any]:
        folder = tmp_path / f"task{seed}"
        folder.mkdir(exist_ok=True)
        rng = np.random.default_rng(seed)
        start_spec = base_spec(folder, backend, **(start or {}))
        uses_demos = callable(hidden) or "demonstrations" in hidden
        if uses_demos:
            train_rule = start_spec
        else:
            train_rule = base_spec(folder, "fake", **{**start_spec["prompt"], **hidden})
        train = _balanced(label_examples(_texts(rng, 400), _no_demos(train_rule), prefix="t"),
                          n_train)
        _write(folder, "train", train)
        if callable(hidden):
            hidden = hidden(train)
        hidden_spec = base_spec(folder, "fake", **{**start_spec["prompt"], **hidden})
        rest = label_examples(_texts(rng, 600), hidden_spec, train, prefix="e")
        dev = _balanced(rest[:300], n_dev)
        test = _balanced(rest[300:], n_test)
        _write(folder, "dev", [Example("d" + e.id, e.fields, e.label) for e in dev])
        _write(folder, "test", [Example("s" + e.id, e.fields, e.label) for e in test])
        return start_spec

    return make


def _no_demos(data: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    out["prompt"].pop("demonstrations", None)
    return out


def rows(folder: Path) -> list[dict[str, Any]]:
    text = (folder / "search.jsonl").read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines() if x]
