"""Each strategy improves its own dev objective on a synthetic task with a known answer."""

from __future__ import annotations

import re

from unified_prompt.search import run_search
from unified_prompt.testing.fake import FakeBackend

MODEL = "fake-search"
#: The fake model's label probabilities stay near 1/2 whatever the prompt, so the margin
#: (the default "best" on real models) barely moves; these tasks are judged by accuracy.
ACC = {"select_by": "accuracy"}
INIT = " river"


def _vocab_word(i: int) -> str:
    backend = FakeBackend()
    return backend.vocabulary(backend.load_model(MODEL))[i]


def test_verbalizer_finds_the_hidden_label_words(make_task, tmp_path):
    spec = make_task({"verbalizer": {"positive": ["light"], "negative": ["dark"]}})
    result = run_search(spec, strategy="verbalizer", budget=200, out=tmp_path / "out",
                        options={**ACC, "dev_limit": 24, "probe_per_label": 8, "top_k": 60})
    assert result.dev["original"]["accuracy"] <= 0.6
    assert result.dev["best"]["accuracy"] >= 0.9
    assert result.best.verbalizer["positive"] == ["light"]  # the hidden word, read by top_tokens


def test_gradient_moves_towards_the_hidden_triggers(make_task, tmp_path):
    hidden = "Review: {text}" + _vocab_word(50) + _vocab_word(300) + "\nSentiment: {mask}"
    spec = make_task({"template": hidden})
    result = run_search(spec, strategy="gradient", budget=1500, out=tmp_path / "out",
                        options={**ACC, "dev_limit": 24, "triggers": 2, "iterations": 12,
                                 "candidates": 6, "batch": 8, "eval_batch": 12,
                                 "init": INIT})
    start = next(r for r in result.rows if r.get("iteration") == 0)
    # the swaps, not the starting triggers, did the work
    assert result.dev["best"]["accuracy"] >= start["accuracy"] + 0.2
    assert result.dev["best"]["accuracy"] >= result.dev["original"]["accuracy"] + 0.1
    assert result.dev["best"]["accuracy"] >= 0.9


def test_rl_learns_the_hidden_prompt_words(make_task, tmp_path):
    spec = make_task({"template": "Review: {text} camera heavy\nSentiment: {mask}"})
    vocab = ["bright", "heavy", "river", "summer", "quiet", "road", "film", "camera"]
    result = run_search(spec, strategy="rl", budget=3000, out=tmp_path / "out",
                        options={**ACC, "dev_limit": 24, "vocab": vocab, "tokens": 2, "steps": 40,
                                 "samples": 4, "batch": 12, "check_every": 4})
    assert result.dev["best"]["accuracy"] >= result.dev["original"]["accuracy"] + 0.15
    assert result.dev["best"]["accuracy"] >= 0.9


def test_propose_refines_towards_the_hidden_instruction(make_task, tmp_path, extra_backends):
    spec = make_task({"template": "heavy summer camera\nReview: {text}\nSentiment: {mask}"})
    result = run_search(spec, strategy="propose", budget=2000, out=tmp_path / "out",
                        options={**ACC, "dev_limit": 24, "rounds": 12, "per_round": 3,
                                 "seed_instructions": ["road road road"],
                                 "proposer": {"backend": "scripted"}})
    assert result.dev["best"]["accuracy"] >= result.dev["original"]["accuracy"] + 0.15
    assert result.dev["best"]["accuracy"] >= 0.9
    # refinement: the proposer only edits the best instruction it is shown, one word a
    # round, so reaching the hidden instruction takes several rounds of feedback
    rows = [r for r in result.rows if r.get("round")]
    first = max(r["accuracy"] for r in rows if r["round"] <= 1)
    assert max(r["accuracy"] for r in rows) > first
    assert result.extras["proposer"]["backend"] == "scripted"


def _scripted_propose(make_task, tmp_path, hidden: str, *, mode: str, budget: int,
                      rounds: int, origin: str):
    """A propose search by the scripted proposer towards the hidden template, which must
    climb it with every proposal usable; returns the result and the proposal rows."""
    spec = make_task({"template": hidden})
    result = run_search(spec, strategy="propose", budget=budget, out=tmp_path / "out",
                        options={**ACC, "dev_limit": 24, "rounds": rounds, "per_round": 3,
                                 "mode": mode, "proposer": {"backend": "scripted"}})
    assert result.dev["best"]["accuracy"] >= result.dev["original"]["accuracy"] + 0.15
    assert result.dev["best"]["accuracy"] >= 0.9
    assert result.best.origin == origin
    assert result.extras["proposer"]["rejected"] == []
    return result, [r for r in result.rows if r.get("round")]


