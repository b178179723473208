"""Perplexity of generation targets from raw-text log-probs: equal to what `score()` gives
for the same target at the mask, lowered by training on the targets, refused clearly where
a backend has no raw-text log-probs."""

import json
import math

import pytest

from tests.conftest import run_cli
from unified_prompt.runner import Experiment

PAIRS = [("the film was a delight", "great fun"), ("a dull and empty story", "boring film"),
         ("sharp writing and warm acting", "great acting"), ("it drags on and on", "too long")]


@pytest.fixture
def gen_spec(tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    for split, reps in (("train", 6), ("dev", 1), ("test", 1)):
        rows = [{"id": f"{split}-{r}-{i}", "text": t, "target": y}
                for r in range(reps) for i, (t, y) in enumerate(PAIRS)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    spec = tmp_path / "gen.yaml"
    spec.write_text(f"""\
task: generation
seed: 3
backend: {{name: fake, model: fake-gen}}
data:
  files: {{train: {folder}/train.jsonl, dev: {folder}/dev.jsonl, test: {folder}/test.jsonl}}
prompt:
  template: "Review: {{text}}\\nSummary: {{mask}}"
eval:
  metrics: [rouge_l, perplexity]
  max_new_tokens: 4
""")
    return spec


def _perplexity_from_scores(exp: Experiment, examples) -> float:
    """The same figure through score(): log P(target | prompt) summed over its tokens."""
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.registry import create_backend

    backend = create_backend("fake")
    model = backend.load_model(exp.spec.backend.model)
    prompts = PromptBuilder(exp.spec).render(examples)
    total, count = 0.0, 0
    for prompt, ex in zip(prompts, examples, strict=True):
        scores = backend.score(model, [prompt], [ex.target])
        total += float(scores.logprob[0, 0])
        count += int(scores.n_tokens[0, 0])
    return math.exp(-total / count)


def test_perplexity_equals_the_scored_targets(tmp_path, gen_spec):
    from unified_prompt.data.resolve import load_splits

    exp = Experiment.from_yaml(gen_spec)
    result = exp.run(out=tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert list(metrics) == ["rouge_l", "perplexity"] and metrics == result.scores
    test = load_splits(exp.spec.data, "generation", 3).test
    assert metrics["perplexity"] == pytest.approx(_perplexity_from_scores(exp, test), rel=1e-5)
    assert metrics["perplexity"] > 1.0


def test_training_on_the_targets_lowers_perplexity(gen_spec):
    zero = Experiment.from_yaml(gen_spec).run().scores["perplexity"]
    lora = Experiment.from_yaml(gen_spec, overrides=[
        "finetune={method: lora, r: 4, lr: 0.05, max_steps: 30, batch_size: 4}"]).run()
    assert lora.scores["perplexity"] < 0.8 * zero, (zero, lora.scores)


def test_perplexity_is_a_generation_metric_only(gen_spec, toy_spec):
    proc = run_cli("validate", str(toy_spec), "--set", "eval.metrics=[accuracy, perplexity]")
    assert proc.returncode == 2 and "'perplexity' is not a classification metric" in proc.stderr
    assert run_cli("validate", str(gen_spec)).returncode == 0


def test_backend_without_raw_text_is_refused_before_any_request(tmp_path, gen_spec):
    proc = run_cli("run", str(gen_spec), "--backend", "openai", "--set",
                   "backend.model=gpt-4o-mini", "--set",
                   "backend.options.openai.base_url=http://127.0.0.1:9/v1",
                   "--out", str(tmp_path / "o"), env={"OPENAI_API_KEY": "sk-test"})
    assert proc.returncode == 2, proc.stderr
    assert "perplexity needs raw-text log-probs" in proc.stderr and "'openai'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_search_refuses_to_maximise_perplexity(gen_spec):
    proc = run_cli("search", str(gen_spec), "--strategy", "propose", "--budget", "4",
                   "--dry-run", "--set", "eval.metrics=[perplexity, rouge_l]")
    assert proc.returncode == 2 and "perplexity is lower-is-better" in proc.stderr, proc.stderr
