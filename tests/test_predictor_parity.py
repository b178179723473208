"""Predictor.from_run on a finished run predicts what the run's own evaluation predicted
(predictions.jsonl): chat prompts with a system message, sampled decoding (n, seed), multi-turn
conversations, ner and each task of a mixture; on the fake backend and the tiny hf Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_chat_prompts import CONVERSATIONS
from tests.test_mixture import mixture_spec
from tests.toy_runs import predictions
from unified_prompt.errors import UserInputError
from unified_prompt.prediction import Predictor
from unified_prompt.runner import Experiment

REVIEWS = [{"id": f"r{i}", "text": t, "target": g} for i, (t, g) in enumerate([
    ("a fine film with a warm heart", "good"), ("dull and far too long", "bad"),
    ("the cast shines in every scene", "good"), ("a mess from start to end", "bad")])]
SAMPLED = {"temperature": 0.9, "top_p": 0.95, "n": 2, "seed": 11}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _chat_run(tmp_path: Path, backend: dict, rows: list[dict], **extra) -> Path:
    data = _jsonl(tmp_path / "data.jsonl", rows)
    spec = {"task": "generation", "seed": 3, "backend": backend,
            "data": {"files": {"train": str(data), "test": str(data)}},
            "prompt": {"template": "Review: {text}\nSummary: {mask}", "chat": True,
                       "system": "Answer in one word."},
            "finetune": {"method": "lora", "r": 2, "lr": 0.02, "max_steps": 2, "batch_size": 2},
            "eval": {"max_new_tokens": 4}, **extra}
    Experiment.from_dict(spec).run(out=tmp_path / "run", progress=False)
    return tmp_path / "run"


def _predict(p: Predictor, inputs: list) -> list[dict]:
    """The predictions for `inputs`. The fake model names a (hashed) token only once it
    has read the word, as the run had while training: so it reads the inputs once first."""
    if p.spec.backend.name == "fake":
        p.predict(inputs)
    return p.predict(inputs)


def _outputs(rows: list[dict]) -> list[list[str]]:
    return [r.get("predictions") or [r["prediction"]] for r in rows]


def _fake() -> dict:
    return {"name": "fake", "model": "fake-gen"}


def _hf() -> dict:
    from unified_prompt.testing.tiny import tiny_model

    return {"name": "hf", "model": str(tiny_model("llama"))}


@pytest.mark.parametrize("backend", [_fake, _hf], ids=["fake", "hf"])
def test_chat_with_system_and_sampled_decoding(tmp_path, backend):
    run = _chat_run(tmp_path, backend(), REVIEWS, eval={"max_new_tokens": 4, "decoding": SAMPLED})
    made = predictions(run)
    assert all(len(r["predictions"]) == 2 for r in made)
    with Predictor.from_run(run) as p:
        out = _predict(p, [r["text"] for r in REVIEWS])
    assert [o["texts"] for o in out] == _outputs(made)
    assert [o["text"] for o in out] == [r["prediction"] for r in made]


@pytest.mark.parametrize("backend", [_fake, _hf], ids=["fake", "hf"])
def test_multi_turn_conversations(tmp_path, backend):
    run = _chat_run(tmp_path, backend(), CONVERSATIONS)
    made = predictions(run)
    with Predictor.from_run(run) as p:
        out = _predict(p, [{"messages": c["messages"][:-1]} for c in CONVERSATIONS])
    assert [o["text"] for o in out] == [r["prediction"] for r in made]


def test_ner_with_sampled_decoding(tmp_path):
    rows = [{"id": "a", "tokens": ["Ann", "met", "Bo", "in", "Oslo"],
             "tags": ["B-PER", "O", "B-PER", "O", "B-LOC"]},
            {"id": "b", "tokens": ["Paris", "is", "far"], "tags": ["B-LOC", "O", "O"]}]
    data = _jsonl(tmp_path / "ner.jsonl", rows)
    Experiment.from_dict({
        "task": "ner", "seed": 2, "backend": _fake(),
        "data": {"files": {"train": str(data), "test": str(data)}},
        "prompt": {"template": "Text: {text}\nEntities: {mask}", "entity_types": ["PER", "LOC"]},
        "finetune": {"method": "lora", "r": 2, "max_steps": 2, "batch_size": 2},
        "eval": {"max_new_tokens": 5, "decoding": SAMPLED}}).run(out=tmp_path / "run",
                                                                  progress=False)
    made = predictions(tmp_path / "run")
    with Predictor.from_run(tmp_path / "run") as p:
        out = _predict(p, [r["text"] for r in made])
    assert [o["texts"] for o in out] == _outputs(made)
    assert [[(e["type"], e["text"]) for e in o["entities"]] for o in out] == \
        [[(e["type"], e["text"]) for e in r["predicted"]] for r in made]


@pytest.mark.parametrize("backend", [_fake, _hf], ids=["fake", "hf"])
def test_each_task_of_a_mixture(tmp_path, backend):
    spec = mixture_spec(tmp_path, max_steps=4)
    spec["backend"] = backend()
    if spec["backend"]["name"] == "hf":
        spec["prompt"]["verbalizer"] = {"positive": ["good"], "negative": ["bad"]}
    Experiment.from_dict(spec).run(out=tmp_path / "run", progress=False)
    made = predictions(tmp_path / "run")
    texts = {}
    for name in ("sentiment", "topic"):
        folder = "sent" if name == "sentiment" else "topic"
        texts[name] = {json.loads(x)["id"]: json.loads(x)["text"] for x in
                       (tmp_path / folder / "test.jsonl").read_text().splitlines()}
    for name in ("sentiment", "topic"):
        rows = [r for r in made if r["task"] == name]
        with Predictor.from_run(tmp_path / "run", task=name) as p:
            out = p.predict([texts[name][r["id"]] for r in rows])
        assert [o["label"] for o in out] == [r["prediction"] for r in rows]
        for o, r in zip(out, rows, strict=True):
            assert o["scores"] == pytest.approx(r["scores"], abs=2e-6)
    with pytest.raises(UserInputError, match=r"mixture run: pass task= one of 'sentiment', "
                                              r"'topic'"):
        Predictor.from_run(tmp_path / "run")
    with pytest.raises(UserInputError, match=r"task 'nope'"):
        Predictor.from_run(tmp_path / "run", task="nope")


def test_a_conversation_input_needs_a_chat_generation_spec(tmp_path):
    run = _chat_run(tmp_path, _fake(), REVIEWS, prompt={
        "template": "Review: {text}\nSummary: {mask}"})
    with Predictor.from_run(run) as p, pytest.raises(
            UserInputError, match=r"input 1: a conversation \(messages\) needs prompt\.chat: true"):
        p.predict(["fine", {"messages": [{"role": "user", "content": "hi"}]}])
