"""A generation run with perplexity on a local backend over the tiny Llama, and the same
figure computed through score() (the target at the mask), for the hf and paddle tests."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from unified_prompt.data.example import Example
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.runner import Experiment
from unified_prompt.testing.tiny import tiny_model

PAIRS = [("the film was a delight", "great fun"), ("a dull and empty story", "boring film"),
         ("sharp writing", "very 差 acting")]


def run_and_score(tmp_path: Path, name: str, backend: Any, model: Any,
                  options: dict[str, Any]) -> tuple[dict[str, float], float]:
    """(the run's metrics, exp(-mean target-token log-prob) from backend.score)."""
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": t, "target": y}) + "\n"
                            for i, (t, y) in enumerate(PAIRS)))
    exp = Experiment.from_dict({
        "task": "generation", "backend": {"name": name, "model": str(tiny_model("llama")),
                                          "options": {name: options}},
        "data": {"files": {"train": str(path), "dev": str(path), "test": str(path)}},
        "prompt": {"template": "Review: {text}\nSummary: {mask}"},
        "eval": {"metrics": ["perplexity", "bleu"], "max_new_tokens": 3}})
    scores = exp.run().scores
    examples = [Example(str(i), {"text": t}, target=y) for i, (t, y) in enumerate(PAIRS)]
    prompts = PromptBuilder(exp.spec).render(examples)
    total, count = 0.0, 0
    for prompt, ex in zip(prompts, examples, strict=True):
        s = backend.score(model, [prompt], [ex.target])
        total, count = total + float(s.logprob[0, 0]), count + int(s.n_tokens[0, 0])
    return scores, math.exp(-total / count)
