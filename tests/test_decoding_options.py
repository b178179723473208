"""eval.decoding: sampled decoding reproducible per seed, n outputs per prompt written to
predictions.jsonl with metrics on the first and <metric>_best_of_<n> on the best, the
nucleus and best-of-n arithmetic on known numbers, bad values refused by key (exit 2)."""

import json

import numpy as np
import pytest

from tests.conftest import run_cli
from unified_prompt.backend import GenerationParams
from unified_prompt.config import build_spec
from unified_prompt.errors import ConfigError
from unified_prompt.metrics import generation_metrics
from unified_prompt.prompts.template import Template
from unified_prompt.registry import create_backend
from unified_prompt.runner import Experiment
from unified_prompt.sampling import best_of_n, nucleus_probs

PAIRS = [("the film was a delight", "great fun"), ("a dull and empty story", "boring film"),
         ("sharp writing and warm acting", "great acting"), ("it drags on and on", "too long")]


def gen_data(tmp_path, decoding=None):
    rows = [{"id": f"t{i}", "text": t, "target": y} for i, (t, y) in enumerate(PAIRS)]
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"task": "generation", "seed": 3, "backend": {"name": "fake", "model": "fake-gen"},
            "data": {"files": {"train": str(path), "test": str(path)}},
            "prompt": {"template": "Review: {text}\nSummary: {mask}"},
            "eval": {"metrics": ["rouge_l", "bleu", "exact_match"], "max_new_tokens": 4,
                     **({"decoding": decoding} if decoding else {})}}


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    assert nucleus_probs(logits, 1.0, 1.0)[0] == pytest.approx([0.5, 0.3, 0.15, 0.05])
    # 0.5 < 0.7, 0.5 + 0.3 reaches it: the two best, renormalised
    assert nucleus_probs(logits, 1.0, 0.7)[0] == pytest.approx([0.625, 0.375, 0, 0])
    assert nucleus_probs(logits, 1.0, 0.5)[0] == pytest.approx([1, 0, 0, 0])
    # temperature 0.5 squares the odds before the cut
    sq = np.array([0.25, 0.09, 0.0225, 0.0025]) / 0.365
    assert nucleus_probs(logits, 0.5, 1.0)[0] == pytest.approx(sq)


def test_best_of_n_picks_per_example_and_per_metric():
    refs = ["great fun", "boring film"]
    cands = [["bad", "great fun", "great"], ["boring film", "film", "x"]]
    got = best_of_n(lambda r, h: generation_metrics(r, h, ["exact_match", "rouge_l"]),
                    refs, cands)
    assert got == {"exact_match_best_of_3": 1.0, "rouge_l_best_of_3": 1.0}
    cands = [["bad", "great", "x"], ["film", "boring", "y"]]
    got = best_of_n(lambda r, h: generation_metrics(r, h, ["exact_match", "rouge_l"]),
                    refs, cands)
    # "great" vs "great fun": P 1, R 0.5 -> F 2/3; "film"/"boring" vs "boring film": 2/3
    assert got == {"exact_match_best_of_3": 0.0, "rouge_l_best_of_3": pytest.approx(2 / 3,
                                                                                  abs=1e-6)}


def test_fake_sampling_is_seeded_and_top_p_to_zero_is_greedy():
    backend = create_backend("fake")
    model = backend.load_model("fake-gen")
    prompts = [Template("Review: {text}\nSummary: {mask}").render({"text": t}) for t, _ in PAIRS]

    def gen(**kw):
        return backend.generate(model, prompts, GenerationParams(max_new_tokens=6, stop=(), **kw))

    greedy = gen()
    a, b = gen(temperature=1.5, seed=1), gen(temperature=1.5, seed=1)
    assert a == b and a != gen(temperature=1.5, seed=2) and a != greedy
    assert gen(temperature=1.5, seed=1, top_p=1e-9) == greedy
    three = gen(temperature=1.5, seed=1, n=3)
    assert len(three) == 3 * len(prompts)
    assert len({tuple(three[i:i + 3]) for i in range(0, 12, 3)}) > 1


def test_n_outputs_written_and_best_of_n_scored(tmp_path):
    spec = gen_data(tmp_path, {"temperature": 1.5, "top_p": 0.95, "n": 3, "seed": 7})
    result = Experiment.from_dict(spec).run(out=tmp_path / "run", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text()
            .splitlines()]
    assert all(len(r["predictions"]) == 3 and r["prediction"] == r["predictions"][0]
               for r in rows)
    refs = [r["target"] for r in rows]
    firsts = generation_metrics(refs, [r["prediction"] for r in rows],
                                ["rouge_l", "bleu", "exact_match"])
    metrics = result.metrics["metrics"]
    assert {k: metrics[k] for k in firsts} == firsts
    want = best_of_n(lambda r, h: generation_metrics(r, h, ["rouge_l", "bleu", "exact_match"]),
                     refs, [r["predictions"] for r in rows])
    assert {k: metrics[k] for k in want} == want
    assert metrics["rouge_l_best_of_3"] >= metrics["rouge_l"]
    # the same seed gives the same outputs; the default is greedy, one output
    again = Experiment.from_dict(spec).run(progress=False)
    assert [r["predictions"] for r in again.predictions] == [r["predictions"] for r in rows]
    greedy = Experiment.from_dict(gen_data(tmp_path)).run(progress=False)
    assert "predictions" not in greedy.predictions[0] and set(greedy.metrics["metrics"]) == {
        "rouge_l", "bleu", "exact_match"}


@pytest.mark.parametrize("decoding,key,words", [
    ({"top_p": 0}, "eval.decoding.top_p", "greater than 0"),
    ({"top_p": 1.5}, "eval.decoding.top_p", "less than or equal to 1"),
    ({"n": 0}, "eval.decoding.n", "greater than or equal to 1"),
    ({"n": 2}, "eval.decoding", "need sampling (temperature > 0)"),
    ({"temperature": -1}, "eval.decoding.temperature", "greater than or equal to 0"),
])
def test_bad_decoding_values_name_their_key(tmp_path, decoding, key, words):
    with pytest.raises(ConfigError) as err:
        build_spec(gen_data(tmp_path, decoding))
    assert (key, ) == tuple(k for k, _ in err.value.problems if k == key)
    assert words in str(err.value)


def test_cli_refuses_n_without_sampling_with_exit_2(tmp_path):
    import yaml

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(gen_data(tmp_path, {"n": 4})))
    res = run_cli("validate", str(path))
    assert res.returncode == 2
    assert "eval.decoding: n: 4 outputs need sampling" in res.stderr + res.stdout
