"""Every run draws its figures beside report.md: real PNGs of the right size, nothing for
what did not happen, and the classification tables equal to what predictions.jsonl says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

from tests.toy_runs import events, predictions, toy_data, toy_run
from unified_prompt.figures import plots

TRAINED = ["confusion.png", "dev.png", "per_label.png", "reliability.png", "training.png"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    data = toy_data(root / "data")
    return {"lora": toy_run(root / "lora", data), "zs": toy_run(root / "zs", data, method="none")}


def test_a_trained_run_has_every_figure_linked_from_its_report(runs):
    run = runs["lora"]
    assert sorted(p.name for p in (run / "figures").iterdir()) == TRAINED
    report = (run / "report.md").read_text()
    for name in TRAINED:
        image = imread(run / "figures" / name)
        assert image.ndim == 3 and image.shape[2] == 4
        assert image[..., :3].std() > 0.05, f"{name} is blank"
        assert f"](figures/{name})" in report
    assert imread(run / "figures" / "training.png").shape[:2] == \
        (plots.SIZE[1] * plots.DPI, plots.SIZE[0] * plots.DPI)
    # figures come before metrics.json: a finished run has them
    figs = (run / "figures" / "training.png").stat().st_mtime
    assert figs <= (run / "metrics.json").stat().st_mtime


def test_no_figure_for_what_did_not_happen(runs):
    run = runs["zs"]
    assert sorted(p.name for p in (run / "figures").iterdir()) == \
        ["confusion.png", "per_label.png", "reliability.png"]
    report = (run / "report.md").read_text()
    assert "training.png" not in report and "dev.png" not in report


def _table(report: str, heading: str) -> list[list[str]]:
    part = report.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in part.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def test_report_tables_equal_the_numbers_of_predictions_jsonl(runs):
    run = runs["lora"]
    rows = predictions(run)
    labels = list(rows[0]["scores"])
    report = (run / "report.md").read_text()
    confusion = {r[0]: [int(x) for x in r[1:]] for r in _table(report, "## Confusion matrix")}
    for gold in labels:
        assert confusion[gold] == [sum(r["label"] == gold and r["prediction"] == p for r in rows)
                                   for p in labels]
    per_label = {r[0]: r[1:] for r in _table(report, "## Per label")}
    for lab in labels:
        tp = sum(r["label"] == lab and r["prediction"] == lab for r in rows)
        predicted = sum(r["prediction"] == lab for r in rows)
        support = sum(r["label"] == lab for r in rows)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        assert [float(x) for x in per_label[lab][:3]] == pytest.approx(
            [precision, recall, f1], abs=5e-5)
        assert int(per_label[lab][3]) == support
    # expected calibration error over 10 bins of the predicted label's probability
    conf = np.array([max(r["scores"].values()) for r in rows])
    right = np.array([r["label"] == r["prediction"] for r in rows], dtype=float)
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum((bins == b).sum() / len(rows) * abs(right[bins == b].mean() - conf[bins == b].mean())
              for b in set(bins.tolist()))
    assert f"Expected calibration error: {ece:.4f}" in report


def test_a_figure_failure_is_a_warning_not_a_failed_run(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no room for pictures")

    monkeypatch.setattr(plots, "save_png", broken)
    run = toy_run(tmp_path / "run", toy_data(tmp_path / "data"), max_steps=2)
    assert (run / "metrics.json").exists() and not (run / "figures").exists()
    warnings = [e for e in events(run) if e["type"] == "warning"]
    assert warnings and warnings[0]["source"] == "figures"
    assert "no room for pictures" in warnings[0]["message"]
    assert json.loads((run / "metrics.json").read_text())["metrics"]
    assert "## Confusion matrix" in (run / "report.md").read_text()
