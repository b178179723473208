"""Perplexity on hf (tiny Llama): the run's figure equals exp(-mean token log-prob) of the
targets as score() computes them at the mask, through a different code path."""

from __future__ import annotations

import json
import math

from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.runner import Experiment
from unified_prompt.testing.tiny import tiny_model

PAIRS = [("the film was a delight", "great fun"), ("a dull and empty story", "boring film"),
         ("sharp writing", "very 差 acting")]


def test_run_reports_the_perplexity_score_gives(tmp_path, backend, llama):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": t, "target": y}) + "\n"
                            for i, (t, y) in enumerate(PAIRS)))
    exp = Experiment.from_dict({
        "task": "generation", "backend": {"name": "hf", "model": str(tiny_model("llama")),
                                          "options": {"hf": {"device": "cpu"}}},
        "data": {"files": {"train": str(path), "dev": str(path), "test": str(path)}},
        "prompt": {"template": "Review: {text}\nSummary: {mask}"},
        "eval": {"metrics": ["perplexity", "bleu"], "max_new_tokens": 3}})
    scores = exp.run().scores
    examples = [Example(str(i), {"text": t}, target=y) for i, (t, y) in enumerate(PAIRS)]
    prompts = PromptBuilder(exp.spec).render(examples)
    total, count = 0.0, 0
    for prompt, ex in zip(prompts, examples, strict=True):
        s = backend.score(llama, [prompt], [ex.target])
        total, count = total + float(s.logprob[0, 0]), count + int(s.n_tokens[0, 0])
    assert list(scores) == ["perplexity", "bleu"]
    assert math.isclose(scores["perplexity"], math.exp(-total / count), rel_tol=1e-4)