def test_propose_in_template_mode_rewrites_whole_templates(make_task, tmp_path,
                                                          extra_backends):
    result, rows = _scripted_propose(
        make_task, tmp_path, "heavy summer camera\nReview: {text}\nSentiment: {mask}",
        mode="template", budget=2000, rounds=12, origin="propose:template")
    assert result.best.template.endswith("\nReview: {text}\nSentiment: {mask}")
    assert rows and all(r["origin"] == "propose:template" for r in rows)


def test_propose_in_segments_mode_rewrites_the_templates_own_wording(make_task, tmp_path,
                                                                   extra_backends):
    result, rows = _scripted_propose(
        make_task, tmp_path, "heavy summer camera: {text}\nSentiment: {mask}",
        mode="segments", budget=2500, rounds=16, origin="propose:segment")
    # only the wording changed: the slots and the whitespace around the words stay put
    assert re.fullmatch(r"[a-z]+ [a-z]+ [a-z]+: \{text\}\n[^{}\n]+: \{mask\}",
                        result.best.template), result.best.template
    assert {r["segment"] for r in rows} == {"before each text input",
                                            "between the text input and the label"}


def test_segments_are_the_wording_before_each_field_and_the_mask():
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.strategies.propose import segment_candidate, template_segments

    template = "Review: {text}\nSentiment: {mask} (end)"
    assert template_segments(template) == [(0, "before each text input"),
                                           (2, "between the text input and the label")]
    assert template_segments("{text} {mask}") == []  # no words to rewrite
    base = Candidate(template, (("positive", ("good",)), ("negative", ("bad",))))
    cand = segment_candidate(base, 2, ' "Overall verdict:" 81.0\nmore')
    assert cand is not None and cand.template == "Review: {text}\nOverall verdict: {mask} (end)"
    movie = segment_candidate(base, 0, 'Movie review:" 80')  # the open quote it continues
    assert movie is not None and movie.template == "Movie review: {text}\nSentiment: {mask} (end)"
    copied = segment_candidate(base, 0, "Film review: 80.5")  # the score is not wording
    assert copied is not None and copied.template.startswith("Film review: {text}")
    assert segment_candidate(base, 0, '"') is None  # empty
    assert segment_candidate(base, 0, "a {mask} here") is None  # a slot
    assert segment_candidate(base, 0, "x" * 81) is None  # not a heading


def test_segments_mode_takes_no_seed_instructions_and_needs_wording(make_task, tmp_path,
                                                                    extra_backends):
    import pytest

    from unified_prompt.errors import UserInputError

    with pytest.raises(UserInputError, match="seed_instructions"):
        run_search(make_task({}), strategy="propose", budget=500,
                   options={"mode": "segments", "seed_instructions": ["Be kind."]})
    spec = make_task({}, {"template": "{text} {mask}"})
    with pytest.raises(UserInputError, match="no wording"):
        run_search(spec, strategy="propose", budget=500, options={
            "mode": "segments", "dev_limit": 8, "proposer": {"backend": "scripted"}})


def test_demos_search_finds_a_better_demonstration_set(make_task, tmp_path):
    def hidden(train):
        assert {e.id: e.label for e in train if e.id in ("t0", "t6")} == {
            "t0": "negative", "t6": "positive"}
        return {"demonstrations": {"selection": "fixed", "ids": ["t0", "t6"]}}

    words = {"verbalizer": {"positive": ["light"], "negative": ["dark"]}}
    spec = make_task(hidden, words, n_train=4)
    result = run_search(spec, strategy="demos", budget=1000, out=tmp_path / "out",
                        options={**ACC, "dev_limit": 24, "pool_per_label": 4, "steps": 20})
    assert result.dev["best"]["accuracy"] >= result.dev["original"]["accuracy"] + 0.15
    assert result.best.demos is not None
    best = result.best_spec.prompt.demonstrations
    assert best.selection in ("fixed", "similarity")


def test_a_proposed_template_needs_the_fields_and_the_mask():
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.strategies.propose import template_candidate

    base = Candidate("Review: {text}\nSentiment: {mask}", (("positive", ("good",)),))
    ok = template_candidate(base, ' "Movie review: {text}\\nSentiment: {mask}"\nAccuracy: 90')
    assert ok is not None and ok.template == "Movie review: {text}\nSentiment: {mask}"
    assert template_candidate(base, "Review: {text}") is None  # no mask
    assert template_candidate(base, "Sentiment: {mask}") is None  # no field
    assert template_candidate(base, "{title}: {text} {mask}") is None  # a field it lacks
