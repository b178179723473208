"""The search directory, reproducibility, the best spec as a runnable spec, the CLI, and
clear refusals for strategies a backend cannot run."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from matplotlib.image import imread

from unified_prompt.cli import main
from unified_prompt.errors import CapabilityError, RunDirectoryError, UserInputError
from unified_prompt.figures.search import objective_points
from unified_prompt.registry import available
from unified_prompt.runner import Experiment
from unified_prompt.search import run_search
from unified_prompt.validation import validate_spec_file

FAST = {"rl": {"dev_limit": 12, "steps": 6, "batch": 6, "samples": 3, "check_every": 2},
        "gradient": {"dev_limit": 12, "iterations": 4, "batch": 4, "eval_batch": 6,
                     "candidates": 3},
        "propose": {"dev_limit": 12, "rounds": 2, "per_round": 2},
        "verbalizer": {"dev_limit": 12, "probe_per_label": 4},
        "demos": {"dev_limit": 12, "steps": 4, "random_sets": 2}}


@pytest.fixture
def spec(make_task):
    return make_task({"template": "Review: {text} camera heavy\nSentiment: {mask}"})


@pytest.mark.parametrize("strategy", sorted(FAST))
def test_same_seed_same_search(spec, tmp_path, strategy):
    a = run_search(spec, strategy=strategy, budget=400, out=tmp_path / "a", seed=5,
                   options=FAST[strategy])
    b = run_search(spec, strategy=strategy, budget=400, out=tmp_path / "b", seed=5,
                   options=FAST[strategy])
    assert (tmp_path / "a" / "search.jsonl").read_text() == \
        (tmp_path / "b" / "search.jsonl").read_text()
    assert (tmp_path / "a" / "best.yaml").read_text() == (tmp_path / "b" / "best.yaml").read_text()
    assert a.test == b.test


def test_another_seed_searches_differently(spec, tmp_path):
    runs = [run_search(spec, strategy="rl", budget=400, seed=s, options=FAST["rl"])
            for s in (1, 2)]
    assert [r["template"] for r in runs[0].rows] != [r["template"] for r in runs[1].rows]


def test_directory_and_best_spec_runs_as_is(spec, tmp_path):
    out = tmp_path / "out"
    result = run_search(spec, strategy="rl", budget=400, out=out, options=FAST["rl"])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["best.yaml", "config.yaml", "figures", "report.md", "result.json",
                     "search.jsonl"]
    rows = [json.loads(x) for x in (out / "search.jsonl").read_text().splitlines()]
    assert rows == result.rows and rows[0]["origin"] == "original"
    # the objective against calls spent: one point per uncached dev candidate, best so far
    calls, values, best_calls, best_values = objective_points(rows)
    dev = [r for r in rows if r["scope"] == "dev" and not r["cached"]]
    assert len(calls) == len(dev) > 1 and calls == sorted(calls)
    assert values == [r["accuracy"] for r in dev]
    assert best_values[-1] == max(r["accuracy"] for r in dev) and best_calls[-1] == max(calls)
    assert "![Dev objective against calls spent](figures/objective.png)" in \
        (out / "report.md").read_text()
    assert imread(out / "figures" / "objective.png").shape[:2] == (400, 700)
    assert all({"template", "verbalizer", "accuracy", "margin", "calls", "scope"} <= set(r)
               for r in rows)
    saved = json.loads((out / "result.json").read_text())
    assert saved["test"] == result.test and saved["usage"] == result.usage
    assert "## Top candidates on dev" in (out / "report.md").read_text()
    # best.yaml validates and `run` reproduces the search's final test accuracy
    validate_spec_file(out / "best.yaml")
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["prompt"]["template"] == result.best.template
    ran = Experiment.from_yaml(out / "best.yaml").run(progress=False)
    assert ran.scores["accuracy"] == pytest.approx(result.test["best"]["accuracy"])


def test_demos_best_spec_keeps_its_fixed_ids(make_task, tmp_path):
    hidden = {"demonstrations": {"selection": "fixed", "ids": ["t0", "t6"]}}
    spec = make_task(lambda train: hidden,
                     {"verbalizer": {"positive": ["light"], "negative": ["dark"]}}, n_train=4)
    result = run_search(spec, strategy="demos", budget=400, out=tmp_path / "o",
                        options={**FAST["demos"], "similarity": False, "pool_per_label": 4})
    demos = result.best_spec.prompt.demonstrations
    assert demos.selection == "fixed" and demos.ids
    ran = Experiment.from_yaml(tmp_path / "o" / "best.yaml").run(progress=False)
    assert ran.scores["accuracy"] == pytest.approx(result.test["best"]["accuracy"])


def test_out_directory_is_never_overwritten(spec, tmp_path):
    out = tmp_path / "o"
    run_search(spec, strategy="verbalizer", budget=400, out=out, options=FAST["verbalizer"])
    with pytest.raises(RunDirectoryError, match="finished search"):
        run_search(spec, strategy="verbalizer", budget=400, out=out,
                   options=FAST["verbalizer"])


def test_unsupported_strategy_names_primitive_and_backend(spec, extra_backends):
    spec["backend"]["name"] = "nograd"
    with pytest.raises(CapabilityError) as err:
        run_search(spec, strategy="gradient", budget=400)
    text = str(err.value)
    assert "token gradients" in text and "'nograd'" in text
    assert "strategies that run on 'nograd': propose, rl, demos" in text
    with pytest.raises(CapabilityError, match="top_tokens"):
        run_search(spec, strategy="verbalizer", budget=400)


def test_proposer_without_generation_is_refused(spec, extra_backends, monkeypatch):
    NoGradientsBackend = extra_backends["nograd"]
    monkeypatch.setattr(NoGradientsBackend, "capabilities", NoGradientsBackend.capabilities
                        .__class__(**{**NoGradientsBackend.capabilities.__dict__,
                                      "generate": False}))
    with pytest.raises(CapabilityError, match=r"proposer backend, which backend 'nograd'"):
        run_search(spec, strategy="propose", budget=400,
                   options={"proposer": {"backend": "nograd"}})


@pytest.mark.parametrize("strategy", sorted(FAST))
@pytest.mark.parametrize("name", ["hf", "paddle"])
def test_every_strategy_runs_unchanged_on_the_local_backends(spec, tmp_path, name, strategy):
    """The same search, only --backend switched, on a tiny random Llama: within budget, a
    best spec that validates. (Refusals for a missing primitive: the nograd tests above.)"""
    if name not in available():
        pytest.skip(f"backend {name!r} not installed")
    from unified_prompt.registry import backend_class
    from unified_prompt.testing.tiny import tiny_model

    spec["backend"] = {"name": name, "model": str(tiny_model("llama"))}
    caps = backend_class(name).capabilities
    assert caps.score and caps.generate and caps.top_tokens and caps.token_gradients
    result = run_search(spec, strategy=strategy, budget=200, out=tmp_path / "out",
                        options=FAST[strategy])
    assert result.backend == name and result.candidates >= 1
    assert 0 < result.usage["search"]["calls"] <= 200
    validate_spec_file(tmp_path / "out" / "best.yaml")
    assert set(result.test["best"]) >= {"accuracy", "macro_f1"}


def test_bad_input_is_a_user_error(spec):
    with pytest.raises(UserInputError, match="unknown search strategy 'nope'"):
        run_search(spec, strategy="nope", budget=400)
    with pytest.raises(UserInputError, match="unknown option"):
        run_search(spec, strategy="rl", budget=400, options={"stepz": 3})
    with pytest.raises(UserInputError, match=r"finetune\.method: none"):
        run_search({**spec, "finetune": {"method": "lora"}}, strategy="rl", budget=400)


def test_cli_search_dry_run_run_and_errors(spec, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    runner = CliRunner()
    dry = runner.invoke(main, ["search", str(path), "--strategy", "rl", "--budget", "300",
                               "--dry-run", "-o", "dev_limit=12"])
    assert dry.exit_code == 0, dry.output
    assert "search plan: rl" in dry.output and "fits the budget" in dry.output
    small = runner.invoke(main, ["search", str(path), "--strategy", "rl", "--budget", "5",
                                 "--dry-run", "-o", "dev_limit=12"])
    assert small.exit_code == 2 and "REFUSED" in small.output
    out = tmp_path / "out"
    done = runner.invoke(main, ["search", str(path), "--strategy", "rl", "--budget", "300",
                                "--out", str(out), "--seed", "3", "--no-progress",
                                *[f"-o{k}={v}" for k, v in FAST["rl"].items()]])
    assert done.exit_code == 0, done.output
    assert "test accuracy: original" in done.output and (out / "best.yaml").exists()
    bad = runner.invoke(main, ["search", str(path), "--strategy", "gradient", "--budget",
                               "300", "--backend", "nope"])
    assert bad.exit_code == 2 and "not installed" in bad.output
    unknown = runner.invoke(main, ["search", str(path), "--strategy", "rl", "--budget", "300",
                                   "-o", "colour=red"])
    assert unknown.exit_code == 2 and "search.rl.colour: unknown option" in unknown.output


def test_verbalizer_can_choose_the_calibration_too(make_task, tmp_path):
    spec = make_task({"verbalizer": {"positive": ["light"], "negative": ["dark"]}})
    result = run_search(spec, strategy="verbalizer", budget=400, out=tmp_path / "o",
                        options={**FAST["verbalizer"],
                                 "calibrations": ["none", "batch", "contextual"]})
    methods = {r.get("calibration") for r in result.rows if r["origin"] != "original"}
    assert methods == {"none", "batch", "contextual"}
    chosen = result.best.calibration
    assert result.best_spec.prompt.calibration.method == (chosen or "none")
    ran = Experiment.from_yaml(tmp_path / "o" / "best.yaml").run(progress=False)
    assert ran.scores["accuracy"] == pytest.approx(result.test["best"]["accuracy"])
