"""The core training loop: schedule, batch order, accumulation, keep-best, early stopping."""

import itertools

import numpy as np
import pytest

from unified_prompt.config import LoraSpec
from unified_prompt.registry import create_backend
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.training import Trainer, TrainPlan, epoch_order, lr_at, step_batches


class FakeSuite(BackendConformance):
    backend_name = "fake"


def plan(**kw):
    spec = LoraSpec(method="lora", **kw)
    return spec, TrainPlan.build(spec, 20, has_dev=True)


def test_plan_and_lr_schedule():
    _, p = plan(epochs=2, batch_size=4, grad_accum=2, warmup_ratio=0.25, lr=1.0)
    assert (p.steps_per_epoch, p.total_steps, p.warmup_steps, p.eval_every) == (3, 6, 2, 1)
    lrs = [lr_at(s, p, 1.0, "linear") for s in range(6)]
    assert lrs[:2] == [0.5, 1.0] and lrs[2] == 1.0 and lrs[-1] == pytest.approx(0.25)
    cos = [lr_at(s, p, 1.0, "cosine") for s in range(2, 6)]
    assert cos[0] == 1.0 and all(a > b for a, b in itertools.pairwise(cos))
    assert lr_at(5, p, 0.1, "constant") == 0.1
    _, p2 = plan(max_steps=7, batch_size=4)
    assert p2.total_steps == 7


def test_every_item_once_per_epoch_in_a_seeded_order():
    _, p = plan(epochs=2, batch_size=3, grad_accum=2)
    seen = [i for s in range(p.steps_per_epoch) for mb in step_batches(p, 9, s) for i in mb]
    assert sorted(seen) == list(range(20))
    assert all(len(mb) <= 3 for mb in step_batches(p, 9, 0))
    assert epoch_order(20, 9, 0) == epoch_order(20, 9, 0) != epoch_order(20, 9, 1)


def _session(method="lora", seed=3, **settings):
    backend = create_backend("fake")
    model = backend.load_model("fake-train")
    suite = FakeSuite()
    builder = suite.builder(backend, model, method, **settings)
    session = backend.start_training(model, suite.setup_for(builder))
    return session, builder.train_items(synthetic_examples())


def test_gradient_accumulation_equals_one_big_batch():
    big, items = _session(batch_size=8, grad_accum=1, lr=0.05, max_steps=3, warmup_ratio=0)
    Trainer(big, items, big.setup.method, seed=1, progress=False).run()
    acc, _ = _session(batch_size=4, grad_accum=2, lr=0.05, max_steps=3, warmup_ratio=0)
    Trainer(acc, items, acc.setup.method, seed=1, progress=False).run()
    for k, v in big.trainable_state().items():
        np.testing.assert_allclose(acc.trainable_state()[k], v, atol=1e-6)


def test_keep_best_restores_the_best_dev_weights_and_early_stopping_stops():
    session, items = _session(max_steps=12, eval_every=2, lr=0.05, early_stopping_patience=2)
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.95, 0.99])
    states = []

    def evaluate():
        states.append({k: v.copy() for k, v in session.trainable_state().items()})
        return {"accuracy": next(scores)}

    outcome = Trainer(session, items, session.setup.method, seed=1, evaluate=evaluate,
                      progress=False).run()
    assert outcome.stopped_early and outcome.steps == 8
    assert outcome.best_metric == 0.9 and outcome.best_step == 4
    for k, v in states[1].items():
        np.testing.assert_array_equal(session.trainable_state()[k], v)


def test_events_are_logged_for_each_step():
    session, items = _session(max_steps=4, lr=0.05)
    log = []
    Trainer(session, items, session.setup.method, seed=1, progress=False,
            log=lambda kind, **d: log.append((kind, d))).run()
    steps = [d for k, d in log if k == "step"]
    assert [d["step"] for d in steps] == [1, 2, 3, 4]
    assert all(np.isfinite(d["loss"]) and d["lr"] > 0 for d in steps)
