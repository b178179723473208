"""Budgets: counted like the backend sees them, refused before spending when they cannot
fit, and never passed during a search."""

from __future__ import annotations

import json

import pytest

from unified_prompt.errors import BudgetExceededError, DataError
from unified_prompt.search import SearchBudget, run_search

OPTIONS = {
    "verbalizer": {"dev_limit": 12, "probe_per_label": 4},
    "propose": {"dev_limit": 12, "rounds": 500, "per_round": 2},
    "rl": {"dev_limit": 12, "steps": 500, "batch": 5, "samples": 3},
    "gradient": {"dev_limit": 12, "iterations": 500, "batch": 3, "eval_batch": 5,
                 "candidates": 3},
    "demos": {"dev_limit": 12, "steps": 500, "pool_per_label": 6},
}
#: The largest unit of work each strategy sends at once with OPTIONS (for "stops exactly").
UNIT = {"verbalizer": 12, "propose": 12, "rl": 12, "gradient": 12, "demos": 12}
#: What each strategy reports besides its candidates (result.extras).
EXTRAS = {"verbalizer": "probe", "propose": "proposer", "rl": "rl", "gradient": "gradient",
          "demos": "demo_pool"}


@pytest.fixture
def counting_task(make_task, extra_backends):
    return make_task({"template": "Review: {text} camera heavy\nSentiment: {mask}"},
                     backend="counting")


@pytest.mark.parametrize("strategy", sorted(OPTIONS))
def test_search_stops_exactly_at_its_call_budget(counting_task, strategy, tmp_path,
                                                 extra_backends):
    counting = extra_backends["counting"]
    # verbalizer: baseline + probe + one dev pass, the whole search; the others run out
    budget = 12 + 8 + 12 if strategy == "verbalizer" else 233
    result = run_search(counting_task, strategy=strategy, budget=budget, out=tmp_path / "o",
                        options=OPTIONS[strategy])
    search, final = result.usage["search"]["calls"], result.usage["final"]["calls"]
    assert counting.calls == search + final  # every call the backend saw was counted
    assert search <= budget
    if strategy != "verbalizer":
        assert result.stopped == "budget"
        assert budget - search < UNIT[strategy]  # nothing that would still fit was left
    n = result.test["n"]
    assert final in (n, 2 * n)  # original and best on the test split, once each
    rows = result.rows
    assert all(r["calls"] <= budget for r in rows)
    assert EXTRAS[strategy] in result.extras  # a budget stop keeps what the strategy reports


def test_token_budget_stops_the_search(counting_task, tmp_path, extra_backends):
    result = run_search(counting_task, strategy="rl", budget=SearchBudget(10_000, tokens=3000),
                        options=OPTIONS["rl"])
    assert result.stopped == "budget"
    assert result.usage["search"]["tokens"] <= 3000
    assert result.usage["search"]["calls"] < 10_000


def test_a_plan_that_cannot_fit_is_refused_before_anything_is_spent(counting_task, tmp_path,
                                                                     extra_backends):
    with pytest.raises(BudgetExceededError, match="below the"):
        run_search(counting_task, strategy="rl", budget=20, out=tmp_path / "o",
                   options=OPTIONS["rl"])
    assert extra_backends["counting"].calls == 0
    assert not (tmp_path / "o").exists()


def test_spec_budget_caps_search_plus_final_test(counting_task, extra_backends):
    counting_task["budget"] = {"max_requests": 100}
    with pytest.raises(BudgetExceededError, match="max_requests"):
        run_search(counting_task, strategy="rl", budget=90, options=OPTIONS["rl"])
    assert extra_backends["counting"].calls == 0


def test_dry_run_plans_and_spends_nothing(counting_task, extra_backends):
    result = run_search(counting_task, strategy="gradient", budget=500, dry_run=True,
                        options=OPTIONS["gradient"])
    plan = result.plan
    assert plan["fits"] and plan["search_at_most"]["calls"] == 500
    assert plan["final_test"]["calls"] == 2 * 24  # 24 test examples, original and best
    assert plan["total_at_most"]["calls"] == 548
    summary = result.summary()  # the plan in words, not a search summary
    assert summary.startswith("search plan: gradient") and "fits the budget" in summary
    assert "search, at most: 500 calls" in summary and "final test:      48 calls" in summary
    assert extra_backends["counting"].calls == 0


