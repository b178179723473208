"""Local training's one entry point (run and serve both call it)."""

from __future__ import annotations

from unified_prompt.jobs import JobStatus, LocalJob
from unified_prompt.local_training import TrainCallbacks, train_locally
from unified_prompt.registry import create_backend
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples


class FakeSuite(BackendConformance):
    backend_name = "fake"


def _session(**settings):
    backend = create_backend("fake")
    model = backend.load_model("fake-train")
    suite = FakeSuite()
    builder = suite.builder(backend, model, "lora", **settings)
    session = backend.start_training(model, suite.setup_for(builder))
    return session, builder.train_items(synthetic_examples())


def test_epoch_ends_and_events_reach_the_callbacks():
    session, items = _session(epochs=2, batch_size=5, lr=0.05, warmup_ratio=0)
    events, epochs = [], []
    outcome = train_locally(session, items, session.setup.method,
                            TrainCallbacks(log=lambda kind, **d: events.append((kind, d)),
                                           on_epoch_end=lambda step, loss: epochs.append(
                                               (step, loss))),
                            seed=1, progress=False)
    steps = {d["step"]: d["loss"] for kind, d in events if kind == "step"}
    assert outcome.steps == 6 and sorted(steps) == [1, 2, 3, 4, 5, 6]  # 12 items / 5 a step
    assert epochs == [(3, steps[3]), (6, steps[6])], "after each epoch's last step, its loss"
    assert events[0][0] == "train_start"


def test_dev_evaluation_keeps_the_best_and_reports_it():
    session, items = _session(max_steps=4, batch_size=4, lr=0.05, eval_every=2)
    seen = iter([0.5, 0.25])
    outcome = train_locally(session, items, session.setup.method,
                            TrainCallbacks(evaluate=lambda: {"accuracy": next(seen)}),
                            seed=1, progress=False)
    assert (outcome.best_metric, outcome.best_step) == (0.5, 2)
    assert [h["step"] for h in outcome.history] == [2, 4]


def test_inside_a_callers_job_a_cancel_checkpoints_where_it_stands(tmp_path):
    session, items = _session(max_steps=50, batch_size=4, lr=0.05)

    def work(ctx):
        def cancel_at_three(step, loss):
            if step == 3:
                job.cancel()

        return train_locally(session, items, session.setup.method,
                             TrainCallbacks(on_epoch_end=cancel_at_three), seed=1,
                             checkpoint_dir=tmp_path, progress=False, job=ctx).__dict__

    job = LocalJob("outer", work)
    assert job.wait(timeout=60) == JobStatus.CANCELLED
    assert (tmp_path / "latest").read_text().strip() == "step-0000003"
