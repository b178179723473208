"""finetune.objective: the spec, its refusals, and the reference arithmetic checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unified_prompt.config import build_spec
from unified_prompt.errors import ConfigError
from unified_prompt.objectives import (
    ObjectiveSpec,
    cross_entropy,
    margin_loss,
    objective_loss,
    supcon_loss,
)


def _spec(task: str = "classification", **finetune):
    data = {"task": task, "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["good"], "negative": ["bad"]}},
            "finetune": {"method": "lora", **finetune}}
    return build_spec(data)


def test_objective_shorthand_and_settings() -> None:
    assert _spec().finetune.objective.name == "cross_entropy"
    assert _spec(objective="margin").finetune.objective.margin == 1.0
    ft = _spec(objective={"name": "contrastive", "temperature": 0.5, "weight": 0.3}).finetune
    assert (ft.objective.name, ft.objective.temperature, ft.objective.weight) == \
        ("contrastive", 0.5, 0.3)


@pytest.mark.parametrize(("finetune", "task", "needle"), [
    ({"objective": "margin"}, "generation", "finetune.objective margin"),
    ({"objective": {"name": "contrastive", "temperature": 0}}, "classification",
     "finetune.objective.temperature"),
    ({"objective": {"name": "cross_entropy", "ce_weight": 0}}, "classification",
     "ce_weight 0"),
    ({"objective": "focal"}, "classification", "finetune.objective.name"),
])
def test_bad_objectives_name_the_key(finetune, task, needle) -> None:
    with pytest.raises(ConfigError) as err:
        _spec(task, **finetune)
    assert needle in str(err.value)


def test_hosted_jobs_refuse_an_objective() -> None:
    data = {"data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": "{text} {mask}", "verbalizer": {"a": ["x"], "b": ["y"]}},
            "finetune": {"method": "hosted", "objective": "margin"}}
    with pytest.raises(ConfigError, match=r"finetune\.objective does not apply to method hosted"):
        build_spec(data)


def test_cli_refuses_with_exit_2(tmp_path) -> None:
    from click.testing import CliRunner

    from unified_prompt.cli import main

    spec = tmp_path / "g.yaml"
    spec.write_text("task: generation\ndata: {dataset: bbc_headlines}\n"
                    "prompt: {template: 'Article: {text}\\nHeadline: {mask}'}\n"
                    "finetune: {method: lora, objective: contrastive}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2
    assert "finetune.objective contrastive" in result.output


# -- the reference arithmetic, by hand ---------------------------------------------------
def test_cross_entropy_by_hand() -> None:
    scores = np.array([[0.0, math.log(3.0)]])  # softmax = [1/4, 3/4]
    assert cross_entropy(scores, np.array([1]))[0] == pytest.approx(-math.log(0.75))
    assert cross_entropy(scores, np.array([0]))[0] == pytest.approx(-math.log(0.25))


def test_margin_by_hand() -> None:
    scores = np.array([[-1.0, -1.5, -3.0],   # gold 0: gaps 0.5 and 2.0 -> (0.5 + 0) / 2
                       [-2.0, -1.0, -0.2]])  # gold 1: gaps 1.0 and -0.8 -> (0 + 1.8) / 2
    out = margin_loss(scores, np.array([0, 1]), margin=1.0)
    np.testing.assert_allclose(out, [0.25, 0.9])
    assert margin_loss(scores, np.array([0, 1]), margin=0.1)[0] == 0.0


def test_supcon_by_hand() -> None:
    # three unit vectors: a and b at 60 degrees (same class), c opposite a (other class)
    reps = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [-1.0, 0.0]])
    classes = np.array([0, 0, 1])
    t = 0.5
    sim_ab, sim_ac, sim_bc = 0.5 / t, -1.0 / t, -0.5 / t
    la = -(sim_ab - math.log(math.exp(sim_ab) + math.exp(sim_ac)))
    lb = -(sim_ab - math.log(math.exp(sim_ab) + math.exp(sim_bc)))
    assert supcon_loss(reps, classes, t) == pytest.approx((la + lb) / 2)  # c has no positive
    assert supcon_loss(reps * 7.0, classes, t) == pytest.approx((la + lb) / 2)  # normalised
    assert supcon_loss(reps, np.array([0, 1, 2]), t) == 0.0


def test_objective_loss_combines_by_weight() -> None:
    scores = np.array([[-1.0, -1.5, -3.0], [-2.0, -1.0, -0.2]])
    gold = np.array([0, 1])
    ce = cross_entropy(scores, gold).mean()
    spec = ObjectiveSpec(name="margin", weight=0.5, ce_weight=2.0, margin=1.0)
    assert objective_loss(spec, scores, gold) == pytest.approx(2.0 * ce + 0.5 * 0.575)
    assert objective_loss(ObjectiveSpec(), scores, gold) == pytest.approx(ce)