def test_test_split_is_scored_only_at_the_end(counting_task, tmp_path, extra_backends):
    result = run_search(counting_task, strategy="rl", budget=300, options=OPTIONS["rl"])
    log = extra_backends["counting"].log
    touched = [any(i and i.startswith("s") for i in ids) for ids in log]
    first = touched.index(True)
    assert all(touched[first:]) and not any(touched[:first])
    test_ids = [i for ids in log[first:] for i in ids if i and i.startswith("s")]
    n = result.test["n"]
    assert len(test_ids) in (n, 2 * n)  # original and best, once each


def test_calibration_choices_share_one_dev_pass(counting_task, tmp_path, extra_backends):
    """Each prompt is scored under none and batch calibration from one dev pass; contextual
    adds only its content-free inputs."""
    counting = extra_backends["counting"]
    options = {"dev_limit": 12, "similarity": False, "random_sets": 2, "steps": 0,
               "pool_per_label": 6, "calibrations": ["none", "batch", "contextual"]}
    result = run_search(counting_task, strategy="demos", budget=400, options=options)
    dev_rows = [r for r in result.rows if r["scope"] == "dev" and not r["cached"]]
    prompts = {(r["template"], str(r.get("demonstrations"))) for r in dev_rows}
    assert len(prompts) == 3  # the original and two random demonstration sets
    assert sorted(r["calibration"] for r in dev_rows) == sorted(["none", "batch", "contextual"] * 3)
    assert result.usage["search"]["calls"] == 3 * (12 + 3)  # dev pass + 3 content-free
    top = max(dev_rows, key=lambda r: (r["margin"], r["accuracy"]))  # select_by: margin
    assert {k: top.get(k) for k in result.best.to_dict()} == result.best.to_dict()
    assert counting.calls == result.usage["search"]["calls"] + result.usage["final"]["calls"]


@pytest.mark.parametrize("confirm_by", ["margin", "accuracy"])
def test_confirm_rescores_the_leaders_on_unseen_dev_examples(counting_task, tmp_path,
                                                             extra_backends, confirm_by):
    """With confirm, the original and the objective's best prompts are scored again on the
    dev examples after the objective's (nothing else touches them, and the test split still
    comes last); the best there is the result, and its cost is reported apart."""
    counting = extra_backends["counting"]
    options = {**OPTIONS["rl"], "dev_limit": 6, "confirm": 6, "confirm_top": 2,
               "select_by": "accuracy", "calibrations": ["none", "batch"],
               "confirm_by": confirm_by}
    plan = run_search(counting_task, strategy="rl", budget=300, options=options,
                      dry_run=True).plan
    assert plan["confirm_examples"] == 6 and plan["confirm_at_most"]["calls"] == 3 * 6
    result = run_search(counting_task, strategy="rl", budget=300, out=tmp_path / "o",
                        options=options)
    confirm = result.extras["confirm"]
    checked = {json.dumps([r["template"], r["verbalizer"]]) for r in confirm["checked"]}
    assert confirm["n"] == 6 and len(checked) in (2, 3)  # the original + up to 2 leaders
    assert confirm["checked"][0]["template"] == result.rows[0]["template"]  # the original
    assert result.usage["confirm"]["calls"] == 6 * len(checked)  # one pass per prompt
    order = ("accuracy", "margin") if confirm_by == "accuracy" else ("margin", "accuracy")
    best = max(confirm["checked"], key=lambda r: tuple(r["confirm"][k] for k in order))
    assert confirm["chosen"] == {k: best[k] for k in confirm["chosen"]}
    assert result.best.to_dict() == confirm["chosen"]
    assert result.dev["best"] == best["objective"]  # reported on the objective, as before
    # the confirm examples are dev ids after the objective's, touched by the confirm only
    objective = set(counting.log[0])  # the baseline: the original on the objective
    assert len(objective) == 6
    late = {i for ids in counting.log for i in ids if i and i.startswith("d")} - objective
    assert len(late) == 6
    confirm_calls = [ids for ids in counting.log if late & set(ids)]
    assert len(confirm_calls) >= len(checked) and all(set(ids) <= late for ids in confirm_calls)
    assert sum(len(ids) for ids in confirm_calls) == 6 * len(checked)
    last_confirm = max(k for k, ids in enumerate(counting.log) if late & set(ids))
    first_test = min(k for k, ids in enumerate(counting.log)
                     if any(i and i.startswith("s") for i in ids))
    assert last_confirm < first_test
    assert "spent (confirm)" in (tmp_path / "o" / "report.md").read_text()


def test_confirm_needs_enough_dev_examples(counting_task, extra_backends):
    with pytest.raises(DataError, match="confirm=20"):
        run_search(counting_task, strategy="rl", budget=300,
                   options={**OPTIONS["rl"], "confirm": 20})
