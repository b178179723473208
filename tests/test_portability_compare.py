"""`unified-prompt compare` and `report` on finished runs: the agreement figures recomputed
here from predictions.jsonl and events.jsonl, the exit codes CI gates on, the report page."""

from __future__ import annotations

import json
import math

import pytest
from matplotlib.image import imread

from tests.conftest import run_cli
from tests.toy_runs import events, predictions, toy_data, toy_run
from unified_prompt.errors import UserInputError
from unified_prompt.portability import Tolerance, compare_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one spec differing only in the learning rate, and a zero-shot run."""
    root = tmp_path_factory.mktemp("runs")
    data = toy_data(root / "data")
    return {"a": toy_run(root / "a", data), "b": toy_run(root / "b", data, lr=0.021),
            "zs": toy_run(root / "zs", data, method="none")}


def _losses(run):
    return {e["step"]: e["loss"] for e in events(run) if e["type"] == "step"}


def test_a_run_agrees_with_itself(runs):
    pair = compare_runs([runs["a"], runs["a"]]).pairs[0]
    assert pair.ok and pair.same == pair.n_common == 12
    assert pair.prob_max == 0 and pair.loss.max_relative == 0 and pair.loss.first_divergence is None
    assert all(m["delta"] == 0 for m in pair.metrics.values())


def test_figures_equal_those_computed_from_the_run_files(runs):
    a, b = runs["a"], runs["b"]
    pair = compare_runs([a, b], Tolerance(loss=1e-3, loss_steps=5)).pairs[0]
    pa, pb = {r["id"]: r for r in predictions(a)}, {r["id"]: r for r in predictions(b)}
    diffs = [abs(pa[i]["scores"][k] - pb[i]["scores"][k]) for i in pa for k in pa[i]["scores"]]
    assert pair.prob_max == max(diffs) > 0
    assert pair.prob_mean == pytest.approx(math.fsum(diffs) / len(diffs))
    assert pair.same == sum(pa[i]["prediction"] == pb[i]["prediction"] for i in pa)
    la, lb = _losses(a), _losses(b)
    rel = {s: abs(la[s] - lb[s]) / abs(la[s]) for s in la}
    assert pair.loss.relative == pytest.approx(rel) and pair.loss.steps == 12
    assert pair.loss.max_relative_window == pytest.approx(max(rel[s] for s in range(1, 6)))
    assert pair.loss.first_divergence == min(s for s in rel if rel[s] > 1e-3)
    ma = json.loads((a / "metrics.json").read_text())["metrics"]
    mb = json.loads((b / "metrics.json").read_text())["metrics"]
    assert {k: m["delta"] for k, m in pair.metrics.items()} == \
        pytest.approx({k: mb[k] - ma[k] for k in ma})
    dev_a = [e["metrics"]["accuracy"] for e in events(a) if e["type"] == "eval" and e["split"] == "dev"]
    assert [d["a"] for d in pair.dev] == dev_a and [d["step"] for d in pair.dev] == [4, 8, 12]


def test_cli_exit_codes_gate_on_the_tolerance(runs, tmp_path):
    a, b = str(runs["a"]), str(runs["b"])
    strict = run_cli("compare", a, b, "--json")
    assert strict.returncode == 1, strict.stderr
    data = json.loads(strict.stdout)
    assert not data["ok"] and data["pairs"][0]["failures"]
    loose = run_cli("compare", a, b, "--tolerance", "prob=0.5", "--tolerance", "loss=none",
                    "--tolerance", "same=0", "--tolerance", "metric=1", "--out", str(tmp_path / "page"))
    assert loose.returncode == 0, loose.stdout + loose.stderr
    assert "agree" in loose.stdout and "step 1" in loose.stdout
    page = (tmp_path / "page" / "report.md").read_text()
    assert "## Agreement" in page and "| agree |" in page
    assert "| finetune.lr | 0.0200 | 0.0210 |" in page
    for bad in (["--tolerance", "wobble=1"], ["--tolerance", "prob"], ["--tolerance", "same=2"]):
        proc = run_cli("compare", a, b, *bad)
        assert proc.returncode == 2 and "tolerance" in proc.stderr, proc.stderr
    unfinished = tmp_path / "half"
    unfinished.mkdir()
    proc = run_cli("compare", a, str(unfinished))
    assert proc.returncode == 2 and "not a finished run" in proc.stderr


def test_tolerance_parsing():
    assert Tolerance.parse(["prob=1e-4", "loss_steps=none"]) == Tolerance(prob=1e-4, loss_steps=None)
    assert Tolerance.parse({"same": 0.5}).same == 0.5
    with pytest.raises(UserInputError, match="unknown"):
        Tolerance.parse({"nope": 1})


def test_report_page_over_several_runs(runs, tmp_path):
    out = tmp_path / "page"
    proc = run_cli("report", str(runs["zs"]), str(runs["a"]), str(runs["b"]), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.md").read_text()
    for run in runs.values():
        m = json.loads((run / "metrics.json").read_text())
        assert f"| {run} | fake | fake-toy | {m['method']} | test | 12 | " \
               f"{m['metrics']['accuracy']:.4f} | {m['metrics']['macro_f1']:.4f} |" in page
    assert "| finetune.method | none | lora | lora |" in page
    # the loss curves overlaid: only the two trained runs have one
    assert "![Training loss by step, every run](figures/loss.png)" in page
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["dev.png", "loss.png",
                                                                    "metrics.png"]
    assert imread(out / "figures" / "loss.png").shape[:2] == (400, 700)
    printed = run_cli("report", str(runs["zs"]))
    assert printed.returncode == 0 and printed.stdout.startswith("# Runs")
    assert "loss.png" not in printed.stdout


def test_a_mixture_run_is_matched_by_task_and_id(tmp_path):
    """In a mixture run the same id can name one example of each task: rows are matched
    by (task, id), so no task's prediction hides another's."""
    import copy

    from tests.test_mixture import mixture_spec
    from unified_prompt.runner import Experiment

    spec = mixture_spec(tmp_path, method="none")
    sentiment = [json.loads(x)["id"] for x in
                 (tmp_path / "sent" / "test.jsonl").read_text().splitlines()]
    topic_test = tmp_path / "topic" / "test.jsonl"
    rows = [json.loads(x) for x in topic_test.read_text().splitlines()]
    topic_test.write_text("".join(json.dumps({**r, "id": sentiment[i]}) + "\n"
                                  for i, r in enumerate(rows)), encoding="utf-8")
    Experiment.from_dict(copy.deepcopy(spec)).run(out=tmp_path / "run", progress=False)
    made = predictions(tmp_path / "run")
    assert len(made) == 20 and len({r["id"] for r in made}) == 12  # 8 ids shared by two tasks
    pair = compare_runs([tmp_path / "run", tmp_path / "run"]).pairs[0]
    assert pair.n_a == pair.n_b == pair.n_common == pair.same == 20 and pair.ok
    assert not pair.notes
